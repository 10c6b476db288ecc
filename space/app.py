"""Gradio Space: classify movie reviews as positive or negative, one at a time or a whole file.

    MODEL_ID=<Hub repo id or local folder> python app.py

serves the UI and the API (`/predict`, `/predict_batch`, `/predict_file`, `/explain`) on
http://127.0.0.1:7860 (PORT or GRADIO_SERVER_PORT to change it). At start-up every engine
classifies the example reviews and the fastest of those that keep float32's labels becomes the
default (`classifier.AUTO_ENGINES`); the page shows what was measured. SPACE_ENGINE=float, bf16 or
int8 forces the default; every engine stays selectable.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
import os
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd
from classifier import (
    ENGINE_LABELS,
    PRIORITY_BULK,
    Batcher,
    Explanation,
    SentimentModel,
    explain,
    fastest_engine,
)
from examples import EXAMPLES
from files import (
    SUPPORTED_SUFFIXES,
    SpaceError,
    Limits,
    detect_column,
    list_columns,
    read_reviews,
    results_frame,
    summarize,
    write_results_csv,
)

# Characters of review text per model call while classifying a file (about half a second of
# model time): small enough that progress moves and single reviews typed meanwhile get in between
# chunks, large enough to keep batches full.
FILE_CHUNK_CHARS = 40_000
PREVIEW_ROWS = 50
# Explanation colours: green pushed towards positive, red towards negative, darker = stronger.
HIGHLIGHT_COLORS = {
    "strong positive": "#15803d",
    "positive": "#86efac",
    "negative": "#fca5a5",
    "strong negative": "#b91c1c",
}
# A span must move P(positive) by at least this much to be highlighted at all.
MIN_HIGHLIGHT = 0.005


def limits_from_env() -> Limits:
    """Upload limits, overridable with SPACE_MAX_FILE_MB, SPACE_MAX_ROWS and SPACE_MAX_CHARS."""
    default = Limits()
    return Limits(
        max_bytes=int(float(os.environ.get("SPACE_MAX_FILE_MB", default.max_bytes / 2**20)) * 2**20),
        max_rows=int(os.environ.get("SPACE_MAX_ROWS", default.max_rows)),
        max_chars=int(os.environ.get("SPACE_MAX_CHARS", default.max_chars)),
    )


class SpaceService:
    """The handlers behind every endpoint, bound to one loaded model and one batcher."""

    def __init__(self, model: SentimentModel, limits: Limits, default_engine: str) -> None:
        self.model = model
        self.limits = limits
        self.default_engine = default_engine
        self.batcher = Batcher(model)
        self.positive = model.labels[model.positive_index]

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
        """Classify one review: its label, the label's score and both class probabilities."""
        text, engine = self._review(text), self._engine(engine)
        prediction = self.batcher.predict([text], engine)[0]
        return {**prediction.as_dict(), "engine": engine}

    def predict_batch(self, texts: list[str], engine: str = "") -> list[dict]:
        """Classify a list of reviews; returns one result per review, in order."""
        engine = self._engine(engine)
        if not isinstance(texts, list) or not texts:
            raise gr.Error("Send a non-empty list of review texts.")
        if len(texts) > self.limits.max_rows:
            raise gr.Error(f"{len(texts):,} reviews in one call; the limit is {self.limits.max_rows:,}.")
        checked = [self._review(t, f"Review {i + 1} of {len(texts)}") for i, t in enumerate(texts)]
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
        frame = results_frame(table, predictions, self.model.labels)
        out_dir = Path(tempfile.mkdtemp(prefix="sentiment-results-"))
        csv_path = write_results_csv(frame, out_dir / f"predictions_{path.stem}.csv")
        summary = summarize(frame, self.model.labels, self.positive)
        summary.update(
            text_column=table.text_column,
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


def engine_note(timings: dict[str, float], default: str, forced: bool, examples: int) -> str:
    """What this host measured at start-up, for the engine menu: never a figure from elsewhere."""
    measured = ", ".join(f"{engine} {seconds * 1000:.0f} ms" for engine, seconds in timings.items())
    why = "set by SPACE_ENGINE" if forced else "the fastest here of those that keep float32's labels"
    return f"Measured on this machine at start-up, the {examples} examples: {measured}. Default: {default} ({why})."


def prediction_view(result: dict[str, object] | None, max_length: int) -> tuple[dict[str, float] | None, str]:
    """Label component value and a note; the note says when a long review was split into windows."""
    if not result:
        return None, ""
    windows, tokens = int(result["windows"]), int(result["tokens"])  # type: ignore[call-overload]
    if windows > 1:
        note = (
            f"**Long review: split into {windows} windows.** It has {tokens:,} tokens and the model "
            f"reads {max_length} at a time, so it read {windows} overlapping windows and averaged "
            "their probabilities. Nothing was cut off."
        )
    else:
        note = f"{tokens:,} tokens, read in one pass."
    note += f" Engine: {ENGINE_LABELS.get(str(result['engine']), result['engine'])}."
    return dict(result["probabilities"]), note  # type: ignore[call-overload]


def render_explanation(explanation: Explanation) -> tuple[list[tuple[str, str | None]], str]:
    """Colour each span by how far it moved P(positive), and list the strongest spans each way."""
    biggest = max((abs(d) for d in explanation.deltas), default=0.0)
    threshold = max(MIN_HIGHLIGHT, 0.2 * biggest)
    highlighted: list[tuple[str, str | None]] = []
    for span, delta in zip(explanation.spans, explanation.deltas):
        category = None
        if abs(delta) >= threshold:
            strength = "strong " if abs(delta) >= 0.6 * biggest else ""
            category = strength + ("positive" if delta > 0 else "negative")
        highlighted.append((span, category))
    ranked = sorted(zip(explanation.deltas, explanation.spans), key=lambda pair: pair[0])

    def listing(pairs: list[tuple[float, str]]) -> str:
        shown = [f"“{_short(span)}” {delta:+.3f}" for delta, span in pairs if abs(delta) >= threshold][:5]
        return ", ".join(shown) or "none"

    pushed_positive = [pair for pair in reversed(ranked) if pair[0] > 0]
    pushed_negative = [pair for pair in ranked if pair[0] < 0]
    summary = (
        f"P({explanation.positive_label}) = {explanation.base_probability:.3f}. Each span was deleted in "
        f"turn and the review re-scored; the number is how much the span added to P({explanation.positive_label}).  \n"
        f"**Pushed positive:** {listing(pushed_positive)}  \n**Pushed negative:** {listing(pushed_negative)}"
    )
    return highlighted, summary


def _short(span: str, limit: int = 40) -> str:
    span = " ".join(span.split())
    return span if len(span) <= limit else span[: limit - 1] + "…"


def file_view(
    csv_path: str | None, summary: dict[str, object] | None
) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """Preview table, summary text and histogram data for a finished file."""
    if not csv_path or not summary:
        return pd.DataFrame(), "", pd.DataFrame({"P(positive)": [], "reviews": []})
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, nrows=PREVIEW_ROWS)
    text_column = str(summary["text_column"])
    shown = [c for c in (text_column, "predicted_label", "score", "windows") if c in frame.columns]
    preview = frame[shown].copy()
    preview[text_column] = preview[text_column].map(lambda t: _short(t, 160))
    counts: dict[str, int] = summary["counts"]  # type: ignore[assignment]
    n = int(summary["classified"])  # type: ignore[arg-type]
    parts = [f"**{n:,} reviews classified** from column `{text_column}`"]
    parts += [f"{label}: {count:,}" for label, count in counts.items()]
    parts.append(f"share positive: {float(summary['share_positive']):.1%}")  # type: ignore[arg-type]
    if summary["split_into_windows"]:
        parts.append(f"{summary['split_into_windows']:,} long reviews split into windows")
    if summary["empty_rows"]:
        parts.append(f"{summary['empty_rows']:,} empty rows left unclassified")
    parts.append(f"{summary['seconds']} s ({summary['reviews_per_second']} reviews/s)")
    histogram: dict[str, list] = summary["histogram"]  # type: ignore[assignment]
    edges = histogram["edges"]
    bins = pd.DataFrame(
        {
            "P(positive)": [f"{a:.1f}–{b:.1f}" for a, b in zip(edges, edges[1:])],
            "reviews": histogram["counts"],
        }
    )
    return preview, " · ".join(parts), bins


