"""What the Space shows: results, explanations, file summaries and the API tab, as component values and text.

Pure functions of the model's results, so the layout (app.py) stays declarative and these are testable alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from engines import ENGINE_LABELS
from explain import Explanation
from files import Limits
from task import KIND_BINARY, KIND_CLASSES, KIND_RATING, Task

PREVIEW_ROWS = 50
# Explanation colours: green pushed towards positive, red towards negative, darker = stronger.
HIGHLIGHT_COLORS = {
    "strong positive": "#15803d",
    "positive": "#86efac",
    "negative": "#fca5a5",
    "strong negative": "#b91c1c",
}
# The same colours' categories for each kind of model, in HIGHLIGHT_COLORS' order (strongly up, up, down,
# strongly down): towards or away from the predicted class, the rating raised or lowered.
HIGHLIGHT_CATEGORIES = {
    KIND_BINARY: tuple(HIGHLIGHT_COLORS),
    KIND_CLASSES: ("strongly towards", "towards", "away", "strongly away"),
    KIND_RATING: ("strongly raised", "raised", "lowered", "strongly lowered"),
}
# What the colours mean, in the explanation component's label.
HIGHLIGHT_MEANING = {
    KIND_BINARY: "green: towards positive, red: towards negative",
    KIND_CLASSES: "green: towards the predicted class, red: away from it",
    KIND_RATING: "green: raised the rating, red: lowered it",
}
# A span must move P(positive) by at least this much to be highlighted at all (for a rating model, this
# share of the rating range).
MIN_HIGHLIGHT = 0.005
# A typed review of fewer words than this is short text: a sentence or two, where the IMDb reviews the
# model learnt from run about 230 words on average (of the bundled sample's 1,000 training reviews, 1%
# have fewer than 40 words and none fewer than 25).
SHORT_REVIEW_WORDS = 25
# An extra evaluation set (results.json's "extra_eval") whose texts average fewer words than this is
# short text, the kind of text a short review is: tweets, headlines, one-line comments.
SHORT_SET_MEAN_WORDS = 40


def engine_note(
    timings: dict[str, float], default: str, forced: bool, words: Sequence[int], task: Task | None = None
) -> str:
    """What this host measured at start-up, for the engine menu: never a figure from elsewhere."""
    measured = ", ".join(f"{engine} {seconds * 1000:.0f} ms" for engine, seconds in timings.items())
    kept = "labels"
    if task is not None and task.is_rating:
        kept = f"ratings (within {task.rating_tolerance():g})"
    why = "set by SPACE_ENGINE" if forced else f"the fastest here of those that keep float32's {kept}"
    work = f"a file of {len(words)} reviews of {min(words)} to {max(words)} words, median of 3 runs"
    return f"Measured on this machine at start-up ({work}): {measured}. Default: {default} ({why})."


def _figure(results: dict, *keys: str) -> float | None:
    """The number at `results[keys[0]][keys[1]]...`, or None where any level is missing or not a number."""
    value: object = results
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def short_text_note(results: dict | None) -> str:
    """What the page says under the label of a short review, from the model's own results.json: the
    length of the reviews it learnt from, its IMDb test accuracy, and its accuracy on the short-text sets
    it was also evaluated on. Without such sets, only that it learnt from full movie reviews."""
    results = results or {}
    plain = "The model was trained on full movie reviews"
    extra = results.get("extra_eval") if isinstance(results.get("extra_eval"), dict) else {}
    short_sets = []
    for name in extra:
        accuracy, n, mean_words = (_figure(extra, name, key) for key in ("accuracy", "n", "mean_words"))
        if accuracy is None or n is None or mean_words is None or mean_words >= SHORT_SET_MEAN_WORDS:
            continue
        short_sets.append(
            f"{accuracy:.1%} on {name.replace('_', ' ')} ({n:,.0f} texts, {mean_words:.0f} words on average)"
        )
    if not short_sets:
        return plain + "."
    words = _figure(results, "dataset", "length", "train", "words", "mean")
    imdb = _figure(results, "metrics", "test", "accuracy")
    facts = [f"{words:,.0f} words on average"] if words is not None else []
    facts += [f"{imdb:.1%} right on IMDb's test reviews"] if imdb is not None else []
    trained = f"{plain} ({'; '.join(facts)})" if facts else plain
    listed = ", ".join(short_sets[:-1]) + (" and " if len(short_sets) > 1 else "") + short_sets[-1]
    return f"{trained}. On short texts it was measured at {listed}."


def rating_view(result: dict[str, object]) -> tuple[str, str]:
    """A rating result as the label component's text ("7.3 on a 1–10 scale: positive") and a sentence
    on its side of the midpoint."""
    rating = float(result["rating"])  # type: ignore[arg-type]
    scale = result.get("range")
    shown = f"{rating:.1f} on a {scale[0]:g}–{scale[1]:g} scale" if scale else f"Rating {rating:.1f}"  # type: ignore[index]
    side = result.get("side")
    if not side:
        return shown, ""
    where = "at or above" if side == "positive" else "below"
    midpoint = float(result["midpoint"])  # type: ignore[arg-type]
    return f"{shown}: {side}", (
        f"**{str(side).capitalize()} side**: {where} {midpoint:g}, the midpoint between negative and "
        "positive ratings. "
    )


def prediction_view(
    result: dict[str, object] | None, text: str | None, max_length: int, short_note: str
) -> tuple[dict[str, float] | str | None, str]:
    """Label component value and a note; the note says when a long review was split into windows, and
    for a review of a few words how the model, trained on full reviews, does on short text (`short_note`).

    The value is every class's probability, or for a rating model the rating in words (`rating_view`).
    """
    if not result:
        return None, ""
    rated = "rating" in result
    windows, tokens = int(result["windows"]), int(result["tokens"])  # type: ignore[call-overload]
    if windows > 1:
        note = (
            f"**Long review: split into {windows} windows.** It has {tokens:,} tokens and the model "
            f"reads {max_length} at a time, so it read {windows} overlapping windows and averaged "
            f"their {'ratings' if rated else 'probabilities'}. Nothing was cut off."
        )
    else:
        note = f"{tokens:,} tokens, read in one pass."
    note += f" Engine: {ENGINE_LABELS.get(str(result['engine']), result['engine'])}."
    if len((text or "").split()) < SHORT_REVIEW_WORDS:
        note += f"  \n**Short review.** {short_note}"
    if rated:
        shown, side = rating_view(result)
        return shown, side + note
    return dict(result["probabilities"]), note  # type: ignore[call-overload]


def highlight_style(task: Task) -> tuple[str, dict[str, str]]:
    """The explanation component's label and colour map for this model's kind."""
    colors = dict(zip(HIGHLIGHT_CATEGORIES[task.kind], HIGHLIGHT_COLORS.values()))
    return f"Why: spans that pushed the prediction ({HIGHLIGHT_MEANING[task.kind]})", colors


def _explanation_text(explanation: Explanation) -> tuple[str, str, str]:
    """The explanation's first sentences and the headings of its two lists, in the model's kind's words."""
    target, base = explanation.target, explanation.base
    how = "Each span was deleted in turn and the review re-scored; the number is how much the span added to"
    if explanation.kind == KIND_RATING:
        return f"Rating {base:.3f}. {how} the rating.", "Pushed the rating up", "Pushed the rating down"
    if explanation.kind == KIND_CLASSES:
        return (f"P({target}) = {base:.3f}, the predicted class. {how} P({target}).",
                f"Pushed towards {target}", f"Pushed away from {target}")  # fmt: skip
    return f"P({target}) = {base:.3f}. {how} P({target}).", "Pushed positive", "Pushed negative"


