"""Check the FLOP count behind MFU (bench/train_flops.py) against torch's own FlopCounterMode.

    python -m bench.flop_check        # writes bench/results/flop_check.md

One training step (forward and backward, eager attention) on one review of each length, random
weights at the real shapes; torch counts the matmuls it runs, the formula predicts them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForSequenceClassification

from bench.random_models import ROOT, build_random_model
from bench.train_flops import flops_per_sample, model_shape
from train.config import LoraArguments
from train.modeling import apply_method

# The h100-lora preset's adapters: every linear layer of the BERT encoder.
LORA = LoraArguments(lora_target_modules=["query", "key", "value", "dense"])
CASES = [("distilbert", "full"), ("minilm", "full"), ("minilm", "lora"), ("minilm", "head")]
LENGTHS = (64, 265, 512)  # 265: the mean review after truncation to 512 (results/train_padding.md)


def formula_and_counted(model_dir: Path, method: str, lengths: tuple[int, ...]) -> list[tuple[float, int]]:
    """(formula FLOPs, torch-counted FLOPs) of one training step on one review of each length."""
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager")
    model = apply_method(model, method, LORA)
    shape = model_shape(str(model_dir))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adapters = trainable - shape.head_params if method == "lora" else 0
    out = []
    for length in lengths:
        with FlopCounterMode(display=False) as counter:
            model(input_ids=torch.randint(1000, 30000, (1, length)), labels=torch.tensor([1])).loss.backward()
        out.append(
            (
                float(flops_per_sample(np.array([length]), shape, method, adapters)[0]),
                counter.get_total_flops(),
            )
        )
    return out


def main() -> None:
    lines = [
        "# FLOP count: formula / torch's FlopCounterMode",
        "",
        "One training step on one review, random weights at the real shapes, eager attention.",
        "",
        "| shape | method | " + " | ".join(f"l = {n}" for n in LENGTHS) + " |",
        "|---|---|" + "---:|" * len(LENGTHS),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for shape, method in CASES:
            model_dir = Path(tmp) / shape
            if not model_dir.is_dir():
                build_random_model(model_dir, shape)
            ratios = [f / c for f, c in formula_and_counted(model_dir, method, LENGTHS)]
            lines.append(f"| {shape} | {method} | " + " | ".join(f"{r:.4f}" for r in ratios) + " |")
            print(lines[-1], flush=True)
    lines += ["", "Reproduce: `python -m bench.flop_check`", ""]
    out = ROOT / "bench" / "results" / "flop_check.md"
    out.write_text("\n".join(lines))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
