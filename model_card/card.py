"""Build the model card of a finished run from its results.json (and sweep table), nothing typed by hand.

The metadata goes through `ModelCardData` + `EvalResult`, so the Hub gets a valid `model-index`
that `ModelCard.load` reads back; the body is `template.md` rendered by `ModelCard.from_template`
with tables prepared here, and the figures are written beside README.md so they upload with it.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from model_card import onnx_files, plots
from model_card.analysis import ErrorAnalysis, RatingAnalysis, analyse, analyse_ratings
from model_card.citations import citations_for
from model_card.names import (
    IMDB_ID,
    IMDB_TEST_SIZE,
    BaseModel,
    dataset_id,
    is_hub_id,
    local_dataset_name,
    resolve_base_model,
)
from model_card.space_modules import space_module
from train.data import BR_TAG
from train.errors import UserError
from train.results import RESULTS_FILE

TEMPLATE = Path(__file__).with_name("template.md")
CARD_FILE = "README.md"
CARD_METRICS = ("accuracy", "f1", "precision", "recall")
METRIC_NAMES = {
    "accuracy": "Accuracy",
    "f1": "F1",
    "precision": "Precision",
    "recall": "Recall",
    "roc_auc": "ROC AUC",
}
SPLITS = ("train", "validation", "calibration", "test")  # calibration: only with --calibration_size
# A review of the usage snippets: short enough for pipeline, read as one window by the windowed snippet.
SNIPPET_TEXT = "A moving, beautifully shot film with a superb cast."
# train's --window_stride default, for a results.json that predates recording it.
DEFAULT_WINDOW_STRIDE = 128
SOFTWARE = ("python", "torch", "transformers", "peft", "accelerate", "datasets")
# Tags that make the Hub list the model for transformers.js and ONNX users; only true when onnx/ is published.
ONNX_TAGS = ["onnx", "transformers.js"]
WIDGET_DIGITS = 4
# The calibration table's columns (report key: header), with a temperature applied and without one.
CALIBRATION_COLUMNS = {
    "ece_before": "ECE before",
    "ece_after": "ECE after",
    "nll_before": "NLL before",
    "nll_after": "NLL after",
}
RAW_COLUMNS = {"ece_before": "ECE", "nll_before": "NLL"}
# The label set of a results.json without a "task" key: every run before other label sets existed.
SENTIMENT_LABELS = ("NEGATIVE", "POSITIVE")
CLASSIFICATION, REGRESSION = "classification", "regression"
# The results table's columns (metrics key: header) of a run with other classes, and of a rating run.
CLASS_COLUMNS = {
    "accuracy": "Accuracy",
    "f1_macro": "Macro F1",
    "f1_weighted": "Weighted F1",
    "precision_macro": "Macro precision",
    "recall_macro": "Macro recall",
    "roc_auc": "ROC AUC",
    "loss": "Loss",
}
RATING_COLUMNS = {
    "mae": "MAE",
    "rmse": "RMSE",
    "within_one": "Within one",
    "exact": "Exact",
    "spearman": "Spearman",
    "pearson": "Pearson",
    "r2": "R²",
    "sign_accuracy": "Sign accuracy",
    "loss": "Loss",
}
# model-index entries: (metrics key, metric type, pretty name, metric_config, metric_args).
CLASS_INDEX = (
    ("accuracy", "accuracy", "Accuracy", None, None),
    ("f1_macro", "f1", "Macro F1", "macro", {"average": "macro"}),
    ("f1_weighted", "f1", "Weighted F1", "weighted", {"average": "weighted"}),
    ("roc_auc", "roc_auc", "ROC AUC", None, None),
)
RATING_INDEX = (
    ("mae", "mae", "MAE", None, None),
    ("rmse", "rmse", "RMSE", None, None),
    ("within_one", "accuracy", "Within-one accuracy", "within_one", None),
    ("exact", "accuracy", "Exact accuracy", "exact", None),
    ("spearman", "spearmanr", "Spearman correlation", None, None),
    ("pearson", "pearsonr", "Pearson correlation", None, None),
    ("r2", "r_squared", "R²", None, None),
    ("sign_accuracy", "accuracy", "Sign accuracy", "sign", None),
)
CURVES = {
    CLASSIFICATION: ("eval_accuracy", "eval_f1_macro", "eval_f1_weighted", "eval_roc_auc"),
    REGRESSION: ("eval_mae", "eval_rmse", "eval_within_one", "eval_spearman"),
}
RATING_NOT_CALIBRATED = (
    "not calibrated: a rating model returns a value, not probabilities, so temperature scaling does not apply"
)


@dataclass(frozen=True)
class CardTask:
    """What the run learned, from results.json's `task` (contract of issue #28): two-class sentiment, as every
    run before other label sets, other classes, or a rating (`range`, and `midpoint` between negative and
    positive when the run had one)."""

    kind: str
    labels: tuple[str, ...]
    range: tuple[float, float] | None = None
    midpoint: float | None = None

    @property
    def regression(self) -> bool:
        return self.kind == REGRESSION

    @property
    def sentiment(self) -> bool:
        """The project's own NEGATIVE/POSITIVE task, whose card is the one every earlier run has."""
        return self.kind == CLASSIFICATION and self.labels == SENTIMENT_LABELS

    @property
    def classes(self) -> bool:
        """Classes other than the sentiment pair: the card speaks of them by their names only."""
        return self.kind == CLASSIFICATION and not self.sentiment

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def labels_text(self) -> str:
        names = [f"`{label}`" for label in self.labels]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"

    @property
    def scale(self) -> str:
        return f"{self.range[0]:g} to {self.range[1]:g}" if self.range else "–"

    @property
    def headline(self) -> tuple[str, str]:
        """The one figure a usage snippet reproduces: (metrics key, its name in a sentence)."""
        return ("mae", "MAE") if self.regression else ("accuracy", "accuracy")


