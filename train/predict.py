"""`python -m train.predict`: the quick check of a trained or published model.

    python -m train.predict --model runs/demo --text "A wonderful film." --text "Dull."
    python -m train.predict --model user/imdb-sentiment --file reviews.csv --text_column review

Prints one line per review: the label, its confidence, and the start of the text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from train.errors import UserError, cli


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
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise UserError('nothing to classify: give --text "a review" or --file with reviews')
    return texts


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
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = parser.parse_args(argv)
    texts = read_texts(args)

    from transformers import pipeline  # slow import: only once the input is known to be usable

    try:
        classifier = pipeline("text-classification", model=args.model)
    except (OSError, ValueError) as err:
        raise UserError(f"could not load model {args.model} ({str(err).splitlines()[0]})") from None
    outputs = classifier(texts, batch_size=args.batch_size, truncation=True)
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
