"""IMDb's reviews with their star ratings, as train/test parquet files that `python -m train --task regression` reads.

The official dataset keeps each review's rating (1-4 for negative reviews, 7-10 for positive) only in its file
names; ../shared/data/imdb/meta/*_provenance.parquet holds it row for row with train.parquet and test.parquet.
    python data/imdb_ratings.py ../shared/data/imdb runs/imdb-ratings
writes runs/imdb-ratings/{train,test}.parquet with the columns text, label (the two-class label) and rating.
"""

import argparse
from pathlib import Path

import pandas as pd


def with_ratings(source: Path, split: str) -> pd.DataFrame:
    reviews = pd.read_parquet(source / f"{split}.parquet")
    provenance = pd.read_parquet(source / "meta" / f"{split}_provenance.parquet")
    if len(provenance) != len(reviews) or (provenance["row"].to_numpy() != range(len(reviews))).any():
        raise SystemExit(f"{split}: the provenance rows do not match the reviews row for row")
    return reviews.assign(rating=provenance["rating"].to_numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder with train.parquet, test.parquet and meta/")
    parser.add_argument("out", type=Path, help="folder to write train.parquet and test.parquet to")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        df = with_ratings(args.source, split)
        df.to_parquet(args.out / f"{split}.parquet", index=False)
        print(f"{split}: {len(df)} reviews, ratings {df['rating'].value_counts().sort_index().to_dict()}")


if __name__ == "__main__":
    main()
