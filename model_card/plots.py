"""The card's figures, drawn from results.json with matplotlib's Agg backend (no display needed).

Small PNGs (about 100 dpi) because they are uploaded beside the card and shown inline on the Hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

LABELS = ("NEGATIVE", "POSITIVE")
COLORS = {"NEGATIVE": "#d1495b", "POSITIVE": "#00798c"}
# Any other label set: matplotlib's qualitative palette, one colour per class in label order.
PALETTE = "tab10"
ALL = "all"  # a rating run's length histogram has one series, all reviews
DPI = 100
SPLIT_ORDER = ("train", "validation", "calibration", "test")

CONFUSION_MATRIX = "confusion_matrix.png"
TRAINING_CURVES = "training_curves.png"
LENGTH_HISTOGRAM = "length_histogram.png"
RELIABILITY_DIAGRAM = "reliability_diagram.png"
RATINGS = "ratings.png"


def colors(labels: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Each label's colour: the sentiment pair keeps its own, any other set takes the palette in order."""
    if all(label in COLORS for label in labels):
        return dict(COLORS)
    cmap = plt.get_cmap(PALETTE)
    return {label: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, label in enumerate(labels)}


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path.name


def confusion_matrix(
    matrix: list[list[int]], path: Path, title: str, labels: tuple[str, ...] | list[str] = LABELS
) -> str:
    """Counts and row shares: the share tells the per-class recall at a glance. Rows true, columns predicted,
    both in `labels` order; the figure grows with the number of classes."""
    n = len(labels)
    size = (4.2, 3.6) if n <= 2 else (min(14.0, 2.2 + 0.9 * n), min(13.0, 1.8 + 0.8 * n))
    fontsize = 10 if n <= 4 else max(5, 12 - n // 2)
    fig, ax = plt.subplots(figsize=size)
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            dark = count > 0.5 * max(max(r) for r in matrix)
            ax.text(
                j,
                i,
                f"{count}\n{count / total:.1%}",
                ha="center",
                va="center",
                color="white" if dark else "black",
                fontsize=fontsize,
            )
    # Long or many names would overlap under the columns: slanted there.
    slant = {"rotation": 45, "ha": "right"} if n > 4 or max(len(str(x)) for x in labels) > 10 else {}
    ax.set_xticks(range(n), labels, **slant)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _series(log_history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
    return [p[0] for p in points], [p[1] for p in points]


SENTIMENT_CURVES = ("eval_accuracy", "eval_f1", "eval_precision", "eval_recall", "eval_roc_auc")


def training_curves(
    log_history: list[dict[str, Any]],
    best_step: int | None,
    path: Path,
    metrics: tuple[str, ...] = SENTIMENT_CURVES,
) -> str:
    """Loss (training and validation) beside the validation `metrics`, against the optimizer step.

    A run that never evaluated during training (--eval_strategy no) gets the loss panel alone.
    """
    metric_keys = [k for k in metrics if _series(log_history, k)[0]]
    if metric_keys:
        fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(9, 3.8))
        panels = ((loss_ax, "Loss"), (metric_ax, "Validation metrics"))
    else:
        fig, loss_ax = plt.subplots(1, 1, figsize=(5.5, 3.8))
        panels = ((loss_ax, "Loss"),)
    for key, label in (("loss", "training loss"), ("eval_loss", "validation loss")):
        steps, values = _series(log_history, key)
        if steps:
            loss_ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=label)
    for key in metric_keys:
        steps, values = _series(log_history, key)
        metric_ax.plot(steps, values, marker="o", markersize=3, label=key.removeprefix("eval_"))
    for ax, title in panels:
        if best_step is not None:
            ax.axvline(best_step, color="grey", linestyle=":", label=f"best checkpoint (step {best_step})")
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            # Below the plot: inside it the legend hides the curves it explains.
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    return _save(fig, path)