def render_explanation(explanation: Explanation) -> tuple[list[tuple[str, str | None]], str]:
    """Colour each span by how far it moved P(positive) (the predicted class's probability, or the
    rating), and list the strongest spans each way."""
    biggest = max((abs(d) for d in explanation.deltas), default=0.0)
    threshold = max(MIN_HIGHLIGHT * explanation.scale, 0.2 * biggest)
    strong_up, up, down, strong_down = HIGHLIGHT_CATEGORIES[explanation.kind]
    highlighted: list[tuple[str, str | None]] = []
    for span, delta in zip(explanation.spans, explanation.deltas):
        category = None
        if abs(delta) >= threshold:
            strong = abs(delta) >= 0.6 * biggest
            category = (strong_up if strong else up) if delta > 0 else (strong_down if strong else down)
        highlighted.append((span, category))
    ranked = sorted(zip(explanation.deltas, explanation.spans), key=lambda pair: pair[0])

    def listing(pairs: list[tuple[float, str]]) -> str:
        shown = [f"“{_short(span)}” {delta:+.3f}" for delta, span in pairs if abs(delta) >= threshold][:5]
        return ", ".join(shown) or "none"

    pushed_positive = [pair for pair in reversed(ranked) if pair[0] > 0]
    pushed_negative = [pair for pair in ranked if pair[0] < 0]
    opening, pushed_up, pushed_down = _explanation_text(explanation)
    summary = (
        f"{opening}  \n"
        f"**{pushed_up}:** {listing(pushed_positive)}  \n**{pushed_down}:** {listing(pushed_negative)}"
    )
    return highlighted, summary


