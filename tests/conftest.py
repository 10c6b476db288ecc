"""Shared fixtures: a tiny DistilBERT with the real uncased vocabulary, and the bundled IMDb sample.

Everything here runs offline on CPU: the model is built from a config (random weights, seeded),
the tokenizer files and the reviews are committed in the project.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from local_hub import local_hub  # noqa: F401  (the fixture, for every test module)

from bench.random_models import BINARY, build_random_model

pytest_plugins = ["space_fixtures", "js_client"]  # the launched Space; transformers.js and a module's own Hub

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_DIR = ROOT / "data" / "imdb_sample"

# Nothing in the tests may reach the real Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_tiny_model(
    out_dir: Path, seed: int = 0, initializer_range: float = 0.02, labels: tuple[str, ...] | None = BINARY
) -> Path:
    """Save a 2-layer, 32-wide DistilBERT with the real uncased tokenizer to `out_dir`: a classifier over
    `labels` (NEGATIVE/POSITIVE unless told), or a 1-10 rating model for labels=None.

    A large `initializer_range` gives a random model whose scores differ from review to review.
    """
    return build_random_model(out_dir, "tiny-distilbert", seed, initializer_range, labels)


def tiny_args(model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(model),
        "--dataset_name", str(ROOT / "data" / "imdb_sample"),
        "--output_dir", str(out),
        "--max_train_samples", "64", "--max_eval_samples", "32", "--max_test_samples", "48",
        "--max_length", "64", "--num_train_epochs", "1", "--eval_strategy", "epoch",
        "--per_device_train_batch_size", "16", "--logging_steps", "2", "--report_to", "none",
        *extra,
    ]  # fmt: skip


def train_tiny(model_dir: Path, output_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Path:
    """The real training command on the tiny model, as a user runs it: a subprocess, in the project."""
    command = [sys.executable, "-m", "train", *tiny_args(model_dir, output_dir, "--eval_strategy", "steps",
               "--eval_steps", "2", "--logging_steps", "1", "--max_test_samples", "64", *flags)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared tiny model, initialised wide enough that its scores differ clearly from review to review
    (at the usual 0.02 every review scores about 0.5, and a test cannot tell one review's answer from another's)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-distilbert"), initializer_range=0.2)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR
