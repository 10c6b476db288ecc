"""Tokenize reviews, cutting long ones at the start, the end, or both.

Tokenizers truncate at one side only. Keeping the head and the tail of a long review (Sun et al.
2019, "How to Fine-Tune BERT for Text Classification?") beats either side alone on IMDb, whose
reviews often state the verdict in the last lines, so that cut is done here on token ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, is_caching_enabled
from datasets import config as datasets_config
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

# Part of every cache key: bump it when what encode_splits or encode_windows writes changes.
CACHE_VERSION = 1


def cache_file(ds: Dataset, kind: str, tokenizer: PreTrainedTokenizerBase, **params: Any) -> str | None:
    """Where `datasets` keeps this split's tokens, named by the data and all that shapes the tokens.

    `datasets` caches a map() only for datasets backed by files, and the splits are rebuilt in memory
    (data.normalise), so without a name of our own every run would tokenize the 50,000 reviews again
    (bench/results/data_prep.md measures what that costs). The split's content fingerprint, the
    tokenizer's full definition and the parameters make the name; `datasets` loads the file when it
    exists and writes it atomically when not. None (no cache) when caching is disabled or the cache
    folder cannot be written.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not is_caching_enabled() or backend is None:
        return None
    # The definition without the truncation and padding the last call left set on the tokenizer.
    definition = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    key = Hasher.hash([CACHE_VERSION, kind, ds._fingerprint, definition, sorted(params.items())])
    folder = Path(datasets_config.HF_DATASETS_CACHE) / "imdb_sentiment_tokens"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only cache: tokenize every time rather than fail
        return None
    return str(folder / f"{kind}-{key}.arrow") if os.access(folder, os.W_OK) else None


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text ([CLS] and [SEP] for BERT, <s> and </s> for RoBERTa)."""
    core = tokenizer("movie", add_special_tokens=False)["input_ids"]
    full = tokenizer("movie", add_special_tokens=True)["input_ids"]
    start = full.index(core[0])
    return full[:start], full[start + len(core) :]


def cut(ids: list[int], budget: int, strategy: str, head_tokens: int) -> list[int]:
    """Keep at most `budget` ids of `ids`: from the start (head), the end (tail), or both (head_tail)."""
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "tail":
        return ids[len(ids) - budget :]
    head = min(head_tokens, budget)
    return ids[:head] + ids[len(ids) - (budget - head) :]


def encode_splits(
    splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int, strategy: str, head_tokens: int
) -> DatasetDict:
    """Add input_ids/attention_mask (cut to max_length) and n_tokens (the uncut length) to every split."""
    prefix, suffix = special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)

    def encode(batch: dict) -> dict:
        ids = tokenizer(batch["text"], add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        input_ids = [prefix + cut(x, budget, strategy, head_tokens) + suffix for x in ids]
        return {
            "input_ids": input_ids,
            "attention_mask": [[1] * len(x) for x in input_ids],
            "n_tokens": [len(x) + len(prefix) + len(suffix) for x in ids],
        }

    params = {"max_length": max_length, "strategy": strategy, "head_tokens": head_tokens}
    return DatasetDict(
        {
            name: ds.map(
                encode,
                batched=True,
                desc=f"Tokenizing {name}",
                cache_file_name=cache_file(ds, "tokens", tokenizer, **params),
            )
            for name, ds in splits.items()
        }
    )


def encode_windows(ds: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, stride: int) -> Dataset:
    """Split each review into overlapping max_length windows (`stride` tokens shared between neighbours).

    Uses the fast tokenizer's own overflow handling; `review` maps every window back to its review
    so that window probabilities can be averaged into one prediction per review.
    """

    def encode(batch: dict) -> dict:
        enc = tokenizer(
            batch["text"],
            truncation=True,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
        )
        rows = enc["overflow_to_sample_mapping"]
        return {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "label": [batch["label"][i] for i in rows],
            "review": [batch["review"][i] for i in rows],
        }

    indexed = ds.select_columns(["text", "label"]).add_column("review", list(range(len(ds))))
    return indexed.map(
        encode,
        batched=True,
        remove_columns=indexed.column_names,
        desc="Windowing",
        cache_file_name=cache_file(ds, "windows", tokenizer, max_length=max_length, stride=stride),
    )