def card_task(results: dict[str, Any]) -> CardTask:
    """results.json's task; one without the key is two-class sentiment. A malformed one: one sentence."""
    record = results.get("task")
    if not record:
        return CardTask(CLASSIFICATION, SENTIMENT_LABELS)
    try:
        kind, labels = record["kind"], tuple(str(label) for label in record["labels"])
        if kind == REGRESSION:
            low, high = (float(v) for v in record["range"])
            midpoint = record.get("midpoint")
            return CardTask(kind, labels, (low, high), None if midpoint is None else float(midpoint))
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(
            f"results.json's task {record!r} is not a classification or regression task ({err})."
        ) from None
    if kind != CLASSIFICATION or len(labels) < 2:
        raise UserError(f"results.json's task {record!r} is not a classification or regression task.")
    return CardTask(kind, labels)


def finite(value: Any) -> Any:
    """A metric the card can show: NaN or infinity (ROC AUC with a class missing) reads as not measured."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def load_results(run_dir: Path) -> dict[str, Any]:
    """results.json is written last by the training command, so its presence means the run finished."""
    if not run_dir.is_dir():
        raise UserError(f"Run directory {run_dir} does not exist.")
    path = run_dir / RESULTS_FILE
    sweep = run_dir / "sweep.json"
    if not path.is_file() and sweep.is_file():
        best = json.loads(sweep.read_text()).get("best_preset")
        raise UserError(f"{run_dir} is a sweep, not a run: give one of its runs, e.g. {run_dir / str(best)}.")
    if not path.is_file():
        raise UserError(
            f"{path} is missing: the run in {run_dir} has not finished (or is not a training run)."
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}).") from err


def fmt(value: Any, digits: int = 4) -> str:
    """One number format for the whole card, so tests can compare the card with results.json."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def escape_cell(text: str, limit: int = 300) -> str:
    """Review text inside a Markdown table: no HTML, no pipes, no emphasis markers, one line."""
    text = BR_TAG.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + " …"
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def eval_results(results: dict[str, Any], dataset: str) -> list[EvalResult]:
    """Test-split metrics with task, dataset, split and metric types filled in, as the Hub requires,
    then accuracy and F1 of each set measured beyond IMDb (`extra_eval`)."""
    task = card_task(results)
    if not task.sentiment:
        return task_eval_results(results, dataset, task)
    test = results["metrics"]["test"]
    n_test = test.get("num_examples") or results["dataset"]["splits"]["test"]
    dataset_name = "IMDb" if n_test == IMDB_TEST_SIZE else f"IMDb ({n_test:,} test reviews)"
    keys = [*CARD_METRICS, *(["roc_auc"] if test.get("roc_auc") is not None else [])]
    imdb = [
        EvalResult(
            task_type="text-classification",
            task_name="Sentiment Analysis",
            dataset_type=dataset,
            dataset_name=dataset_name,
            dataset_split="test",
            metric_type=key,
            metric_value=test[key],
            metric_name=f"Test {METRIC_NAMES[key]}",
            metric_args={"pos_label": "POSITIVE"} if key in ("f1", "precision", "recall") else None,
        )
        for key in keys
    ]
    return imdb + extra_eval_results(results.get("extra_eval") or {})


def task_eval_results(results: dict[str, Any], dataset: str, task: CardTask) -> list[EvalResult]:
    """The model-index of other classes (accuracy, macro and weighted F1, ROC AUC where finite) or of a rating
    (MAE, RMSE, within-one, exact and sign accuracy, Spearman, Pearson, R²), on the test split."""
    test = results["metrics"]["test"]
    n_test = test.get("num_examples") or results["dataset"]["splits"]["test"]
    specs = RATING_INDEX if task.regression else CLASS_INDEX
    multiclass = task.n > 2
    return [
        EvalResult(
            task_type="text-classification",
            task_name="Rating Regression" if task.regression else "Text Classification",
            dataset_type=dataset,
            dataset_name=f"{dataset} ({n_test:,} test reviews)",
            dataset_split="test",
            metric_type=metric_type,
            metric_value=test[key],
            metric_name=f"Test {name}",
            metric_config=config,
            metric_args={"multi_class": "ovr", "average": "macro"}
            if key == "roc_auc" and multiclass
            else args,
        )
        for key, metric_type, name, config, args in specs
        if finite(test.get(key)) is not None
    ]


def task_dataset(name: str, task: CardTask) -> str:
    """The dataset a card names: the sentiment task's local folders are copies of IMDb; other data is named as
    the run recorded it (its Hub id, or its folder's name: a made-up id could name a stranger's dataset)."""
    if task.sentiment or (is_hub_id(name) and "/" in name):
        return dataset_id(name)
    return Path(local_dataset_name(name) or name).name


def extra_eval_results(extra: dict[str, dict[str, Any]]) -> list[EvalResult]:
    """Accuracy and F1 per extra set. The Hub groups model-index entries by dataset type, so each set's type
    is its own file's name: a local file has no Hub id, and a made-up id could name a stranger's dataset."""
    return [
        EvalResult(
            task_type="text-classification",
            task_name="Sentiment Analysis",
            dataset_type=Path(report["path"]).name,
            dataset_name=name,
            metric_type=key,
            metric_value=report[key],
            metric_name=f"{name} {METRIC_NAMES[key]}",
            metric_args={"pos_label": "POSITIVE"} if key == "f1" else None,
        )
        for name, report in extra.items()
        for key in ("accuracy", "f1")
    ]


