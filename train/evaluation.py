"""Scoring a split with the trained model: in row order, shortest review first, optionally as windows.

The test split is scored twice when --eval_windows is on: cut as in training (kept in results.json
as `test_truncated`) and as averaged overlapping windows (the headline `test` metrics), each with
its own speed, so the card can say what the windows cost and what they bring.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict
from torch.utils.data import Sampler, SequentialSampler
from transformers import PreTrainedTokenizerBase, Trainer

from train import calibration
from train.config import ModelArguments
from train.encoding import encode_splits, encode_windows
from train.metrics import positive_probabilities, scores, task_metrics
from train.task import SENTIMENT, Task


class OrderedEvalTrainer(Trainer):
    """A Trainer whose predictions come back in the dataset's row order.

    With length grouping on, transformers 5 also groups *evaluation* batches by length, so
    `predict` returns rows in another order than the dataset's and the test metrics and
    prediction table would pair a review with another review's score. Training keeps the
    grouping; evaluation reads rows in order (under DDP, accelerate's gather keeps order).
    """

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def predict_logits(trainer: Trainer, ds: Dataset, prefix: str) -> tuple[np.ndarray, dict[str, float]]:
    """Logits in row order, predicted shortest review first.

    Sorting by length puts reviews of similar length in one batch, about halving the padding
    that evaluation computes on IMDb's mixed lengths; the result is put back in row order.
    Logits, not probabilities: calibration (train/calibration.py) rescales them.
    """
    order = np.argsort([len(ids) for ids in ds["input_ids"]], kind="stable")
    out = trainer.predict(ds.select(order), metric_key_prefix=prefix)
    predictions = out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions
    logits = np.empty_like(np.asarray(predictions, dtype=np.float64))
    logits[order] = predictions
    return logits, out.metrics


def evaluate(
    trainer: Trainer, ds: Dataset, prefix: str, task: Task = SENTIMENT, temperature: float = 1.0
) -> tuple[dict[str, Any], np.ndarray, dict[str, float]]:
    """Full metrics (on softmax(logits / temperature), or the ratings), the logits and the Trainer's speeds."""
    logits, speed = predict_logits(trainer, ds, prefix)
    metrics = task_metrics(task, np.asarray(ds["label"]), scores(task, logits, temperature))
    metrics["loss"] = speed.get(f"{prefix}_loss")
    return metrics, logits, speed


def evaluate_windows(
    trainer: Trainer, windows: Dataset, n_reviews: int, task: Task, temperature: float
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Average each review's window probabilities (or ratings) into one prediction, then score the reviews.

    Returns the metrics and the review scores with and without the temperature: a calibrated
    windowed score is the mean of its windows' calibrated probabilities.
    """
    window_logits, _ = predict_logits(trainer, windows.remove_columns("review"), "windows")
    review = np.asarray(windows["review"])
    counts = np.bincount(review, minlength=n_reviews)

    def per_review(window_scores: np.ndarray) -> np.ndarray:
        sums = np.zeros((n_reviews, *window_scores.shape[1:]))
        np.add.at(sums, review, window_scores)
        return sums / counts.reshape(-1, *[1] * (window_scores.ndim - 1))

    calibrated = per_review(scores(task, window_logits, temperature))
    uncalibrated = per_review(scores(task, window_logits))
    labels = np.zeros(n_reviews, dtype=np.asarray(windows["label"]).dtype)
    labels[review] = np.asarray(windows["label"])
    metrics = task_metrics(task, labels, calibrated)
    metrics["windows"] = len(windows)
    return metrics, calibrated, uncalibrated


def evaluate_test(
    trainer: Trainer,
    encoded: Dataset,
    raw: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    model: ModelArguments,
    task: Task = SENTIMENT,
    temperature: float = 1.0,
) -> tuple[dict[str, Any], dict[str, Any] | None, np.ndarray, dict[str, float], dict[str, Any]]:
    """Test metrics, the truncated metrics when windows were scored too, scores, speeds, calibration.

    The calibration reports compare the same predictions before and after the temperature: `test`
    (cut as in training) and, with windows, `test_windowed`. A rating model has none.
    """
    test, logits, speed = evaluate(trainer, encoded, "test", task, temperature)
    labels = np.asarray(encoded["label"])
    scored = scores(task, logits, temperature)
    reports = {} if task.regression else {
        "test": calibration.report(labels, scores(task, logits), scored, logits, temperature)
    }  # fmt: skip
    timings = {
        "test_runtime_s": speed["test_runtime"],
        "test_samples_per_second": speed["test_samples_per_second"],
    }
    if not model.eval_windows:
        return test, None, scored, timings, reports
    truncated, started = test, time.time()
    windows = encode_windows(raw, tokenizer, model.window_length, model.window_stride)
    test, scored, uncalibrated = evaluate_windows(trainer, windows, len(raw), task, temperature)
    # The windowed score's own cost, windowing included: what serving it on the test split takes.
    seconds = time.time() - started
    timings.update(
        test_windows_runtime_s=seconds,
        test_windows_reviews_per_second=len(raw) / seconds,
        test_windows=len(windows),
    )
    if not task.regression:
        reports["test_windowed"] = calibration.report(labels, uncalibrated, scored, None, temperature)
    return test, truncated, scored, timings, reports


def score_texts(
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    model: ModelArguments,
    texts: list[str],
    temperature: float = 1.0,
) -> np.ndarray:
    """P(POSITIVE) for bare texts (the behaviour suite's sentences), encoded as the training data was."""
    raw = DatasetDict(texts=Dataset.from_dict({"text": list(texts), "label": [0] * len(texts)}))
    encoded = encode_splits(raw, tokenizer, model.max_length, model.truncation, model.head_tokens)["texts"]
    logits, _ = predict_logits(trainer, encoded, "texts")
    return positive_probabilities(logits, temperature)
