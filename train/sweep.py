"""`--sweep a,b,c`: train one run per preset and compare them in one table.

Each preset trains in OUT/<preset>/ with the same data and seed; command-line flags still apply
on top of every preset. The table (sweep.csv, sweep.md) ranks by validation F1, the metric that
chose the preset, and shows test metrics beside it; sweep.json names the best preset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from train.config import Config, parse_config
from train.errors import UserError

logger = logging.getLogger("train.sweep")


def sweep_row(preset: str, run_dir: Path) -> dict:
    record = json.loads((run_dir / "results.json").read_text())
    hp, test = record["hyperparameters"], record["metrics"]["test"]
    return {
        "preset": preset,
        "learning_rate": hp["learning_rate"],
        "batch_size": hp["per_device_train_batch_size"],
        "epochs": hp["num_train_epochs"],
        "weight_decay": hp["weight_decay"],
        "validation_f1": record["metrics"]["validation"]["f1"],
        "accuracy": test["accuracy"],
        "f1": test["f1"],
        "precision": test["precision"],
        "recall": test["recall"],
        "train_runtime_s": record["timings"]["train_runtime_s"],
        "run_dir": run_dir.name,
    }


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
        rows.append(sweep_row(name, train_one(preset_config)))
    table = pd.DataFrame(rows).sort_values("validation_f1", ascending=False)
    table.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    best = table.iloc[0]["preset"]
    (out / "sweep.json").write_text(json.dumps({"best_preset": best, "runs": rows}, indent=2))
    logger.info("sweep: best preset %s\n%s", best, table.to_string(index=False))
    return out