def has_model(run_dir: Path) -> bool:
    """A run folder holds the model when the training command saved it; a results folder alone does not."""
    return (run_dir / "config.json").is_file() and any(run_dir.glob("*.safetensors"))


def widget_examples(run_dir: Path) -> list[dict[str, Any]] | None:
    """The demo Space's example reviews with the scores the saved model gives them, as Hub widget entries.

    The Hub shows an entry's `output` on the model page before anyone runs the widget, so it is computed
    here from the published weights (float32 `pipeline`, long reviews cut as `truncation=True` cuts them),
    never typed by hand; None when the folder has no model to score them with. A rating model's entries have
    no `output`: the widget would show its rating as a probability.
    """
    if not has_model(run_dir):
        return None
    examples = space_module("examples").EXAMPLES
    if json.loads((run_dir / "config.json").read_text()).get("problem_type") == REGRESSION:
        # The widget draws a score as a probability bar: a rating would read as 700%, so none is given.
        return [{"text": text, "example_title": title} for title, text in examples]
    import torch
    from transformers import pipeline

    with onnx_files.quiet():
        classifier = pipeline(
            "text-classification", model=str(run_dir), dtype=torch.float32, top_k=None, device="cpu"
        )
        outputs = classifier([text for _, text in examples], truncation=True)
    return [
        {
            "text": text,
            "example_title": title,
            "output": [{**o, "score": round(float(o["score"]), WIDGET_DIGITS)} for o in output],
        }
        for (title, text), output in zip(examples, outputs)
    ]


def card_data(
    results: dict[str, Any],
    model_name: str,
    base: BaseModel,
    license_id: str,
    *,
    widget: list[dict[str, Any]] | None = None,
    onnx: bool = False,
) -> ModelCardData:
    """The card's YAML metadata; `onnx`: onnx/ is published, so the Hub lists it for transformers.js."""
    task = card_task(results)
    if not task.sentiment:
        return task_card_data(results, model_name, base, license_id, task, widget=widget, onnx=onnx)
    dataset = dataset_id(results["dataset"]["name"])
    method = results["method"]
    tags = ["text-classification", "sentiment-analysis", "imdb", "movie-reviews", f"{method}-fine-tuning"]
    if method == "lora":
        tags += ["peft", "lora"]
    if onnx:
        tags += ONNX_TAGS
    return ModelCardData(
        model_name=model_name,
        license=license_id,
        language="en",
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=tags,
        datasets=[dataset],
        metrics=list(CARD_METRICS),
        base_model=base.hub_id,
        eval_results=eval_results(results, dataset),
        widget=widget,
    )


def task_card_data(
    results: dict[str, Any],
    model_name: str,
    base: BaseModel,
    license_id: str,
    task: CardTask,
    *,
    widget: list[dict[str, Any]] | None,
    onnx: bool,
) -> ModelCardData:
    """Metadata of a run with other classes or a rating: tags and metrics of its task, no sentiment words."""
    dataset = task_dataset(results["dataset"]["name"], task)
    method = results["method"]
    kind = (
        ["text-regression", "rating-prediction"]
        if task.regression
        else ["multi-class-classification"] * (task.n > 2)
    )
    tags = [
        "text-classification",
        *kind,
        f"{method}-fine-tuning",
        *(["peft", "lora"] if method == "lora" else []),
    ]
    index = task_eval_results(results, dataset, task)
    return ModelCardData(
        model_name=model_name,
        license=license_id,
        language="en",
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=tags + (ONNX_TAGS if onnx else []),
        datasets=[dataset] if "/" in dataset else None,
        metrics=list(dict.fromkeys(r.metric_type for r in index)),
        base_model=base.hub_id,
        eval_results=index,
        widget=widget,
    )


# ---------------------------------------------------------------- body tables


SENTIMENT_COLUMNS = {**{k: METRIC_NAMES[k] for k in (*CARD_METRICS, "roc_auc")}, "loss": "Loss"}


def metrics_row(label: str, split: str, m: dict[str, Any], keys: Any = tuple(SENTIMENT_COLUMNS)) -> list[str]:
    return [
        label,
        split,
        fmt(m.get("num_examples")),
        *(fmt(finite(m.get(k))) for k in keys),
    ]


def result_columns(results: dict[str, Any], task: CardTask) -> dict[str, str]:
    """The results table's metric columns: ROC AUC only where a row has it, sign accuracy with a midpoint."""
    if task.sentiment:
        return SENTIMENT_COLUMNS
    rows = [m for m in results["metrics"].values() if isinstance(m, dict)]
    columns = RATING_COLUMNS if task.regression else CLASS_COLUMNS
    optional = ("roc_auc", "sign_accuracy")
    return {
        k: v
        for k, v in columns.items()
        if k not in optional or any(finite(m.get(k)) is not None for m in rows)
    }


