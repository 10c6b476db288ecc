"""Finished run folders of a 3-class model and of a 1-10 rating model, for the tests of what publishing builds
from them (the ONNX files, transformers.js), without training one.

The model is a tiny random one from config (`build_tiny_model`, wide initialisation, so its outputs differ
from review to review); the folder around it is what the training command leaves, in the shapes issue #28's
contract gives (tests' copy: /work/notes/common.md): config.json's task keys (written by the builder),
test_predictions.csv with this model's own predictions on real IMDb test reviews, and results.json with the
"task" key and metrics of the task, computed from those predictions with scikit-learn. The remaining
results.json keys (command, hyperparameters, environment, ...) are a committed run's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from conftest import ROOT, SAMPLE_DIR, build_tiny_model

TEMPLATE = ROOT / "results" / "cpu-demo" / "results.json"
THREE_CLASSES = ("negative", "neutral", "positive")
RATINGS = (1.0, 10.0)
MIDPOINT = 5.5
RATING_SPREAD = 1.5  # standard deviation of the ratings around MIDPOINT
CLASS_SPREAD = 3.0  # standard deviation of each logit
MAX_LENGTH = 64


def _truth(imdb_labels: pd.Series, labels: tuple[str, ...] | None) -> list:
    """A true label per review from its IMDb one: negative/positive with every third review the middle class,
    or a rating, 1-4 for a negative review and 7-10 for a positive one."""
    if labels is None:
        return [float(1 + i % 4 + 6 * y) for i, y in enumerate(imdb_labels)]
    middle = labels[len(labels) // 2]
    return [middle if i % 3 == 2 else labels[-1 if y else 0] for i, y in enumerate(imdb_labels)]


def _fit_head(model_dir: Path, texts: list[str], labels: tuple[str, ...] | None) -> None:
    """Give the random model a head reading what varies most between reviews, as a trained one would: logit i
    (or the rating) is the encoder features' i-th principal component, standardised on `texts`, so the classes
    are predicted about equally often (ratings spread around the midpoint) with margins that are no accident
    of rounding. Only the last layer (`classifier`) changes."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    head, features = model.classifier, []
    hook = head.register_forward_hook(lambda _module, inputs, _output: features.append(inputs[0]))
    with torch.inference_mode():
        for text in texts:
            model(**tokenizer(text, truncation=True, return_tensors="pt"))
        hook.remove()
        x = torch.cat(features).double()
        _, _, v = torch.linalg.svd(x - x.mean(0), full_matrices=False)
        directions = v[: head.out_features]
        spread = (x @ directions.T).std(0)
        weight = directions / spread[:, None] * (RATING_SPREAD if labels is None else CLASS_SPREAD)
        bias = -(x.mean(0) @ weight.T) + (MIDPOINT if labels is None else 0.0)
        head.weight.copy_(weight.float())
        head.bias.copy_(bias.float())
    model.save_pretrained(model_dir)


def _predict(model_dir: Path, texts: list[str]) -> list[dict[str, float]]:
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(model_dir), top_k=None, device="cpu")
    return [{item["label"]: item["score"] for item in out} for out in classifier(texts, truncation=True)]


def _class_metrics(table: pd.DataFrame, labels: tuple[str, ...]) -> dict[str, Any]:
    from sklearn import metrics

    y, p = table["label"], table["pred"]
    probabilities = table[[f"prob_{name}" for name in labels]].to_numpy()
    probabilities = probabilities / probabilities.sum(1, keepdims=True)  # float32 sums, off by a rounding
    report = metrics.classification_report(y, p, labels=list(labels), output_dict=True, zero_division=0)
    try:
        auc = metrics.roc_auc_score(y, probabilities, multi_class="ovr", labels=list(labels))
    except ValueError:
        auc = float("nan")
    return {
        "accuracy": metrics.accuracy_score(y, p),
        **{f"{k}_{avg}": report[f"{avg} avg"][k.replace("f1", "f1-score")]
           for avg in ("macro", "weighted") for k in ("precision", "recall", "f1")},
        "roc_auc": auc,
        "ece": 0.0,
        "num_examples": len(table),
        "confusion_matrix": metrics.confusion_matrix(y, p, labels=list(labels)).tolist(),
        "per_class": {name: {"precision": report[name]["precision"], "recall": report[name]["recall"],
                             "f1": report[name]["f1-score"], "support": int(report[name]["support"])}
                      for name in labels},
        "loss": float(metrics.log_loss(y, probabilities, labels=list(labels))),
    }  # fmt: skip


