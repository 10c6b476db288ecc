"""Metric values against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from train.metrics import full_metrics, positive_probabilities


def test_metrics_match_a_hand_computed_case() -> None:
    # labels: 4 positive, 4 negative. Predictions: TP=3, FN=1, TN=2, FP=2.
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    probs = np.array([0.9, 0.8, 0.7, 0.4, 0.6, 0.55, 0.3, 0.1])
    m = full_metrics(labels, probs)
    assert m["confusion_matrix"] == [[2, 2], [1, 3]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    neg_p, neg_r = 2 / 3, 2 / 4
    neg_f1 = 2 * neg_p * neg_r / (neg_p + neg_r)
    assert m["per_class"]["NEGATIVE"] == pytest.approx(
        {"precision": neg_p, "recall": neg_r, "f1": neg_f1, "support": 4}
    )
    assert m["f1_macro"] == pytest.approx((m["f1"] + neg_f1) / 2)
    # ROC-AUC is the share of (positive, negative) pairs ranked the right way round: 0.4 loses to 0.6 and 0.55,
    # every other pair is right, so 14 of 16.
    assert m["roc_auc"] == pytest.approx(14 / 16)


def test_perfect_and_single_class_cases() -> None:
    m = full_metrics(np.array([0, 1]), np.array([0.1, 0.9]))
    assert m["accuracy"] == m["f1"] == m["roc_auc"] == 1.0
    single = full_metrics(np.array([1, 1]), np.array([0.2, 0.9]))
    assert single["accuracy"] == 0.5 and math.isnan(single["roc_auc"])


def test_positive_probabilities_are_a_softmax() -> None:
    logits = np.array([[0.0, 0.0], [0.0, math.log(3)]])
    assert positive_probabilities(logits) == pytest.approx([0.5, 0.75])
