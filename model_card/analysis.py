"""Error analysis of a run's test predictions (`test_predictions.csv`), for the card's error section.

The training command stores one row per test review with the untruncated token count, so the
card can show how accuracy falls with length, including reviews the model only saw part of.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PREDICTIONS_FILE = "test_predictions.csv"
EXAMPLE_MAX_WORDS = 60
EXAMPLES_PER_KIND = 3


@dataclass(frozen=True)
class LengthBucket:
    """Test reviews whose untruncated token count lies in (low, high]; high None means above max_length."""

    label: str
    count: int
    accuracy: float | None
    errors: int


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    pred: str
    confidence: float
    n_words: int


@dataclass(frozen=True)
class ErrorAnalysis:
    num_examples: int
    false_positives: int
    false_negatives: int
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
        buckets.append(LengthBucket(label, len(rows), accuracy, int((~rows["correct"]).sum())))
    return buckets


def _short_examples(wrong: pd.DataFrame) -> list[Example]:
    """The most confident short mistakes of each kind: short so they fit in a table and can be read.

    Reviews of at most EXAMPLE_MAX_WORDS words, or the shortest ones when there are too few of those.
    """
    examples = []
    for label, pred in (("NEGATIVE", "POSITIVE"), ("POSITIVE", "NEGATIVE")):
        rows = wrong[(wrong["label"] == label) & (wrong["pred"] == pred)]
        pool = rows[rows["n_words"] <= EXAMPLE_MAX_WORDS]
        if len(pool) < EXAMPLES_PER_KIND:
            pool = rows.nsmallest(EXAMPLES_PER_KIND, "n_words")
        examples += [
            Example(r.text, r.label, r.pred, float(r.confidence), int(r.n_words))
            for r in pool.nlargest(EXAMPLES_PER_KIND, "confidence").itertuples()
        ]
    return examples


def _mean(series: pd.Series) -> float | None:
    return float(series.mean()) if len(series) else None


def analyse(run_dir: Path, max_length: int, windowed: bool = False) -> ErrorAnalysis | None:
    """Error analysis of `run_dir/test_predictions.csv`, or None when the run has no predictions file.

    `windowed`: the run classified reviews longer than max_length as overlapping windows
    (`--eval_windows`) instead of truncating them.
    """
    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        return None
    df = pd.read_csv(path, keep_default_na=False)
    df["correct"] = df["correct"].astype(str).str.lower() == "true"
    df["n_words"] = df["text"].str.split().str.len()
    wrong = df[~df["correct"]]
    return ErrorAnalysis(
        num_examples=len(df),
        false_positives=int(((wrong["label"] == "NEGATIVE") & (wrong["pred"] == "POSITIVE")).sum()),
        false_negatives=int(((wrong["label"] == "POSITIVE") & (wrong["pred"] == "NEGATIVE")).sum()),
        mean_confidence=_mean(df["confidence"]),
        mean_confidence_correct=_mean(df.loc[df["correct"], "confidence"]),
        mean_confidence_wrong=_mean(wrong["confidence"]),
        buckets=_length_buckets(df, max_length, windowed),
        examples=_short_examples(wrong),
    )
