"""Scoring a split with the trained model: in row order, shortest review first, optionally as windows.

The test split is scored twice when --eval_windows is on: cut as in training (kept in results.json
as `test_truncated`) and as averaged overlapping windows (the headline `test` metrics), each with
its own speed, so the card can say what the windows cost and what they bring.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from datasets import Dataset
from torch.utils.data import Sampler, SequentialSampler
from transformers import PreTrainedTokenizerBase, Trainer

from train.config import ModelArguments
from train.encoding import encode_windows
from train.metrics import full_metrics, positive_probabilities


class OrderedEvalTrainer(Trainer):
    """A Trainer whose predictions come back in the dataset's row order.

    With length grouping on, transformers 5 also groups *evaluation* batches by length, so
    `predict` returns rows in another order than the dataset's and the test metrics and
    prediction table would pair a review with another review's score. Training keeps the
    grouping; evaluation reads rows in order (under DDP, accelerate's gather keeps order).
    """

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def predict_probabilities(trainer: Trainer, ds: Dataset, prefix: str) -> tuple[np.ndarray, dict[str, float]]:
    """Positive-class probabilities in row order, predicted shortest review first.

    Sorting by length puts reviews of similar length in one batch, about halving the padding
    that evaluation computes on IMDb's mixed lengths; the result is put back in row order.
    """
    order = np.argsort([len(ids) for ids in ds["input_ids"]], kind="stable")
    out = trainer.predict(ds.select(order), metric_key_prefix=prefix)
    prob_positive = np.empty(len(ds))
    prob_positive[order] = positive_probabilities(out.predictions)
    return prob_positive, out.metrics


def evaluate(
    trainer: Trainer, ds: Dataset, prefix: str
) -> tuple[dict[str, Any], np.ndarray, dict[str, float]]:
    """Full metrics, positive-class probabilities and the Trainer's speed figures for one split."""
    prob_positive, speed = predict_probabilities(trainer, ds, prefix)
    metrics = full_metrics(np.asarray(ds["label"]), prob_positive)
    metrics["loss"] = speed.get(f"{prefix}_loss")
    return metrics, prob_positive, speed


def evaluate_windows(trainer: Trainer, windows: Dataset, n_reviews: int) -> tuple[dict[str, Any], np.ndarray]:
    """Average each review's window probabilities into one prediction, then score the reviews."""
    window_prob, _ = predict_probabilities(trainer, windows.remove_columns("review"), "windows")
    review = np.asarray(windows["review"])
    prob_positive = np.bincount(review, weights=window_prob, minlength=n_reviews) / np.bincount(review)
    labels = np.zeros(n_reviews, dtype=int)
    labels[review] = np.asarray(windows["label"])
    metrics = full_metrics(labels, prob_positive)
    metrics["windows"] = len(windows)
    return metrics, prob_positive


def evaluate_test(
    trainer: Trainer,
    encoded: Dataset,
    raw: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    model: ModelArguments,
) -> tuple[dict[str, Any], dict[str, Any] | None, np.ndarray, dict[str, float]]:
    """Test metrics, the truncated metrics when windows were scored too, probabilities and speeds."""
    test, prob_positive, speed = evaluate(trainer, encoded, "test")
    timings = {
        "test_runtime_s": speed["test_runtime"],
        "test_samples_per_second": speed["test_samples_per_second"],
    }
    if not model.eval_windows:
        return test, None, prob_positive, timings
    truncated, started = test, time.time()
    windows = encode_windows(raw, tokenizer, model.window_length, model.window_stride)
    test, prob_positive = evaluate_windows(trainer, windows, len(raw))
    # The windowed score's own cost, windowing included: what serving it on the test split takes.
    seconds = time.time() - started
    timings.update(
        test_windows_runtime_s=seconds,
        test_windows_reviews_per_second=len(raw) / seconds,
        test_windows=len(windows),
    )
    return test, truncated, prob_positive, timings
