"""`--sweep a,b,c`: train one run per preset and compare them in one table.

Each preset trains in OUT/<preset>/ with the same data and seed; command-line flags still apply
on top of every preset. The table (sweep.csv, sweep.md) ranks by validation F1 (macro F1 for more classes, RMSE
for ratings), the metric that chose the preset, and shows test metrics beside it; sweep.json names the best preset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from train.config import Config, parse_config
from train.errors import UserError
from train.task import from_record

logger = logging.getLogger("train.sweep")


# The test metrics a sweep table shows beside the ranking metric, by kind of task.
TEST_COLUMNS = {"binary": ("accuracy", "f1", "precision", "recall"), "classes": ("accuracy", "f1_macro", "f1_weighted"),
                "regression": ("mae", "rmse", "within_one", "spearman")}  # fmt: skip


def sweep_row(preset: str, run_dir: Path) -> tuple[dict, bool]:
    """A run's row, ranked by the validation metric the task picks checkpoints by (F1, macro F1 or RMSE), and
    whether higher is better for it."""
    record = json.loads((run_dir / "results.json").read_text())
    hp, test = record["hyperparameters"], record["metrics"]["test"]
    task = from_record(record.get("task"))
    metric, higher_is_better = task.best_metric("f1")
    kind = "regression" if task.regression else "binary" if task.binary else "classes"
    return {
        "preset": preset,
        "learning_rate": hp["learning_rate"],
        "batch_size": hp["per_device_train_batch_size"],
        "epochs": hp["num_train_epochs"],
        "weight_decay": hp["weight_decay"],
        f"validation_{metric}": record["metrics"]["validation"][metric],
        **{key: test[key] for key in TEST_COLUMNS[kind]},
        "train_runtime_s": record["timings"]["train_runtime_s"],
        "run_dir": run_dir.name,
    }, higher_is_better


def run_sweep(argv: list[str], config: Config, train_one: Callable[[Config], Path]) -> Path:
    """Train each preset with `train_one` (the training command's, passed in: this module is its helper)."""
    names = [n.strip() for n in config.run.sweep.split(",") if n.strip()]
    if len(names) < 2:
        raise UserError("--sweep needs at least two comma-separated presets, e.g. --sweep standard,high-lr")
    out = Path(config.run.output_dir)
    configs = {}
    for name in names:  # parse all first, so an unknown preset fails before any training
        configs[name] = parse_config(argv, preset=name)
        configs[name].run.output_dir = str(out / name)
    rows = []
    for name, preset_config in configs.items():
        logger.info("sweep: training preset %s", name)
        row, higher_is_better = sweep_row(name, train_one(preset_config))
        rows.append(row)
    ranking = next(key for key in rows[0] if key.startswith("validation_"))
    table = pd.DataFrame(rows).sort_values(ranking, ascending=not higher_is_better)
    table.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    best = table.iloc[0]["preset"]
    (out / "sweep.json").write_text(json.dumps({"best_preset": best, "runs": rows}, indent=2))
    logger.info("sweep: best preset %s\n%s", best, table.to_string(index=False))
    return out
