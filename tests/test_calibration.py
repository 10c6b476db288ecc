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
from train.calibration import fit_temperature, fold_temperature, reliability
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


def test_run_saves_a_calibrated_model_and_reports_ece(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_main(tiny_args(tiny_model_dir, out, "--eval_windows", "--window_stride", "16", "--baseline", "false"))
    record = json.loads((out / "results.json").read_text())
    cal = record["calibration"]
    temperature = cal["temperature"]
    assert cal["fitted_on"] == "validation" and cal["num_examples"] == 32 and cal["bins"] == 15
    assert temperature > 0 and temperature != pytest.approx(1.0, abs=1e-3)
    # fitted to minimise validation NLL: never worse after than before
    assert cal["validation"]["nll_after"] <= cal["validation"]["nll_before"] + 1e-9
    for split in ("test", "test_windowed"):
        assert sum(row["count"] for row in cal[split]["reliability_after"]) == 48
        assert 0 <= cal[split]["ece_after"] <= 1 and 0 <= cal[split]["ece_before"] <= 1
    ece, _ = reliability(*_labels_and_scores(out))
    assert ece == pytest.approx(cal["test_windowed"]["ece_after"])
    # the saved model returns the calibrated score itself: softmax(raw logits / T) through a plain pipeline
    predictions = pd.read_csv(out / "test_predictions.csv")
    short = predictions[predictions["n_tokens"] <= 64].head(6)
    texts = [_test_text(out, i) for i in short.index]
    got = [next(s["score"] for s in r if s["label"] == "POSITIVE")
           for r in pipeline("text-classification", model=str(out))(texts, top_k=None)]  # fmt: skip
    assert got == pytest.approx(short["prob_positive"].tolist(), abs=1e-4)


def _labels_and_scores(run: Path) -> tuple[np.ndarray, np.ndarray]:
    predictions = pd.read_csv(run / "test_predictions.csv")
    return (predictions["label"] == "POSITIVE").to_numpy().astype(int), predictions["prob_positive"].to_numpy()


def _test_text(run: Path, row: int) -> str:
    return pd.read_csv(run / "test_predictions.csv")["text"].iloc[row]
