"""The model card of runs with other label sets: three classes, and a rating (issue #28's results.json).

The runs are made here from the committed two-class run (results/cpu-demo/results.json): its settings,
timings and history stay, its task, metrics, calibration and dataset counts are replaced by those of
synthetic test predictions (seeded, scored with scikit-learn and scipy as the training command scores
them), written to test_predictions.csv as the contract says. Every figure the tests expect is read from
these files, never typed. The last tests build the card of real tiny runs of the training command.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, build_tiny_model
from huggingface_hub import ModelCard, metadata_eval_result
from scipy.stats import pearsonr, spearmanr
from sklearn import metrics as sk
from test_model_card import PNG_MAGIC, tables

from model_card.card import build_card, escape_cell, fmt

REPO_ID = "alice/label-sets"
SOURCE = ROOT / "results" / "cpu-demo" / "results.json"
THREE = ("negative", "neutral", "positive")
GENRES = ("drama", "comedy", "horror")  # class names that are no sentiment at all
BINS = 15
RATINGS = (1, 2, 3, 4, 7, 8, 9, 10)  # IMDb's stars: 5 and 6 are not in the dataset
MIDPOINT = 5.5
SPLIT_SEEDS = {"baseline": 1, "validation": 2, "test": 3}
NOT_CALIBRATED = (
    "not calibrated: a rating model returns a value, not probabilities, so temperature scaling does not apply"
)


# ---------------------------------------------------------------- the synthetic runs (contract of issue #28)


def reviews() -> list[str]:
    return pd.read_parquet(ROOT / "data" / "imdb_sample" / "test.parquet")["text"].tolist()


def reliability(confidence: np.ndarray, correct: np.ndarray) -> tuple[float, list[dict]]:
    """Top-label ECE over BINS equal-width bins, and the bins as results.json stores them."""
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, BINS - 1)
    bins, ece = [], 0.0
    for i in range(BINS):
        inside = which == i
        n = int(inside.sum())
        conf = float(confidence[inside].mean()) if n else None
        acc = float(correct[inside].mean()) if n else None
        ece += n / len(confidence) * abs(conf - acc) if n else 0.0
        bins.append(
            {"lower": edges[i], "upper": edges[i + 1], "count": n, "confidence": conf, "accuracy": acc}
        )
    return ece, bins


def class_predictions(labels: tuple[str, ...], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True class ids and predicted probabilities, right about two times in three."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(labels), n)
    logits = rng.normal(size=(n, len(labels)))
    logits[np.arange(n), y] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def class_metrics(labels: tuple[str, ...], y: np.ndarray, probs: np.ndarray) -> dict:
    pred = probs.argmax(1)
    p, r, f, s = sk.precision_recall_fscore_support(y, pred, labels=range(len(labels)), zero_division=0)
    m = {"accuracy": sk.accuracy_score(y, pred)}
    for average in ("macro", "weighted"):
        scores = sk.precision_recall_fscore_support(y, pred, average=average, zero_division=0)[:3]
        m |= {f"{k}_{average}": float(v) for k, v in zip(("precision", "recall", "f1"), scores)}
    m["roc_auc"] = float(sk.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    m["ece"] = reliability(probs.max(1), pred == y)[0]
    m |= {"num_examples": len(y), "confusion_matrix": sk.confusion_matrix(y, pred).tolist()}
    m["per_class"] = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                             "support": int(s[i])}
                      for i, name in enumerate(labels)}  # fmt: skip
    m["loss"] = float(sk.log_loss(y, probs))
    return m


def rating_metrics(y: np.ndarray, pred: np.ndarray, midpoint: float | None) -> dict:
    rounded = np.rint(pred)
    m = {
        "mae": float(np.abs(pred - y).mean()),
        "rmse": float(np.sqrt(((pred - y) ** 2).mean())),
        "within_one": float((np.abs(rounded - y) <= 1).mean()),
        "exact": float((rounded == y).mean()),
        "spearman": float(spearmanr(y, pred).statistic),
        "pearson": float(pearsonr(y, pred).statistic),
        "r2": float(sk.r2_score(y, pred)),
        "sign_accuracy": None if midpoint is None else float(((pred > midpoint) == (y > midpoint)).mean()),
        "num_examples": len(y),
    }
    m["per_rating"] = {
        f"{v:g}": {"count": int((y == v).sum()), "mean_prediction": float(pred[y == v].mean()),
                   "mae": float(np.abs(pred[y == v] - v).mean())}
        for v in np.unique(y)
    }  # fmt: skip
    m["loss"] = float(((pred - y) ** 2).mean() / y.var())
    return m


def rating_predictions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(RATINGS, n).astype(float)
    return y, np.clip(y + rng.normal(0, 1.6, n), 0, 11)


def length_histogram(texts: list[str], groups: dict[str, np.ndarray]) -> dict:
    words = np.array([len(t.split()) for t in texts])
    edges = np.histogram_bin_edges(words, bins=30)
    return {
        "bin_edges_words": edges.tolist(),
        **{k: np.histogram(words[g], edges)[0].tolist() for k, g in groups.items()},
    }


def base_results() -> dict:
    results = json.loads(SOURCE.read_text())
    results["behaviour"] = results["extra_eval"] = None  # contract: only for binary runs
    results["dataset"]["name"] = "data/imdb_sample"
    return results


def three_class_run(run: Path, labels: tuple[str, ...] = THREE) -> Path:
    """A finished three-class run in `run`: results.json and test_predictions.csv per the contract."""
    results, texts = base_results(), reviews()
    results["task"] = {"kind": "classification", "labels": list(labels)}
    n = len(texts)
    for split, seed in SPLIT_SEEDS.items():
        y, probs = class_predictions(labels, n if split != "validation" else 100, seed)
        results["metrics"][split] = class_metrics(labels, y, probs)
    y, probs = class_predictions(labels, n, SPLIT_SEEDS["test"])
    pred = probs.argmax(1)
    table = pd.DataFrame({"text": texts, "label": [labels[i] for i in y], "pred": [labels[i] for i in pred],
                          "confidence": probs.max(1), "n_tokens": [len(t.split()) * 13 // 10 for t in texts],
                          "correct": pred == y})  # fmt: skip
    for i, name in enumerate(labels):
        table[f"prob_{name}"] = probs[:, i]
    ece, bins = reliability(probs.max(1), pred == y)
    report = {
        "ece_before": ece,
        "ece_after": ece,
        "nll_before": results["metrics"]["test"]["loss"],
        "nll_after": results["metrics"]["test"]["loss"],
        "reliability_before": bins,
        "reliability_after": bins,
    }
    results["calibration"]["test"] = report  # the run's record (not applied, its reason) with these scores
    dataset = results["dataset"]
    counts = {}
    for k, (split, size) in enumerate(dataset["splits"].items()):
        drawn = np.bincount(class_predictions(labels, size, 7 + k)[0], minlength=len(labels))
        counts[split] = dict(zip(labels, drawn.tolist()))
    counts["test"] = {name: int((y == i).sum()) for i, name in enumerate(labels)}
    dataset["label_counts"] = counts
    dataset["length_histogram"] = {
        "test": length_histogram(texts, {name: y == i for i, name in enumerate(labels)})
    }
    return write_run(run, results, table)


def rating_run(run: Path, midpoint: float | None = MIDPOINT) -> Path:
    """A finished rating run (1-10 stars) in `run`: results.json and test_predictions.csv per the contract."""
    results, texts = base_results(), reviews()
    results["task"] = {"kind": "regression", "labels": ["RATING"], "range": [1.0, 10.0], "midpoint": midpoint,
                       "scale": {"mean": 5.5, "std": 3.4}}  # fmt: skip
    for split, seed in SPLIT_SEEDS.items():
        y, pred = rating_predictions(len(texts) if split != "validation" else 100, seed)
        results["metrics"][split] = rating_metrics(y, pred, midpoint)
    y, pred = rating_predictions(len(texts), SPLIT_SEEDS["test"])
    table = pd.DataFrame({"text": texts, "label": y, "pred": pred, "error": pred - y,
                          "n_tokens": [len(t.split()) * 13 // 10 for t in texts],
                          "correct": np.abs(np.rint(pred) - y) <= 1})  # fmt: skip
    results["calibration"] = {"method": None, "applied": False, "reason": NOT_CALIBRATED}
    dataset = results["dataset"]
    dataset["label_counts"] = {
        split: {f"{v:g}": int((rating_predictions(size, 11 + k)[0] == v).sum()) for v in RATINGS}
        for k, (split, size) in enumerate(dataset["splits"].items())
    }
    dataset["label_counts"]["test"] = {f"{v:g}": int((y == v).sum()) for v in RATINGS}
    dataset["length_histogram"] = {"test": length_histogram(texts, {"all": np.ones(len(texts), bool)})}
    return write_run(run, results, table)


def write_run(run: Path, results: dict, table: pd.DataFrame) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "results.json").write_text(json.dumps(results))
    table.to_csv(run / "test_predictions.csv", index=False)
    return run


def built(run: Path) -> tuple[ModelCard, dict, str]:
    """The card built into `run`, results.json, and the card's text on one line."""
    card = ModelCard.load(build_card(run, repo_id=REPO_ID))
    return card, json.loads((run / "results.json").read_text()), " ".join(card.text.split())


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelCard, dict, str, Path]:
    run = three_class_run(tmp_path_factory.mktemp("three") / "run")
    return (*built(run), run)


