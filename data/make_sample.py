"""Rebuild the bundled IMDb sample from the full official dataset (../shared/data/imdb).

The sample lets the demo and the tests run on real reviews on a fresh machine without the Hub.
Stratified and seeded, so rebuilding it gives the same rows:
    python data/make_sample.py ../shared/data/imdb
"""

import argparse
from pathlib import Path

import pandas as pd

SIZES = {"train": 1000, "test": 500}
SEED = 42


def stratified_sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    per_class = n // df["label"].nunique()
    parts = [g.sample(per_class, random_state=seed) for _, g in df.groupby("label")]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="folder with train.parquet and test.parquet")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "imdb_sample")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for split, n in SIZES.items():
        df = pd.read_parquet(args.source / f"{split}.parquet")
        sample = stratified_sample(df, n, SEED)
        sample.to_parquet(
            args.out / f"{split}.parquet", compression="zstd", compression_level=19, index=False
        )
        print(f"{split}: {len(sample)} rows, {sample['label'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
