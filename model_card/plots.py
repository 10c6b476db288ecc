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
DPI = 100
SPLIT_ORDER = ("train", "validation", "calibration", "test")

CONFUSION_MATRIX = "confusion_matrix.png"
TRAINING_CURVES = "training_curves.png"
LENGTH_HISTOGRAM = "length_histogram.png"
RELIABILITY_DIAGRAM = "reliability_diagram.png"


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path.name


def confusion_matrix(matrix: list[list[int]], path: Path, title: str) -> str:
    """Counts and row shares: the share tells the per-class recall at a glance."""
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
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
                fontsize=10,
            )
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _series(log_history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
    return [p[0] for p in points], [p[1] for p in points]


def training_curves(log_history: list[dict[str, Any]], best_step: int | None, path: Path) -> str:
    """Loss (training and validation) beside the validation metrics, against the optimizer step.

    A run that never evaluated during training (--eval_strategy no) gets the loss panel alone.
    """
    metric_keys = [k for k in ("eval_accuracy", "eval_f1", "eval_precision", "eval_recall", "eval_roc_auc")
                   if _series(log_history, k)[0]]  # fmt: skip
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
    """Review length in words by label, one panel per split, from the histogram counts the run stored."""
    splits = sorted(histograms, key=lambda s: SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.5 * len(splits), 3.2), squeeze=False)
    for ax, split in zip(axes[0], splits):
        hist = histograms[split]
        edges = hist["bin_edges_words"]
        for label in LABELS:
            ax.stairs(hist[label], edges, fill=True, alpha=0.45, color=COLORS[label], label=label)
            ax.stairs(hist[label], edges, color=COLORS[label])
        ax.set_xlabel("review length (words)")
        ax.set_ylabel("reviews")
        ax.set_title(f"{split} split", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def _reliability_panel(ax: plt.Axes, bins: list[dict[str, Any]], title: str, ece: float) -> None:
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
    # A binary prediction's confidence is at least 0.5: the axis starts at the bin holding 0.5, not at 0.
    ax.set_xlim(max(b["lower"] for b in bins if b["lower"] <= 0.5), 1.0)
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("confidence of the predicted label")
    ax.set_title(f"{title}: ECE {ece:.4f}", fontsize=10)


def reliability_diagram(report: dict[str, Any], path: Path, title: str, applied: bool = True) -> str:
    """Before and after temperature scaling, side by side on the same reviews (counts above the bars).

    `applied` False: no temperature was folded into the weights, so only the published (raw) scores are drawn.
    """
    size = (8.4, 3.6) if applied else (4.6, 3.6)
    fig, axes = plt.subplots(1, 2 if applied else 1, figsize=size, sharey=True, squeeze=False)
    axes = axes[0]
    _reliability_panel(axes[0], report["reliability_before"], "Before scaling" if applied else "Raw scores",
                       report["ece_before"])  # fmt: skip
    if applied:
        _reliability_panel(axes[1], report["reliability_after"], "After scaling", report["ece_after"])
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(loc="upper left", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
