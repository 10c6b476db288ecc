"""What the IMDb test split does not show: `--extra_eval` sets and the behaviour suite, end to end and by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, SAMPLE_DIR, build_tiny_model, tiny_args
from transformers import pipeline

from train.behaviour import build_suite, run_suite
from train.data import BR_TAG
from train.run import main as train_main


def _short_texts(n: int) -> pd.DataFrame:
    """Real reviews' first sentences with their review's label, and a few unlabelled (-1) rows to skip."""
    reviews = pd.read_parquet(SAMPLE_DIR / "test.parquet").groupby("label").head(n // 2)
    first = reviews["text"].str.replace(BR_TAG, " ", regex=True).str.split(r"(?<=[.!?])\s", n=1, regex=True).str[0].str.slice(0, 200)
    rows = pd.DataFrame({"text": first, "label": reviews["label"].astype(int)})
    unlabelled = pd.DataFrame({"text": ["It is a film.", "Released in May."], "label": [-1, -1]})
    return pd.concat([rows, unlabelled], ignore_index=True)


def _positive_scores(model_dir: Path, texts: list[str]) -> np.ndarray:
    classify = pipeline("text-classification", model=str(model_dir), dtype=torch.float32, top_k=None)
    return np.array([next(s["score"] for s in r if s["label"] == "POSITIVE") for r in classify(texts)])


@pytest.fixture(scope="module")
def extra_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("extra")
    short = _short_texts(24)
    short.to_csv(folder / "short.csv", index=False)
    short.to_json(folder / "short.jsonl", orient="records", lines=True)
    out = folder / "run"
    train_main(tiny_args(tiny_model_dir, out, "--baseline", "false", "--precision", "fp32",
                         "--extra_eval", f"short={folder / 'short.csv'}", f"as_jsonl={folder / 'short.jsonl'}"))
    return out, short


def test_extra_sets_are_scored_by_the_saved_model(extra_run: tuple[Path, pd.DataFrame]) -> None:
    out, short = extra_run
    extra = json.loads((out / "results.json").read_text())["extra_eval"]
    assert set(extra) == {"short", "as_jsonl"}
    labelled = short[short["label"] != -1]
    expected_scores = _positive_scores(out, labelled["text"].tolist())
    labels = labelled["label"].to_numpy()
    for name in extra:
        m = extra[name]
        assert (m["n"], m["skipped_unlabelled"]) == (24, 2)
        assert m["mean_words"] == pytest.approx(labelled["text"].str.split().str.len().mean())
        assert m["accuracy"] == pytest.approx(((expected_scores >= 0.5) == labels).mean())
        assert m["mean_confidence"] == pytest.approx(np.maximum(expected_scores, 1 - expected_scores).mean(), abs=1e-4)
        assert 0 <= m["ece"] <= 1 and m["nll"] > 0
    assert Path(extra["short"]["path"]).name == "short.csv" and not Path(extra["short"]["path"]).is_absolute()


def test_behaviour_section_in_every_run(extra_run: tuple[Path, pd.DataFrame]) -> None:
    out, _ = extra_run
    behaviour = json.loads((out / "results.json").read_text())["behaviour"]
    suite = build_suite()
    assert set(behaviour["capabilities"]) == set(suite)
    for name, cap in behaviour["capabilities"].items():
        assert cap["cases"] == len(suite[name]) >= 30
        assert cap["failure_rate"] == pytest.approx(cap["failures"] / cap["cases"])
        assert len(cap["examples"]) == min(3, cap["failures"])
    assert behaviour["neutral"]["cases"] >= 30 and 0.5 <= behaviour["neutral"]["mean_confidence"] <= 1


def test_extra_eval_file_with_wrong_columns_stops_before_anything_is_written(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "tweets.csv"
    pd.DataFrame({"tweet": ["Great!", "Awful."], "polarity": [1, 0]}).to_csv(bad, index=False)
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, out, "--extra_eval", f"tweets={bad}")
    result = subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: --extra_eval tweets={bad}: the file has no 'text'")
    assert "give it a text and a label column" in lines[-1] and "Traceback" not in result.stderr
    assert not out.exists()


def test_invariance_counts_the_flips_of_a_model_whose_outputs_differ(tmp_path: Path) -> None:
    """On a real (random, tiny) model: the suite's invariance failures are the cases whose label flips.

    Initialised wide (0.5), its scores cross 0.5 between a review and its variants (the shared tiny model's don't).
    """
    model_dir = build_tiny_model(tmp_path / "wide", seed=2, initializer_range=0.5)
    scores: dict[str, float] = {}

    def model(batch: list[str]) -> np.ndarray:
        scores.update(zip(batch, out := _positive_scores(model_dir, list(batch))))
        return out

    report = run_suite(model)
    cases = build_suite()["invariance"]
    assert len({round(scores[c.text], 4) for c in cases}) > len(cases) // 2  # the model tells the texts apart
    flips = sum((scores[c.text] >= 0.5) != (scores[c.reference] >= 0.5) for c in cases)
    assert 0 < flips < len(cases)
    assert report["capabilities"]["invariance"]["failures"] == flips


def test_suite_failures_follow_the_model() -> None:
    """A model that reads shouting as negative fails exactly the upper-cased variants, and nothing in a keyword
    model's verdicts that its keywords get right."""
    shouting = run_suite(lambda texts: np.array([0.1 if sum(ch.isupper() for ch in t) > sum(ch.islower() for ch in t)
                                                 else 0.9 for t in texts]))  # fmt: skip
    upper = [c for c in build_suite()["invariance"] if c.text == c.reference.upper()]
    assert shouting["capabilities"]["invariance"]["failures"] == len(upper) == 10
    oracle = {c.text: c.expected for c in build_suite()["short_verdicts"]}
    perfect = run_suite(lambda texts: np.array([0.95 if oracle.get(t, 1) else 0.05 for t in texts]))
    assert perfect["capabilities"]["short_verdicts"]["failures"] == 0
    assert perfect["capabilities"]["negation"]["failures"] > 0  # it says positive to every negated sentence