def results_rows(results: dict[str, Any], columns: dict[str, str] = SENTIMENT_COLUMNS) -> list[list[str]]:
    metrics = results["metrics"]
    rows = []
    if metrics.get("baseline"):
        subset = metrics["baseline"].get("num_examples", 0) < metrics["test"].get("num_examples", 0)
        label = (
            "Before fine-tuning (baseline, stratified subset)" if subset else "Before fine-tuning (baseline)"
        )
        rows.append(metrics_row(label, "test", metrics["baseline"], columns))
    chosen = (
        "Fine-tuned (best checkpoint)" if results.get("best_checkpoint_step") else "Fine-tuned (last step)"
    )
    rows.append(metrics_row(chosen, "validation", metrics["validation"], columns))
    rows.append(metrics_row("**Fine-tuned (this model)**", "**test**", metrics["test"], columns))
    if metrics.get("test_truncated"):
        rows.append(
            metrics_row("Fine-tuned, long reviews truncated", "test", metrics["test_truncated"], columns)
        )
    return rows


def per_class_rows(test: dict[str, Any]) -> list[list[str]]:
    rows = [
        [label, fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]), fmt(c["support"])]
        for label, c in test["per_class"].items()
    ]
    support = sum(c["support"] for c in test["per_class"].values())
    rows.append(
        [
            "macro average",
            fmt(test.get("precision_macro")),
            fmt(test.get("recall_macro")),
            fmt(test.get("f1_macro")),
            fmt(support),
        ]
    )
    rows.append(["weighted F1", "", "", fmt(test.get("f1_weighted")), fmt(support)])
    return rows


def find_sweep(run_dir: Path, sweep: Path | None) -> Path | None:
    """A sweep writes OUT/<preset>/ run dirs beside OUT/sweep.csv, so a sweep member finds it one level up."""
    if sweep is not None:
        if not sweep.is_file():
            raise UserError(f"Sweep table {sweep} does not exist.")
        return sweep
    candidate = run_dir.parent / "sweep.csv"
    return candidate if candidate.is_file() else None


SWEEP_HEADERS = ["Preset", "Learning rate", "Batch size", "Epochs", "Validation F1", "Test accuracy",
                 "Test F1",
                 "Test precision", "Test recall", "Training time"]  # fmt: skip


def sweep_columns(table: pd.DataFrame, task: CardTask) -> tuple[str | None, list[str]]:
    """The sweep table's validation column and test metric columns: the sentiment ones, or those of the task's
    results-table columns the sweep wrote."""
    if task.sentiment:
        return "validation_f1", list(CARD_METRICS)
    validation = next((c for c in table.columns if c.startswith("validation_")), None)
    columns = RATING_COLUMNS if task.regression else CLASS_COLUMNS
    return validation, [k for k in columns if k in table.columns and k != "loss"]


def sweep_table(path: Path, preset: str | None, task: CardTask) -> tuple[list[str], list[list[str]]]:
    """Every configuration of the sweep in its order (best validation metric first), this run in bold."""
    table = pd.read_csv(path)
    summary = path.with_name("sweep.json")
    best = json.loads(summary.read_text()).get("best_preset") if summary.is_file() else None
    validation, metrics = sweep_columns(table, task)
    rows = []
    for r in table.to_dict("records"):
        name = f"`{r['preset']}`" + (" (best)" if r["preset"] == best else "")
        if r["preset"] == preset:
            name = f"**{name}, this model**"
        rows.append(
            [
                name,
                f"{r['learning_rate']:g}",
                fmt(int(r["batch_size"])),
                f"{r['epochs']:g}",
                *([fmt(r.get(validation))] if validation else []),
                *(fmt(finite(float(r[k]))) for k in metrics),
                duration(float(r["train_runtime_s"])),
            ]
        )
    if task.sentiment:
        return SWEEP_HEADERS, rows
    names = RATING_COLUMNS if task.regression else CLASS_COLUMNS
    shown = [f"Validation {validation.removeprefix('validation_')}"] if validation else []
    return [*SWEEP_HEADERS[:4], *shown, *(f"Test {names[k]}" for k in metrics), SWEEP_HEADERS[-1]], rows


DATASET_HEADERS = ["Split", "Reviews", "Mean words", "Median words", "p90 words", "Max words", "Mean tokens",
                   "p90 tokens", "Over max length"]  # fmt: skip


def dataset_rows(dataset: dict[str, Any], labels: tuple[str, ...] = SENTIMENT_LABELS) -> list[list[str]]:
    """Per split: its size, the count of each of `labels` (none: a separate table has them), its lengths."""
    rows = []
    for split in SPLITS:
        if split not in dataset["splits"]:
            continue
        counts = dataset.get("label_counts", {}).get(split, {})
        length = dataset.get("length", {}).get(split, {})
        words, tokens = length.get("words", {}), length.get("tokens", {})
        over = length.get("over_max_length_share")
        rows.append(
            [
                split,
                fmt(dataset["splits"][split]),
                *(fmt(counts.get(label)) for label in labels),
                fmt(words.get("mean"), 1),
                fmt(words.get("median"), 0),
                fmt(words.get("p90"), 0),
                fmt(words.get("max"), 0),
                fmt(tokens.get("mean"), 1),
                fmt(tokens.get("p90"), 0),
                "–" if over is None else f"{over:.1%}",
            ]
        )
    return rows


def label_count_rows(dataset: dict[str, Any], task: CardTask) -> tuple[list[str], list[list[str]]]:
    """Other classes or ratings: a row per class (label order) or rating (ascending), a column per split."""
    counts = dataset.get("label_counts", {})
    splits = [split for split in SPLITS if split in dataset["splits"]]
    if task.regression:
        values = sorted({v for split in splits for v in counts.get(split, {})}, key=float)
    else:
        values = list(task.labels)
    headers = ["Rating" if task.regression else "Label", *splits]
    return headers, [
        [escape_cell(v), *(fmt(counts.get(split, {}).get(v, 0)) for split in splits)] for v in values
    ]