@pytest.fixture(scope="module")
def rating(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelCard, dict, str, Path]:
    run = rating_run(tmp_path_factory.mktemp("rating") / "run")
    return (*built(run), run)


# ---------------------------------------------------------------- three classes


def test_three_class_results_table_has_macro_and_weighted_scores_and_no_binary_ones(three) -> None:
    card, results, text, _ = three
    found = tables(card.text)
    assert found["Model"] and "F1" not in [h for h in card.text.split("\n") if h.startswith("| Model")][
        0
    ].split(" | ")
    header = next(line for line in card.text.splitlines() if line.startswith("| Model |"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "Model", "Split", "Reviews", "Accuracy", "Macro F1", "Weighted F1", "Macro precision", "Macro recall",
        "ROC AUC", "Loss"]  # fmt: skip
    rows = {row[1].strip("*"): row for row in found["Model"]}
    for split, key in (("test", "test"), ("validation", "validation")):
        m = results["metrics"][key]
        keys = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc", "loss")
        assert rows[split][2:] == [fmt(m["num_examples"]), *(fmt(m[k]) for k in keys)], split
    test = results["metrics"]["test"]
    assert f"accuracy **{fmt(test['accuracy'])}** and macro F1 **{fmt(test['f1_macro'])}**" in text
    assert "sorts an English review into one of 3 classes: `negative`, `neutral` and `positive`" in text


def test_three_class_per_class_table_and_confusion_matrix_are_results_json(three) -> None:
    card, results, _, run = three
    test, found = results["metrics"]["test"], tables(card.text)
    per_class = {row[0]: row[1:] for row in found["Class"]}
    for name, c in test["per_class"].items():
        assert per_class[name] == [fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]), fmt(c["support"])]
    assert per_class["macro average"][2] == fmt(test["f1_macro"])
    matrix = found["True \\ Predicted"]
    assert [row[0] for row in matrix] == [f"**{name}**" for name in THREE]
    assert [row[1:] for row in matrix] == [[fmt(c) for c in row] for row in test["confusion_matrix"]]
    assert (run / "confusion_matrix.png").read_bytes().startswith(PNG_MAGIC)
    assert "](confusion_matrix.png)" in card.text