def api_help(limits: Limits, engines: list[str]) -> str:
    """The API tab: what each endpoint takes and returns (the README has runnable snippets)."""
    return f"""
Every endpoint is callable with [`gradio_client`](https://www.gradio.app/guides/getting-started-with-the-python-client)
(`pip install gradio_client`), see "Use via API" at the bottom of the page or the Space's README.

| endpoint | input | output |
|---|---|---|
| `/predict` | `text`, `engine` (optional: {", ".join(f"`{e}`" for e in engines)}) | `{{label, score, probabilities, windows, tokens, engine}}` |
| `/predict_batch` | `texts` (list of strings), `engine` | list of results as for `/predict` |
| `/predict_file` | `file` (`handle_file(path)`), `text_column` (optional), `engine` | results CSV path, summary |
| `/explain` | `text`, `engine` | highlighted spans, explanation text |

Limits: {limits.describe()}. Requests that wait at the same time are run through the model together.
"""


def _review_tab(limits: Limits) -> SimpleNamespace:
    """The typed-review tab's components (created inside the caller's gr.Tab)."""
    with gr.Row():
        with gr.Column(scale=3):
            review = gr.Textbox(
                label="Review",
                lines=7,
                placeholder="Paste a movie review…",
                info=f"Up to {limits.max_chars:,} characters; long reviews are read in windows, not cut.",
                elem_id="review",
            )
            classify = gr.Button("Classify", variant="primary")
        with gr.Column(scale=2):
            label = gr.Label(num_top_classes=2, label="Prediction", elem_id="prediction")
            note = gr.Markdown(elem_id="prediction-note")
    gr.Examples(
        examples=[[text] for _, text in EXAMPLES],
        inputs=[review],
        example_labels=[name for name, _ in EXAMPLES],
        label="Examples",
    )
    highlights = gr.HighlightedText(
        label="Why: spans that pushed the prediction (green: towards positive, red: towards negative)",
        color_map=HIGHLIGHT_COLORS,
        show_legend=True,
        show_inline_category=False,
        elem_id="why",
    )
    why = gr.Markdown(elem_id="why-text")
    with gr.Accordion("API result (JSON)", open=False):
        result = gr.JSON(label="/predict")
    return SimpleNamespace(review=review, classify=classify, label=label, note=note, highlights=highlights,
                           why=why, result=result)  # fmt: skip


