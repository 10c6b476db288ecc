"""Gradio Space: classify movie reviews as positive or negative, one at a time or a whole file.

The same Space serves a model of any classes (every class's probability) or a rating model (the rating
itself), as the model's config.json says (task.py).

    MODEL_ID=<Hub repo id or local folder> python app.py

serves the UI, the API (`/predict`, `/predict_batch`, `/predict_file`, `/explain`) and the same
endpoints as MCP tools for agents (http://127.0.0.1:7860/gradio_api/mcp/) on http://127.0.0.1:7860
(settings.py lists every variable it reads). At start-up every engine classifies a file of reviews of
IMDb's spread of lengths (`examples.timing_reviews`), and the fastest of float32 and those that keep
float32's labels becomes the default (`engines.AUTO_ENGINES`); the page shows what was measured. SPACE_ENGINE=float,
bf16 or int8 forces the default; every engine stays selectable. This file lays the page out, wires
the endpoints and starts the server.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Literal

import gradio as gr
from gradio.events import Dependency
from engines import ENGINE_LABELS, fastest_engine
from examples import EXAMPLES, TIMING_WORDS, timing_reviews
from retention import ResultsFolders, cache_schedule, describe_retention
from files import SUPPORTED_SUFFIXES, Limits
from model_files import read_results
from sentiment import SentimentModel
from service import SpaceService
from settings import Settings
from task import KIND_BINARY, Task
from views import (
    HISTOGRAM_AXES,
    PREVIEW_ROWS,
    api_help,
    engine_note,
    file_view,
    highlight_style,
    prediction_view,
    short_text_note,
)


def page_intro(model_id: str, task: Task) -> str:
    """The page's heading and first line: what the model answers about a review."""
    if task.is_rating:
        scale = f", on a {task.scale()} scale" if task.rating_range else ""
        question = f"How would a movie review rate{scale}?"
    elif task.kind == KIND_BINARY and {label.upper() for label in task.labels} == {"NEGATIVE", "POSITIVE"}:
        question = "Is a movie review positive or negative?"
    else:
        question = f"Is a movie review {task.answer_words()}?"
    return (
        f"# Movie review sentiment\n{question} Model: `{model_id}`. "
        "Type a review, or upload a file of them."
    )


def _review_tab(limits: Limits, task: Task) -> SimpleNamespace:
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
            # Every class's probability is listed (a rating model's value is shown as text).
            label = gr.Label(num_top_classes=len(task.labels), label="Prediction", elem_id="prediction")
            note = gr.Markdown(elem_id="prediction-note")
    examples = gr.Examples(
        examples=[[text] for _, text in EXAMPLES],
        inputs=[review],
        example_labels=[name for name, _ in EXAMPLES],
        label="Examples",
    )
    why_label, why_colors = highlight_style(task)
    highlights = gr.HighlightedText(
        label=why_label,
        color_map=why_colors,
        show_legend=True,
        show_inline_category=False,
        elem_id="why",
    )
    why = gr.Markdown(elem_id="why-text")
    with gr.Accordion("API result (JSON)", open=False):
        result = gr.JSON(label="/predict")
    return SimpleNamespace(review=review, classify=classify, examples=examples, label=label, note=note,
                           highlights=highlights, why=why, result=result)  # fmt: skip


