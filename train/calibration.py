"""Temperature scaling: make the scores the published model returns probabilities a user can trust.

A fine-tuned classifier's softmax is typically over-confident (Guo et al. 2017, "On Calibration of Modern
Neural Networks"). One scalar temperature T, fitted after training by minimising the negative log-likelihood
of softmax(logits / T) on reviews that chose nothing else (not the checkpoint), fixes most of that without
moving any prediction. A temperature fitted on a few hundred reviews can also make the scores worse, so
`choose_temperature` keeps it only when it lowers the NLL on reviews it was not fitted on.
Dividing the classifier's last layer (weights and bias) by T puts the fix inside the saved weights, so
`pipeline(...)`, the Space, ONNX and transformers.js all return calibrated scores with no custom code.

Why by hand: scikit-learn's `CalibratedClassifierCV` wraps an estimator (Platt or isotonic) and cannot be
folded into a network's weights, and it has no expected calibration error; neither has `evaluate` offline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.model_selection import StratifiedKFold

from train.metrics import ECE_BINS, reliability

# log T is searched in this range (T from 0.05 to 20): far wider than calibration ever needs.
LOG_T_BOUNDS = (-3.0, 3.0)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    scaled = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1)
    return float(-scaled[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) on held-out data (a 1-D convex problem in log T)."""
    labels = np.asarray(labels, dtype=int)
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
        bounds=LOG_T_BOUNDS,
        method="bounded",
    )
    return float(np.exp(result.x))


def choose_temperature(logits: np.ndarray, labels: np.ndarray, where: str, seed: int) -> dict[str, Any]:
    """Fit T on all of `where`'s reviews, but keep it only if it generalises: the held-out check.

    The reviews are split in two stratified halves; T fitted on each half scores the NLL of the other.
    The temperature is applied only when that held-out NLL (both halves together) is lower than the raw
    softmax's; otherwise T stays 1 and `reason` says why in one sentence, which the card prints as is.
    """
    labels = np.asarray(labels, dtype=int)
    n, counts = len(labels), np.bincount(labels, minlength=2)
    counts = counts[counts > 0] if (counts > 0).sum() >= 2 else counts  # a class absent from a small split
    fitted = fit_temperature(logits, labels) if n else 1.0
    decision: dict[str, Any] = {"method": "temperature", "fitted_on": where, "num_examples": int(n),
                                "fitted_temperature": fitted, "bins": ECE_BINS, "check": None}  # fmt: skip
    if counts.min() < 2:
        return {**decision, "applied": False, "temperature": 1.0,
                "reason": f"not calibrated: {n:,} {where} are too few to fit a temperature and check it on "
                          "reviews it was not fitted on (each half needs both classes)"}  # fmt: skip
    before = after = 0.0
    for fit_rows, check_rows in StratifiedKFold(n_splits=2, shuffle=True, random_state=seed).split(logits, labels):
        t = fit_temperature(logits[fit_rows], labels[fit_rows])
        before += negative_log_likelihood(logits[check_rows], labels[check_rows]) * len(check_rows) / n
        after += negative_log_likelihood(logits[check_rows], labels[check_rows], t) * len(check_rows) / n
    decision["check"] = {"folds": 2, "held_out_nll_before": before, "held_out_nll_after": after}
    change = f"({before:.3f} -> {after:.3f})"
    if after < before:
        return {**decision, "applied": True, "temperature": fitted,
                "reason": f"calibrated: T = {fitted:.3f}, fitted on {n:,} {where}; fitted on either half of them, "
                          f"it lowered the negative log-likelihood on the other half {change}"}  # fmt: skip
    return {**decision, "applied": False, "temperature": 1.0,
            "reason": f"not calibrated: a temperature fitted on half of the {n:,} {where} did not lower the "
                      f"negative log-likelihood on the other half {change}, so the scores are the model's own "
                      "softmax"}  # fmt: skip


def report(labels: np.ndarray, before: np.ndarray, after: np.ndarray, logits: np.ndarray | None,
           temperature: float) -> dict[str, Any]:  # fmt: skip
    """ECE (and NLL where there are logits) of the same predictions before and after scaling."""
    ece_before, table_before = reliability(labels, before)
    ece_after, table_after = reliability(labels, after)
    out: dict[str, Any] = {"ece_before": ece_before, "ece_after": ece_after}
    if logits is not None:
        out["nll_before"] = negative_log_likelihood(logits, labels)
        out["nll_after"] = negative_log_likelihood(logits, labels, temperature)
    else:  # windowed scores: a mean of window probabilities, so the NLL of the review's score
        out["nll_before"] = _score_nll(labels, before)
        out["nll_after"] = _score_nll(labels, after)
    out["reliability_before"], out["reliability_after"] = table_before, table_after
    return out


def _score_nll(labels: np.ndarray, scores: np.ndarray) -> float:
    """The NLL of P(POSITIVE) scores, or of every class's probability."""
    labels = np.asarray(labels, dtype=int)
    if scores.ndim == 2:
        p = np.clip(scores[np.arange(len(labels)), labels], 1e-12, 1.0)
    else:
        p = np.clip(np.where(labels == 1, scores, 1.0 - scores), 1e-12, 1.0)
    return float(-np.log(p).mean())


def output_layers(model: torch.nn.Module) -> list[torch.nn.Linear]:
    """The head's output layer(s): the Linear layers with `num_labels` outputs (two under peft, see below)."""
    num_labels = model.config.num_labels
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if not heads:
        raise ValueError(f"no Linear layer with {num_labels} outputs in the model's head")
    return heads


@torch.no_grad()
def fold_temperature(model: torch.nn.Module, temperature: float) -> int:
    """Divide the classification head's output layer by T; returns how many layers were changed.

    The output layer is the Linear whose outputs are the labels (`num_labels` features): BERT's and
    DistilBERT's `classifier`, RoBERTa's `classifier.out_proj`. Under peft the head is wrapped twice
    (the frozen original and the trained copy); both are folded, so the adapter and the merged model agree.
    """
    heads = output_layers(model)
    for layer in heads:
        layer.weight.div_(temperature)
        if layer.bias is not None:
            layer.bias.div_(temperature)
    return len(heads)