def _file_tab(limits: Limits) -> SimpleNamespace:
    """The file-upload tab's components (created inside the caller's gr.Tab)."""
    gr.Markdown(
        "Upload `.txt` (one review per line), `.csv` / `.tsv` (comma, semicolon, tab or `|`; the text "
        "column is found by name, `text`, `review`, …, or choose it), `.xlsx` (the first sheet), or "
        "`.jsonl` (one object per line). UTF-8, or UTF-16 with a byte-order mark. "
        f"Limits: {limits.describe()}."
    )
    with gr.Row():
        upload = gr.File(
            label="Reviews file",
            file_types=list(SUPPORTED_SUFFIXES),
            type="filepath",
            elem_id="upload",
        )
        with gr.Column():
            column = gr.Dropdown([("Detect by name", "")], value="", label="Text column", allow_custom_value=True)
            classify_file = gr.Button("Classify file", variant="primary")
    file_summary = gr.Markdown(elem_id="file-summary")
    with gr.Row():
        histogram = gr.BarPlot(
            x="P(positive)", y="reviews", title="Scores: P(positive) per review", sort="x", height=260
        )
        download = gr.File(
            label="Results CSV: every row with its label and score",
            interactive=False,
            elem_id="download",
        )
    preview = gr.Dataframe(
        label=f"Preview (first {PREVIEW_ROWS} rows)", interactive=False, wrap=True, elem_id="preview"
    )
    with gr.Accordion("API result (JSON)", open=False):
        summary = gr.JSON(label="/predict_file summary")
    return SimpleNamespace(upload=upload, column=column, classify_file=classify_file, file_summary=file_summary,
                           histogram=histogram, download=download, preview=preview, summary=summary)  # fmt: skip