def confusion_rows(test: dict[str, Any], labels: tuple[str, ...]) -> list[list[str]]:
    """The N×N confusion matrix as table rows: true class in bold, then its count per predicted class."""
    return [
        [f"**{escape_cell(label)}**", *(fmt(c) for c in row)]
        for label, row in zip(labels, test["confusion_matrix"])
    ]


def per_rating_rows(test: dict[str, Any]) -> list[list[str]]:
    """True rating -> reviews, mean prediction, MAE, in ascending rating."""
    per_rating = test.get("per_rating") or {}
    return [
        [k, fmt(v.get("count")), fmt(v.get("mean_prediction"), 2), fmt(v.get("mae"), 2)]
        for k, v in sorted(per_rating.items(), key=lambda kv: float(kv[0]))
    ]


def pair_rows(errors: ErrorAnalysis) -> list[list[str]]:
    """Most confused (true, predicted) class pairs, most frequent first."""
    return [[escape_cell(c.label), escape_cell(c.pred), fmt(c.count), f"{c.share:.1%}"] for c in errors.pairs]


def rating_example_rows(errors: RatingAnalysis) -> list[list[str]]:
    return [
        [f"{e.label:g}", f"{e.pred:.2f}", f"{e.error:+.2f}", fmt(e.n_words), escape_cell(e.text)]
        for e in errors.examples
    ]


def bucket_rows(errors: ErrorAnalysis | RatingAnalysis) -> list[list[str]]:
    if isinstance(errors, RatingAnalysis):
        return [[b.label, fmt(b.count), fmt(b.accuracy), fmt(b.mae)] for b in errors.buckets]
    return [[b.label, fmt(b.count), fmt(b.accuracy), fmt(b.errors)] for b in errors.buckets]


def example_rows(errors: ErrorAnalysis | RatingAnalysis) -> list[list[str]]:
    if isinstance(errors, RatingAnalysis):
        return rating_example_rows(errors)
    return [
        [e.label, e.pred, fmt(e.confidence, 3), fmt(e.n_words), escape_cell(e.text)] for e in errors.examples
    ]


METHOD_SHORT = {
    "full": "full fine-tuning",
    "lora": "LoRA",
    "head": "a linear probe (frozen encoder, trained head)",
}
METHODS = {
    "full": "full fine-tuning (every weight of the encoder and the classification head is trained)",
    "lora": "LoRA: low-rank adapters on the attention layers plus the classification head are trained, "
    "the pretrained weights stay frozen; the adapters are merged into the published weights",
    "head": "a linear probe: the pretrained encoder is frozen and only the classification head is trained",
}


def dropout_text(dropout: dict[str, float] | None) -> str:
    if not dropout:
        return "the base model's own"
    return ", ".join(f"`{name}` {value:g}" for name, value in dropout.items())


def setup_rows(results: dict[str, Any]) -> list[list[str]]:
    model, env, timings = results["model"], results["environment"], results["timings"]
    device = env.get("device", "–")
    if device == "cpu":
        cpu = env.get("cpu") or "CPU"
        hardware = f"{cpu} ({env['cpu_count']} cores)" if env.get("cpu_count") else cpu
    else:
        hardware = f"{env.get('num_devices', 1)} × {device}"
    if env.get("world_size", 1) > 1:
        hardware += f", {env['world_size']} processes"
    if timings.get("peak_gpu_memory_gib") is not None:
        hardware += f", peak GPU memory {timings['peak_gpu_memory_gib']:.1f} GiB"
    throughput = [f"{fmt(timings.get('train_samples_per_second'), 1)} samples/s"]
    if timings.get("train_tokens_per_second") is not None:
        throughput.append(f"{timings['train_tokens_per_second']:,.0f} tokens/s (without padding)")
    throughput.append(f"{fmt(timings.get('train_steps_per_second'), 2)} steps/s")
    inference = (
        f"{fmt(timings.get('test_samples_per_second'), 1)} reviews/s "
        f"({duration(timings.get('test_runtime_s'))} for the test split)"
    )
    if timings.get("test_windows_reviews_per_second") is not None:
        inference += (
            f"; with windows over long reviews {fmt(timings['test_windows_reviews_per_second'], 1)} reviews/s "
            f"({duration(timings['test_windows_runtime_s'])})"
        )
    best = results.get("best_checkpoint_step")
    return [
        ["Method", METHODS.get(results["method"], results["method"])],
        [
            "Trainable parameters",
            f"{model['trainable_parameters']:,} of {model['num_parameters']:,} ({model['trainable_share']:.2%})",
        ],
        ["Max sequence length", f"{model['max_length']} tokens, truncation: `{model['truncation']}`"],
        *(
            [["Test-time windows", f"{model['eval_window_length']} tokens"]]
            if model.get("eval_window_length")
            else []
        ),
        ["Dropout set for fine-tuning", dropout_text(model.get("dropout"))],
        ["Hardware", hardware],
        ["Precision", str(results["hyperparameters"].get("precision", "–"))],
        [
            "Training time",
            f"{duration(timings.get('train_runtime_s'))} "
            f"(whole run incl. evaluation: {duration(timings.get('total_runtime_s'))})",
        ],
        ["Training throughput", ", ".join(throughput)],
        ["Test inference", inference],
        ["Best checkpoint", "last step" if best is None else f"step {best}"],
        ["Software", ", ".join(f"{k} {env[k]}" for k in SOFTWARE if env.get(k))],
    ]


