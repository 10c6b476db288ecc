"""Rebuild the bundled samples from the full official IMDb dataset (../shared/data/imdb).

The samples let the demo and the tests run on real reviews on a fresh machine without the Hub.
Stratified and seeded, so rebuilding them gives the same rows:
    python data/make_sample.py ../shared/data/imdb

- imdb_sample/: 1,000 train and 500 test reviews, NEGATIVE/POSITIVE (0/1), half each.
- three_way_sample/: 300 train and 150 test reviews labelled negative / neutral / positive from their star
  ratings (meta/*_provenance.parquet): negative 1-2 stars, neutral 4 or 7 stars (IMDb keeps no 5-6 star
  review, so the most lukewarm it has), positive 9-10 stars, a third each, plus each review's `rating`. It
  keeps the N-class path tested; it is not a neutral-sentiment corpus.
"""

import argparse
from pathlib import Path

import pandas as pd

SIZES = {"train": 1000, "test": 500}
THREE_WAY_SIZES = {"train": 300, "test": 150}
THREE_WAY = {1: "negative", 2: "negative", 4: "neutral", 7: "neutral", 9: "positive", 10: "positive"}
SEED = 42


def stratified_sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    per_class = n // df["label"].nunique()
    parts = [g.sample(per_class, random_state=seed) for _, g in df.groupby("label")]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def three_way(source: Path, split: str) -> pd.DataFrame:
    """The split's reviews with their star ratings, labelled by THREE_WAY (other ratings dropped)."""
    df = pd.read_parquet(source / f"{split}.parquet")
    ratings = pd.read_parquet(source / "meta" / f"{split}_provenance.parquet")["rating"]
    df = df.assign(rating=ratings.to_numpy())
    df = df[df["rating"].isin(list(THREE_WAY))]
    return df.assign(label=df["rating"].map(THREE_WAY))[["text", "label", "rating"]]


def write(sample: pd.DataFrame, out: Path, split: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sample.to_parquet(out / f"{split}.parquet", compression="zstd", compression_level=19, index=False)
    print(f"{out.name}/{split}: {len(sample)} rows, {sample['label'].value_counts().to_dict()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="folder with train.parquet, test.parquet and meta/")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    for split, n in SIZES.items():
        df = pd.read_parquet(args.source / f"{split}.parquet")
        write(stratified_sample(df, n, SEED), args.out / "imdb_sample", split)
    for split, n in THREE_WAY_SIZES.items():
        write(stratified_sample(three_way(args.source, split), n, SEED), args.out / "three_way_sample", split)


if __name__ == "__main__":
    main()
