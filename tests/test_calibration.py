"""Temperature scaling: the fit, the calibration error, and the temperature folded into the saved model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_args
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from train.run import main as train_main
from train.calibration import choose_temperature, fit_temperature, fold_temperature, reliability
from train.metrics import positive_probabilities


def test_fit_recovers_the_temperature_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20_000, 2))
    labels = (rng.random(20_000) < positive_probabilities(logits, 2.5)).astype(int)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)
    assert fit_temperature(logits, (logits[:, 1] > logits[:, 0]).astype(int)) < 0.2  # always right: sharpen


def test_expected_calibration_error_by_hand() -> None:
    labels = np.array([1] * 6 + [0] * 4)
    ece, table = reliability(labels, np.full(10, 0.9))  # says 90% sure, right 60% of the time
    assert ece == pytest.approx(0.3)
    (occupied,) = [row for row in table if row["count"]]
    assert (occupied["lower"], occupied["upper"], occupied["count"]) == pytest.approx((13 / 15, 14 / 15, 10))
    assert occupied["accuracy"] == pytest.approx(0.6) and occupied["confidence"] == pytest.approx(0.9)
    assert len(table) == 15
    # negative predictions are binned by their own confidence: p=0.2 is an 80%-sure NEGATIVE
    ece, _ = reliability(np.array([0, 0, 0, 0, 1]), np.full(5, 0.2))
    assert ece == pytest.approx(0.0)


def test_folding_divides_the_logits(tiny_model_dir: Path, sample_dir: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    reviews = pd.read_parquet(sample_dir / "test.parquet")["text"].head(8).tolist()
    batch = tokenizer(reviews, truncation=True, max_length=64, padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**batch).logits
        assert fold_temperature(model, 3.0) == 1
        after = model(**batch).logits
    torch.testing.assert_close(after, before / 3.0, rtol=1e-5, atol=1e-6)


def test_temperature_kept_only_when_it_lowers_held_out_nll() -> None:
    rng = np.random.default_rng(0)
    # over-confident scores (the labels follow softmax(logits / 2.5)): the temperature generalises, so it is kept
    logits = rng.normal(scale=4.0, size=(2_000, 2))
    labels = (rng.random(2_000) < positive_probabilities(logits, 2.5)).astype(int)
    kept = choose_temperature(logits, labels, "calibration reviews", seed=0)
    assert kept["applied"] and kept["temperature"] == kept["fitted_temperature"] == pytest.approx(2.5, rel=0.1)
    assert kept["check"]["held_out_nll_after"] < kept["check"]["held_out_nll_before"]
    assert kept["reason"].startswith("calibrated: T = ") and "2,000 calibration reviews" in kept["reason"]
    # already calibrated scores on 100 reviews: a temperature fitted on 50 does not help the other 50
    logits = rng.normal(scale=2.0, size=(100, 2))
    labels = (rng.random(100) < positive_probabilities(logits)).astype(int)
    skipped = choose_temperature(logits, labels, "validation reviews", seed=0)
    assert not skipped["applied"] and skipped["temperature"] == 1.0 and skipped["fitted_temperature"] != 1.0
    assert skipped["check"]["held_out_nll_after"] >= skipped["check"]["held_out_nll_before"]
    assert skipped["reason"].startswith("not calibrated: a temperature fitted on half of the 100 validation reviews")
    too_few = choose_temperature(logits[:3], np.array([0, 1, 1]), "calibration reviews", seed=0)
    assert not too_few["applied"] and too_few["temperature"] == 1.0 and too_few["check"] is None
    assert "3 calibration reviews are too few" in too_few["reason"]


def _assert_saved_model_returns_the_reported_scores(out: Path) -> None:
    """The saved model, through a plain pipeline, returns test_predictions.csv's scores (fp32 runs): folded exactly as
    reported."""
    predictions = pd.read_csv(out / "test_predictions.csv")
    short = predictions[predictions["n_tokens"] <= 64].head(6)
    got = [next(s["score"] for s in r if s["label"] == "POSITIVE")
           for r in pipeline("text-classification", model=str(out))(short["text"].tolist(), top_k=None)]  # fmt: skip
    assert got == pytest.approx(short["prob_positive"].tolist(), abs=1e-4)


def test_run_fits_the_temperature_on_a_held_out_split_and_saves_what_it_reports(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    train_main(tiny_args(tiny_model_dir, out, "--eval_windows", "--window_stride", "16", "--baseline", "false",
                         "--calibration_size", "48", "--precision", "fp32"))  # fmt: skip
    record = json.loads((out / "results.json").read_text())
    cal = record["calibration"]
    assert cal["fitted_on"] == "calibration reviews held out of training" and cal["num_examples"] == 48
    assert record["dataset"]["splits"] == {"train": 64, "validation": 32, "calibration": 48, "test": 48}
    assert cal["bins"] == 15 and cal["temperature"] == (cal["fitted_temperature"] if cal["applied"] else 1.0)
    assert cal["applied"] == (cal["check"]["held_out_nll_after"] < cal["check"]["held_out_nll_before"])
    for split in ("test", "test_windowed"):
        assert sum(row["count"] for row in cal[split]["reliability_after"]) == 48
        assert 0 <= cal[split]["ece_after"] <= 1 and 0 <= cal[split]["ece_before"] <= 1
    ece, _ = reliability(*_labels_and_scores(out))
    assert ece == pytest.approx(cal["test_windowed"]["ece_after"])
    _assert_saved_model_returns_the_reported_scores(out)


def test_a_temperature_that_cannot_be_checked_is_not_folded(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_main(tiny_args(tiny_model_dir, out, "--baseline", "false", "--calibration_size", "3", "--precision", "fp32"))
    cal = json.loads((out / "results.json").read_text())["calibration"]
    assert not cal["applied"] and cal["temperature"] == 1.0 and cal["fitted_temperature"] != pytest.approx(1.0)
    assert cal["reason"].startswith("not calibrated: 3 calibration reviews held out of training are too few")
    assert cal["test"]["ece_after"] == cal["test"]["ece_before"]
    _assert_saved_model_returns_the_reported_scores(out)  # the raw softmax: nothing folded


def test_validation_that_chose_the_checkpoint_does_not_fit_the_temperature(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    train_main(tiny_args(tiny_model_dir, out, "--baseline", "false"))  # --eval_strategy epoch: validation chose
    cal = json.loads((out / "results.json").read_text())["calibration"]
    assert not cal["applied"] and cal["temperature"] == 1.0 and cal["fitted_on"] is None
    assert "chose the checkpoint" in cal["reason"] and "--calibration_size" in cal["reason"]


def _labels_and_scores(run: Path) -> tuple[np.ndarray, np.ndarray]:
    predictions = pd.read_csv(run / "test_predictions.csv")
    return (predictions["label"] == "POSITIVE").to_numpy().astype(int), predictions["prob_positive"].to_numpy()


def _test_text(run: Path, row: int) -> str:
    return pd.read_csv(run / "test_predictions.csv")["text"].iloc[row]