def length_histogram(histograms: dict[str, dict[str, list[float]]], path: Path) -> str:
    """Review length in words by label, one panel per split, from the histogram counts the run stored
    (one series per class in the stored order; a rating run's single series `all`)."""
    splits = sorted(histograms, key=lambda s: SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.5 * len(splits), 3.2), squeeze=False)
    for ax, split in zip(axes[0], splits):
        hist = histograms[split]
        edges = hist["bin_edges_words"]
        series = [key for key in hist if key != "bin_edges_words"]
        palette = colors(series)
        for label in series:
            name = "all reviews" if label == ALL and len(series) == 1 else label
            ax.stairs(hist[label], edges, fill=True, alpha=0.45, color=palette[label], label=name)
            ax.stairs(hist[label], edges, color=palette[label])
        ax.set_xlabel("review length (words)")
        ax.set_ylabel("reviews")
        ax.set_title(f"{split} split", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def _reliability_panel(
    ax: plt.Axes, bins: list[dict[str, Any]], title: str, ece: float, floor: float
) -> None:
    """Accuracy per confidence bin against the diagonal (perfect calibration), each bar's count above it."""
    filled = [b for b in bins if b["count"]]
    width = bins[0]["upper"] - bins[0]["lower"]
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.bar([b["lower"] for b in filled], [b["accuracy"] for b in filled], width=width, align="edge",
           color=COLORS["POSITIVE"], edgecolor="white", label="accuracy")  # fmt: skip
    ax.scatter([b["confidence"] for b in filled], [b["confidence"] for b in filled], color="black", s=12,
               zorder=3, label="mean confidence")  # fmt: skip
    for b in filled:
        ax.text(b["lower"] + width / 2, b["accuracy"] + 0.01, f"{b['count']:,}", ha="center", va="bottom",
                fontsize=7)  # fmt: skip
    # The top label's confidence is at least 1/N (0.5 for two classes): the axis starts at the bin holding it.
    ax.set_xlim(max(b["lower"] for b in bins if b["lower"] <= floor), 1.0)
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("confidence of the predicted label")
    ax.set_title(f"{title}: ECE {ece:.4f}", fontsize=10)


def reliability_diagram(
    report: dict[str, Any], path: Path, title: str, applied: bool = True, num_classes: int = 2
) -> str:
    """Before and after temperature scaling, side by side on the same reviews (counts above the bars).

    `applied` False: no temperature was folded into the weights, so only the published (raw) scores are drawn.
    """
    floor = 1 / num_classes
    size = (8.4, 3.6) if applied else (4.6, 3.6)
    fig, axes = plt.subplots(1, 2 if applied else 1, figsize=size, sharey=True, squeeze=False)
    axes = axes[0]
    _reliability_panel(axes[0], report["reliability_before"], "Before scaling" if applied else "Raw scores",
                       report["ece_before"], floor)  # fmt: skip
    if applied:
        _reliability_panel(axes[1], report["reliability_after"], "After scaling", report["ece_after"], floor)
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(loc="upper left", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def ratings(
    per_rating: dict[str, dict[str, Any]],
    path: Path,
    title: str,
    predictions: dict[float, list[float]] | None = None,
) -> str:
    """Predicted against true rating: the predictions for each true rating as a box (when the run's
    predictions are there), the mean prediction as a point, and the diagonal of right predictions."""
    keys = sorted(per_rating, key=float)
    xs = [float(k) for k in keys]
    fig, ax = plt.subplots(figsize=(max(4.6, 2.2 + 0.45 * len(xs)), 3.8))
    if predictions:
        groups = {k: [] for k in keys}
        for true, values in predictions.items():  # each true rating to the nearest rating of the table
            groups[min(keys, key=lambda k: abs(float(k) - true))] += values
        ax.boxplot([groups[k] or [float("nan")] for k in keys], positions=xs, widths=0.5, manage_ticks=False,
                   flierprops={"markersize": 3}, medianprops={"color": COLORS["POSITIVE"]})  # fmt: skip
    ax.plot(
        [min(xs), max(xs)], [min(xs), max(xs)], color="gray", linestyle="--", linewidth=1, label="perfect"
    )
    ax.plot(xs, [per_rating[k]["mean_prediction"] for k in keys], "o", color=COLORS["NEGATIVE"],
            label="mean prediction")  # fmt: skip
    ax.set_xticks(xs, keys, rotation=45 if len(xs) > 12 else 0)
    ax.set_xlabel("true rating")
    ax.set_ylabel("predicted rating")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)