def hyperparameter_rows(hyperparameters: dict[str, Any]) -> list[list[str]]:
    return [[f"`{k}`", f"{v:g}" if isinstance(v, float) else str(v)] for k, v in hyperparameters.items()]


def lora_rows(lora: dict[str, Any] | None) -> list[list[str]]:
    if not lora:
        return []
    return [
        ["rank `r`", str(lora["r"])],
        ["`alpha`", str(lora["alpha"])],
        ["scale alpha / r", f"{lora['alpha'] / lora['r']:g}"],
        ["dropout", f"{lora['dropout']:g}"],
        ["target modules", ", ".join(f"`{m}`" for m in lora["target_modules"])],
    ]


# ---------------------------------------------------------------- the card


def accuracy_interval(test: dict[str, Any]) -> float | None:
    """Half-width of the 95% normal-approximation interval: tells how much a small test set can be trusted."""
    if test.get("accuracy") is None:  # a rating run
        return None
    n, p = test.get("num_examples"), test["accuracy"]
    return 1.96 * math.sqrt(p * (1 - p) / n) if n else None


def check_repo_id(repo_id: str) -> str:
    """Refuse a malformed id before anything is written or sent: it ends up in the card and the URL."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id) or len(repo_id.split("/")[1]) > 96:
        raise UserError(f"{repo_id!r} is not a Hub repo id: use USER/NAME (letters, digits, '-', '_', '.').")
    return repo_id


def wrap_command(command: str) -> str:
    """One option per line, so the reproduce snippet reads without scrolling; the shell joins the lines."""
    return re.sub(r" (?=--)", " \\\n    ", command)


def default_repo_id(run_dir: Path) -> str:
    return f"YOUR_USERNAME/{run_dir.resolve().name}"


def task_figures(
    run_dir: Path, results: dict[str, Any], task: CardTask, errors: ErrorAnalysis | RatingAnalysis | None
) -> dict[str, str]:
    """The figure of the test predictions: the confusion matrix over the task's classes, or a rating run's
    predicted against true rating (with the spread of its predictions when test_predictions.csv is there)."""
    test = results["metrics"]["test"]
    title = f"Test split ({test['num_examples']:,} reviews)"
    stale = run_dir / (plots.CONFUSION_MATRIX if task.regression else plots.RATINGS)
    stale.unlink(missing_ok=True)  # an earlier build's figure of another task must not be published
    if task.regression:
        predictions = errors.predictions if isinstance(errors, RatingAnalysis) else None
        return {
            "ratings": plots.ratings(
                test.get("per_rating") or {}, run_dir / plots.RATINGS, title, predictions
            )
        }
    matrix = plots.confusion_matrix(
        test["confusion_matrix"], run_dir / plots.CONFUSION_MATRIX, title, task.labels
    )
    return {"confusion_matrix": matrix}


def figures(
    run_dir: Path,
    results: dict[str, Any],
    task: CardTask | None = None,
    errors: ErrorAnalysis | RatingAnalysis | None = None,
) -> dict[str, str]:
    """Draw the card's figures beside it; returns their file names by role."""
    task = task or card_task(results)
    test, dataset = results["metrics"]["test"], results["dataset"]
    images = {
        **task_figures(run_dir, results, task, errors),
        "training_curves": plots.training_curves(
            results.get("log_history", []),
            results.get("best_checkpoint_step"),
            run_dir / plots.TRAINING_CURVES,
            *([] if task.sentiment else [CURVES[task.kind]]),
        ),
    }
    if dataset.get("length_histogram"):
        images["length_histogram"] = plots.length_histogram(
            dataset["length_histogram"], run_dir / plots.LENGTH_HISTOGRAM
        )
    calibration = None if task.regression else results.get("calibration")
    if calibration:
        windowed, applied = bool(calibration.get("test_windowed")), calibration_applied(calibration)
        images["reliability_diagram"] = plots.reliability_diagram(
            headline_report(calibration),
            run_dir / plots.RELIABILITY_DIAGRAM,
            f"Test split ({test['num_examples']:,} reviews{', long ones in windows' if windowed else ''}), "
            + (f"temperature {calibration['temperature']:.3f}" if applied else "not calibrated"),
            applied=applied,
            num_classes=task.n,
        )
    else:  # a figure of an earlier build must not be published with a card that no longer shows it
        (run_dir / plots.RELIABILITY_DIAGRAM).unlink(missing_ok=True)
    return images


def calibration_applied(calibration: dict[str, Any]) -> bool:
    """A results.json from before the held-out check has no `applied`: its temperature was always applied."""
    return bool(calibration.get("applied", True))


def headline_report(calibration: dict[str, Any]) -> dict[str, Any]:
    """The headline test scores' report: windowed when the run used windows, else the test split as cut."""
    return calibration["test_windowed" if calibration.get("test_windowed") else "test"]


def published_scores(calibration: dict[str, Any]) -> dict[str, float | None]:
    """ECE and NLL of the headline scores the model returns: after the temperature if one was folded in."""
    report, side = headline_report(calibration), "after" if calibration_applied(calibration) else "before"
    return {"ece": report.get(f"ece_{side}"), "nll": report.get(f"nll_{side}")}


def sentence(text: str | None) -> str | None:
    """results.json's one-sentence reasons are written lower-case without a full stop, to be printed as is."""
    if not text:
        return None
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def fitted_on_text(calibration: dict[str, Any]) -> str | None:
    """Which reviews the temperature was fitted on, with their count; older runs wrote only "validation"."""
    where, n = calibration.get("fitted_on"), calibration.get("num_examples")
    if not where:
        return None
    if where == "validation":
        where = "validation reviews"
    return f"{n:,} {where}" if "review" in where else f"{n:,} reviews ({where})"


