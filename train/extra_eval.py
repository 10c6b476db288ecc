"""`--extra_eval NAME=PATH`: how the final model does on text it was not trained for (tweets, news, short reviews).

Each set is read before training (so a wrong file stops the run before any work), and scored after it
by the same path as the test split: the same windows, the same temperature. The sets are measuring sets
only: they never enter training, checkpoint choice or the temperature fit, so their figures stay a fair
estimate of how the model carries over.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase, Trainer

from train.config import DataArguments, ModelArguments
from train.data import load_file, normalise
from train.encoding import encode_splits
from train.errors import UserError
from train.evaluation import evaluate_test
from train.results import portable_name
from train.task import SENTIMENT

UNLABELLED = "-1"  # rows with this label (no clear polarity) are skipped, as in the short-text sets' files


@dataclass
class ExtraSet:
    """One --extra_eval set, read and checked: its labelled rows and what was skipped."""

    name: str
    path: Path
    data: Dataset
    skipped_unlabelled: int


def parse_spec(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise UserError(f"--extra_eval {spec!r} must be NAME=PATH, e.g. --extra_eval tweets=data/tweets.csv")
    return name.strip(), Path(path.strip())


def _columns(ds: Dataset, args: DataArguments, spec: str) -> DataArguments:
    """The training data's column names where the file has them, else `text` and `label`."""
    chosen = {}
    for flag, wanted in (("text_column", args.text_column), ("label_column", args.label_column)):
        column = wanted if wanted in ds.column_names else flag.removesuffix("_column")
        if column not in ds.column_names:
            raise UserError(
                f"--extra_eval {spec}: the file has no {wanted!r} or {column!r} column (it has "
                f"{', '.join(ds.column_names)}): give it a text and a label column (rows labelled -1 are skipped)"
            )
        chosen[flag] = column
    return dataclasses.replace(args, **chosen)


def load_extra_sets(args: DataArguments) -> list[ExtraSet]:
    """Read and check every --extra_eval file; raises UserError with one sentence on the first bad one."""
    sets: list[ExtraSet] = []
    for spec in args.extra_eval or []:
        name, path = parse_spec(spec)
        if name in {s.name for s in sets}:
            raise UserError(f"--extra_eval names {name!r} twice: give each set its own name")
        raw = load_file(path)
        columns = _columns(raw, args, f"{name}={path}")
        labels = [str(v).strip().removesuffix(".0") for v in raw[columns.label_column]]
        keep = [i for i, label in enumerate(labels) if label != UNLABELLED]
        if not keep:
            raise UserError(f"--extra_eval {name}={path} has no labelled rows: every label is -1")
        data = normalise(raw.select(keep), columns, f"--extra_eval {name}", SENTIMENT)
        sets.append(ExtraSet(name, path, data, len(raw) - len(keep)))
    return sets


def evaluate_extra_sets(
    sets: list[ExtraSet],
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    model: ModelArguments,
    temperature: float,
) -> dict[str, dict[str, Any]]:
    """results.json's `extra_eval`: per set, its size and length, and the test split's metrics on it."""
    out = {}
    for extra in sets:
        encoded = encode_splits(DatasetDict({extra.name: extra.data}), tokenizer, model.max_length, model.truncation,
                                model.head_tokens)[extra.name]  # fmt: skip
        metrics, _, prob, _, reports = evaluate_test(trainer, encoded, extra.data, tokenizer, model, SENTIMENT,
                                                          temperature)
        report = reports.get("test_windowed") or reports["test"]
        out[extra.name] = {
            "path": portable_name(str(extra.path)),
            "n": len(extra.data),
            "mean_words": float(np.mean([len(t.split()) for t in extra.data["text"]])),
            "skipped_unlabelled": extra.skipped_unlabelled,
            "accuracy": metrics["accuracy"],
            "f1": metrics["f1"],
            "f1_macro": metrics["f1_macro"],
            "roc_auc": metrics["roc_auc"],
            "ece": report["ece_after"],
            "nll": report["nll_after"],
            "mean_confidence": float(np.mean(np.maximum(prob, 1.0 - prob))),
        }
    return out
