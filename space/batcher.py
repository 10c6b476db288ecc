"""One thread runs every model call, merging requests that wait at the same time."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sentiment import Prediction, SentimentModel

# Priorities for the batcher's queue: a person waiting on one review goes before a file's chunk.
PRIORITY_INTERACTIVE = 0
PRIORITY_EXPLAIN = 1
PRIORITY_BULK = 2


@dataclass
class _Job:
    texts: list[str]
    engine: str
    future: Future


class Batcher:
    """Runs every model call on one thread and merges requests that are waiting at the same time.

    Requests that arrive while the model is busy are taken together as the next call, so
    concurrent users share it without anyone waiting on a timer; inside it, short windows are
    batched (see `SentimentModel._window_outputs`). Requests are validated before they are
    queued, so a bad one never reaches a shared call (with gradio's `batch=True` validation happens
    inside the batch, where one exception fails every request in it). One thread also means the
    model's intra-op threads own the CPU instead of competing with each other.
    """

    def __init__(self, model: SentimentModel, max_texts: int = 32) -> None:
        self.model = model
        self.max_texts = max_texts
        self._queue: queue.PriorityQueue[tuple[int, int, _Job]] = queue.PriorityQueue()
        self._order = itertools.count()
        threading.Thread(target=self._serve, name="model-batcher", daemon=True).start()

    def predict(
        self, texts: Sequence[str], engine: str, priority: int = PRIORITY_INTERACTIVE
    ) -> list[Prediction]:
        """Queue `texts` for the model and wait for their predictions."""
        if engine not in self.model.engines:
            raise ValueError(f"unknown engine {engine!r}; choose from {sorted(self.model.engines)}")
        job = _Job(list(texts), engine, Future())
        self._queue.put((priority, next(self._order), job))
        return job.future.result()

    def _serve(self) -> None:
        while True:
            jobs = [self._queue.get()[2]]
            size = len(jobs[0].texts)
            while size < self.max_texts:
                try:
                    job = self._queue.get_nowait()[2]
                except queue.Empty:
                    break
                jobs.append(job)
                size += len(job.texts)
            for engine in dict.fromkeys(job.engine for job in jobs):
                group = [job for job in jobs if job.engine == engine]
                self._run(group, engine)

    def _run(self, jobs: list[_Job], engine: str) -> None:
        texts = [text for job in jobs for text in job.texts]
        try:
            predictions = self.model.predict(texts, engine)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, not swallowed
            for job in jobs:
                job.future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            job.future.set_result(predictions[start : start + len(job.texts)])
            start += len(job.texts)
