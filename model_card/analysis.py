"""Error analysis of a run's test predictions (`test_predictions.csv`), for the card's error section.

The training command stores one row per test review with the untruncated token count, so the
card can show how accuracy falls with length, including reviews the model only saw part of.
Classes (`analyse`): the most confused pairs and confident short mistakes of each; ratings
(`analyse_ratings`): the error by length and the largest errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PREDICTIONS_FILE = "test_predictions.csv"
EXAMPLE_MAX_WORDS = 60
EXAMPLES_PER_KIND = 3
# With more than two classes, examples are shown for this many of the most confused (true, predicted) pairs.
EXAMPLE_PAIRS = 4
RATING_EXAMPLES = 6


@dataclass(frozen=True)
class LengthBucket:
    """Test reviews whose untruncated token count lies in (low, high]; high None means above max_length."""

    label: str
    count: int
    accuracy: float | None
    errors: int
    mae: float | None = None  # ratings: the mean absolute error of the bucket's predictions


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    pred: str
    confidence: float
    n_words: int


@dataclass(frozen=True)
class ConfusedPair:
    """Test reviews of class `label` predicted as `pred`; `share`: of all the reviews of class `label`."""

    label: str
    pred: str
    count: int
    share: float


@dataclass(frozen=True)
class ErrorAnalysis:
    num_examples: int
    false_positives: int  # two classes: the first class predicted as the second
    false_negatives: int
    errors: int
    pairs: list[ConfusedPair]
    mean_confidence: float | None
    mean_confidence_correct: float | None
    mean_confidence_wrong: float | None
    buckets: list[LengthBucket]
    examples: list[Example]


def _bucket_edges(max_length: int) -> list[int]:
    """Quarter, half and full max_length: the last bucket is exactly the reviews longer than the model's input."""
    edges = sorted({max(1, max_length // 4), max(1, max_length // 2), max_length})
    return [0, *edges]


def _length_buckets(df: pd.DataFrame, max_length: int, windowed: bool) -> list[LengthBucket]:
    edges = _bucket_edges(max_length)
    bounds = [(lo, hi) for lo, hi in zip(edges, edges[1:])] + [(max_length, None)]
    buckets = []
    for lo, hi in bounds:
        if hi is None:
            rows = df[df["n_tokens"] > lo]
            label = f"> {lo} ({'in windows' if windowed else 'truncated'})"
        else:
            rows = df[(df["n_tokens"] > lo) & (df["n_tokens"] <= hi)]
            label = f"≤ {hi}" if lo == 0 else f"{lo + 1}–{hi}"
        accuracy = float(rows["correct"].mean()) if len(rows) else None
        mae = float(rows["error"].abs().mean()) if "error" in rows and len(rows) else None
        buckets.append(LengthBucket(label, len(rows), accuracy, int((~rows["correct"]).sum()), mae))
    return buckets


def _short(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """Reviews of at most EXAMPLE_MAX_WORDS words, or the `n` shortest when there are too few of those."""
    pool = rows[rows["n_words"] <= EXAMPLE_MAX_WORDS]
    return pool if len(pool) >= n else rows.nsmallest(n, "n_words")


def confused_pairs(df: pd.DataFrame, labels: tuple[str, ...]) -> list[ConfusedPair]:
    """Every (true, predicted) pair of different classes that occurs, most frequent first."""
    wrong = df[df["label"] != df["pred"]]
    support = df["label"].value_counts()
    order = {name: i for i, name in enumerate(labels)}
    counts = wrong.groupby(["label", "pred"]).size()
    pairs = [ConfusedPair(str(t), str(p), int(n), n / support[t]) for (t, p), n in counts.items()]
    return sorted(
        pairs, key=lambda c: (-c.count, order.get(c.label, len(order)), order.get(c.pred, len(order)))
    )


def _directions(labels: tuple[str, ...], pairs: list[ConfusedPair]) -> list[tuple[str, str]]:
    """Two classes: both directions, in label order; more: the EXAMPLE_PAIRS most confused pairs."""
    if len(labels) == 2:
        return [(labels[0], labels[1]), (labels[1], labels[0])]
    return [(c.label, c.pred) for c in pairs[:EXAMPLE_PAIRS]]


def _short_examples(wrong: pd.DataFrame, directions: list[tuple[str, str]]) -> list[Example]:
    """The most confident short mistakes of each kind: short so they fit in a table and can be read."""
    examples = []
    for label, pred in directions:
        rows = wrong[(wrong["label"] == label) & (wrong["pred"] == pred)]
        pool = _short(rows, EXAMPLES_PER_KIND)
        examples += [
            Example(r.text, r.label, r.pred, float(r.confidence), int(r.n_words))
            for r in pool.nlargest(EXAMPLES_PER_KIND, "confidence").itertuples()
        ]
    return examples


def _mean(series: pd.Series) -> float | None:
    return float(series.mean()) if len(series) else None


def _read(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        return None
    df = pd.read_csv(path, keep_default_na=False)
    df["correct"] = df["correct"].astype(str).str.lower() == "true"
    df["n_words"] = df["text"].astype(str).str.split().str.len()
    return df


def analyse(
    run_dir: Path, max_length: int, windowed: bool = False, labels: tuple[str, ...] = ("NEGATIVE", "POSITIVE")
) -> ErrorAnalysis | None:
    """Error analysis of `run_dir/test_predictions.csv`, or None when the run has no predictions file.

    `windowed`: the run classified reviews longer than max_length as overlapping windows
    (`--eval_windows`) instead of truncating them. `labels`: the classes in id order.
    """
    df = _read(run_dir)
    if df is None:
        return None
    for column in ("label", "pred"):  # class names that are numbers ("1", "2") must stay names
        df[column] = df[column].astype(str)
    wrong = df[~df["correct"]]
    pairs = confused_pairs(df, labels)
    first, second = labels[0], labels[-1]
    return ErrorAnalysis(
        num_examples=len(df),
        false_positives=int(((wrong["label"] == first) & (wrong["pred"] == second)).sum()),
        false_negatives=int(((wrong["label"] == second) & (wrong["pred"] == first)).sum()),
        errors=len(wrong),
        pairs=pairs,
        mean_confidence=_mean(df["confidence"]),
        mean_confidence_correct=_mean(df.loc[df["correct"], "confidence"]),
        mean_confidence_wrong=_mean(wrong["confidence"]),
        buckets=_length_buckets(df, max_length, windowed),
        examples=_short_examples(wrong, _directions(labels, pairs)),
    )


@dataclass(frozen=True)
class RatingExample:
    text: str
    label: float
    pred: float
    error: float  # pred - label
    n_words: int


@dataclass(frozen=True)
class RatingAnalysis:
    """A rating model's test predictions; `correct`: the rounded prediction is within one of the label."""

    num_examples: int
    mae: float
    mean_error: float  # pred - label on average: above 0 the model rates too high
    outside_one: int
    buckets: list[LengthBucket]
    examples: list[RatingExample]
    predictions: dict[float, list[float]]  # true rating -> the predictions for it


def analyse_ratings(run_dir: Path, max_length: int, windowed: bool = False) -> RatingAnalysis | None:
    """Error analysis of a rating model's `test_predictions.csv` (label, pred, error), or None without one."""
    df = _read(run_dir)
    if df is None:
        return None
    for column in ("label", "pred"):
        df[column] = pd.to_numeric(df[column])
    df["error"] = df["pred"] - df["label"]
    worst = _short(df, RATING_EXAMPLES)
    worst = worst.loc[worst["error"].abs().sort_values(ascending=False).index[:RATING_EXAMPLES]]
    return RatingAnalysis(
        num_examples=len(df),
        mae=float(df["error"].abs().mean()),
        mean_error=float(df["error"].mean()),
        outside_one=int((~df["correct"]).sum()),
        buckets=_length_buckets(df, max_length, windowed),
        examples=[
            RatingExample(r.text, float(r.label), float(r.pred), float(r.error), int(r.n_words))
            for r in worst.itertuples()
        ],
        predictions={float(k): v.tolist() for k, v in df.groupby("label")["pred"]},
    )
