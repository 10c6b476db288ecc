"""Shared fixtures: a tiny DistilBERT with the real uncased vocabulary, and the bundled IMDb sample.

Everything here runs offline on CPU: the model is built from a config (random weights, seeded),
the tokenizer files and the reviews are committed in the project.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_DIR = ROOT / "data" / "imdb_sample"

# Nothing in the tests may reach the real Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_model(out_dir: Path, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """Save a 2-layer, 32-wide DistilBERT classifier with the real uncased tokenizer to `out_dir`.

    A large `initializer_range` gives a random model whose scores differ from review to review.
    """
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=30522,
        dim=32,
        hidden_dim=64,
        n_layers=2,
        n_heads=2,
        max_position_embeddings=512,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
        initializer_range=initializer_range,
    )
    model = DistilBertForSequenceClassification(config)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(FIXTURES / "tokenizer").save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-distilbert"))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR
