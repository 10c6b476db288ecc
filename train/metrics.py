"""Metrics for every kind of task (two classes, more classes, ratings) with scikit-learn and scipy.

`evaluate.load("accuracy")` downloads its metric script from the Hub at run time, which fails
offline and on locked-down GPU machines; scikit-learn computes the same numbers locally, and is
the reference implementation `evaluate`'s own metric scripts call.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.special import softmax
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)
from transformers import EvalPrediction

from train.config import LABELS
from train.task import MULTICLASS_SCALARS, REGRESSION_SCALARS, Task

ECE_BINS = 15
ALL_SCALARS = {*MULTICLASS_SCALARS, *REGRESSION_SCALARS, "exact", "sign_accuracy"}


def positive_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature)[:, 1]: temperature 1 is the model's own score (train/calibration.py)."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1)[:, 1]


def scalar_metrics(labels: np.ndarray, prob_positive: np.ndarray) -> dict[str, float]:
    """Accuracy, binary/macro/weighted precision-recall-F1 and ROC-AUC, positive class = 1."""
    preds = (prob_positive >= 0.5).astype(int)
    out: dict[str, float] = {"accuracy": float(accuracy_score(labels, preds))}
    p, r, f, _ = precision_recall_fscore_support(
        labels, preds, average="binary", pos_label=1, zero_division=0
    )
    out.update(precision=float(p), recall=float(r), f1=float(f))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(labels, preds, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    # ROC-AUC is undefined when the labels hold one class (a tiny subset); report it as missing.
    out["roc_auc"] = (
        float(roc_auc_score(labels, prob_positive)) if len(np.unique(labels)) == 2 else float("nan")
    )
    return out


def full_metrics(labels: np.ndarray, prob_positive: np.ndarray) -> dict[str, Any]:
    """Scalar metrics plus the confusion matrix (rows true, columns predicted) and a per-class report."""
    preds = (prob_positive >= 0.5).astype(int)
    out: dict[str, Any] = scalar_metrics(labels, prob_positive)
    out["num_examples"] = int(len(labels))
    out["confusion_matrix"] = confusion_matrix(labels, preds, labels=[0, 1]).tolist()
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=[0, 1], zero_division=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(LABELS)
    }
    return out


def scores(task: Task, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """What a run scores a text with: P(POSITIVE) for two classes, every class's probability, or the rating."""
    logits = np.asarray(logits, dtype=np.float64)
    if task.regression:
        return logits[:, 0]
    if task.binary:
        return positive_probabilities(logits, temperature)
    return softmax(logits / temperature, axis=-1)


def predictions(scores: np.ndarray) -> np.ndarray:
    """The predicted class of two-class scores (P(POSITIVE)) or of class probabilities."""
    return scores.argmax(axis=-1) if scores.ndim == 2 else (scores >= 0.5).astype(int)


def top_confidence(scores: np.ndarray) -> np.ndarray:
    return scores.max(axis=-1) if scores.ndim == 2 else np.maximum(scores, 1.0 - scores)


def reliability(labels: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error and the reliability table, over the predicted label's confidence.

    `scores` is P(POSITIVE) for two classes, or every class's probability (top-label confidence).
    Equal-width bins on [0, 1] (the confidence of a binary prediction is at least 0.5, so the lower
    bins stay empty); ECE = sum over bins of (bin share) * |accuracy - mean confidence|.
    """
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    predicted, confidence = predictions(scores), top_confidence(scores)
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        conf = float(confidence[members].mean()) if count else None
        acc = float(correct[members].mean()) if count else None
        if count:
            ece += count / len(labels) * abs(acc - conf)
        table.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
                      "confidence": conf, "accuracy": acc})  # fmt: skip
    return float(ece), table


def multiclass_metrics(labels: np.ndarray, probs: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """More than two classes: accuracy, macro and weighted F1, one-vs-rest ROC-AUC, top-label ECE, NxN matrix."""
    labels, ids = np.asarray(labels, dtype=int), list(range(len(names)))
    preds = probs.argmax(axis=-1)
    out: dict[str, Any] = {"accuracy": float(accuracy_score(labels, preds))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(labels, preds, labels=ids, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    # One-vs-rest macro ROC-AUC is defined only when every class occurs in the labels.
    out["roc_auc"] = (
        float(roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=ids))
        if len(np.unique(labels)) == len(names) else float("nan")
    )  # fmt: skip
    out["ece"] = reliability(labels, probs)[0]
    out["num_examples"] = int(len(labels))
    out["confusion_matrix"] = confusion_matrix(labels, preds, labels=ids).tolist()
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(names)
    }
    return out


def rating_metrics(targets: np.ndarray, values: np.ndarray, midpoint: float | None) -> dict[str, Any]:
    """Ratings: errors in rating units, agreement within one star, rank correlation, and the implied sign."""
    targets, values = np.asarray(targets, dtype=np.float64), np.asarray(values, dtype=np.float64)
    rounded = np.rint(values)
    varied = len(np.unique(targets)) > 1 and np.ptp(values) > 0  # correlations of a constant are undefined
    out: dict[str, Any] = {
        "mae": float(mean_absolute_error(targets, values)),
        "rmse": float(np.sqrt(mean_squared_error(targets, values))),
        "within_one": float(np.mean(np.abs(rounded - targets) <= 1)),
        "exact": float(np.mean(rounded == targets)),
        "spearman": float(spearmanr(targets, values).statistic) if varied else float("nan"),
        "pearson": float(pearsonr(targets, values).statistic) if varied else float("nan"),
        "r2": float(r2_score(targets, values)) if len(targets) > 1 else float("nan"),
        "sign_accuracy": None if midpoint is None else float(np.mean((values > midpoint) == (targets > midpoint))),
        "num_examples": int(len(targets)),
    }
    out["per_rating"] = {
        f"{t:g}": {"count": int((targets == t).sum()), "mean_prediction": float(values[targets == t].mean()),
                   "mae": float(np.abs(values[targets == t] - t).mean())}
        for t in np.unique(targets)
    }  # fmt: skip
    return out


def task_metrics(task: Task, labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """A split's metrics for the run's task (train/task.py): results.json's `metrics` entries."""
    if task.regression:
        return rating_metrics(labels, scores, task.midpoint)
    if task.binary:
        return full_metrics(labels, scores)
    return multiclass_metrics(labels, scores, task.labels)


def metrics_fn(task: Task) -> Callable[[EvalPrediction], dict[str, float]]:
    """The Trainer's hook: scalars only, since they go to the logs and to best-model selection."""

    def compute_metrics(pred: EvalPrediction) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        labels, scored = np.asarray(pred.label_ids), scores(task, np.asarray(logits))
        if task.binary:
            return scalar_metrics(labels, scored)
        found = task_metrics(task, labels, scored)
        return {k: v for k, v in found.items() if isinstance(v, float) and k in ALL_SCALARS}

    return compute_metrics
