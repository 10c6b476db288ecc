"""Short spans of training reviews as extra training examples (train/spans.py): where they are cut, which a
teacher keeps, that only the training split gets them, and one sentence for each wrong combination of flags."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DIR, build_tiny_model, tiny_args
from datasets import ClassLabel, Dataset

from train.config import DataArguments
from train.data import BR_TAG
from train.errors import UserError
from train.run import main as train_main
from train.spans import MAX_WORDS, MIN_WORDS, add_spans, cut_spans, load_teacher, sentences
from train.task import SENTIMENT

REVIEW = ("The plot is thin. The effects are cheap and the pacing drags! Still, the lead is superb. "
          "\"Go and see it,\" my friend said. I agree: a fine film.")  # fmt: skip


def test_sentences_and_spans_of_a_review() -> None:
    assert sentences(REVIEW) == ["The plot is thin.", "The effects are cheap and the pacing drags!",
                                 "Still, the lead is superb.", "\"Go and see it,\" my friend said.",
                                 "I agree: a fine film."]  # fmt: skip
    last, sources = cut_spans([REVIEW] * 20, 1, "last", seed=0)
    assert sources == list(range(20))
    assert all(span.endswith("I agree: a fine film.") for span in last)
    anywhere, _ = cut_spans([REVIEW] * 40, 1, "random", seed=0)
    assert any(span.startswith("The plot is thin.") for span in anywhere)  # not only the end
    assert all(span in " ".join(REVIEW.split()) for span in anywhere)  # whole consecutive sentences
    # A one-word review gives no span; a long sentence is cut to what people type.
    long = " ".join(["word"] * 500) + "."
    spans, sources = cut_spans(["Great.", long], 2, "random", seed=0)
    assert sources == [1] and MIN_WORDS <= len(spans[0].split()) == MAX_WORDS


def _train(n: int = 40) -> Dataset:
    reviews = pd.read_parquet(SAMPLE_DIR / "train.parquet").sample(n, random_state=0)
    return Dataset.from_dict({"text": reviews["text"].tolist(), "label": reviews["label"].tolist()}).cast_column(
        "label", ClassLabel(names=list(SENTIMENT.labels)))


def test_teacher_keeps_only_the_spans_it_gives_their_reviews_label(tmp_path: Path) -> None:
    teacher = build_tiny_model(tmp_path / "teacher", initializer_range=0.6)
    train = _train()
    args = DataArguments(train_spans=2, span_teacher=str(teacher), span_teacher_min=0.6)
    spans, sources = cut_spans(train["text"], 2, "random", seed=1)
    probs = load_teacher(str(teacher), SENTIMENT)(spans)
    assert probs.shape == (len(spans), 2) and np.allclose(probs.sum(1), 1, atol=1e-3)
    agreed = probs[np.arange(len(spans)), np.asarray(train["label"])[sources]] >= 0.6
    assert 0 < agreed.sum() < len(spans)  # the tiny teacher's outputs differ between spans: some kept, some not

    out = add_spans(train, args, SENTIMENT, seed=1)
    added = [(t, y) for t, y in zip(out["text"], out["label"]) if t not in set(train["text"])]
    assert sorted(added) == sorted((s, int(train["label"][i])) for s, i, k in zip(spans, sources, agreed) if k)
    assert len(out) == len(train) + agreed.sum()
    # Without the teacher every span is added, labelled by its review.
    plain = add_spans(train, dataclasses.replace(args, span_teacher=None), SENTIMENT, seed=1)
    assert len(plain) == len(train) + len(spans)


def test_self_training_labels_unlabelled_spans_by_the_teacher(tmp_path: Path) -> None:
    teacher = build_tiny_model(tmp_path / "teacher", initializer_range=0.6)
    unlabelled = tmp_path / "unsup.parquet"
    pd.read_parquet(SAMPLE_DIR / "test.parquet")[["text"]].head(30).to_parquet(unlabelled)
    train = _train(10)
    args = DataArguments(train_spans=1, span_teacher=str(teacher), span_teacher_min=0.55,
                         span_unlabelled_file=str(unlabelled))  # fmt: skip
    out = add_spans(train, args, SENTIMENT, seed=3)
    reviews = [" ".join(BR_TAG.sub(" ", t).split()) for t in pd.read_parquet(SAMPLE_DIR / "test.parquet")["text"].head(30)]
    from_unlabelled = [(t, y) for t, y in zip(out["text"], out["label"]) if any(t in r for r in reviews)]
    assert from_unlabelled
    probs = load_teacher(str(teacher), SENTIMENT)([t for t, _ in from_unlabelled])
    assert [y for _, y in from_unlabelled] == probs.argmax(1).tolist()  # the teacher's label, not a guess
    assert (probs.max(1) >= 0.55).all()


def test_spans_enter_training_only(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A run with spans trains on more examples; validation and test stay the same whole reviews."""
    records = {}
    for name, extra in (("plain", []), ("spans", ["--train_spans", "1", "--span_position", "last"])):
        out = tmp_path / name
        train_main(tiny_args(tiny_model_dir, out, "--baseline", "false", "--precision", "fp32", *extra))
        records[name] = json.loads((out / "results.json").read_text())
    plain, spans = (records[k]["dataset"]["splits"] for k in ("plain", "spans"))
    assert plain["validation"] == spans["validation"] and plain["test"] == spans["test"]
    assert plain["train"] < spans["train"] <= 2 * plain["train"]
    assert records["spans"]["config"]["data"]["train_spans"] == 1


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"train_spans": -1}, "--train_spans -1 must be 0"),
        ({"span_teacher": "runs/x"}, "add --train_spans 1"),
        ({"train_spans": 1, "span_unlabelled_file": "u.parquet"}, "needs --span_teacher"),
        ({"train_spans": 1, "span_teacher": "runs/x", "span_teacher_min": 1.5}, "must be a probability"),
    ],
)
def test_span_flag_mistakes_are_one_sentence(flags: dict, expected: str) -> None:
    with pytest.raises(UserError, match=expected):
        add_spans(_train(4), DataArguments(**flags), SENTIMENT, seed=0)


def test_a_teacher_that_cannot_be_loaded_is_one_sentence(tmp_path: Path) -> None:
    args = DataArguments(train_spans=1, span_teacher=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="could not be loaded"):
        add_spans(_train(4), args, SENTIMENT, seed=0)
