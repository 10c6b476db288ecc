"""Benchmark: the reference recipe and the project's recipe, trained side by side in one run.

    python -m bench.train_speed --model minilm               # time to accuracy, real weights ($BASE_MODEL)
    python -m bench.train_speed --model distilbert-random    # samples/s, DistilBERT-shaped random model
    python -m bench.train_speed --dry_run --mode both        # CPU, tiny model, bundled sample: code path only

Each recipe is the project's own training command, `python -m train` with a preset and flags,
run as a subprocess (a fresh CUDA context, allocator statistics and compile cache per run) into
its own folder; every number comes from that run's results.json and TensorBoard log. Flags this
script does not know are passed on to every run (e.g. `--max_test_samples 1000`).

Modes:
- accuracy: each recipe trains as written, on the whole train split, and is evaluated on the
  whole test split. Gives test accuracy, training time and the train-time ratio.
- throughput: each recipe trains one pass over the same --throughput_samples reviews (default
  6,400) with no evaluation during training; gives samples/s and the samples/s ratio. The
  "x baseline" column divides each run's steady samples/s by the baseline recipe's (ablations).

Samples/s is reported twice: over the whole training call (start-up, first-step and compile
costs included), and "steady" over the logged steps after the first 20% (wall times of the
TensorBoard loss events), which is what a longer run would see (in accuracy mode the window
also holds the in-training evaluations). Samples are counted from the
epochs actually trained: transformers 5.17 reports the planned schedule's samples even when
early stopping ended training sooner. MFU counts model FLOPs on real tokens (bench/train_flops.py).

"val check" compares the final validation metrics with the in-training evaluation of the same
best checkpoint: they must agree; a mismatch means predictions came back in another order than
the labels (Trainer.predict with --group_by_length, bench/NOTES.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.random_models import build_random_model
from bench.train_flops import flops_per_sample, mfu, model_shape
from bench.train_padding import train_lengths
from train.config import parse_config
from train.errors import UserError, cli

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPES = ["reference=--preset reference", "project=--preset h100"]
H100_PEAK_TFLOPS = 790.0  # bf16 dense, measured on the project's H100 (../shared/device/README.md)
STEADY_SKIP = 0.2  # share of the logged steps left out of the steady-state window

# Throughput mode: one pass over --throughput_samples reviews, no evaluation until the end, small eval splits.
THROUGHPUT_FLAGS = [
    "--num_train_epochs", "1", "--eval_strategy", "steps", "--eval_steps", "1000000000",
    "--early_stopping_patience", "0", "--max_eval_samples", "256", "--max_test_samples", "256",
    "--no_baseline", "--logging_steps", "5",
]  # fmt: skip
# CPU dry-run: the bundled sample, short inputs, fp32 (fp16/bf16 need CUDA in the training command).
DRY_RUN_FLAGS = [
    "--dataset_name", str(ROOT / "data" / "imdb_sample"), "--validation_size", "0.2", "--precision", "fp32",
    "--max_length", "128", "--window_stride", "32", "--max_eval_samples", "32", "--max_test_samples", "64",
    "--per_device_eval_batch_size", "32",
]  # fmt: skip
DRY_RUN_ACCURACY_FLAGS = [
    "--max_train_samples",
    "128",
    "--num_train_epochs",
    "2",
    "--eval_steps",
    "4",
    "--logging_steps",
    "2",
]


def steady_samples_per_second(run_dir: Path, samples_per_step: int) -> float | None:
    """Samples/s between the TensorBoard loss events after the first STEADY_SKIP of the logged steps."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(run_dir.rglob("events.out.tfevents.*"))
    points = []
    for file in events:
        acc = EventAccumulator(str(file), size_guidance={"scalars": 0})
        acc.Reload()
        if "train/loss" in acc.Tags()["scalars"]:
            points += [(e.step, e.wall_time) for e in acc.Scalars("train/loss")]
    if not points:
        return None
    points.sort()
    last_step = points[-1][0]
    window = [p for p in points if p[0] >= STEADY_SKIP * last_step]
    if len(window) < 2 or window[-1][1] <= window[0][1]:
        return None
    (s0, t0), (s1, t1) = window[0], window[-1]
    return (s1 - s0) * samples_per_step / (t1 - t0)