def test_three_class_model_index_round_trips_with_macro_f1(three, tmp_path: Path) -> None:
    card, results, _, run = three
    test = results["metrics"]["test"]
    reloaded = ModelCard.load(run / "README.md")  # as the Hub reads it
    by_name = {r.metric_name: r for r in reloaded.data.eval_results}
    assert set(by_name) == {"Test Accuracy", "Test Macro F1", "Test Weighted F1", "Test ROC AUC"}
    names = {"Test Accuracy": "accuracy", "Test Macro F1": "f1_macro", "Test Weighted F1": "f1_weighted",
             "Test ROC AUC": "roc_auc"}  # fmt: skip
    for name, key in names.items():
        r = by_name[name]
        assert r.metric_value == pytest.approx(test[key]) and r.dataset_split == "test"
        assert r.task_type == "text-classification" and r.dataset_type == "imdb_sample"
    assert by_name["Test Macro F1"].metric_type == "f1" and by_name["Test Macro F1"].metric_config == "macro"
    assert by_name["Test Macro F1"].metric_args == {"average": "macro"}
    assert by_name["Test ROC AUC"].metric_args == {"multi_class": "ovr", "average": "macro"}
    # The same entry as huggingface_hub's own helper writes it for macro F1.
    reference = metadata_eval_result(
        model_pretty_name="x", task_pretty_name="Text Classification", task_id="text-classification",
        metrics_pretty_name="Test Macro F1", metrics_id="f1", metrics_value=test["f1_macro"],
        dataset_pretty_name=f"imdb_sample ({test['num_examples']} test reviews)", dataset_id="imdb_sample",
        dataset_split="test", metrics_config="macro",
    )["model-index"][0]["results"][0]  # fmt: skip
    entry = reloaded.data.to_dict()["model-index"][0]["results"][0]
    assert entry["task"] == reference["task"] and entry["dataset"] == reference["dataset"]
    macro = next(m for m in entry["metrics"] if m["name"] == "Test Macro F1")
    assert {k: macro.get(k) for k in ("type", "value", "name", "config")} == {
        k: reference["metrics"][0].get(k) for k in ("type", "value", "name", "config")
    }
    assert reloaded.data.pipeline_tag == "text-classification" and reloaded.data.datasets is None