@dataclass(frozen=True)
class CalibrationView:
    """What the card says about calibration, following what the training command did: a temperature folded
    into the weights (`applied`) is described as calibration; a temperature that failed the held-out check is
    not, and then the table and reliability diagram show the published, raw scores only."""

    applied: bool
    temperature: float
    fitted_temperature: float | None
    fitted_on: str | None
    check: dict[str, Any] | None
    reason: str | None
    bins: int | None
    windowed: bool
    headers: list[str]
    rows: list[list[str]]


def calibration_view(calibration: dict[str, Any] | None) -> CalibrationView | None:
    """The Calibration section of a run that fitted a temperature; None for --no_calibrate or an old run."""
    if not calibration:
        return None
    applied = calibration_applied(calibration)
    windowed = bool(calibration.get("test_windowed"))
    labels = {
        "test_windowed": "test, long reviews in windows (the headline scores)",
        "test": "test, long reviews truncated" if windowed else "test (the headline scores)",
        "validation": "validation"
        + (f" (the temperature was fitted on these {calibration['num_examples']:,})"
           if str(calibration.get("fitted_on")).startswith("validation") else ""),
    }  # fmt: skip
    # Not applied: the published scores are the raw ones, the "before" side of each report.
    columns = CALIBRATION_COLUMNS if applied else RAW_COLUMNS
    return CalibrationView(
        applied=applied,
        temperature=calibration["temperature"],
        fitted_temperature=calibration.get("fitted_temperature", calibration["temperature"]),
        fitted_on=fitted_on_text(calibration),
        check=calibration.get("check"),
        reason=sentence(calibration.get("reason")),
        bins=calibration.get("bins"),
        windowed=windowed,
        headers=["Scores", *columns.values()],
        rows=[
            [label, *(fmt(calibration[key].get(k)) for k in columns)]
            for key, label in labels.items()
            if calibration.get(key)
        ],
    )


def extra_eval_rows(results: dict[str, Any], errors: ErrorAnalysis | None) -> list[list[str]]:
    """The sets measured beyond IMDb, under the IMDb test split's own row for comparison."""
    extra = results.get("extra_eval")
    if not extra:
        return []
    test, calibration = results["metrics"]["test"], results.get("calibration")
    words = results["dataset"].get("length", {}).get("test", {}).get("words", {}).get("mean")
    published = published_scores(calibration) if calibration else {}
    rows = [
        [
            "**IMDb test** (for comparison)",
            "the IMDb test split of the tables above",
            fmt(test.get("num_examples")),
            fmt(words, 1),
            *(fmt(v) for v in (test["accuracy"], test["f1"], published.get("ece"))),
            fmt(published.get("nll"), 3),
            fmt(errors.mean_confidence if errors else None),
        ]
    ]
    for name, r in extra.items():
        skipped = r.get("skipped_unlabelled") or 0
        note = f" ({skipped:,} unlabelled rows skipped)" if skipped else ""
        rows.append(
            [
                escape_cell(name),
                escape_cell(Path(r["path"]).name) + note,
                fmt(r["n"]),
                fmt(r.get("mean_words"), 1),
                *(fmt(r.get(k)) for k in ("accuracy", "f1", "ece")),
                fmt(r.get("nll"), 3),
                fmt(r.get("mean_confidence")),
            ]
        )
    return rows


def behaviour_rows(behaviour: dict[str, Any] | None) -> list[list[str]]:
    """One row per capability of the behaviour suite, with its first failing example (if any failed)."""
    rows = []
    for name, c in ((behaviour or {}).get("capabilities") or {}).items():
        examples = c.get("examples") or []
        shown = "–"
        if examples:
            e = examples[0]
            # A failure need not be a wrong label: a case can also be judged against a reference sentence.
            against = f"; against {escape_cell(e['reference'], 80)}" if e.get("reference") else ""
            shown = (
                f"{escape_cell(e['text'], 160)} (expected {e['expected']}, "
                f"predicted {e['predicted']} at {e['score']:.2f}{against})"
            )
        rows.append(
            [
                escape_cell(name),
                escape_cell(c.get("description", "")),
                fmt(c["cases"]),
                f"{c['failure_rate']:.1%} ({c['failures']:,})",
                shown,
            ]
        )
    return rows


