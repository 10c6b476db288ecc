"""Benchmark: where one training step of all-MiniLM-L6-v2 goes on this CPU, setting by setting.

    python -m bench.cpu_step                 # writes bench/results/cpu_step.{md,json}

One process, the settings one after another: float32 against bf16 autocast, the checkpoint's
dropout against attention dropout 0 and no dropout, the attention kernels at five lengths,
inference beside training, and the optimizer step alone (for-loop, foreach and fused AdamW). Each
row is the median of --steps timed steps after two warm-up steps, repeated --repeats times with
min / median / max over the repeats. These are the measurements behind the training command's CPU
defaults (bench/NOTES.md, "CPU training"); the command's own end-to-end speed is bench/train_cpu_speed.py.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification

from bench.train_cpu_speed import default_model
from train import attention
from train.results import cpu_features, cpu_model

ROOT = Path(__file__).resolve().parent.parent


def timed(step: Callable[[], None], steps: int) -> float:
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def load(
    model_dir: str, dropout: float | None, attention_dropout: float | None, attn: str
) -> torch.nn.Module:
    overrides: dict[str, Any] = {}
    if dropout is not None:
        overrides.update(hidden_dropout_prob=dropout, classifier_dropout=dropout)
    if attention_dropout is not None:
        overrides["attention_probs_dropout_prob"] = attention_dropout
    if attn in ("matmul", attention.NAME):  # matmul: the same kernel with no size limit
        attn = attention.register(math.inf if attn == "matmul" else None)
    return AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, dtype=torch.float32, attn_implementation=attn, **overrides
    )


def step_rate(model_dir: str, setting: dict[str, Any], steps: int) -> float:
    """Samples/s of one setting: a training step (forward, backward, fused AdamW) or a no-grad forward."""
    torch.manual_seed(0)
    model = load(model_dir, setting["dropout"], setting["attention_dropout"], setting["attn"])
    batch, length, bf16 = setting["batch"], setting["length"], setting["precision"] == "bf16"
    ids = torch.randint(1000, 20000, (batch, length))
    mask = torch.ones_like(ids)
    mask[0, length - length // 8 :] = 0  # one padded review, as in a length-grouped batch
    labels = torch.randint(0, 2, (batch,))
    if setting["mode"] == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)

        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    else:
        model.eval()

        def step() -> None:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(input_ids=ids, attention_mask=mask)

    return batch / timed(step, steps)


def step_profile(model_dir: str, length: int = 256, top: int = 8) -> list[dict[str, Any]]:
    """Where one bf16 training step's time goes: torch.profiler's operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = load(model_dir, 0.0, 0.0, "sdpa")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids = torch.randint(1000, 20000, (16, length))
    labels = torch.randint(0, 2, (16,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    timed(step, 1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {"op": e.key, "share": e.self_cpu_time_total / total, "ms": e.self_cpu_time_total / 1000}
        for e in events[:top]
    ]


def optimizer_ms(model_dir: str, variant: str, steps: int) -> float:
    model = load(model_dir, None, None, "sdpa")
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    kwargs = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[variant]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, **kwargs)
    return 1000 * timed(optimizer.step, steps)


def settings() -> list[dict[str, Any]]:
    base = {"mode": "train", "attn": "sdpa", "batch": 16, "length": 256}
    rows = []
    for precision in ("fp32", "bf16"):
        for dropout, attention_dropout in ((None, None), (None, 0.0), (0.0, 0.0)):
            rows.append(
                {**base, "precision": precision, "dropout": dropout, "attention_dropout": attention_dropout}
            )
    # Attention kernels: transformers' eager (float32 mask), plain matmul attention in bf16, SDPA, and the
    # training command's CPU default, which picks one of the last two by the size of the score tensor.
    fast = {**base, "precision": "bf16", "dropout": 0.0, "attention_dropout": 0.0}
    rows.append({**fast, "attn": "eager"})
    for length in (128, 256, 288, 320, 384):
        rows += [{**fast, "attn": attn, "length": length} for attn in ("sdpa", "matmul")]
    rows.append({**fast, "attn": "sdpa", "length": 512, "batch": 8})
    for attn in ("sdpa", "matmul", attention.NAME):
        rows.append({**base, "mode": "inference", "batch": 64, "precision": "bf16", "attn": attn,
                     "dropout": None, "attention_dropout": None})  # fmt: skip
    rows.append({**base, "mode": "inference", "batch": 64, "precision": "fp32", "dropout": None,
                 "attention_dropout": None})  # fmt: skip
    return rows


def label(s: dict[str, Any]) -> str:
    def rate(value: float | None) -> str:
        return "checkpoint's (0.1)" if value is None else f"{value:g}"

    return (f"| {s['mode']} | {s['precision']} | {rate(s['dropout'])} | {rate(s['attention_dropout'])} "
            f"| {s['attn']} | {s['batch']} x {s['length']} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2 from PyPI)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per setting")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    model_dir = args.model or default_model()

    rows = []
    for setting in settings():
        rates = [step_rate(model_dir, setting, args.steps) for _ in range(args.repeats)]
        rows.append({**setting, "samples_per_second": rates})
        print(label(setting), " ".join(f"{r:.1f}" for r in rates), flush=True)
    optim = {
        v: [optimizer_ms(model_dir, v, args.steps) for _ in range(args.repeats)]
        for v in ("loop", "foreach", "fused")
    }

    profile_rows = step_profile(model_dir)
    report = {"cpu": cpu_model(), "cpu_features": cpu_features(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "rows": rows, "adamw_ms": optim, "profile_bf16_16x256": profile_rows}  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu_step.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# One training step of all-MiniLM-L6-v2 on this CPU, setting by setting",
        "",
        f"CPU: {report['cpu']} ({report['threads']} threads; {', '.join(report['cpu_features'])}); "
        f"torch {report['torch']}. Samples/s: min / median / max over {args.repeats} measurements, each the "
        f"median of {args.steps} steps. Training steps include the fused AdamW update.",
        "",
        "| mode | precision | hidden dropout | attention dropout | attention | batch | samples/s (min / median / max) |",
        "|---|---|---|---|---|---|---:|",
        *(
            f"{label(r)} {min(r['samples_per_second']):.1f} / {statistics.median(r['samples_per_second']):.1f} "
            f"/ {max(r['samples_per_second']):.1f} |"
            for r in rows
        ),
        "",
        "AdamW step over all 22.7M weights, ms (min / median / max): "
        + "; ".join(
            f"{v} {min(m):.1f} / {statistics.median(m):.1f} / {max(m):.1f}" for v, m in optim.items()
        ),
        "",
        "Where one bf16 training step (batch 16 x 256, no dropout, SDPA, fused AdamW) spends its time, "
        "torch.profiler, operators by self CPU time:",
        "",
        "| operator | share | ms |",
        "|---|---:|---:|",
        *(f"| `{p['op'][:60]}` | {p['share']:.1%} | {p['ms']:.0f} |" for p in profile_rows),
        "",
        "Reproduce: `python -m bench.cpu_step`",
        "",
    ]
    (out / "cpu_step.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
