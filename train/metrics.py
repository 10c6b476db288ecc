"""Classification metrics with scikit-learn.

`evaluate.load("accuracy")` downloads its metric script from the Hub at run time, which fails
offline and on locked-down GPU machines; scikit-learn computes the same numbers locally, and is
the reference implementation `evaluate`'s own metric scripts call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)
from transformers import EvalPrediction

from train.config import LABELS


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


def compute_metrics(pred: EvalPrediction) -> dict[str, float]:
    """The Trainer's hook: scalars only, since they go to the logs and to best-model selection."""
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    return scalar_metrics(np.asarray(pred.label_ids), positive_probabilities(np.asarray(logits)))