def summary_text(task: CardTask, test: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """The intro's figures for other classes or a rating: "accuracy **x** and macro F1 **y** (before ...)"."""
    if task.regression:
        first, second = ("mae", "mean absolute error"), ("spearman", "Spearman correlation")
    else:
        first, second = ("accuracy", "accuracy"), ("f1_macro", "macro F1")
    text = f"{first[1]} **{fmt(test.get(first[0]))}** and {second[1]} **{fmt(finite(test.get(second[0])))}**"
    if baseline:
        subset = (baseline.get("num_examples") or 0) < (test.get("num_examples") or 0)
        text += (
            f" (before fine-tuning: {first[1]} {fmt(baseline.get(first[0]))}, {second[1]} "
            f"{fmt(finite(baseline.get(second[0])))}"
            + (f", on a stratified {fmt(baseline['num_examples'])} of them" if subset else "")
            + ")"
        )
    return text


def dataset_markdown(name: str, task: CardTask) -> str:
    """Other tasks' data as the intro names it: a Hub dataset linked, a local one by its recorded name."""
    shown = task_dataset(name, task)
    if "/" in shown and is_hub_id(shown):
        return f"[`{shown}`](https://huggingface.co/datasets/{shown})"
    return f"the local dataset `{local_dataset_name(name) or shown}`"


def task_context(run_dir: Path, results: dict[str, Any], task: CardTask, errors: Any) -> dict[str, Any]:
    """The template's variables that depend on the label set (the sentiment card's are in the template)."""
    metrics, dataset = results["metrics"], results["dataset"]
    columns = result_columns(results, task)
    calibration = results.get("calibration") or {}
    count_headers, count_rows = label_count_rows(dataset, task)
    return {
        "task": task,
        "results_headers": ["Model", "Split", "Reviews", *columns.values()],
        "results_rows": results_rows(results, columns),
        "summary": summary_text(task, metrics["test"], metrics.get("baseline")),
        "dataset_markdown": dataset_markdown(dataset["name"], task),
        "imdb_data": task.sentiment or task_dataset(dataset["name"], task) == IMDB_ID,
        "dataset_headers": DATASET_HEADERS[:2]
        + ([*task.labels] if task.sentiment else [])
        + DATASET_HEADERS[2:],
        "dataset_rows": dataset_rows(dataset, task.labels if task.sentiment else ()),
        "label_count_headers": count_headers,
        "label_count_rows": [] if task.sentiment else count_rows,
        "confusion_headers": ["True \\ Predicted", *(escape_cell(label) for label in task.labels)],
        "confusion_rows": [] if task.regression else confusion_rows(metrics["test"], task.labels),
        "per_rating_rows": per_rating_rows(metrics["test"]) if task.regression else [],
        "pair_rows": pair_rows(errors) if isinstance(errors, ErrorAnalysis) and not task.sentiment else [],
        "rating_calibration": sentence(calibration.get("reason") or RATING_NOT_CALIBRATED)
        if task.regression
        else None,
        "misclassified_file": (run_dir / "misclassified.csv").is_file(),
    }


def build_card(
    run_dir: Path,
    repo_id: str | None = None,
    space_id: str | None = None,
    sweep: Path | None = None,
    base_model: str | None = None,
    license_id: str = "apache-2.0",
) -> Path:
    """Write README.md and its figures into `run_dir`; returns the README path."""
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    repo_id = check_repo_id(repo_id) if repo_id else default_repo_id(run_dir)
    # No guessed Space: a card links only a Space it was given, so its snippet never names a missing one.
    space_id = check_repo_id(space_id) if space_id else None
    model_name = repo_id.split("/")[-1]
    base = resolve_base_model(results["base_model"], base_model)
    metrics, dataset, model = results["metrics"], results["dataset"], results["model"]
    test = metrics["test"]
    # With --eval_windows the headline `test` metrics are windowed and `test_truncated` holds the same
    # reviews cut to max_length, as `pipeline` reads them; without windows there is no second row.
    truncated = metrics.get("test_truncated")
    task = card_task(results)
    if task.regression:
        errors = analyse_ratings(run_dir, model["max_length"], windowed=bool(truncated))
    else:
        errors = analyse(run_dir, model["max_length"], windowed=bool(truncated), labels=task.labels)
    sweep_path = find_sweep(run_dir, sweep)
    sweep_headers, sweep_rows = (
        sweep_table(sweep_path, results.get("preset"), task) if sweep_path else ([], None)
    )
    long_reviews = errors.buckets[-1] if errors else None

    images = figures(run_dir, results, task, errors)
    onnx = onnx_files.load_agreement(run_dir)
    behaviour = results.get("behaviour") or {}

    widget = widget_examples(run_dir)
    card = ModelCard.from_template(
        card_data(results, model_name, base, license_id, widget=widget, onnx=bool(onnx)),
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id,
        space_id=space_id,
        base=base,
        dataset_id=dataset_id(dataset["name"]),
        dataset_local=local_dataset_name(dataset["name"]),
        r=results,
        test=test,
        baseline=metrics.get("baseline"),
        method_short=METHOD_SHORT.get(results["method"], results["method"]),
        accuracy_interval=accuracy_interval(test),
        full_test_size=IMDB_TEST_SIZE,
        fmt=fmt,
        per_class_rows=[] if task.regression else per_class_rows(test),
        sweep_headers=sweep_headers,
        sweep_rows=sweep_rows,
        setup_rows=setup_rows(results),
        hyperparameter_rows=hyperparameter_rows(results["hyperparameters"]),
        lora_rows=lora_rows(model.get("lora")),
        errors=errors,
        bucket_rows=bucket_rows(errors) if errors else [],
        example_rows=example_rows(errors) if errors else [],
        long_reviews=long_reviews,
        truncated=truncated,
        calibration=None if task.regression else calibration_view(results.get("calibration")),
        extra_eval_rows=extra_eval_rows(results, errors),
        behaviour_rows=behaviour_rows(behaviour),
        neutral=behaviour.get("neutral"),
        window_stride=results.get("config", {}).get("model", {}).get("window_stride", DEFAULT_WINDOW_STRIDE),
        snippet_text=SNIPPET_TEXT,
        onnx=onnx,
        command=wrap_command(results["command"]),
        over_share=dataset.get("length", {}).get("test", {}).get("over_max_length_share"),
        images=images,
        citations=citations_for(base, results["method"], model.get("model_type")),
        **task_context(run_dir, results, task, errors),
    )
    path = run_dir / CARD_FILE
    card.save(path)
    return path