def validation_check(record: dict[str, Any]) -> str:
    """ok when the final validation metrics equal the in-training evaluation of the best checkpoint."""
    best = record.get("best_checkpoint_step")
    evals = [e for e in record["log_history"] if e.get("step") == best and "eval_accuracy" in e]
    if best is None or not evals:
        return "n/a"
    final = record["metrics"]["validation"]
    for key in ("accuracy", "roc_auc"):
        a, b = evals[-1].get(f"eval_{key}"), final.get(key)
        if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
            continue
        if abs(a - b) > 0.005:
            return f"MISMATCH ({key} {a:.3f} in training, {b:.3f} final)"
    return "ok"


def summarise_run(
    record: dict[str, Any], run_dir: Path, lengths: np.ndarray, peak: float, model_path: Path
) -> dict[str, Any]:
    """One table row from a finished run. `model_path` is the base model the run started from: the shape
    is read from its config, since results.json names it portably (a folder name, not a loadable path)."""
    timings, hp, env = record["timings"], record["hyperparameters"], record["environment"]
    runtime = timings["train_runtime_s"]
    epochs = max(e.get("epoch", 0.0) for e in record["log_history"])
    samples = epochs * record["dataset"]["splits"]["train"]
    shape = model_shape(str(model_path))
    adapters = (
        record["model"]["trainable_parameters"] - shape.head_params if record["method"] == "lora" else 0
    )
    per_sample = flops_per_sample(lengths, shape, record["method"], adapters)
    samples_per_step = (
        hp["per_device_train_batch_size"] * hp["gradient_accumulation_steps"] * env["world_size"]
    )
    steady = steady_samples_per_second(run_dir, samples_per_step)
    on_gpu = env["device_type"] == "cuda"
    return {
        "train_s": runtime,
        "epochs": epochs,
        "samples_per_s": samples / runtime,
        "steady_samples_per_s": steady,
        "real_tokens_per_s": timings["train_tokens_per_second"],
        "mfu": mfu(per_sample.sum() * epochs, runtime, peak) if on_gpu else None,
        "steady_mfu": mfu(per_sample.mean() * steady, 1.0, peak) if on_gpu and steady else None,
        "trainer_estimate_mfu": mfu(timings["train_total_flos"], runtime, peak) if on_gpu else None,
        "peak_gib": timings["peak_gpu_memory_gib"],
        "test_accuracy": record["metrics"]["test"]["accuracy"],
        "test_accuracy_truncated": (record["metrics"].get("test_truncated") or {}).get("accuracy"),
        "test_reviews": record["metrics"]["test"]["num_examples"],
        "test_reviews_per_s": timings["test_samples_per_second"],
        "test_windows_reviews_per_s": timings.get("test_windows_reviews_per_second"),
        "val_check": validation_check(record),
        "precision": hp["precision"],
        "batch": hp["per_device_train_batch_size"],
        "learning_rate": hp["learning_rate"],
    }


def parse_recipe(text: str) -> tuple[str, list[str]]:
    name, _, flags = text.partition("=")
    if not name or not flags:
        raise UserError(f"--recipe {text!r}: write NAME=FLAGS, e.g. 'project=--preset h100'")
    return name, shlex.split(flags)


def job_argv(
    recipe_flags: list[str], mode: str, args: argparse.Namespace, passthrough: list[str]
) -> list[str]:
    """Flags for one run; later flags win, so: recipe < dry-run < mode < flags given to this script."""
    argv = [*recipe_flags, *(DRY_RUN_FLAGS if args.dry_run else [])]
    if mode == "throughput":
        argv += [*THROUGHPUT_FLAGS, "--max_train_samples", str(args.throughput_samples)]
    elif args.dry_run:
        argv += DRY_RUN_ACCURACY_FLAGS
    if args.dataset_name:
        argv += ["--dataset_name", args.dataset_name]
    return [*argv, *passthrough, "--model_name_or_path", str(args.model_path)]


def run_job(name: str, argv: list[str], run_dir: Path, log: Path) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "train", *argv, "--output_dir", str(run_dir), "--overwrite_output_dir",
           "--report_to", "tensorboard"]  # fmt: skip
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {shlex.join(cmd[1:])}", flush=True)
    started = time.time()
    with log.open("w") as out:
        code = subprocess.run(
            cmd,
            check=False,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ).returncode
    return time.time() - started, code