def _short(span: str, limit: int = 40) -> str:
    span = " ".join(span.split())
    return span if len(span) <= limit else span[: limit - 1] + "…"


# The file tab's histogram: its x axis (the DataFrame column) and title, for each kind of model.
HISTOGRAM_AXES = {
    KIND_BINARY: ("P(positive)", "Scores: P(positive) per review"),
    KIND_CLASSES: ("P(predicted class)", "Scores: the predicted class's probability per review"),
    KIND_RATING: ("rating", "Ratings: reviews per rating"),
}


def file_view(
    csv_path: str | None, summary: dict[str, object] | None, kind: str = KIND_BINARY
) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """Preview table, summary text and histogram data for a finished file (`kind`: task.KIND_*)."""
    axis = HISTOGRAM_AXES[kind][0]
    if not csv_path or not summary:
        return pd.DataFrame(), "", pd.DataFrame({axis: [], "reviews": []})
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, nrows=PREVIEW_ROWS)
    text_column = str(summary["text_column"])
    results = ("rating", "side") if kind == KIND_RATING else ("predicted_label", "score")
    shown = [c for c in (text_column, *results, "windows") if c in frame.columns]
    preview = frame[shown].copy()
    preview[text_column] = preview[text_column].map(lambda t: _short(t, 160))
    counts: dict[str, int] = summary.get("counts") or {}  # type: ignore[assignment]
    n = int(summary["classified"])  # type: ignore[arg-type]
    done = "rated" if kind == KIND_RATING else "classified"
    parts = [f"**{n:,} reviews {done}** from column `{text_column}`"]
    if summary.get("encoding"):
        parts[0] += f", the file read as {summary['encoding']}"
    if summary.get("mean_rating") is not None:
        parts.append(f"mean rating {float(summary['mean_rating']):.2f}")  # type: ignore[arg-type]
    parts += [f"{label}: {count:,}" for label, count in counts.items()]
    if "share_positive" in summary:
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
            axis: [f"{a:.1f}–{b:.1f}" for a, b in zip(edges, edges[1:])],
            "reviews": histogram["counts"],
        }
    )
    return preview, " · ".join(parts), bins


def result_fields(task: Task) -> str:
    """/predict's JSON keys for this model, for the API tab."""
    if task.is_rating:
        return "`{label, score, rating, range, midpoint, side, windows, tokens, engine}`"
    return "`{label, score, probabilities, windows, tokens, engine}`"


def api_help(limits: Limits, engines: list[str], task: Task | None = None) -> str:
    """The API tab: what each endpoint takes and returns (the README has runnable snippets)."""
    task = task or Task(KIND_BINARY, ("NEGATIVE", "POSITIVE"))
    return f"""
Every endpoint is callable with [`gradio_client`](https://www.gradio.app/guides/getting-started-with-the-python-client)
(`pip install gradio_client`), see "Use via API" at the bottom of the page or the Space's README.

| endpoint | input | output |
|---|---|---|
| `/predict` | `text`, `engine` (optional: {", ".join(f"`{e}`" for e in engines)}) | {result_fields(task)} |
| `/predict_batch` | `texts` (list of strings), `engine` | list of results as for `/predict` |
| `/predict_file` | `file` (`handle_file(path)`), `text_column` (optional), `engine` | results CSV path, summary |
| `/explain` | `text`, `engine` | highlighted spans, explanation text |

Limits: {limits.describe()}. Requests that wait at the same time are run through the model together.
{task_help(task)}"""


def task_help(task: Task) -> str:
    """What a result means for this model, under the API table (nothing more for two classes)."""
    if task.kind == KIND_BINARY:
        return ""
    if task.kind == KIND_CLASSES:
        return (
            f"\nThis model has {len(task.labels)} classes ({', '.join(f'`{n}`' for n in task.labels)}): "
            "`probabilities` holds every class's, summing to 1; `label` is the most probable class and "
            "`score` its probability. The results CSV has one `prob_<class>` column per class.\n"
        )
    scale = "(no range given)"
    if task.rating_range:
        scale = f"on a {task.scale()} scale (`range`, from the training data)"
    side = (
        f"`side` is `positive` at or above the midpoint {task.rating_midpoint:g} and `negative` below it"
        if task.rating_midpoint is not None
        else "`midpoint` and `side` are null: the model names no midpoint between negative and positive"
    )
    return (
        f"\nThis model gives a rating {scale}: `rating` (and `score`, as `pipeline` returns it) is the "
        f"model's value, averaged over the windows of a long review; `label` is `{task.labels[0]}`; {side}. "
        "There are no probabilities. The results CSV has a `rating` column instead of labels and "
        "probabilities.\n"
    )
