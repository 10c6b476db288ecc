"""What a run writes besides the model: results.json, test predictions, misclassified reviews.

results.json is the single source of every number the model card and the README show; its
layout is documented in the README ("Outputs"). It is written last and atomically, so its
presence marks a finished run.
"""

from __future__ import annotations

import json
import os
import platform
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

from train.config import LABELS
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


def dataset_statistics(splits: DatasetDict, name: str, max_length: int) -> dict[str, Any]:
    """Counts, label balance, review lengths in words and tokens, and a word-length histogram by label."""
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
        stats["label_counts"][split] = {n: int((labels == i).sum()) for i, n in enumerate(LABELS)}
        stats["length"][split] = {
            "words": _summary(words),
            "tokens": _summary(tokens),
            "over_max_length_share": float((tokens > max_length).mean()),
        }
        edges = np.histogram_bin_edges(words, bins=30, range=(0, max(1, np.percentile(words, 99))))
        stats["length_histogram"][split] = {
            "bin_edges_words": [float(e) for e in edges],
            **{n: np.histogram(words[labels == i], bins=edges)[0].tolist() for i, n in enumerate(LABELS)},
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


def predictions_table(test: Dataset, prob_positive: np.ndarray) -> pd.DataFrame:
    labels = np.asarray(test["label"])
    preds = (prob_positive >= 0.5).astype(int)
    names = np.asarray(LABELS)
    return pd.DataFrame(
        {
            "text": test["text"],
            "label": names[labels],
            "pred": names[preds],
            "prob_positive": prob_positive,
            "confidence": np.where(preds == 1, prob_positive, 1 - prob_positive),
            "n_tokens": test["n_tokens"],
            "correct": labels == preds,
        }
    )


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
    wrong = table[~table["correct"]].sort_values("confidence", ascending=False)
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
