"""Compare every run gpu_run.sh brought back from the GPU; put the best full and LoRA runs in results/.

    python -m bench.train_compare FOLDER... --results results

Reads every results.json under the folders (the tarballs of bench/gpu_run.sh, unpacked) and writes
results/comparison.{md,csv}: one row per run, test figures for every run, nothing left out. The
best run of each method is picked on validation F1, the metric that picks checkpoints too, and
only among runs evaluated on the whole 25,000-review test split: choosing on test accuracy would
report the luckiest of several test scores. Its results.json, model card, figures and MLM-stage
record are copied to results/full/ and results/lora/; benchmark tables to results/benchmark/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from model_card.names import IMDB_TEST_SIZE
from train.errors import UserError, cli

RUN_FILES = ("results.json", "README.md", "mlm_results.json")
BEST_METHODS = ("full", "lora")  # each best run goes to results/<method>/


def dropout_label(overrides: dict | None) -> str:
    """Hidden / attention dropout as the run set them ("ckpt": the checkpoint's own, e.g. 0.1)."""
    o = overrides or {}
    hidden = o.get("hidden_dropout_prob", o.get("dropout"))
    attention = o.get("attention_probs_dropout_prob", o.get("attention_dropout"))
    return "/".join("ckpt" if v is None else f"{v:g}" for v in (hidden, attention))


def comparison_row(path: Path, root: Path) -> dict:
    record = json.loads(path.read_text())
    hp, model, metrics = record["hyperparameters"], record["model"], record["metrics"]
    epochs = max((e.get("epoch", 0.0) for e in record["log_history"]), default=None)
    return {
        "run": str(path.parent.relative_to(root)),
        "method": record["method"],
        "base": Path(record["base_model"]).name,
        "mlm stage": (path.parent / "mlm_results.json").is_file(),
        "preset": record.get("preset"),
        "precision": hp["precision"],
        "lr": hp["learning_rate"],
        "batch": hp["per_device_train_batch_size"],
        "epochs": epochs,
        "truncation": model["truncation"],
        "dropout hidden/attn": dropout_label(model.get("dropout")),
        "trainable %": 100 * model["trainable_share"],
        "val f1": metrics["validation"]["f1"],
        "test reviews": metrics["test"]["num_examples"],
        "test acc": metrics["test"]["accuracy"],
        "test acc, truncated": (metrics.get("test_truncated") or {}).get("accuracy"),
        "test f1": metrics["test"]["f1"],
        "train s": record["timings"]["train_runtime_s"],
        "test reviews/s": record["timings"]["test_samples_per_second"],
        "test reviews/s, windows": record["timings"].get("test_windows_reviews_per_second"),
        "device": record["environment"]["device"],
    }


def copy_run(run_dir: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for item in run_dir.iterdir():
        if item.name in RUN_FILES or item.suffix == ".png":
            shutil.copy2(item, target / item.name)


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument(
        "--test_reviews",
        type=int,
        default=IMDB_TEST_SIZE,
        help="only runs evaluated on this many test reviews (the whole split) can be picked as best",
    )
    args = parser.parse_args(argv)
    rows, dirs = [], {}
    for folder in args.folders:
        for path in sorted(folder.rglob("results.json")):
            row = comparison_row(path, folder)
            rows.append(row)
            dirs[row["run"]] = path.parent
    if not rows:
        raise UserError(f"no results.json under {', '.join(map(str, args.folders))}")
    table = pd.DataFrame(rows).sort_values(["method", "val f1"], ascending=[True, False])
    args.results.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.results / "comparison.csv", index=False)
    lines = [
        "# Every run tried",
        "",
        f"Best of each method picked on validation F1 among runs evaluated on all {args.test_reviews:,} test reviews.",
        "",
    ]
    if (table["device"] == "cpu").any():
        lines += [
            "**Runs on CPU: a dry-run of the code path (tiny models, a few steps), not measurements.**",
            "",
        ]
    complete = table[table["test reviews"] == args.test_reviews]
    for method in BEST_METHODS:
        candidates = complete[complete["method"] == method]
        if candidates.empty:
            continue
        best = candidates.iloc[0]
        copy_run(dirs[best["run"]], args.results / method)
        lines.append(
            f"- best {method}: `{best['run']}`, test accuracy {best['test acc']:.4f} -> results/{method}/"
        )
        if not (args.results / method / "README.md").is_file():
            print(f"warning: {best['run']} has no card: python -m model_card build {args.results / method}")
    (args.results / "comparison.md").write_text(
        "\n".join(lines) + "\n\n" + table.to_markdown(index=False, floatfmt=".4g") + "\n"
    )
    bench = args.results / "benchmark"
    for folder in args.folders:
        # Sorted: where two stages wrote a table of the same name (a step cut short in call 1 and run
        # again in call 2), the later stage's (speed after accuracy) is the one kept.
        for table_file in sorted(folder.rglob("train_speed_*")):
            bench.mkdir(exist_ok=True)
            shutil.copy2(table_file, bench / table_file.name)
    print((args.results / "comparison.md").read_text())


if __name__ == "__main__":
    main()
