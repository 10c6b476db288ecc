"""What a run writes besides the model: results.json, test predictions, misclassified reviews.

results.json is the single source of every number the model card and the README show; its
layout is documented in the README ("Outputs"). It is written last and atomically, so its
presence marks a finished run.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset, DatasetDict

from train.metrics import predictions, top_confidence
from train.task import SENTIMENT, Task
from train.errors import UserError

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "test_predictions.csv"
MISCLASSIFIED_FILE = "misclassified.csv"
SCHEMA_VERSION = 1


def _summary(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": int(values.max()),
    }


def dataset_statistics(splits: DatasetDict, name: str, max_length: int, task: Task = SENTIMENT) -> dict[str, Any]:
    """Counts, label balance (per class, or per rating), lengths in words and tokens, a word-length histogram by
    class (one series, `all`, for ratings)."""
    stats: dict[str, Any] = {
        "name": name,
        "splits": {},
        "label_counts": {},
        "length": {},
        "length_histogram": {},
    }
    for split, ds in splits.items():
        labels = np.asarray(ds["label"])
        words = np.asarray([len(t.split()) for t in ds["text"]])
        tokens = np.asarray(ds["n_tokens"])
        stats["splits"][split] = len(ds)
        if task.regression:
            stats["label_counts"][split] = {f"{v:g}": int((labels == v).sum()) for v in np.unique(labels)}
            series = {"all": np.ones(len(labels), dtype=bool)}
        else:
            stats["label_counts"][split] = {n: int((labels == i).sum()) for i, n in enumerate(task.labels)}
            series = {n: labels == i for i, n in enumerate(task.labels)}
        stats["length"][split] = {
            "words": _summary(words),
            "tokens": _summary(tokens),
            "over_max_length_share": float((tokens > max_length).mean()),
        }
        edges = np.histogram_bin_edges(words, bins=30, range=(0, max(1, np.percentile(words, 99))))
        stats["length_histogram"][split] = {
            "bin_edges_words": [float(e) for e in edges],
            **{n: np.histogram(words[rows], bins=edges)[0].tolist() for n, rows in series.items()},
        }
    return stats


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _cpuinfo(field: str) -> str | None:
    """The first value of `field` in /proc/cpuinfo (Linux), or None."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    """The processor's name (platform.processor() is often empty on Linux)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_slug() -> str:
    """The processor's name as a file-name part ("amd-epyc"), so results of each CPU kind sit side by side."""
    return re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")


def cpu_features() -> list[str]:
    """The CPU flags that decide the fast path: AVX-512, its bf16 and int8 (VNNI) extensions, AMX."""
    flags = set((_cpuinfo("flags") or "").split())
    return sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"})


def environment(world_size: int, precision: str) -> dict[str, Any]:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {
        "python": sys.version.split()[0],
        **{p: _version(p) for p in ("torch", "transformers", "peft", "datasets", "accelerate")},
        "device": device,
        "device_type": "cuda" if torch.cuda.is_available() else "cpu",
        "num_devices": torch.cuda.device_count() if torch.cuda.is_available() else 1,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "world_size": world_size,
        "precision": precision,
    }


def predictions_table(test: Dataset, scores: np.ndarray, task: Task = SENTIMENT) -> pd.DataFrame:
    """test_predictions.csv: each test review with its label, prediction and scores (the columns suit the task)."""
    labels = np.asarray(test["label"])
    if task.regression:
        error = scores - labels
        return pd.DataFrame({"text": test["text"], "label": labels, "pred": scores, "error": error,
                             "n_tokens": test["n_tokens"], "correct": np.abs(np.rint(scores) - labels) <= 1})  # fmt: skip
    preds, names = predictions(scores), np.asarray(task.labels)
    by_class = {"prob_positive": scores} if task.binary else {f"prob_{n}": scores[:, i] for i, n in enumerate(names)}
    columns = {"text": test["text"], "label": names[labels], "pred": names[preds]}
    if task.binary:
        columns.update(by_class)
    columns.update(confidence=top_confidence(scores), n_tokens=test["n_tokens"], correct=labels == preds)
    if not task.binary:
        columns.update(by_class)
    return pd.DataFrame(columns)


def portable_name(name: str) -> str:
    """A model or dataset as a reader of a committed or published file knows it, never this machine's path.

    A Hub id stays as it is; a local path becomes relative to the working directory when it lies in
    the project or beside it (`../shared/...`), and otherwise its folder name.
    """
    path = Path(name)
    if not path.exists() and not path.is_absolute():
        return name
    relative = os.path.relpath(path.resolve(), Path.cwd())
    return relative if not relative.startswith(os.path.join(os.pardir, os.pardir)) else path.resolve().name


def portable_command(module: str, argv: list[str]) -> str:
    """The command line that made a run, each local path in it made portable as in portable_name."""
    return shlex.join(["python", "-m", module, *(portable_name(arg) for arg in argv)])


def portable_config(config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every option as given, with local paths made portable as in portable_name."""
    paths = {"model_name_or_path", "dataset_name", "train_file", "test_file", "output_dir", "config"}
    return {
        group: {k: portable_name(v) if k in paths and isinstance(v, str) else v for k, v in values.items()}
        for group, values in config.items()
    }


def write_json_atomic(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True))
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (Path, torch.dtype)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_predictions(table: pd.DataFrame, out_dir: Path) -> None:
    table.to_csv(out_dir / PREDICTIONS_FILE, index=False)
    wrong = table[~table["correct"]]
    # Most confident mistakes first; for ratings, the largest errors first.
    wrong = wrong.sort_values("confidence", ascending=False) if "confidence" in wrong else wrong.iloc[
        (-wrong["error"].abs()).argsort(kind="stable")]  # fmt: skip
    wrong.to_csv(out_dir / MISCLASSIFIED_FILE, index=False)


def is_finished(out_dir: Path, results_file: str = RESULTS_FILE) -> bool:
    return (out_dir / results_file).is_file()


def claim_output_dir(
    out: Path, results_file: str, overwrite: bool, keep: bool = False, what: str = "run"
) -> Path:
    """Check --output_dir before any work: a finished run there needs --overwrite_output_dir (and is then
    removed, unless `keep`: --resume continues it), and a file is refused."""
    if is_finished(out, results_file):
        if not overwrite:
            raise UserError(
                f"{out} already holds a finished {what}: choose another --output_dir or pass --overwrite_output_dir"
            )
        if not keep:
            shutil.rmtree(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file: --output_dir must name a folder")
    return out
