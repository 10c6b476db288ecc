"""The handlers behind the Space's endpoints: input checks with one clear sentence each, then the batcher."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from batcher import PRIORITY_BULK, Batcher
from explain import explain
from files import (
    Limits,
    SpaceError,
    detect_column,
    list_columns,
    read_reviews,
    results_frame,
    summarize,
    write_results_csv,
)
from retention import ResultsFolders
from sentiment import SentimentModel
from task import Task
from views import render_explanation

# Characters of review text per model call while classifying a file (about half a second of
# model time): small enough that progress moves and single reviews typed meanwhile get in between
# chunks, large enough to keep batches full.
FILE_CHUNK_CHARS = 40_000
# What a non-text review was sent as, in JSON's words (an API client sends JSON).
JSON_KINDS = {
    type(None): "null",
    bool: "true or false",
    int: "a number",
    float: "a number",
    list: "a list",
    dict: "an object",
}


# The API descriptions of /predict and /predict_batch (and of their MCP tools), written for the served
# model by `endpoint_docs`: this project's two-class models get exactly the words they always had.
PREDICT_DOC = """{verb} one English movie review{as_what}.

Reviews longer than the model reads at once are read whole, in overlapping windows whose
{averaged} are averaged. Also an MCP tool: this text is its description.

Args:
    text: the review, plain text (HTML line breaks allowed), at most the Space's character limit.
    engine: "float" (the model as trained), "bf16" or "int8"; empty for the Space's default.

Returns:
    {returns} An empty or too long review
    gets an error saying so.
"""
PREDICT_BATCH_DOC = """{verb} several English movie reviews at once, each{as_what}.