def _file_tab(limits: Limits, retention_minutes: float, task: Task) -> SimpleNamespace:
    """The file-upload tab's components (created inside the caller's gr.Tab)."""
    gr.Markdown(
        "Upload `.txt` (one review per line), `.csv` / `.tsv` (comma, semicolon, tab or `|`; the text "
        "column is found by name, `text`, `review`, …, or choose it), `.xlsx` (the first sheet), or "
        "`.jsonl` (one object per line). UTF-8, UTF-16 with a byte-order mark, or another encoding, "
        "detected. "
        f"Limits: {limits.describe()}. Uploads and results are deleted from the server "
        f"{describe_retention(retention_minutes)} after they are made, and never logged.",
        elem_id="file-help",
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
        axis, title = HISTOGRAM_AXES[task.kind]
        histogram = gr.BarPlot(x=axis, y="reviews", title=title, sort="x", height=260)
        download = gr.File(
            label=f"Results CSV: every row with its {'rating' if task.is_rating else 'label and score'}",
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


def _on_classify(trigger: Callable[..., Dependency], service: SpaceService, view: Callable[..., object],
                 engine: gr.Radio, t: SimpleNamespace, public: bool) -> None:  # fmt: skip
    """On `trigger`, classify the review box, then show the label, its note and the explanation.

    The Classify button's chain is the /predict and /explain endpoints; an example's click runs the
    same handlers privately, so clicking one shows its label without adding an endpoint to the API.
    """
    visibility: Literal["public", "private"] = "public" if public else "private"
    predicted = trigger(
        service.predict,
        [t.review, engine],
        [t.result],
        api_name="predict" if public else "predict_example",
        api_visibility=visibility,
        concurrency_limit=8,
        concurrency_id="predict",
    )
    predicted.success(view, [t.result, t.review], [t.label, t.note], queue=False, api_visibility="private")
    predicted.success(
        service.explain,
        [t.review, engine],
        [t.highlights, t.why],
        api_name="explain" if public else "explain_example",
        api_visibility=visibility,
        concurrency_limit=2,
        concurrency_id="explain",
    )


def _wire_events(service: SpaceService, model: SentimentModel, engine: gr.Radio, t: SimpleNamespace,
                 f: SimpleNamespace) -> None:  # fmt: skip
    """The API endpoints (/predict, /explain, /predict_file, /predict_batch) and the views that follow them."""
    view = functools.partial(
        prediction_view, max_length=model.max_length, short_note=short_text_note(read_results(model.model_id))
    )
    _on_classify(t.classify.click, service, view, engine, t, public=True)
    # Clicking an example fills the review box (Gradio's own event), then classifies it.
    _on_classify(t.examples.load_input_event.then, service, view, engine, t, public=False)
    f.upload.upload(service.file_columns, [f.upload], [f.column], queue=False, api_visibility="private")
    classified = f.classify_file.click(
        service.predict_file,
        [f.upload, f.column, engine],
        [f.download, f.summary],
        api_name="predict_file",
        concurrency_limit=2,
        show_progress_on=[f.file_summary],
    )

    def file_results(csv_path: str | None, summary: dict[str, object] | None) -> tuple:
        return file_view(csv_path, summary, model.task.kind)

    classified.success(
        file_results,
        [f.download, f.summary],
        [f.preview, f.file_summary, f.histogram],
        queue=False,
        api_name="file_view",  # the private endpoint's name, as when file_view itself was the handler
        api_visibility="private",
    )
    gr.api(service.predict_batch, api_name="predict_batch", concurrency_limit=4)


def build_app(model: SentimentModel, settings: Settings | None = None) -> gr.Blocks:
    """The whole Space for an already loaded model, queued and ready to `launch()` (settings: `Settings()`'s defaults)."""
    settings = settings or Settings()
    limits, forced = settings.limits, settings.engine
    if forced and forced not in model.engines:
        raise ValueError(f"SPACE_ENGINE={forced!r}: choose one of {', '.join(model.engines)}")
    timings = model.measure(timing_reviews())
    default_engine = forced or fastest_engine(timings, model.same_labels)
    schedule = cache_schedule(settings.retention_minutes)
    service = SpaceService(model, limits, default_engine, ResultsFolders(schedule))
    engine_choices = [(ENGINE_LABELS.get(e, e), e) for e in model.engines]

    with gr.Blocks(title="Movie review sentiment", delete_cache=schedule) as demo:
        gr.Markdown(page_intro(model.model_id, model.task))
        engine = gr.Radio(
            engine_choices,
            value=default_engine,
            label="Engine",
            info=engine_note(timings, default_engine, bool(forced), TIMING_WORDS, model.task),
        )
        with gr.Tab("Review"):
            typed = _review_tab(limits, model.task)
        with gr.Tab("File upload"):
            files_tab = _file_tab(limits, settings.retention_minutes, model.task)
        with gr.Tab("API"):
            gr.Markdown(api_help(limits, list(model.engines), model.task))
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


def launch_options(settings: Settings) -> dict[str, object]:
    """How the Space is served: where, Gradio's upload cap, and as an MCP server for agents
    (every API endpoint a tool, at /gradio_api/mcp/; its docstring the tool's description)."""
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        # Gradio's own cap, above the app's limit so the app's clearer message is the one people see.
        "max_file_size": 2 * settings.limits.max_bytes,
        "mcp_server": True,
    }


def main() -> None:
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        sys.exit(str(exc))
    if not settings.model_id:
        sys.exit("MODEL_ID is not set: set it to a Hub model repo id or a local model folder.")
    try:
        demo = build_app(load_model(settings.model_id), settings)
    except ValueError as exc:
        sys.exit(str(exc))
    demo.launch(**launch_options(settings))


if __name__ == "__main__":
    main()
