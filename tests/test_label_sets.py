"""Any label set, training side: labels read from the data, three classes and a rating end to end.

The three-class runs train on the committed three-way sample (data/three_way_sample: negative, neutral,
positive, from IMDb's star ratings); the rating run trains on the same reviews' 1-10 star ratings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, tiny_args
from datasets import ClassLabel
from transformers import pipeline

from train.errors import UserError
from train.metrics import rating_metrics
from train.predict import main as predict_main
from train.run import main as train_main
from train.task import CLASSIFICATION, SENTIMENT, Task, classes_from, rating_task

THREE_WAY = ROOT / "data" / "three_way_sample"
REVIEWS = ["A wonderful, moving film.", "Dull and far too long.", "It was fine, I suppose, nothing more."]


def test_labels_name_the_classes() -> None:
    assert classes_from([0, 1, 1, 0], None, None) == SENTIMENT  # today's two-class data
    assert classes_from(["neg", "pos"], None, None) == SENTIMENT
    assert classes_from(["positive", "neutral", "negative"], None, None).labels == ("negative", "neutral", "positive")
    assert classes_from([3, 1, 5, 1], None, None).labels == ("1", "3", "5")
    ordered = classes_from(["positive", "neutral", "negative"], ["positive", "neutral", "negative"], None)
    assert ordered.labels == ("positive", "neutral", "negative")
    assert ordered.label_ids(["negative", "positive"], "test split") == [2, 0]
    named = classes_from([2, 0, 1], ["bad", "mixed", "good"], None)
    assert named.label_ids([2, 0, 1.0, "1"], "test split") == [2, 0, 1, 1]
    from_feature = classes_from([0, 2, 1], None, ["sad", "meh", "glad"])  # a ClassLabel's own names
    assert from_feature.labels == ("sad", "meh", "glad") and from_feature.label_ids([2], "x") == [2]


def test_refusals_are_one_sentence() -> None:
    with pytest.raises(UserError, match="one class only"):
        classes_from(["good", "good"], None, None)
    with pytest.raises(UserError, match="repeats a name"):
        classes_from([0, 1], ["a", "a"], None)
    with pytest.raises(UserError, match="differ"):
        rating_task([7, 7, 7], None)


def test_rating_metrics_read_the_ratings() -> None:
    targets = np.array([1.0, 2.0, 4.0, 7.0, 9.0, 10.0])
    values = np.array([1.4, 3.6, 4.0, 5.0, 8.2, 10.4])
    m = rating_metrics(targets, values, midpoint=5.5)
    assert m["mae"] == pytest.approx(np.abs(values - targets).mean())
    assert m["within_one"] == pytest.approx(4 / 6)  # 3.6 rounds to 4, two from 2; 5.0 is two from 7
    assert m["exact"] == pytest.approx(3 / 6)  # 1.4 -> 1, 4.0 -> 4, 10.4 -> 10
    assert m["sign_accuracy"] == pytest.approx(5 / 6)  # 5.0 falls on the negative side of 5.5 for a 7
    assert m["spearman"] == pytest.approx(1.0)
    assert m["per_rating"]["7"] == {"count": 1, "mean_prediction": 5.0, "mae": 2.0}
    assert rating_metrics(targets, values, None)["sign_accuracy"] is None


@pytest.fixture(scope="module")
def three_way_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("three") / "run"
    train_main([*tiny_args(tiny_model_dir, out), "--dataset_name", str(THREE_WAY), "--max_train_samples", "96",
                "--max_eval_samples", "30", "--max_test_samples", "60", "--calibration_size", "60",
                "--precision", "fp32"])  # fmt: skip
    return out


def test_three_classes_from_training_to_pipeline(three_way_run: Path) -> None:
    record = json.loads((three_way_run / "results.json").read_text())
    names = ["negative", "neutral", "positive"]
    assert record["task"] == {"kind": CLASSIFICATION, "labels": names}
    test = record["metrics"]["test"]
    assert np.asarray(test["confusion_matrix"]).shape == (3, 3)
    assert list(test["per_class"]) == names
    assert "f1" not in test and 0 <= test["f1_macro"] <= 1 and 0 <= test["ece"] <= 1
    assert record["dataset"]["label_counts"]["test"] == {"negative": 20, "neutral": 20, "positive": 20}
    table = pd.read_csv(three_way_run / "test_predictions.csv", keep_default_na=False)
    probs = table[[f"prob_{n}" for n in names]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (table["pred"] == np.asarray(names)[probs.argmax(axis=1)]).all()
    assert test["accuracy"] == pytest.approx((table["label"] == table["pred"]).mean())
    # The saved model is what pipeline serves: every class, each row's probabilities as the run scored them.
    served = pipeline("text-classification", model=str(three_way_run))(table["text"].head(4).tolist(), top_k=None,
                                                                      truncation=True, max_length=64)  # fmt: skip
    for row, scores in zip(probs[:4], served):
        got = {s["label"]: s["score"] for s in scores}
        assert [got[n] for n in names] == pytest.approx(row, abs=1e-4)
    assert len({tuple(np.round(r, 4)) for r in probs}) > 1  # a model whose answers differ between reviews
    assert record["calibration"]["fitted_on"] == "calibration reviews held out of training"


def test_label_names_fix_the_order(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    order = ["positive", "neutral", "negative"]
    train_main([*tiny_args(tiny_model_dir, out), "--dataset_name", str(THREE_WAY), "--max_train_samples", "48",
                "--max_eval_samples", "24", "--max_test_samples", "24", "--label_names", *order,
                "--baseline", "false"])  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): n for i, n in enumerate(order)}
    assert config["problem_type"] == "single_label_classification"
    assert list(json.loads((out / "results.json").read_text())["metrics"]["test"]["per_class"]) == order


@pytest.fixture(scope="module")
def rating_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rating") / "run"
    train_main([*tiny_args(tiny_model_dir, out), "--dataset_name", str(THREE_WAY), "--task", "regression",
                "--label_column", "rating", "--rating_midpoint", "5.5", "--max_train_samples", "96",
                "--max_eval_samples", "30", "--max_test_samples", "60", "--eval_windows", "--eval_max_length", "96",
                "--window_stride", "32", "--precision", "fp32"])  # fmt: skip
    return out


def test_a_rating_from_training_to_pipeline(rating_run: Path, capsys: pytest.CaptureFixture) -> None:
    record = json.loads((rating_run / "results.json").read_text())
    ratings = pd.read_parquet(THREE_WAY / "train.parquet")["rating"]
    assert record["task"]["kind"] == "regression" and record["task"]["midpoint"] == 5.5
    assert ratings.min() <= record["task"]["range"][0] and record["task"]["range"][1] <= ratings.max()
    config = json.loads((rating_run / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "RATING"}
    assert config["rating_range"] == record["task"]["range"] and config["rating_midpoint"] == 5.5
    assert record["calibration"]["applied"] is False and "rating" in record["calibration"]["reason"]
    assert record["behaviour"] is None and record["extra_eval"] is None
    assert record["hyperparameters"]["metric_for_best_model"] == "rmse"  # what chose the checkpoint
    table = pd.read_csv(rating_run / "test_predictions.csv", keep_default_na=False)
    assert list(table.columns) == ["text", "label", "pred", "error", "n_tokens", "correct"]
    test = record["metrics"]["test"]
    # The headline metrics are the predictions table's own (windowed ratings, averaged per review).
    again = rating_metrics(table["label"].to_numpy(), table["pred"].to_numpy(), 5.5)
    for key in ("mae", "rmse", "within_one", "sign_accuracy", "spearman"):
        assert test[key] == pytest.approx(again[key], abs=1e-6)
    assert test["num_examples"] == 60 and sum(r["count"] for r in test["per_rating"].values()) == 60
    # pipeline returns the rating itself (no softmax, no sigmoid); windowed, the mean of its windows' ratings,
    # as `python -m train.predict --windows` serves it.
    served = pipeline("text-classification", model=str(rating_run))(REVIEWS)
    assert [s["label"] for s in served] == ["RATING"] * 3 and len({round(s["score"], 4) for s in served}) == 3
    reviews = table["text"].head(3).tolist()
    predict_main(["--model", str(rating_run), "--windows", "--max_length", "96", "--window_stride", "32", "--json",
                  *[arg for text in reviews for arg in ("--text", text)]])  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["score"] for line in lines] == pytest.approx(table["pred"].head(3).tolist(), abs=1e-4)
    assert table["pred"].nunique() > 1


def test_a_class_run_refuses_a_metric_it_does_not_measure(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        train_main([*tiny_args(tiny_model_dir, tmp_path / "run"), "--dataset_name", str(THREE_WAY),
                    "--metric_for_best_model", "rmse", "--max_train_samples", "30"])  # fmt: skip
    assert "error: --metric_for_best_model rmse is not measured for a 3-class task" in capsys.readouterr().err
    assert not (tmp_path / "run" / "results.json").exists()


def test_prepared_splits_keep_the_task(tmp_path: Path) -> None:
    from train.config import DataArguments
    from train.data import prepare_splits, read_task

    args = DataArguments(dataset_name=str(THREE_WAY), validation_size=30)
    splits = prepare_splits(args, seed=0)
    assert isinstance(splits["train"].features["label"], ClassLabel)
    assert read_task(splits["train"], args) == Task(CLASSIFICATION, ("negative", "neutral", "positive"))
    # Classes stay stratified: a third of each split is each class.
    assert np.bincount(splits["validation"]["label"]).tolist() == [10, 10, 10]
    rating = DataArguments(dataset_name=str(THREE_WAY), validation_size=30, task="regression", label_column="rating")
    rated = prepare_splits(rating, seed=0)
    assert set(np.unique(rated["test"]["label"])) <= {1.0, 2.0, 4.0, 7.0, 9.0, 10.0}
    assert read_task(rated["train"], rating).regression


def test_a_rating_sweep_ranks_by_validation_rmse(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    train_main([*tiny_args(tiny_model_dir, out, "--sweep", "standard,high-lr"), "--dataset_name", str(THREE_WAY),
                "--task", "regression", "--label_column", "rating", "--max_train_samples", "48",
                "--max_eval_samples", "24", "--max_test_samples", "24", "--baseline", "false"])  # fmt: skip
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.columns[5:10]) == ["validation_rmse", "mae", "rmse", "within_one", "spearman"]
    assert table["validation_rmse"].is_monotonic_increasing  # lower is better: the best run first
    assert table["validation_rmse"].nunique() == 2
    assert json.loads((out / "sweep.json").read_text())["best_preset"] == table.iloc[0]["preset"]