def _wire_events(service: SpaceService, model: SentimentModel, engine: gr.Radio, t: SimpleNamespace,
                 f: SimpleNamespace) -> None:  # fmt: skip
    """The API endpoints (/predict, /explain, /predict_file, /predict_batch) and the views that follow them."""
    predicted = t.classify.click(
        service.predict,
        [t.review, engine],
        [t.result],
        api_name="predict",
        concurrency_limit=8,
        concurrency_id="predict",
    )
    predicted.success(
        functools.partial(prediction_view, max_length=model.max_length),
        [t.result],
        [t.label, t.note],
        queue=False,
        api_visibility="private",
    )
    predicted.success(
        service.explain,
        [t.review, engine],
        [t.highlights, t.why],
        api_name="explain",
        concurrency_limit=2,
    )
    f.upload.upload(service.file_columns, [f.upload], [f.column], queue=False, api_visibility="private")
    classified = f.classify_file.click(
        service.predict_file,
        [f.upload, f.column, engine],
        [f.download, f.summary],
        api_name="predict_file",
        concurrency_limit=2,
        show_progress_on=[f.file_summary],
    )
    classified.success(
        file_view,
        [f.download, f.summary],
        [f.preview, f.file_summary, f.histogram],
        queue=False,
        api_visibility="private",
    )
    gr.api(service.predict_batch, api_name="predict_batch", concurrency_limit=4)


def build_app(
    model: SentimentModel, limits: Limits | None = None, default_engine: str | None = None
) -> gr.Blocks:
    """The whole Space for an already loaded model, queued and ready to `launch()`."""
    limits = limits or limits_from_env()
    forced = default_engine or os.environ.get("SPACE_ENGINE", "").strip()
    if forced and forced not in model.engines:
        raise ValueError(f"SPACE_ENGINE={forced!r}: choose one of {', '.join(model.engines)}")
    timings = model.measure([text for _, text in EXAMPLES])
    default_engine = forced or fastest_engine(timings)
    service = SpaceService(model, limits, default_engine)
    engine_choices = [(ENGINE_LABELS.get(e, e), e) for e in model.engines]

    with gr.Blocks(title="Movie review sentiment") as demo:
        gr.Markdown(
            f"# Movie review sentiment\nIs a movie review positive or negative? Model: `{model.model_id}`. "
            "Type a review, or upload a file of them."
        )
        engine = gr.Radio(
            engine_choices,
            value=default_engine,
            label="Engine",
            info=engine_note(timings, default_engine, bool(forced), len(EXAMPLES)),
        )
        with gr.Tab("Review"):
            typed = _review_tab(limits)
        with gr.Tab("File upload"):
            files_tab = _file_tab(limits)
        with gr.Tab("API"):
            gr.Markdown(api_help(limits, list(model.engines)))
        _wire_events(service, model, engine, typed, files_tab)

    return demo.queue(max_size=64, default_concurrency_limit=2)


def load_model(model_id: str) -> SentimentModel:
    """Load MODEL_ID, or exit with one sentence the Space's logs will show."""
    try:
        return SentimentModel(model_id)
    except Exception as exc:  # noqa: BLE001 - any failure here means the Space cannot start
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.exit(
            f"Could not load the model '{model_id}' ({type(exc).__name__}: {reason}). Set MODEL_ID to a "
            "Hub model repo id or a local folder saved by the training command."
        )


def main() -> None:
    model_id = os.environ.get("MODEL_ID", "").strip()
    if not model_id:
        sys.exit("MODEL_ID is not set: set it to a Hub model repo id or a local model folder.")
    limits = limits_from_env()
    try:
        demo = build_app(load_model(model_id), limits)
    except ValueError as exc:
        sys.exit(str(exc))
    port = int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port,
        # Gradio's own cap, above the app's limit so the app's clearer message is the one people see.
        max_file_size=2 * limits.max_bytes,
    )


if __name__ == "__main__":
    main()
