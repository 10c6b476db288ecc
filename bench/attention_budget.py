"""Benchmark: where matmul attention stops paying on this CPU, as the training command decides it.

    python -m bench.attention_budget          # writes bench/results/attention_budget_<cpu>.{md,json}

`python -m train` on a CPU measures both attention kernels (forward and backward, the run's batch size,
heads, precision and lengths) at start-up and runs plain matmul attention while a batch's scores fit in
the budget that measurement implies, and larger batches in chunks of half of it for as long as chunks beat SDPA
(train/attention.py). This repeats that measurement --repeats times for all-MiniLM-L6-v2's shape (12 heads
of 32) at batch 16 up to 512 tokens, reports min / median / max per length and kernel, the budget and chunk
limit each repeat chose, and the last-level cache sysfs reports, which the budget replaced: on a shared
virtual machine sysfs reports the host socket's whole cache.
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
    runs = []
    for _ in range(repeats):  # each repeat as a training run's start-up measures: the budget, then the chunks
        run = attention.measure_kernels(batch_size, HEADS, HEAD_DIM, lengths, dtype)
        runs.append(attention.measure_chunked(run, HEADS, HEAD_DIM, dtype, attention.budget_from_measurements(run)))
    table = []
    for i, length in enumerate(lengths):
        row: dict[str, Any] = {"length": length, "scores_mib": runs[0][i]["scores_mib"]}
        for kernel in ("matmul", "sdpa", "chunked"):
            ms = sorted(run[i][f"{kernel}_s"] * 1000 for run in runs if f"{kernel}_s" in run[i])
            if ms:
                row[kernel] = {"min": ms[0], "median": statistics.median(ms), "max": ms[-1]}
        row["chunks"] = sorted({run[i]["chunk"] for run in runs if "chunk" in run[i]})
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
        "chunked_max_review_mib": [attention.chunked_limit_from_measurements(run) for run in runs],
        "sysfs_last_level_cache_mib": attention.last_level_cache_mib(),
        "table": table,
    }


def _spread(stats: dict[str, float] | None) -> str:
    return " / ".join(f"{stats[key]:.1f}" for key in ("min", "median", "max")) if stats else "-"


def _fastest(row: dict[str, Any]) -> str:
    names = {"matmul": "matmul", "sdpa": "SDPA", "chunked": "chunked matmul"}
    return names[min((kernel for kernel in names if kernel in row), key=lambda kernel: row[kernel]["median"])]


def markdown(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {row['length']} | {row['scores_mib']:.1f} | {_spread(row['matmul'])} | {_spread(row['sdpa'])} | "
        f"{_spread(row.get('chunked'))} | {', '.join(map(str, row.get('chunks', []))) or '-'} | {_fastest(row)} |"
        for row in result["table"]
    )
    return (
        f"# Attention kernels on this CPU: matmul, SDPA and matmul in batch chunks, forward + backward ({result['dtype']})\n\n"
        f"CPU: {result['cpu']} ({result['threads']} threads; {', '.join(result['cpu_features'])}); "
        f"torch {result['torch']}. Batch {result['batch_size']} x {result['heads']} heads x {result['head_dim']}; "
        f"ms min / median / max over {result['repeats']} repeats, each the median of "
        f"{attention.MEASURE_REPEATS} timed calls.\n\n"
        "Chunked matmul is measured where the whole batch's scores exceed that repeat's budget, in chunks of as many "
        f"reviews as fit in {attention.CHUNK_SHARE:g} of it.\n\n"
        "| length | scores (MiB) | matmul ms | SDPA ms | chunked matmul ms | reviews a chunk | fastest |\n"
        "|---:|---:|---:|---:|---:|---|---|\n"
        f"{rows}\n\n"
        "Budget chosen by each repeat (MiB of scores run as one matmul attention): "
        + ", ".join(f"{b:.1f}" for b in result["budgets_mib"])
        + "; one review's scores up to which chunks beat SDPA: "
        + ", ".join(f"{b:.2f}" for b in result["chunked_max_review_mib"])
        + f" MiB. The last-level cache sysfs reports: {result['sysfs_last_level_cache_mib']:.0f} MiB.\n\n"
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