def mean_ratio(numerator: pd.Series, denominator: pd.Series) -> float | None:
    n, d = numerator.mean(), denominator.mean()  # NaN where a figure is missing
    return None if pd.isna(n) or pd.isna(d) else float(n / d)


def ratios(table: pd.DataFrame, baseline: str, target: str) -> dict[str, Any]:
    """Per mode: baseline train time / target train time, and target samples/s / baseline samples/s."""
    out: dict[str, Any] = {}
    if baseline == target:  # an ablation: each row against the baseline, no pair of recipes
        return out
    for mode, rows in table.groupby("mode"):
        ok = rows[rows["error"].isna()] if "error" in rows else rows
        base, new = ok[ok["recipe"] == baseline], ok[ok["recipe"] == target]
        if base.empty or new.empty:
            continue
        out[mode] = {
            "train_time_ratio": mean_ratio(base["train_s"], new["train_s"]),
            "samples_per_s_ratio_steady": mean_ratio(
                new["steady_samples_per_s"], base["steady_samples_per_s"]
            ),
            "samples_per_s_ratio_whole_run": mean_ratio(new["samples_per_s"], base["samples_per_s"]),
        }
    return out


def versus_baseline(table: pd.DataFrame, baseline: str) -> pd.Series:
    """Each run's steady samples/s over the baseline recipe's mean in the same mode (the ablation column)."""
    base = table[table["recipe"] == baseline].groupby("mode")["steady_samples_per_s"].mean()
    return table["steady_samples_per_s"] / table["mode"].map(base)


