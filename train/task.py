"""What a run learns, read from its training labels: two-class sentiment, any set of classes, or a rating.

The label set decides the model's head (`num_labels`, `id2label`, `problem_type` in config.json, which is all
`pipeline("text-classification")` needs to serve it), the metrics, whether a temperature applies, and which
checkpoint metric makes sense. It is inferred once, from the train split, and every other split is read with it.

Two-class data labelled 0/1, neg/pos or negative/positive keeps the project's NEGATIVE/POSITIVE names, so a
sentiment run is exactly what it was before other label sets existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from train.config import LABELS
from train.errors import UserError

CLASSIFICATION, REGRESSION = "classification", "regression"
RATING = "RATING"
MAX_CLASSES = 1000
# Spellings of the two sentiment classes that map onto NEGATIVE (0) and POSITIVE (1).
SENTIMENT_SPELLINGS = {"0": 0, "neg": 0, "negative": 0, "1": 1, "pos": 1, "positive": 1}
# Checkpoint metrics where lower is better (the Trainer assumes higher unless the name ends in "loss").
LOWER_IS_BETTER = {"mae", "rmse", "loss", "eval_loss"}


@dataclass(frozen=True)
class Task:
    kind: str
    labels: tuple[str, ...]
    range: tuple[float, float] | None = None  # regression: the training ratings' min and max
    midpoint: float | None = None  # regression: the value between negative and positive ratings
    mean: float = 0.0  # regression: the training ratings' mean, the head's starting bias
    std: float = 1.0
    numeric_ids: bool = False  # classes named by --label_names or a ClassLabel: the data's numbers are the ids

    @property
    def regression(self) -> bool:
        return self.kind == REGRESSION

    @property
    def binary(self) -> bool:
        return self.kind == CLASSIFICATION and len(self.labels) == 2

    @property
    def sentiment(self) -> bool:
        """The project's own two-class sentiment task: the behaviour suite and --extra_eval sets speak it."""
        return self.kind == CLASSIFICATION and self.labels == LABELS

    def config_kwargs(self) -> dict[str, Any]:
        """config.json's head keys: what `pipeline` reads to name, softmax or pass through the outputs."""
        ids = {"id2label": dict(enumerate(self.labels)), "label2id": {n: i for i, n in enumerate(self.labels)}}
        # id2label sets num_labels too (one output for a rating); passing both makes transformers warn.
        return {"problem_type": "regression" if self.regression else "single_label_classification", **ids}

    def config_extras(self) -> dict[str, Any]:
        """Extra config.json keys a rating model carries, so the Space can say what scale its value is on."""
        if not self.regression:
            return {}
        return {"rating_range": list(self.range), "rating_midpoint": self.midpoint}

    def best_metric(self, requested: str) -> tuple[str, bool]:
        """The validation metric that picks the checkpoint and whether higher is better.

        The default, f1, is the binary F1; with more classes it becomes macro F1 and for ratings the RMSE.
        """
        if requested == "f1" and not self.binary:
            requested = "rmse" if self.regression else "f1_macro"
        valid = REGRESSION_SCALARS if self.regression else (BINARY_SCALARS if self.binary else MULTICLASS_SCALARS)
        if requested.removeprefix("eval_") not in (*valid, "loss"):
            raise UserError(
                f"--metric_for_best_model {requested} is not measured for a {self.describe()}: use one of "
                f"{', '.join(valid)} or loss"
            )
        return requested, requested not in LOWER_IS_BETTER

    def describe(self) -> str:
        if self.regression:
            return f"rating task ({self.range[0]:g} to {self.range[1]:g})"
        return f"{len(self.labels)}-class task ({', '.join(self.labels)})"

    def to_record(self) -> dict[str, Any]:
        """results.json's `task`."""
        if not self.regression:
            return {"kind": self.kind, "labels": list(self.labels)}
        return {"kind": self.kind, "labels": list(self.labels), "range": list(self.range),
                "midpoint": self.midpoint, "scale": {"mean": self.mean, "std": self.std}}  # fmt: skip

    def label_ids(self, values: Sequence[object], where: str) -> list[int] | list[float]:
        """Every label of a split as the model's target: a class id, or a rating as a float."""
        if self.regression:
            return ratings(values, where)
        names = {name: i for i, name in enumerate(self.labels)}
        if self.numeric_ids:
            names = {str(i): i for i in range(len(self.labels))}
        ids = []
        for value in values:
            key = _class_key(value, self)
            if key not in names:
                raise UserError(
                    f"the {where} has label {value!r}, which the training data does not have "
                    f"({', '.join(self.labels)}): fix the label or add it to the training data"
                )
            ids.append(names[key])
        return ids


SENTIMENT = Task(CLASSIFICATION, LABELS)
BINARY_SCALARS = ("accuracy", "f1", "precision", "recall", "f1_macro", "f1_weighted", "roc_auc")
MULTICLASS_SCALARS = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc")
REGRESSION_SCALARS = ("mae", "rmse", "within_one", "spearman", "pearson", "r2")


