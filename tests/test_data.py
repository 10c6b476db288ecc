"""Every input format and label spelling reaches the same clean splits; long reviews are cut as asked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import FIXTURES, SAMPLE_DIR
from transformers import AutoTokenizer

from train.config import DataArguments
from train.data import prepare_splits
from train.encoding import cut, encode_splits, special_tokens


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    return {s: pd.read_parquet(SAMPLE_DIR / f"{s}.parquet").head(60) for s in ("train", "test")}


def check_splits(args: DataArguments, sample: dict[str, pd.DataFrame]) -> None:
    splits = prepare_splits(args, seed=0)
    assert set(splits) == {"train", "validation", "test"}
    assert len(splits["train"]) + len(splits["validation"]) == 60 and len(splits["test"]) == 60
    assert splits["train"].features["label"].names == ["NEGATIVE", "POSITIVE"]
    assert sorted(splits["test"]["label"]) == sorted(sample["test"]["label"])
    assert not any("<br" in t for t in splits["train"]["text"])


def test_parquet_folder(tmp_path: Path, sample: dict[str, pd.DataFrame]) -> None:
    for split, df in sample.items():
        df.to_parquet(tmp_path / f"{split}.parquet")
    check_splits(DataArguments(dataset_name=str(tmp_path)), sample)


def test_csv_files_with_string_labels_and_other_columns(
    tmp_path: Path, sample: dict[str, pd.DataFrame]
) -> None:
    for split, df in sample.items():
        out = df.rename(columns={"text": "review", "label": "sentiment"})
        out["sentiment"] = out["sentiment"].map({0: "negative", 1: "Positive"})
        out.to_csv(tmp_path / f"{split}.csv", index=False)
    args = DataArguments(
        train_file=str(tmp_path / "train.csv"), test_file=str(tmp_path / "test.csv"),
        text_column="review", label_column="sentiment",
    )  # fmt: skip
    check_splits(args, sample)


def test_tsv_and_jsonl_folders(tmp_path: Path, sample: dict[str, pd.DataFrame]) -> None:
    tsv, jsonl = tmp_path / "tsv", tmp_path / "jsonl"
    tsv.mkdir(), jsonl.mkdir()
    for split, df in sample.items():
        df.assign(label=df["label"].map({0: "neg", 1: "pos"})).to_csv(
            tsv / f"{split}.tsv", sep="\t", index=False
        )
        df.to_json(jsonl / f"{split}.jsonl", orient="records", lines=True)
    check_splits(DataArguments(dataset_name=str(tsv)), sample)
    check_splits(DataArguments(dataset_name=str(jsonl)), sample)


def test_original_aclimdb_layout(tmp_path: Path, sample: dict[str, pd.DataFrame]) -> None:
    for split, df in sample.items():
        for i, row in df.iterrows():
            folder = tmp_path / split / ("pos" if row["label"] == 1 else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}_7.txt").write_text(row["text"], encoding="utf-8")
    check_splits(DataArguments(dataset_name=str(tmp_path)), sample)


def test_subsets_and_validation_are_stratified() -> None:
    args = DataArguments(
        dataset_name=str(SAMPLE_DIR), validation_size=100, max_train_samples=40, max_test_samples=30
    )
    splits = prepare_splits(args, seed=1)
    assert len(splits["validation"]) == 100 and sum(splits["validation"]["label"]) == 50
    assert len(splits["train"]) == 40 and sum(splits["train"]["label"]) == 20
    assert len(splits["test"]) == 30 and sum(splits["test"]["label"]) == 15
    again = prepare_splits(args, seed=1)
    assert again["train"]["text"] == splits["train"]["text"]


def test_cut_keeps_head_tail_or_both() -> None:
    ids = list(range(10))
    assert cut(ids, 4, "head", 2) == [0, 1, 2, 3]
    assert cut(ids, 4, "tail", 2) == [6, 7, 8, 9]
    assert cut(ids, 4, "head_tail", 1) == [0, 7, 8, 9]
    assert cut(ids, 20, "head_tail", 1) == ids


def test_encoding_respects_max_length_and_keeps_special_tokens() -> None:
    from datasets import Dataset, DatasetDict

    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tokenizer")
    prefix, suffix = special_tokens(tokenizer)
    assert prefix == [tokenizer.cls_token_id] and suffix == [tokenizer.sep_token_id]
    text = "the opening was dull " * 20 + "but the ending was wonderful"
    splits = DatasetDict(test=Dataset.from_dict({"text": [text], "label": [1]}))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    expected = {"head": ids[:14], "tail": ids[-14:], "head_tail": ids[:4] + ids[-10:]}
    for strategy, kept in expected.items():
        row = encode_splits(splits, tokenizer, 16, strategy, 4)["test"][0]
        assert row["input_ids"] == prefix + kept + suffix
        assert row["attention_mask"] == [1] * 16 and row["n_tokens"] == len(ids) + 2
    assert tokenizer.decode(expected["head_tail"]).startswith("the opening")
    assert tokenizer.decode(expected["head_tail"]).endswith("wonderful")


def test_tokenization_is_cached_between_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run on the same data and settings loads the tokens; other settings get their own file."""
    import datasets

    from train.config import DataArguments
    from train.data import prepare_splits
    from train.encoding import encode_windows

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tokenizer")
    args = DataArguments(dataset_name=str(SAMPLE_DIR), max_train_samples=40, max_test_samples=30)

    def written() -> dict[str, float]:
        return {p.name: p.stat().st_mtime_ns for p in (tmp_path / "imdb_sentiment_tokens").glob("*.arrow")}

    first = encode_splits(prepare_splits(args, seed=1), tokenizer, 64, "head_tail", 16)
    files = written()
    assert len(files) == 3  # train, validation, test
    again = encode_splits(prepare_splits(args, seed=1), tokenizer, 64, "head_tail", 16)
    assert written() == files  # loaded, not written again
    folder = tmp_path / "imdb_sentiment_tokens"
    assert {c["filename"] for c in again["test"].cache_files} <= {str(folder / name) for name in files}
    for split in first:
        assert again[split]["input_ids"] == first[split]["input_ids"]

    encode_splits(prepare_splits(args, seed=1), tokenizer, 64, "head", 16)  # another cut: other tokens
    assert len(written()) == 6
    encode_splits(prepare_splits(args, seed=2), tokenizer, 64, "head", 16)  # another sample: other tokens
    assert len(written()) == 9
    test = prepare_splits(args, seed=1)["test"]
    windows = encode_windows(test, tokenizer, 64, 16)
    assert encode_windows(test, tokenizer, 64, 16)["input_ids"] == windows["input_ids"]
    assert len(written()) == 10
