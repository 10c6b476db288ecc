"""`python -m train.predict`: the quick check of a trained or published model.

    python -m train.predict --model runs/demo --text "A wonderful film." --text "Dull."
    python -m train.predict --model user/imdb-sentiment --file reviews.csv --text_column review
    python -m train.predict --model user/imdb-sentiment --windows --max_length 512 --file reviews.csv

Prints one line per review: the label, its confidence, and the start of the text. Reviews are read as
in training (`<br />` tags replaced by spaces). By default a review longer than the model's input is
cut to its start, as `pipeline` does; with --windows it is read as overlapping windows whose
probabilities are averaged, as the training command's --eval_windows scores the test split.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from train.config import ModelArguments
from train.data import BR_TAG
from train.errors import UserError, cli

# The training command's --window_stride default, so `--windows` alone reads reviews as its test split did.
DEFAULT_WINDOW_STRIDE = ModelArguments.window_stride


def read_texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.text or [])
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"{path} does not exist: check the path given to --file")
        if path.suffix.lower() in (".csv", ".tsv"):
            table = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
            if args.text_column not in table.columns:
                raise UserError(
                    f"{path} has no column {args.text_column!r} (it has {', '.join(map(str, table.columns))}): "
                    "name it with --text_column"
                )
            texts += table[args.text_column].fillna("").astype(str).tolist()
        else:
            texts += [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    texts = [BR_TAG.sub(" ", t) for t in texts if t.strip()]
    if not texts:
        raise UserError('nothing to classify: give --text "a review" or --file with reviews')
    return texts


def window_scores(
    model: Any, tokenizer: Any, texts: list[str], max_length: int, stride: int, batch_size: int
) -> np.ndarray:
    """Each review's class probabilities: the mean over its overlapping windows (one window if it fits).

    Windows of all reviews are batched together, so a long review costs its windows and no more.
    """
    import torch  # slow import: only once the input is known to be usable

    enc = tokenizer(
        texts, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True
    )
    review = np.asarray(enc.pop("overflow_to_sample_mapping"))
    features = [{k: enc[k][i] for k in enc} for i in range(len(review))]
    probabilities = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = tokenizer.pad(features[start : start + batch_size], return_tensors="pt")
            logits = model(**batch).logits.float()
            # A rating model's output is the rating itself; windows average values, not probabilities.
            regression = model.config.problem_type == "regression"
            probabilities.append((logits if regression else logits.softmax(-1)).numpy())
    window_probs = np.concatenate(probabilities)
    sums = np.zeros((len(texts), window_probs.shape[1]))
    np.add.at(sums, review, window_probs)
    return sums / np.bincount(review, minlength=len(texts))[:, None]


def check_stride(stride: int, max_length: int) -> None:
    """The training command's rule: neighbours share fewer than half a window, so every window moves on."""
    if not 0 <= stride < max_length // 2:
        raise UserError(
            f"--window_stride {stride} must be below half of the window length ({max_length}): "
            "windows overlap by that many tokens"
        )


def classify(args: argparse.Namespace, texts: list[str]) -> list[dict]:
    """[{label, score}] per review, cut to --max_length (pipeline) or as --windows."""
    from transformers import pipeline  # slow import: only once the input is known to be usable

    try:
        classifier = pipeline("text-classification", model=args.model)
    except (OSError, ValueError) as err:
        raise UserError(f"could not load model {args.model} ({str(err).splitlines()[0]})") from None
    model, tokenizer = classifier.model.eval(), classifier.tokenizer
    limit = min(tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", 512))
    max_length = args.max_length or limit
    if max_length > limit:
        raise UserError(f"--max_length {max_length} is more than the model reads ({limit} tokens): lower it")
    if not args.windows:
        return classifier(texts, batch_size=args.batch_size, truncation=True, max_length=max_length)
    check_stride(args.window_stride, max_length)
    probs = window_scores(model, tokenizer, texts, max_length, args.window_stride, args.batch_size)
    labels = model.config.id2label
    if model.config.problem_type == "regression":
        return [{"label": labels[0], "score": float(p[0])} for p in probs]
    return [{"label": labels[int(p.argmax())], "score": float(p.max())} for p in probs]


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m train.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="a run's output folder or a Hub model id")
    parser.add_argument("--text", action="append", help="a review to classify (repeatable)")
    parser.add_argument("--file", help="a .txt file (one review per line) or a .csv/.tsv file")
    parser.add_argument("--text_column", default="text", help="the review column of a CSV/TSV file")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument(
        "--windows",
        action="store_true",
        help="read a review longer than --max_length as overlapping windows and average their probabilities",
    )
    parser.add_argument(
        "--max_length", type=int, help="tokens read per review, or per window (default: all the model reads)"
    )
    parser.add_argument(
        "--window_stride",
        type=int,
        default=DEFAULT_WINDOW_STRIDE,
        help=f"with --windows: tokens shared by neighbouring windows (default {DEFAULT_WINDOW_STRIDE}, "
        "as in training)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = parser.parse_args(argv)
    if args.windows and args.max_length:
        check_stride(args.window_stride, args.max_length)  # before the model loads
    texts = read_texts(args)
    outputs = classify(args, texts)
    for text, out in zip(texts, outputs):
        if args.json:
            print(json.dumps({"label": out["label"], "score": round(out["score"], 6), "text": text}))
        else:
            snippet = " ".join(text.split())
            snippet = snippet if len(snippet) <= 70 else snippet[:67] + "..."
            print(f"{out['label']:<8} {out['score']:.3f}  {snippet}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