def _number(value: object) -> float | None:
    """The label as a number, or None when it is a name."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _class_key(value: object, task: Task) -> str:
    """A label as the task names it: sentiment spellings map to NEGATIVE/POSITIVE, whole numbers lose `.0`."""
    if task.sentiment:
        key = str(value).strip().lower().removesuffix(".0")
        return LABELS[SENTIMENT_SPELLINGS[key]] if key in SENTIMENT_SPELLINGS else str(value)
    number = _number(value)
    if number is not None and number.is_integer():
        return str(int(number))
    return str(value).strip()


def ratings(values: Sequence[object], where: str) -> list[float]:
    """Ratings as floats; a missing or non-numeric one is refused with the row that has it."""
    out = []
    for row, value in enumerate(values):
        number = None if value is None else _number(value)
        if number is None or math.isnan(number):
            what = "missing" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)
            raise UserError(
                f"row {row} of the {where} has a rating that is {what if what == 'missing' else what + ', not a number'}"
                ": --task regression needs a number in every row (drop or fix those rows, or train classes)"
            )
        out.append(number)
    return out


def classes_from(values: Sequence[object], label_names: Sequence[str] | None, feature_names: Sequence[str] | None
                 ) -> Task:  # fmt: skip
    """The class task the training labels describe.

    Names come from --label_names (their order is the ids' order), else from the data: a ClassLabel's own
    names, sorted whole numbers, or sorted strings. Numbers mixed with names are refused: a stray "3" among
    "positive" and "negative" is almost always a data error, not a class.
    """
    present = {str(v).strip().lower().removesuffix(".0") for v in values}
    if label_names is None and present <= set(SENTIMENT_SPELLINGS) and len(present) == 2:
        return SENTIMENT
    numbers = [_number(v) for v in values]
    numeric = [n is not None for n in numbers]
    if any(numeric) and not all(numeric):
        number = next(str(v) for v, is_number in zip(values, numeric) if is_number)
        name = next(str(v) for v, is_number in zip(values, numeric) if not is_number)
        raise UserError(
            f"the training labels mix numbers and names (for example {number!r} and {name!r}): use one kind for "
            "every row"
        )
    if all(numeric) and not all(n.is_integer() for n in numbers):
        raise UserError("the training labels are fractional numbers: classes need whole numbers or names; "
                        "for a numeric score use --task regression")  # fmt: skip
    if label_names:
        labels = tuple(label_names)
        if all(numeric) and not all(0 <= n < len(labels) for n in numbers):
            raise UserError(f"--label_names names {len(labels)} classes, but the labels run from "
                            f"{min(numbers):g} to {max(numbers):g}: give one name per class id")  # fmt: skip
        return _checked(Task(CLASSIFICATION, labels, numeric_ids=all(numeric)), values)
    if all(numeric) and feature_names and all(0 <= n < len(feature_names) for n in numbers):
        return _checked(Task(CLASSIFICATION, tuple(feature_names), numeric_ids=True), values)
    if all(numeric):
        return _checked(Task(CLASSIFICATION, tuple(str(int(n)) for n in sorted(set(numbers)))), values)
    return _checked(Task(CLASSIFICATION, tuple(sorted({str(v).strip() for v in values}))), values)


def _checked(task: Task, values: Sequence[object]) -> Task:
    """Refuse a label set that cannot train a classifier: one class, or more than MAX_CLASSES."""
    if len(set(task.labels)) != len(task.labels):
        raise UserError(f"--label_names repeats a name ({', '.join(task.labels)}): give each class once")
    if len(task.labels) > MAX_CLASSES:
        raise UserError(f"the training labels hold {len(task.labels):,} classes, more than {MAX_CLASSES:,}: "
                        "this is more likely an id or a score column; check --label_column")  # fmt: skip
    seen = set(task.label_ids(values, "training data"))
    if len(seen) < 2:
        raise UserError(f"the training data has one class only ({task.labels[next(iter(seen))]}): "
                        "a classifier needs at least two")  # fmt: skip
    return task


def rating_task(values: Sequence[object], midpoint: float | None) -> Task:
    """The rating task the training ratings describe: their range, mean and spread, and the midpoint if given."""
    numbers = np.asarray(ratings(values, "training data"), dtype=np.float64)
    if numbers.min() == numbers.max():
        raise UserError(f"every training rating is {numbers[0]:g}: a rating model needs ratings that differ")
    if midpoint is not None and not numbers.min() < midpoint < numbers.max():
        raise UserError(f"--rating_midpoint {midpoint:g} is outside the ratings ({numbers.min():g} to "
                        f"{numbers.max():g}): give the value between negative and positive ratings")  # fmt: skip
    return Task(REGRESSION, (RATING,), (float(numbers.min()), float(numbers.max())), midpoint,
                float(numbers.mean()), float(numbers.std()))  # fmt: skip


def from_record(record: dict[str, Any] | None) -> Task:
    """The task of a results.json; one without `task` was written before other label sets, so it is sentiment."""
    if not record:
        return SENTIMENT
    if record["kind"] == REGRESSION:
        scale = record.get("scale") or {}
        return Task(REGRESSION, tuple(record["labels"]), tuple(record["range"]), record.get("midpoint"),
                    scale.get("mean", 0.0), scale.get("std", 1.0))  # fmt: skip
    return Task(CLASSIFICATION, tuple(record["labels"]))