def _rating_metrics(table: pd.DataFrame) -> dict[str, Any]:
    from scipy import stats
    from sklearn import metrics

    y, p = table["label"].to_numpy(), table["pred"].to_numpy()
    per_rating = {
        f"{value:g}": {"count": int(len(group)), "mean_prediction": float(group["pred"].mean()),
                       "mae": float(group["error"].abs().mean())}
        for value, group in table.groupby("label")
    }  # fmt: skip
    return {
        "mae": metrics.mean_absolute_error(y, p),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, p))),
        "within_one": float((np.abs(np.rint(p) - y) <= 1).mean()),
        "exact": float((np.rint(p) == y).mean()),
        "spearman": float(stats.spearmanr(y, p).statistic),
        "pearson": float(stats.pearsonr(y, p).statistic),
        "r2": metrics.r2_score(y, p),
        "sign_accuracy": float(((p > MIDPOINT) == (y > MIDPOINT)).mean()),
        "num_examples": len(table),
        "per_rating": per_rating,
        "loss": metrics.mean_squared_error(y, p),
    }


def _predictions(model_dir: Path, reviews: pd.DataFrame, labels: tuple[str, ...] | None) -> pd.DataFrame:
    """test_predictions.csv in the contract's columns for the task."""
    from transformers import AutoTokenizer

    texts = reviews["text"].tolist()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    table = pd.DataFrame({"text": texts, "label": _truth(reviews["label"], labels)})
    scores = _predict(model_dir, texts)
    n_tokens = [len(tokenizer(text)["input_ids"]) for text in texts]
    if labels is None:
        table["pred"] = [score["RATING"] for score in scores]
        table["error"] = table["pred"] - table["label"]
        table["n_tokens"] = n_tokens
        table["correct"] = (np.rint(table["pred"]) - table["label"]).abs() <= 1
        return table
    table["pred"] = [max(score, key=score.get) for score in scores]
    table["confidence"] = [max(score.values()) for score in scores]
    table["n_tokens"] = n_tokens
    table["correct"] = table["pred"] == table["label"]
    for name in labels:
        table[f"prob_{name}"] = [score[name] for score in scores]
    return table


def build_task_run(
    out: Path,
    labels: tuple[str, ...] | None = THREE_CLASSES,
    reviews: int = 60,
    seed: int = 0,
    initializer_range: float = 0.2,
) -> Path:
    """A finished run of a tiny classifier over `labels`, or of a 1-10 rating model (labels=None), in `out`.

    The defaults give a model whose int8 ONNX file agrees with float32 (checked at publishing); seed 2 with
    initializer_range 0.5 gives one whose int8 file does not."""
    build_tiny_model(out, seed=seed, initializer_range=initializer_range, labels=labels)
    _fit_head(out, pd.read_parquet(SAMPLE_DIR / "train.parquet")["text"].head(200).tolist(), labels)
    test = pd.read_parquet(SAMPLE_DIR / "test.parquet").groupby("label").head(reviews // 2)
    table = _predictions(out, test, labels)
    table.to_csv(out / "test_predictions.csv", index=False)
    if labels is None:
        scale = {"mean": float(table["label"].mean()), "std": float(table["label"].std())}
        task = {"kind": "regression", "labels": ["RATING"], "range": list(RATINGS), "midpoint": MIDPOINT,
                "scale": scale}  # fmt: skip
        metrics = _rating_metrics(table)
        counts = {f"{value:g}": int(n) for value, n in table["label"].value_counts().sort_index().items()}
    else:
        task = {"kind": "classification", "labels": list(labels)}
        metrics = _class_metrics(table, labels)
        counts = {name: int((table["label"] == name).sum()) for name in labels}
    results = json.loads(TEMPLATE.read_text())
    results.pop("calibration", None)
    results["dataset"].pop("length_histogram", None)
    results["dataset"]["label_counts"] = {split: counts for split in ("train", "validation", "test")}
    results["dataset"]["splits"] = {split: len(table) for split in ("train", "validation", "test")}
    results["metrics"] = {split: metrics for split in ("baseline", "validation", "test")}
    results["log_history"] = [entry for entry in results["log_history"] if "loss" in entry]
    config = json.loads((out / "config.json").read_text())
    results["model"] |= {"max_length": MAX_LENGTH, "model_type": config["model_type"]}
    results |= {"task": task, "behaviour": None, "extra_eval": None}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return out