def noise(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """(max - min) / mean over repeats of the same recipe: the run-to-run noise of each figure."""
    out = {}
    ok = table[table["error"].isna()] if "error" in table else table
    for (mode, recipe), rows in ok.groupby(["mode", "recipe"]):
        if len(rows) < 2:
            continue
        spread = {}
        for column in ("train_s", "samples_per_s", "steady_samples_per_s", "test_accuracy"):
            values = rows[column].dropna()
            if len(values) >= 2 and values.mean():
                spread[column] = float((values.max() - values.min()) / values.mean())
        out[f"{mode}/{recipe}"] = spread
    return out


COLUMNS = {
    "mode": "mode", "recipe": "recipe", "run": "run", "train_s": "train s", "samples_per_s": "samples/s",
    "steady_samples_per_s": "samples/s steady", "vs_baseline": "x baseline (steady)", "real_tokens_per_s": "real tokens/s", "mfu": "MFU",
    "steady_mfu": "MFU steady", "trainer_estimate_mfu": "MFU (Trainer 6N·padded)", "peak_gib": "peak GiB",
    "test_accuracy": "test acc",
    "test_accuracy_truncated": "test acc, truncated (windows off)", "test_reviews_per_s": "test reviews/s", "test_windows_reviews_per_s": "test reviews/s, windows", "val_check": "val check", "wall_s": "wall s",
}  # fmt: skip


def to_markdown(report: dict[str, Any], table: pd.DataFrame) -> str:
    shown = table[[c for c in COLUMNS if c in table]].rename(columns=COLUMNS).astype(object)
    shown = shown.map(lambda v: "n/a" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else v)
    lines = [
        f"# {report['title']}",
        "",
        report["label"],
        "",
        f"Environment: {report['environment_line']}",
        "",
    ]
    lines += [shown.to_markdown(index=False), ""]
    if "error" in table and table["error"].notna().any():
        lines += (
            ["Failed runs:", ""]
            + [f"- {r.recipe} #{r.run}: {r.error}" for r in table.itertuples() if isinstance(r.error, str)]
            + [""]
        )
    for mode, r in report["ratios"].items():
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}x"
        lines.append(
            f"- {mode}: train-time ratio ({report['baseline']} / {report['target']}) {fmt(r['train_time_ratio'])}; "
            f"samples/s ratio ({report['target']} / {report['baseline']}) steady {fmt(r['samples_per_s_ratio_steady'])}, "
            f"whole run {fmt(r['samples_per_s_ratio_whole_run'])}. "
            + (
                "CPU dry-run: says nothing about the 5x targets."
                if report["dry_run"]
                else "Targets: 5x each."
            )
        )
    for key, spread in report["noise"].items():
        lines.append(f"- noise {key}: " + ", ".join(f"{k} {v:.1%}" for k, v in spread.items()))
    lines += ["", f"MFU: {report['flop_count']}", "", f"Benchmark: `{report['invocation']}`", "", "Runs:", ""]
    lines += [f"- {name}: `python -m train {cmd}`" for name, cmd in report["commands"].items()]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Other flags go to every `python -m train` run."
    )
    p.add_argument(
        "--model",
        choices=["minilm", "distilbert-random", "tiny-random"],
        help="default: minilm, or tiny-random with --dry_run",
    )
    p.add_argument(
        "--mode",
        choices=["accuracy", "throughput", "both"],
        help="default: throughput for random models, else accuracy",
    )
    p.add_argument(
        "--base_model",
        default=os.environ.get("BASE_MODEL"),
        help="all-MiniLM-L6-v2 folder (default: $BASE_MODEL)",
    )
    p.add_argument(
        "--dataset_name",
        help="IMDb train/test folder (default: $IMDB_DATA; the bundled sample with --dry_run)",
    )
    p.add_argument(
        "--recipe", action="append", help="NAME=FLAGS, repeatable (default: reference and project)"
    )
    p.add_argument("--baseline", default="reference", help="recipe the ratios divide by")
    p.add_argument("--target", default="project", help="recipe the ratios are for")
    p.add_argument(
        "--throughput_samples", type=int, help="reviews per throughput run (default 6400; 480 with --dry_run)"
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="train each recipe this many times, interleaved (noise)"
    )
    p.add_argument("--repeat_recipes", help="comma-separated recipes that --repeat applies to (default: all)")
    p.add_argument(
        "--peak_tflops",
        type=float,
        default=H100_PEAK_TFLOPS,
        help="the accelerator's bf16 peak, for MFU (bench/gpu_run.sh measures it)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the tables go")
    p.add_argument(
        "--work_dir", type=Path, default=Path("/tmp/train_speed"), help="run folders (models: large)"
    )
    p.add_argument("--name", help="file stem of the tables (default: train_speed_<model>_<mode>)")
    p.add_argument(
        "--dry_run", action="store_true", help="CPU: tiny model, bundled sample, fp32, a few steps"
    )
    args, passthrough = p.parse_known_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.model = args.model or ("tiny-random" if args.dry_run else "minilm")
    args.mode = args.mode or ("accuracy" if args.model == "minilm" else "throughput")
    if args.dataset_name is None and not args.dry_run:
        args.dataset_name = os.environ.get("IMDB_DATA")
    args.throughput_samples = args.throughput_samples or (480 if args.dry_run else 6400)
    args.name = args.name or (
        "train_speed_cpu_dryrun" if args.dry_run else f"train_speed_{args.model}_{args.mode}"
    )
    return args, passthrough


def environment_line(env: dict[str, Any]) -> str:
    versions = ", ".join(f"{p} {env.get(p)}" for p in ("torch", "transformers", "peft", "accelerate"))
    return (
        f"{env['device']} ({env['device_type']}, {env['cpu_count']} CPUs), Python {env['python']}, {versions}"
    )


def lengths_key(argv: list[str]) -> tuple:
    """What decides the train split's token counts: runs that agree on it share one tokenization."""
    config = parse_config(argv)
    m = config.model
    return (
        m.model_name_or_path,
        m.max_length,
        m.truncation,
        m.head_tokens,
        config.run.seed,
        repr(config.data),
    )


