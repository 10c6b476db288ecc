"""Preflight: do `python -m train`'s test predictions belong to the test rows they are written beside?

    python -m bench.train_preflight --group_by_length    # exit 0: aligned, 3: misaligned, 4: inconclusive

With `train_sampling_strategy="group_by_length"` transformers (5.17 and 5.24) also length-groups
and shuffles the *evaluation* order, so `Trainer.predict` returns predictions in another order
than the dataset's rows; metrics computed against the dataset's labels are then wrong. This trains
the tiny random DistilBERT for a few steps with the given flags (fp32, bundled sample), reclassifies
each row of its test_predictions.csv in row order with the saved model, on inputs encoded exactly
as the run encoded them, and compares the probabilities row by row. Seconds on any machine: run it
before spending GPU time on a recipe that uses --group_by_length.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from bench.random_models import ROOT, build_random_model
from train.config import parse_config
from train.data import prepare_splits
from train.encoding import encode_splits
from train.metrics import positive_probabilities
from train.modeling import load_tokenizer
from train.run import main as train_main

TINY_FLAGS = [
    "--dataset_name", str(ROOT / "data" / "imdb_sample"), "--precision", "fp32", "--max_length", "64",
    "--max_train_samples", "64", "--max_eval_samples", "32", "--max_test_samples", "96", "--num_train_epochs", "1",
    "--eval_strategy", "epoch", "--per_device_eval_batch_size", "16", "--report_to", "none", "--no_baseline",
    "--learning_rate", "1e-3",
]  # fmt: skip


def recomputed_probabilities(run_dir: Path, argv: list[str]) -> np.ndarray:
    """Positive-class probabilities of the run's test rows, in row order, from its saved model."""
    config = parse_config(argv)
    tokenizer = load_tokenizer(config.model.model_name_or_path)
    splits = prepare_splits(config.data, seed=config.run.seed)
    m = config.model
    test = encode_splits(splits, tokenizer, m.max_length, m.truncation, m.head_tokens)["test"]
    model = AutoModelForSequenceClassification.from_pretrained(run_dir, dtype=torch.float32).eval()
    collate = DataCollatorWithPadding(tokenizer)
    logits = []
    with torch.no_grad():
        for start in range(0, len(test), 16):
            rows = test.select(range(start, min(start + 16, len(test))))
            batch = collate(
                [{"input_ids": r["input_ids"], "attention_mask": r["attention_mask"]} for r in rows]
            )
            logits.append(model(**batch).logits.numpy())
    return positive_probabilities(np.concatenate(logits))


def main(argv: list[str] | None = None) -> None:
    flags = sys.argv[1:] if argv is None else argv
    with tempfile.TemporaryDirectory() as tmp:
        # Large initial weights, so that the random model's probabilities differ from review to review.
        model = build_random_model(Path(tmp) / "tiny", "tiny-distilbert", initializer_range=1.0)
        run_argv = [*TINY_FLAGS, *flags, "--model_name_or_path", str(model)]
        run_dir = Path(tmp) / "run"
        train_main([*run_argv, "--output_dir", str(run_dir)])
        written = pd.read_csv(run_dir / "test_predictions.csv")["prob_positive"].to_numpy()
        expected = recomputed_probabilities(run_dir, run_argv)
    gap, spread = float(np.abs(written - expected).max()), float(expected.std())
    if spread < 1e-3:
        print(f"preflight: inconclusive (the tiny model's probabilities barely vary: std {spread:.2e})")
        raise SystemExit(4)
    aligned = (
        gap < 0.05 * spread
    )  # numerical noise is orders of magnitude below; a shuffle is about 2x spread
    print(
        f"preflight {' '.join(flags) or '(no flags)'}: test predictions "
        f"{'ALIGNED with' if aligned else 'MISALIGNED with'} their rows (max gap {gap:.2e}, spread {spread:.2e})"
    )
    raise SystemExit(0 if aligned else 3)


if __name__ == "__main__":
    main()
