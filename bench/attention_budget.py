"""Benchmark: where matmul attention stops paying on this CPU, as the training command decides it.

    python -m bench.attention_budget          # writes bench/results/attention_budget_<cpu>.{md,json}

`python -m train` on a CPU measures both attention kernels (forward and backward, the run's batch size,
heads, precision and lengths) at start-up and runs plain matmul attention while a batch's scores fit in
the budget that measurement implies (train/attention.py). This repeats that measurement --repeats times
for all-MiniLM-L6-v2's shape (12 heads of 32) at batch 16 up to 512 tokens, reports min / median / max
per length and kernel, the budget each repeat chose, and the last-level cache sysfs reports, which the
budget replaced: on a shared virtual machine sysfs reports the host socket's whole cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from train import attention
from train.results import cpu_features, cpu_model, cpu_slug

ROOT = Path(__file__).resolve().parent.parent
HEADS, HEAD_DIM = 12, 32  # all-MiniLM-L6-v2 (and DistilBERT has 12 heads of 64)


def measure(batch_size: int, max_length: int, dtype: torch.dtype, repeats: int) -> dict[str, Any]:
    lengths = list(range(attention.MEASURE_STEP * 2, max_length, attention.MEASURE_STEP)) + [max_length]
    runs = [attention.measure_kernels(batch_size, HEADS, HEAD_DIM, lengths, dtype) for _ in range(repeats)]
    table = []
    for i, length in enumerate(lengths):
        row: dict[str, Any] = {"length": length, "scores_mib": runs[0][i]["scores_mib"]}
        for kernel in ("matmul", "sdpa"):
            ms = sorted(run[i][f"{kernel}_s"] * 1000 for run in runs)
            row[kernel] = {"min": ms[0], "median": statistics.median(ms), "max": ms[-1]}
        table.append(row)
    return {
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "dtype": str(dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "heads": HEADS,
        "head_dim": HEAD_DIM,
        "repeats": repeats,
        "budgets_mib": [attention.budget_from_measurements(run) for run in runs],
        "sysfs_last_level_cache_mib": attention.last_level_cache_mib(),
        "table": table,
    }


def _spread(stats: dict[str, float]) -> str:
    return " / ".join(f"{stats[key]:.1f}" for key in ("min", "median", "max"))


def markdown(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {row['length']} | {row['scores_mib']:.1f} | {_spread(row['matmul'])} | {_spread(row['sdpa'])} | "
        + ("matmul" if row["matmul"]["median"] <= row["sdpa"]["median"] else "SDPA") + " |"
        for row in result["table"]
    )
    return (
        f"# Attention kernels on this CPU: matmul against SDPA, forward + backward ({result['dtype']})\n\n"
        f"CPU: {result['cpu']} ({result['threads']} threads; {', '.join(result['cpu_features'])}); "
        f"torch {result['torch']}. Batch {result['batch_size']} x {result['heads']} heads x {result['head_dim']}; "
        f"ms min / median / max over {result['repeats']} repeats, each the median of "
        f"{attention.MEASURE_REPEATS} timed calls.\n\n"
        "| length | scores (MiB) | matmul ms | SDPA ms | faster |\n|---:|---:|---:|---:|---|\n"
        f"{rows}\n\n"
        "Budget chosen by each repeat (MiB of scores run as matmul attention): "
        + ", ".join(f"{b:.1f}" for b in result["budgets_mib"])
        + f". The last-level cache sysfs reports: {result['sysfs_last_level_cache_mib']:.0f} MiB.\n\n"
        "Reproduce: `python -m bench.attention_budget`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    result = measure(args.batch_size, args.max_length, getattr(torch, args.dtype), args.repeats)
    name = f"attention_budget_{cpu_slug()}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
