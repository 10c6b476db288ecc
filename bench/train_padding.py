"""How much of a batch is padding, and what dynamic padding and length grouping should save.

`python -m bench.train_padding [python -m train flags]` tokenizes the train split exactly as
`python -m train` would with those flags (same split, subset, truncation), then replays one
epoch of batches for each batch size with the Trainer's own samplers: random order, and
`LengthGroupedSampler` (what --group_by_length uses). It prints, per batch size and sampler, the
mean padded length per review and the predicted speed-up of the padded FLOPs over padding every
review to --max_length (the reference recipe), for the models the benchmark uses.

This is the arithmetic behind the dynamic-padding hypotheses in bench/NOTES.md: a prediction
of compute saved, which is an upper bound on time saved (kernels on shorter tensors run at
lower efficiency, and fixed per-step costs do not shrink).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import torch
from transformers.trainer_pt_utils import get_length_grouped_indices

from bench.train_flops import ModelShape, flops_per_sample, model_shape
from train.config import parse_config
from train.data import prepare_splits
from train.encoding import encode_splits
from train.modeling import load_tokenizer


def train_lengths(argv: list[str]) -> tuple[np.ndarray, int]:
    """Token counts of the train split as the training command builds it, and its max_length."""
    config = parse_config(argv)
    tokenizer = load_tokenizer(config.model.model_name_or_path)
    splits = prepare_splits(config.data, seed=config.run.seed)
    del splits["validation"], splits["test"]
    m = config.model
    encoded = encode_splits(splits, tokenizer, m.max_length, m.truncation, m.head_tokens)
    return np.asarray([len(ids) for ids in encoded["train"]["input_ids"]]), m.max_length


def padded_lengths(lengths: np.ndarray, batch_size: int, grouped: bool, seed: int) -> np.ndarray:
    """Per review, the length its batch is padded to, over one epoch in the sampler's order."""
    generator = torch.Generator().manual_seed(seed)
    if grouped:
        order = np.asarray(get_length_grouped_indices(lengths.tolist(), batch_size, generator=generator))
    else:
        order = torch.randperm(len(lengths), generator=generator).numpy()
    out = np.empty(len(lengths))
    for start in range(0, len(order), batch_size):
        out[start : start + batch_size] = lengths[order[start : start + batch_size]].max()
    return out


def padding_table(
    lengths: np.ndarray, max_length: int, batch_sizes: list[int], shapes: dict[str, ModelShape]
) -> pd.DataFrame:
    rows = []
    full = np.full(len(lengths), max_length)
    for batch_size in batch_sizes:
        for grouped in (False, True):
            padded = padded_lengths(lengths, batch_size, grouped, seed=42)
            row = {
                "batch": batch_size,
                "sampler": "length-grouped" if grouped else "random",
                "real tokens/review": lengths.mean(),
                "padded tokens/review": padded.mean(),
                "padding share": 1 - lengths.sum() / padded.sum(),
            }
            for name, shape in shapes.items():
                reference = flops_per_sample(full, shape, "full").sum()
                row[f"FLOPs saved vs pad-{max_length}, {name}"] = (
                    reference / flops_per_sample(padded, shape, "full").sum()
                )
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_sizes", default="16,32,64,128", help="comma-separated")
    parser.add_argument(
        "--shape_models",
        default="",
        help="comma-separated name=path of models whose FLOPs to weigh (default: the tokenizer's model)",
    )
    parser.add_argument("--out", help="also write the table here as Markdown")
    args, train_argv = parser.parse_known_args(argv)
    lengths, max_length = train_lengths(train_argv)
    config = parse_config(train_argv)
    pairs = [p.split("=", 1) for p in args.shape_models.split(",") if p] or [
        ["model", config.model.model_name_or_path]
    ]
    shapes = {name: model_shape(path) for name, path in pairs}
    table = padding_table(lengths, max_length, [int(b) for b in args.batch_sizes.split(",")], shapes)
    over = (lengths >= max_length).mean()
    header = (
        f"Train split: {len(lengths):,} reviews, {lengths.mean():.1f} real tokens on average after truncation to "
        f"{max_length} ({config.model.truncation}); median {np.median(lengths):.0f}; {over:.1%} cut at {max_length}.\n\n"
        f"Command: python -m bench.train_padding {' '.join(sys.argv[1:] if argv is None else argv)}\n\n"
    )
    flops = "".join(
        f"- {name}: {flops_per_sample(lengths, shape, 'full').mean() / 1e9:.2f} GFLOP per review on real tokens, "
        f"{flops_per_sample(np.array([max_length]), shape, 'full')[0] / 1e9:.2f} padded to {max_length} "
        f"(training, bench/train_flops.py)\n"
        for name, shape in shapes.items()
    )
    text = header + flops + "\n" + table.to_markdown(index=False, floatfmt=".3f") + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
