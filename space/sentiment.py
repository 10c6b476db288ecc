"""The Space's classifier: a model loaded once, its engines, long reviews read in windows, batches of windows.

Everything the endpoints ask of the model goes through `SentimentModel.predict`, so the benchmark
(`bench/space_speed.py`) times exactly the code the Space runs.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from engines import ENGINE_FLOAT, PER_WINDOW_ENGINES, build_engines, default_engines
from examples import EXAMPLES
from ort_cpu import LogitsFn
from task import Task
from transformers import pipeline
from windows import WINDOW_OVERLAP, clean_text, cut_windows, model_max_length


@dataclass(frozen=True)
class Prediction:
    """One review's result; `windows` > 1 means the review was longer than the model reads at once.

    For a rating model (`task` a rating) `score` is the rating itself, `label` the model's one output name
    (as `pipeline` answers) and there are no probabilities.
    """

    label: str
    score: float
    probabilities: dict[str, float]
    windows: int
    tokens: int
    task: Task | None = None

    @property
    def rating(self) -> float | None:
        return self.score if self.task is not None and self.task.is_rating else None

    def as_dict(self) -> dict[str, object]:
        """The JSON of /predict: label, score, every class's probability; for a rating model the rating, its
        scale (`range`, `midpoint`) and which `side` of the midpoint it falls on, instead of probabilities."""
        if self.task is None or not self.task.is_rating:
            return {
                "label": self.label,
                "score": self.score,
                "probabilities": dict(self.probabilities),
                "windows": self.windows,
                "tokens": self.tokens,
            }
        return {
            "label": self.label,
            "score": self.score,
            "rating": self.score,
            "range": list(self.task.rating_range) if self.task.rating_range else None,
            "midpoint": self.task.rating_midpoint,
            "side": self.task.side(self.score),
            "windows": self.windows,
            "tokens": self.tokens,
        }


def positive_index(id2label: dict[int, str]) -> int:
    """Index of the class that explanations are measured against (POSITIVE for this project)."""
    for index, name in id2label.items():
        if str(name).upper().startswith("POS"):
            return int(index)
    return max(id2label)


class SentimentModel:
    """A text classifier loaded once, with one or more engines and windowed long-text scoring.

    The Space sends every model call through one `Batcher` thread, which keeps the CPU's cores
    on one batch at a time instead of splitting them between requests. Tokenising is also done
    from request threads (to size explanations), so it holds a lock: a fast tokenizer's
    truncation settings are shared state that concurrent calls would trip over. The int8 engine
    finds its outlier channels on `calibration` (default: the Space's example reviews).
    """

    def __init__(
        self,
        model_id: str,
        engines: Sequence[str] | None = None,
        max_batch_size: int = 64,
        max_batch_tokens: int = 4096,
        calibration: Sequence[str] = tuple(text for _, text in EXAMPLES),
    ) -> None:
        # The pipeline resolves a Hub id or a local folder and pairs the model with its tokenizer;
        # float32 explicitly, because transformers keeps a float16 checkpoint in float16 otherwise.
        pipe = pipeline("text-classification", model=model_id, dtype=torch.float32, top_k=None)
        model = pipe.model.eval()
        self.model_id = model_id
        self.tokenizer = pipe.tokenizer
        self.labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        self.task = Task.from_config(model.config)
        self.positive_index = positive_index(model.config.id2label)
        self.max_length = model_max_length(self.tokenizer, model.config)
        self.num_special = self.tokenizer.num_special_tokens_to_add()
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self._tokenizer_lock = threading.Lock()
        names = default_engines() if engines is None else engines
        self.engines: dict[str, LogitsFn] = build_engines(
            model, self.tokenizer, names, calibration, self.max_length, source=model_id
        )
        # Seconds per engine for the start-up workload, and the engines that gave float32's labels
        # on it, measured on this host by `measure`.
        self.timings: dict[str, float] = {}
        self.same_labels: set[str] = set()
        self._window_workers = ThreadPoolExecutor(torch.get_num_threads(), thread_name_prefix="window-worker")

    def measure(self, texts: Sequence[str], repeats: int = 3) -> dict[str, float]:
        """Seconds each engine takes to classify `texts` as one file here: the median of `repeats`, after a warm-up.

        Which engine is fastest depends on the CPU (bf16 units, int8 instructions, core count) and on the
        work (batched windows of many lengths), so the Space times the work it serves, a file of reviews of
        realistic lengths (`examples.timing_reviews`), instead of assuming a speed-up seen elsewhere. The
        first call allocates and picks kernels, so it is left out; its labels (a rating model's values, within
        `Task.rating_tolerance`) are compared with float32's (`same_labels`).
        """
        self.timings, answers = {}, {}
        for engine in self.engines:
            answers[engine] = self.predict(texts, engine)
            seconds = []
            for _ in range(repeats):
                started = time.perf_counter()
                self.predict(texts, engine)
                seconds.append(time.perf_counter() - started)
            self.timings[engine] = float(np.median(seconds))
        reference = answers.get(ENGINE_FLOAT)
        self.same_labels = {
            e for e, found in answers.items() if reference is None or self.task.same_answers(reference, found)
        }
        return self.timings

    def windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids of every window of every (cleaned) text, and which text each window belongs to (`cut_windows`)."""
        with self._tokenizer_lock:
            return cut_windows(self.tokenizer, texts, self.max_length)

    def _batches(
        self, windows: list[list[int]], max_batch: int
    ) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
        """Length-sorted, padding-light batches: (window indices, input ids, attention mask).

        A batch holds at most `max_batch_tokens` padded tokens (eight full windows by default):
        short texts run faster batched on CPU (bench/space_speed.py), and under bf16 autocast fewer, larger calls
        cast the weights fewer times; for long float32 windows the batch size makes no difference.
        """
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]), reverse=True)
        pad_id = self.tokenizer.pad_token_id or 0
        batches = []
        start = 0
        while start < len(order):
            longest = len(windows[order[start]])
            size = max(1, min(max_batch, self.max_batch_tokens // longest))
            batch = order[start : start + size]
            ids = np.full((len(batch), longest), pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), longest), dtype=np.int64)
            for row, index in enumerate(batch):
                ids[row, : len(windows[index])] = windows[index]
                mask[row, : len(windows[index])] = 1
            batches.append((batch, ids, mask))
            start += size
        return batches

    def _window_outputs(self, windows: list[list[int]], engine: str) -> np.ndarray:
        """Softmax probabilities for each window; a rating model's values as they come (never a softmax).

        A per-window engine's calls are spread over one single-threaded worker per core: on small
        one-window calls that keeps both cores busier than one call using both (bench/space_speed.py);
        each window's result is the same either way, since no call sees another's.
        """
        logits_fn = self.engines[engine]
        per_window = engine in PER_WINDOW_ENGINES
        batches = self._batches(windows, 1 if per_window else self.max_batch_size)
        if per_window:
            all_logits = list(self._window_workers.map(lambda b: logits_fn(b[1], b[2]), batches))
        else:
            all_logits = [logits_fn(ids, mask) for _, ids, mask in batches]
        probs = np.zeros((len(windows), len(self.labels)), dtype=np.float64)
        for (batch, _, _), logits in zip(batches, all_logits):
            logits = logits.astype(np.float64)
            if self.task.is_rating:
                probs[batch] = logits
                continue
            logits -= logits.max(axis=1, keepdims=True)
            exp = np.exp(logits)
            probs[batch] = exp / exp.sum(axis=1, keepdims=True)
        return probs

    def predict(self, texts: Sequence[str], engine: str = ENGINE_FLOAT) -> list[Prediction]:
        """Classify `texts`; a long review's probabilities (a rating model's values) are its windows' mean.

        A plain mean, as the training command's `--eval_windows` evaluation computes it.
        """
        if not texts:
            return []
        windows, owner = self.windows([clean_text(t) for t in texts])
        probs = self._window_outputs(windows, engine)
        totals = np.zeros((len(texts), len(self.labels)))
        counts = np.zeros(len(texts), dtype=np.int64)
        tokens = np.zeros(len(texts), dtype=np.int64)
        np.add.at(totals, owner, probs)
        np.add.at(counts, owner, 1)
        np.add.at(tokens, owner, [len(w) - self.num_special for w in windows])
        # Overflow windows repeat WINDOW_OVERLAP tokens of the previous one: count those once.
        tokens -= WINDOW_OVERLAP * (counts - 1)
        results = []
        for i in range(len(texts)):
            p = totals[i] / counts[i]
            if self.task.is_rating:
                answer = {"label": self.labels[0], "score": float(p[0]), "probabilities": {}}
            else:
                best = int(p.argmax())
                answer = {"label": self.labels[best], "score": float(p[best]),
                          "probabilities": {name: float(v) for name, v in zip(self.labels, p)}}  # fmt: skip
            results.append(
                Prediction(**answer, windows=int(counts[i]), tokens=int(tokens[i]), task=self.task)  # type: ignore[arg-type]
            )
        return results