Args:
    texts: the reviews, a non-empty list of strings (at most the Space's per-file review limit).
    engine: "float", "bf16" or "int8"; empty for the Space's default.

Returns:
    One result per review, in the order given, each as the single-review {tool} returns it
    ({fields}).
"""
CLASS_RETURNS = """{{"label": {labels}, "score": the label's probability, "probabilities":
    {{label: probability}}{every}, "windows": how many windows the review was read in, "tokens": its
    length in tokens, "engine": the engine that classified it}}."""


def rating_returns(task: Task) -> str:
    """The Returns text of a rating model's /predict, with its own range and midpoint."""
    name, scale, midpoint = task.labels[0], task.rating_range, task.rating_midpoint
    value = "the model's value" + (f", on its {task.scale()} scale" if scale else "")
    where = (f'"range": [{scale[0]:g}, {scale[1]:g}] (the ratings of the training data)' if scale
             else '"range": null (the model names none)')  # fmt: skip
    side = (
        f'"midpoint": {midpoint:g} (between negative and positive ratings), "side": "positive"\n    '
        f'(at or above {midpoint:g}) or "negative"'
        if midpoint is not None
        else '"midpoint": null and "side": null (the model names no midpoint)'
    )
    return (
        f'{{"label": "{name}", "score": the rating, "rating": the rating ({value}, averaged over the\n    '
        f"windows of a long review), {where},\n    {side}, \"windows\": how many windows the review was\n    "
        "read in, "
        '"tokens": its length in tokens, "engine": the engine that rated it}.'
    )


def endpoint_docs(task: Task) -> dict[str, str]:
    """The descriptions of /predict and /predict_batch for this model: the labels it gives, or its rating."""
    if task.is_rating:
        scale = f" on a {task.scale()} scale" if task.rating_range else ""
        fields = '{"label", "score", "rating", "range", "midpoint", "side", "windows", "tokens", "engine"}'
        words = {"verb": "Rate", "as_what": scale, "averaged": "ratings", "tool": "rater", "fields": fields,
                 "returns": rating_returns(task)}  # fmt: skip
    else:
        quoted = [f'"{label}"' for label in task.labels]
        if len(quoted) == 2:
            labels, every = " or ".join(quoted[::-1]), ""
        else:
            labels, every = "the most probable of " + ", ".join(quoted), " for every class, summing to 1"
        fields = '{"label", "score", "probabilities", "windows", "tokens", "engine"}'
        words = {"verb": "Classify", "as_what": f" as {task.answer_words()}", "averaged": "probabilities",
                 "tool": "classifier", "fields": fields,
                 "returns": CLASS_RETURNS.format(labels=labels, every=every)}  # fmt: skip
    return {"predict": PREDICT_DOC.format(**words), "predict_batch": PREDICT_BATCH_DOC.format(**words)}


def documented(method: Callable, doc: str) -> Callable:
    """`method` with `doc` as its docstring: what Gradio shows as the endpoint's description, and what an
    MCP client reads as the tool's."""

    @functools.wraps(method)
    def endpoint(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the signature is `method`'s (functools.wraps)
        return method(*args, **kwargs)

    endpoint.__doc__ = doc
    return endpoint


class SpaceService:
    """The handlers behind every endpoint, bound to one loaded model and one batcher.

    `predict` and `predict_batch` are described for the served model (`endpoint_docs`): the class's
    own docstrings are this project's two-class wording.
    """

    def __init__(
        self, model: SentimentModel, limits: Limits, default_engine: str, results: ResultsFolders
    ) -> None:
        self.model = model
        self.results = results
        self.limits = limits
        self.default_engine = default_engine
        self.batcher = Batcher(model)
        self.positive = model.labels[model.positive_index]
        docs = endpoint_docs(model.task)
        self.predict = documented(self.predict, docs["predict"])  # type: ignore[method-assign]
        self.predict_batch = documented(self.predict_batch, docs["predict_batch"])  # type: ignore[method-assign]

    def _engine(self, engine: str | None) -> str:
        if not engine:
            return self.default_engine
        if engine not in self.model.engines:
            raise gr.Error(f"Unknown engine '{engine}': choose one of {', '.join(self.model.engines)}.")
        return engine

    def _review(self, text: object, where: str = "The review") -> str:
        if not isinstance(text, str) or not text.strip():
            raise gr.Error(f"{where} is empty: type or paste a movie review first.")
        if len(text) > self.limits.max_chars:
            raise gr.Error(
                f"{where} is {len(text):,} characters long; the limit is {self.limits.max_chars:,} "
                "characters. Paste a shorter excerpt or upload a file of reviews."
            )
        return text

    def predict(self, text: str, engine: str) -> dict[str, object]:
        """Classify one English movie review as POSITIVE or NEGATIVE.

        Reviews longer than the model reads at once are read whole, in overlapping windows whose
        probabilities are averaged. Also an MCP tool: this text is its description.

        Args:
            text: the review, plain text (HTML line breaks allowed), at most the Space's character limit.
            engine: "float" (the model as trained), "bf16" or "int8"; empty for the Space's default.

        Returns:
            {"label": "POSITIVE" or "NEGATIVE", "score": the label's probability, "probabilities":
            {label: probability}, "windows": how many windows the review was read in, "tokens": its
            length in tokens, "engine": the engine that classified it}. An empty or too long review
            gets an error saying so.
        """
        text, engine = self._review(text), self._engine(engine)
        prediction = self.batcher.predict([text], engine)[0]
        return {**prediction.as_dict(), "engine": engine}

    def predict_batch(self, texts: list[str], engine: str = "") -> list[dict]:
        """Classify several English movie reviews at once, each as POSITIVE or NEGATIVE.

        Args:
            texts: the reviews, a non-empty list of strings (at most the Space's per-file review limit).
            engine: "float", "bf16" or "int8"; empty for the Space's default.

        Returns:
            One result per review, in the order given, each as the single-review classifier returns it
            ({"label", "score", "probabilities", "windows", "tokens", "engine"}).
        """
        engine = self._engine(engine)
        if not isinstance(texts, list) or not texts:
            raise gr.Error("Send a non-empty list of review texts.")
        if len(texts) > self.limits.max_rows:
            raise gr.Error(f"{len(texts):,} reviews in one call; the limit is {self.limits.max_rows:,}.")
        wheres = [f"Review {i + 1} of {len(texts)}" for i in range(len(texts))]
        for where, item in zip(wheres, texts):
            if not isinstance(item, str):  # a client's JSON may hold anything; say what came instead of text
                kind = JSON_KINDS.get(type(item), f"a {type(item).__name__}")
                raise gr.Error(f"{where} is not text but {kind}: send each review as a string.")
        checked = [self._review(t, where) for where, t in zip(wheres, texts)]
        return [{**p.as_dict(), "engine": engine} for p in self.batcher.predict(checked, engine)]

    def explain(self, text: str, engine: str) -> tuple[list[tuple[str, str | None]], str]:
        """Which words pushed the prediction each way, measured by deleting them and re-scoring."""
        text, engine = self._review(text), self._engine(engine)
        return render_explanation(explain(self.batcher, text, engine))

    def predict_file(
        self, file: str | None, text_column: str, engine: str, progress: gr.Progress = gr.Progress()
    ) -> tuple[str, dict[str, object]]:
        """Classify every review in a .txt/.csv/.tsv/.xlsx/.jsonl file; returns the results CSV and a summary."""
        engine = self._engine(engine)
        if not file:
            raise gr.Error("Upload a file of reviews first.")
        path = Path(file)
        try:
            table = read_reviews(path, text_column or None, self.limits)
        except SpaceError as exc:
            raise gr.Error(str(exc)) from None
        texts = table.texts
        predictions: list[dict[str, object] | None] = [None] * len(texts)
        started = time.perf_counter()
        done = 0
        chunks = length_sorted_chunks(texts, FILE_CHUNK_CHARS)
        total = sum(map(len, chunks))
        progress((0, total), desc="Classifying", unit="reviews")
        for chunk in chunks:
            results = self.batcher.predict([texts[i] for i in chunk], engine, priority=PRIORITY_BULK)
            for i, result in zip(chunk, results):
                predictions[i] = result.as_dict()
            done += len(chunk)
            progress((done, total), desc="Classifying", unit="reviews")
        seconds = time.perf_counter() - started
        frame = results_frame(table, predictions, self.model.labels, self.model.task)
        csv_path = write_results_csv(frame, self.results.new() / f"predictions_{path.stem}.csv")
        summary = summarize(frame, self.model.labels, self.positive, self.model.task)
        summary.update(
            text_column=table.text_column,
            encoding=table.encoding,
            engine=engine,
            seconds=round(seconds, 3),
            reviews_per_second=round(total / seconds, 2) if seconds > 0 else None,
        )
        return str(csv_path), summary

    def file_columns(self, file: str | None) -> gr.Dropdown:
        """Fill the 'Text column' menu from an upload's header, preselecting the detected column."""
        columns = list_columns(Path(file)) if file else []
        detected = detect_column(columns) if columns else None
        return gr.Dropdown(choices=[("Detect by name", ""), *((c, c) for c in columns)], value=detected or "")


def length_sorted_chunks(texts: list[str], max_chars: int) -> list[list[int]]:
    """Indices of the non-empty texts, shortest first, cut into chunks of about `max_chars`.

    Reviews of similar length share a chunk, so the model's batches need almost no padding and
    short reviews are batched many at a time; the caller puts each result back at its index.
    """
    order = sorted((i for i, text in enumerate(texts) if text.strip()), key=lambda i: len(texts[i]))
    chunks: list[list[int]] = []
    size = max_chars
    for i in order:
        if size + len(texts[i]) > max_chars and (not chunks or chunks[-1]):
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += len(texts[i])
    return chunks