def test_three_class_roc_auc_only_where_finite(tmp_path: Path) -> None:
    run = three_class_run(tmp_path / "run")
    results = json.loads((run / "results.json").read_text())
    for split in ("baseline", "validation", "test"):
        results["metrics"][split]["roc_auc"] = math.nan  # a class missing from the split
    (run / "results.json").write_text(json.dumps(results))
    card, _, _ = built(run)
    cells = [cell.lower() for rows in tables(card.text).values() for row in rows for cell in row]
    assert "ROC AUC" not in card.text and "nan" not in cells and cells
    assert "roc_auc" not in {r.metric_type for r in card.data.eval_results}


def test_three_class_error_analysis_names_the_most_confused_pairs(three) -> None:
    card, _, text, run = three
    predictions = pd.read_csv(run / "test_predictions.csv")
    wrong = predictions[predictions["label"] != predictions["pred"]]
    counts = wrong.groupby(["label", "pred"]).size().sort_values(ascending=False, kind="stable")
    rows = tables(card.text)["True class"]
    # Every confused pair, most frequent first (pairs of equal counts in label order).
    assert sorted((r[0], r[1], int(r[2])) for r in rows) == sorted(
        (t, p, int(n)) for (t, p), n in counts.items()
    )
    assert [int(r[2]) for r in rows] == sorted((int(n) for n in counts), reverse=True)
    share = counts.iloc[0] / (predictions["label"] == counts.index[0][0]).sum()
    assert rows[0][3] == f"{share:.1%}"
    assert f"the model gets {len(wrong)} wrong" in text
    examples = tables(card.text)["True"]
    top = {(t, p) for t, p in counts.index[:4]}
    assert examples and all((row[0], row[1]) in top for row in examples)
    assert len(examples) == sum(min(3, int(counts[pair])) for pair in top)
    buckets = tables(card.text)["Tokens"]
    assert sum(int(row[1].replace(",", "")) for row in buckets) == len(predictions)


def test_three_class_data_calibration_and_figures(three) -> None:
    card, results, text, run = three
    splits = list(results["dataset"]["splits"])
    label_rows = {row[0]: row[1:] for row in tables(card.text)["Label"]}
    assert list(label_rows) == list(THREE)
    for name in THREE:
        assert label_rows[name] == [fmt(results["dataset"]["label_counts"][s][name]) for s in splits]
    calibration = results["calibration"]
    assert "bins of the predicted (top) label's confidence" in text
    assert f"{calibration['reason'][0].upper()}{calibration['reason'][1:]}." in text
    rows = {row[0]: row[1:] for row in tables(card.text)["Scores"]}
    assert rows["test (the headline scores)"] == [
        fmt(calibration["test"]["ece_before"]),
        fmt(calibration["test"]["nll_before"]),
    ]
    for name in (
        "confusion_matrix.png",
        "training_curves.png",
        "length_histogram.png",
        "reliability_diagram.png",
    ):
        assert (run / name).read_bytes().startswith(PNG_MAGIC), name
        assert f"]({name})" in card.text
    assert not (run / "ratings.png").exists()