def write_report(
    args: argparse.Namespace, recipes: dict[str, list[str]], rows: list[dict], commands: dict[str, str]
) -> None:
    """Tables after every run, so that a call stopped at its time limit still returns what finished."""
    table = pd.DataFrame(rows)
    environment = next((r["environment"] for r in rows if "environment" in r), None)
    if environment is None:
        return
    table = table.drop(columns=["environment"])
    if "steady_samples_per_s" in table:
        table["vs_baseline"] = versus_baseline(table, args.baseline)
    label = (
        "**CPU DRY-RUN: checks the code path only. These are not GPU figures; every GPU figure is still open.** "
        "Tiny random model, bundled 1,500-review sample, fp32, a few steps; MFU is not computed on CPU."
        if args.dry_run
        else f"Measured on {environment['device']}, all runs in one invocation of bench/train_speed.py."
    )
    report = {
        "title": f"Training speed: {', '.join(recipes)} ({args.model}, {args.mode})",
        "label": label,
        "dry_run": args.dry_run,
        "model": args.model,
        "mode": args.mode,
        "baseline": args.baseline,
        "target": args.target,
        "peak_tflops": args.peak_tflops,
        "flop_count": (
            f"model FLOPs on real (unpadded) tokens, 6·N·l + 12·layers·d·l² per review for full fine-tuning "
            f"(bench/train_flops.py), over the whole training call, against {args.peak_tflops:g} TFLOP/s. "
            "'MFU (Trainer 6N·padded)' is the Trainer's total_flos: it counts padding and leaves out attention."
        ),
        "environment": environment,
        "environment_line": environment_line(environment),
        "ratios": ratios(table, args.baseline, args.target),
        "noise": noise(table),
        "invocation": shlex.join(["python", "-m", "bench.train_speed", *args.argv]),
        "commands": commands,
        "rows": table.replace({np.nan: None}).to_dict(orient="records"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / args.name
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    table.to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".md").write_text(to_markdown(report, table))


@cli
def main(argv: list[str] | None = None) -> None:
    args, passthrough = parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise UserError(
            "no CUDA GPU here: the benchmark's figures need one; use --dry_run to check the code path"
        )
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.model == "minilm":
        if not args.base_model or not Path(args.base_model).is_dir():
            raise UserError("--model minilm needs the all-MiniLM-L6-v2 folder: --base_model or $BASE_MODEL")
        args.model_path = Path(args.base_model).resolve()
    else:
        shape = {"distilbert-random": "distilbert", "tiny-random": "tiny-distilbert"}[args.model]
        args.model_path = build_random_model(args.work_dir / args.model, shape)

    recipes = dict(parse_recipe(r) for r in (args.recipe or DEFAULT_RECIPES))
    repeated = set(args.repeat_recipes.split(",")) if args.repeat_recipes else set(recipes)
    modes = ["throughput", "accuracy"] if args.mode == "both" else [args.mode]
    rows: list[dict[str, Any]] = []
    commands: dict[str, str] = {}
    lengths_cache: dict[tuple, np.ndarray] = {}
    for mode in modes:
        for run in range(1, args.repeat + 1):
            for name, flags in recipes.items():
                if run > 1 and name not in repeated:
                    continue
                argv_job = job_argv(flags, mode, args, passthrough)
                commands[f"{mode}/{name}"] = shlex.join(argv_job).replace(f"{ROOT}/", "")
                stem = f"{mode}-{name}-{run}"
                run_dir, log = args.work_dir / stem, args.work_dir / f"{stem}.log"
                wall, code = run_job(f"{mode}/{name} #{run}", argv_job, run_dir, log)
                row: dict[str, Any] = {"mode": mode, "recipe": name, "run": run, "wall_s": wall}
                if code != 0:
                    tail = log.read_text().strip().splitlines()[-15:]
                    print("\n".join(tail), flush=True)
                    rows.append({**row, "error": f"exit {code}: {tail[-1] if tail else ''}"})
                    continue
                record = json.loads((run_dir / "results.json").read_text())
                key = lengths_key(argv_job)
                if key not in lengths_cache:
                    lengths_cache[key] = train_lengths(argv_job)[0]
                peak = args.peak_tflops * 1e12
                row.update(summarise_run(record, run_dir, lengths_cache[key], peak, args.model_path))
                rows.append({**row, "environment": record["environment"]})
                print(f"    train {row['train_s']:.1f} s, {row['samples_per_s']:.1f} samples/s "
                      f"(steady {row['steady_samples_per_s'] or float('nan'):.1f}), test acc {row['test_accuracy']:.4f}, "
                      f"val check {row['val_check']}", flush=True)  # fmt: skip
                write_report(args, recipes, rows, commands)
    if not any("environment" in r for r in rows):
        raise UserError(f"every run failed: see the logs in {args.work_dir}")
    print((args.out / args.name).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