def test_class_names_are_the_tasks_never_sentiment_words(tmp_path: Path) -> None:
    """Classes that are no sentiment: the card names them, nowhere speaks of positive or negative."""
    card, results, text = built(three_class_run(tmp_path / "run", GENRES))
    words = (
        r"positive|negative(?! log-likelihood)|sentiment|neutral"  # NLL is the one negative the card may say
    )
    found = re.findall(f".{{40}}(?:{words}).{{40}}", card.text, flags=re.IGNORECASE)
    assert not re.search(words, card.text, flags=re.IGNORECASE), found
    assert "`drama`, `comedy` and `horror`" in text
    assert 'the most likely of "drama", "comedy", "horror"' in text
    assert [row[0] for row in tables(card.text)["Class"][:3]] == list(GENRES)
    assert "sentiment-analysis" not in card.data.tags and "imdb" not in card.data.tags


# ---------------------------------------------------------------- a rating


def test_rating_results_table_has_the_regression_metrics(rating) -> None:
    card, results, text, _ = rating
    header = next(line for line in card.text.splitlines() if line.startswith("| Model |"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "Model", "Split", "Reviews", "MAE", "RMSE", "Within one", "Exact", "Spearman", "Pearson", "R²",
        "Sign accuracy", "Loss"]  # fmt: skip
    rows = {row[1].strip("*"): row for row in tables(card.text)["Model"]}
    keys = ("mae", "rmse", "within_one", "exact", "spearman", "pearson", "r2", "sign_accuracy", "loss")
    for split in ("test", "validation"):
        m = results["metrics"][split]
        assert rows[split][2:] == [fmt(m["num_examples"]), *(fmt(m[k]) for k in keys)], split
    test = results["metrics"]["test"]
    assert (
        f"mean absolute error **{fmt(test['mae'])}** and Spearman correlation **{fmt(test['spearman'])}**"
        in text
    )
    assert "the two-class accuracy its ratings imply" in text and f"midpoint {MIDPOINT:g}" in text
    assert (
        "Accuracy" not in header
        and "### Per class" not in card.text
        and "### Confusion matrix" not in card.text
    )


def test_rating_without_midpoint_has_no_sign_accuracy(tmp_path: Path) -> None:
    card, results, text = built(rating_run(tmp_path / "run", midpoint=None))
    assert "Sign accuracy" not in card.text and "midpoint" not in text
    assert "sign" not in {r.metric_config for r in card.data.eval_results}


def test_rating_per_rating_table_and_plot(rating) -> None:
    card, results, _, run = rating
    per_rating = results["metrics"]["test"]["per_rating"]
    rows = tables(card.text)["True rating"]
    assert [row[0] for row in rows] == sorted(per_rating, key=float)
    for row in rows:
        r = per_rating[row[0]]
        assert row[1:] == [fmt(r["count"]), fmt(r["mean_prediction"], 2), fmt(r["mae"], 2)]
    assert (run / "ratings.png").read_bytes().startswith(PNG_MAGIC) and "](ratings.png)" in card.text
    assert not (run / "confusion_matrix.png").exists() and not (run / "reliability_diagram.png").exists()
    for name in ("training_curves.png", "length_histogram.png"):
        assert (run / name).read_bytes().startswith(PNG_MAGIC) and f"]({name})" in card.text


def test_rating_calibration_says_no_temperature_applies(rating) -> None:
    card, results, text, _ = rating
    section = card.text.split("### Calibration")[1].split("###")[0]
    reason = results["calibration"]["reason"]
    assert " ".join(section.split()) == f"{reason[0].upper()}{reason[1:]}."
    assert "reliability_diagram" not in card.text and "temperature-calibrated" not in text
    assert "A rating, not a probability." in text


def test_rating_model_index_round_trips(rating) -> None:
    card, results, _, run = rating
    test = results["metrics"]["test"]
    reloaded = ModelCard.load(run / "README.md")
    got = {(r.metric_type, r.metric_config): r.metric_value for r in reloaded.data.eval_results}
    assert got == pytest.approx({
        ("mae", None): test["mae"], ("rmse", None): test["rmse"], ("spearmanr", None): test["spearman"],
        ("pearsonr", None): test["pearson"], ("r_squared", None): test["r2"],
        ("accuracy", "within_one"): test["within_one"], ("accuracy", "exact"): test["exact"],
        ("accuracy", "sign"): test["sign_accuracy"]})  # fmt: skip
    assert all(
        r.dataset_split == "test" and r.task_type == "text-classification" for r in reloaded.data.eval_results
    )
    assert reloaded.data.pipeline_tag == "text-classification"
    assert {"mae", "rmse", "spearmanr"} <= set(reloaded.data.metrics)


def test_rating_usage_shows_the_score_is_the_rating(rating) -> None:
    card, _, text, _ = rating
    assert (
        "# [{'label': 'RATING', 'score': ...}]: the score is the predicted rating (1 to 10 in training)"
        in card.text
    )
    assert '`function_to_apply="none"` is its default then' in text
    assert "(MAE " in text and "(accuracy" not in text


def test_rating_error_analysis_shows_the_largest_errors(rating) -> None:
    card, _, text, run = rating
    predictions = pd.read_csv(run / "test_predictions.csv")
    examples = tables(card.text.split("### Largest errors")[1])["True"]
    errors = [float(row[2]) for row in examples]
    assert errors and [abs(e) for e in errors] == sorted((abs(e) for e in errors), reverse=True)
    words = predictions["text"].str.split().str.len()
    short = predictions[words <= 60]
    assert abs(errors[0]) == pytest.approx(short["error"].abs().max(), abs=0.005)
    mae = (predictions["pred"] - predictions["label"]).abs().mean()
    assert f"the predicted rating is off by {fmt(mae, 3)} on average" in text
    outside = int((~predictions["correct"]).sum())
    assert f"more than one away for {outside} of them" in text
    buckets = tables(card.text)["Tokens"]
    assert sum(int(row[1].replace(",", "")) for row in buckets) == len(predictions)


def test_rating_widget_has_examples_without_probabilities(tmp_path: Path) -> None:
    """A rating model in the folder: the widget lists the examples, no output the Hub would draw as a bar."""
    run = rating_run(tmp_path / "run")
    model = build_tiny_model(tmp_path / "model", labels=None)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(model / name, run / name)
    card, _, _ = built(run)
    widget = card.data.get("widget")
    assert widget and all(set(entry) == {"text", "example_title"} for entry in widget)


def test_rating_onnx_paragraph_reads_the_rating_agreement(tmp_path: Path) -> None:
    run = rating_run(tmp_path / "run")
    (run / "onnx").mkdir()
    for name in ("model.onnx", "model_quantized.onnx"):
        (run / "onnx" / name).write_bytes(b"onnx")
    agreement = {"task": "regression", "reviews": 400, "test_reviews": 500, "rating_range": [1.0, 10.0],
                 "tolerance": 0.45, "within_tolerance": 0.9875, "outside_tolerance": 5,
                 "mean_abs_rating_difference": 0.0421, "max_abs_rating_difference": 0.61,
                 "checked_reviews": 8, "float_max_rating_difference": 2.4e-5}  # fmt: skip
    (run / "onnx_agreement.json").write_text(json.dumps(agreement))
    card, _, text = built(run)
    assert (
        "the int8 file's rating is within 0.45 of the float32 file's for **98.8%** of them (5 are not)"
        in text
    )
    assert "a sample of the 500, stratified by rating" in text and "label_agreement" not in text
    assert "console.log(logits.data[0]);" in card.text and "print(float(logits[0, 0]))" in card.text


def test_malformed_task_is_one_sentence(tmp_path: Path) -> None:
    from train.errors import UserError

    run = rating_run(tmp_path / "run")
    results = json.loads((run / "results.json").read_text())
    results["task"] = {"kind": "regression", "labels": ["RATING"]}  # no range
    (run / "results.json").write_text(json.dumps(results))
    with pytest.raises(UserError, match="is not a classification or regression task"):
        build_card(run, repo_id=REPO_ID)


def test_escape_cell_keeps_label_names_in_their_cells() -> None:
    assert escape_cell("a|b") == r"a\|b"


# ---------------------------------------------------------------- real tiny runs of the training command

THREE_WAY = ROOT / "data" / "three_way_sample"


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A three-class run and a rating run of the training command on the committed three-way sample."""
    from conftest import tiny_args

    from train.run import main as train_main

    common = ["--dataset_name", str(THREE_WAY), "--max_train_samples", "96", "--max_eval_samples", "30",
              "--max_test_samples", "60", "--precision", "fp32"]  # fmt: skip
    runs = {
        "classes": tmp_path_factory.mktemp("classes") / "run",
        "rating": tmp_path_factory.mktemp("rated") / "run",
    }
    train_main([*tiny_args(tiny_model_dir, runs["classes"]), *common, "--calibration_size", "60"])
    train_main([*tiny_args(tiny_model_dir, runs["rating"]), *common, "--task", "regression", "--label_column",
                "rating", "--rating_midpoint", "5.5", "--eval_windows", "--eval_max_length", "96",
                "--window_stride", "32"])  # fmt: skip
    return runs


def test_card_of_a_real_three_class_run(trained: dict[str, Path]) -> None:
    card, results, text = built(trained["classes"])
    test, labels = results["metrics"]["test"], results["task"]["labels"]
    rows = {row[1].strip("*"): row for row in tables(card.text)["Model"]}
    assert rows["test"][3:6] == [fmt(test["accuracy"]), fmt(test["f1_macro"]), fmt(test["f1_weighted"])]
    assert [row[1:] for row in tables(card.text)["True \\ Predicted"]] == [
        [fmt(c) for c in row] for row in test["confusion_matrix"]
    ]
    assert {r.metric_name: r.metric_value for r in card.data.eval_results}["Test Macro F1"] == pytest.approx(
        test["f1_macro"]
    )
    assert ("temperature-calibrated" in text) is results["calibration"]["applied"]
    for entry in card.data["widget"]:  # scored by the run's own three-class model
        assert [o["label"] for o in sorted(entry["output"], key=lambda o: labels.index(o["label"]))] == labels
    assert not re.search(r"POSITIVE|NEGATIVE", card.text)


def test_card_of_a_real_rating_run(trained: dict[str, Path]) -> None:
    card, results, text = built(trained["rating"])
    test = results["metrics"]["test"]
    rows = {" ".join([row[1].strip("*"), *(["truncated"] if "truncated" in row[0] else [])]): row
            for row in tables(card.text)["Model"]}  # fmt: skip
    assert rows["test"][3:6] == [fmt(test["mae"]), fmt(test["rmse"]), fmt(test["within_one"])]
    assert rows["test truncated"][3] == fmt(results["metrics"]["test_truncated"]["mae"])
    assert [row[0] for row in tables(card.text)["True rating"]] == sorted(test["per_rating"], key=float)
    index = {(r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results}
    assert index[("spearmanr", None)] == pytest.approx(test["spearman"])
    assert index[("accuracy", "sign")] == pytest.approx(test["sign_accuracy"])
    assert "rating = model(**windows).logits[:, 0].mean()" in card.text
    assert f"The headline figure (MAE **{fmt(test['mae'])}**)" in text
    assert (trained["rating"] / "ratings.png").read_bytes().startswith(PNG_MAGIC)
    assert all("output" not in entry for entry in card.data["widget"])


def test_rating_snippets_reproduce_the_cards_figures(trained: dict[str, Path]) -> None:
    """The card's pipeline and windowed snippets, run as written on the test reviews (the repo id pointed at
    the run folder), give the truncated and the windowed MAE of its table: pipeline's `score` is a rating."""
    from card_snippets import code_blocks, run_block

    from model_card.card import SNIPPET_TEXT

    run = trained["rating"]
    card = build_card(run, repo_id=REPO_ID).read_text().replace(f'"{REPO_ID}"', json.dumps(str(run)))
    table = pd.read_csv(run / "test_predictions.csv")
    metrics = json.loads((run / "results.json").read_text())["metrics"]
    for marker, key in (("pipeline(", "test_truncated"), ("def classify", "test")):
        block = next(b for b in code_blocks(card) if marker in b)
        scores = [
            r[0]["score"] if isinstance(r, list) else r["score"]
            for r in run_block(block, SNIPPET_TEXT, table["text"].tolist())
        ]
        assert np.abs(np.array(scores) - table["label"]).mean() == pytest.approx(
            metrics[key]["mae"], abs=1e-4
        ), marker
