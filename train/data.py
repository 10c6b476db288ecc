"""Load IMDb-style reviews from the Hub or local files into clean train / validation / test splits.

The official test split is kept whole (unless --max_test_samples) and used only for the final
evaluation; model selection uses a stratified, seeded validation split held out of train.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Value, load_dataset

from train.config import DataArguments
from train.errors import UserError
from train.task import CLASSIFICATION, REGRESSION, Task, classes_from, rating_task

# datasets' packaged builders, by file extension.
FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}
BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
logger = logging.getLogger("train.data")


def load_file(path: Path) -> Dataset:
    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise UserError(f"{path} has an unsupported extension: use one of {', '.join(FILE_BUILDERS)}")
    if not path.is_file():
        raise UserError(f"{path} does not exist: check the path")
    kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        return load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as err:  # noqa: BLE001 - datasets raises many types for unreadable files
        logger.debug("reading %s failed", path, exc_info=True)
        raise UserError(f"could not read {path} as {builder}: {str(err).splitlines()[0]}") from err


def _load_aclimdb_split(folder: Path) -> Dataset:
    # datasets has folder builders for images and audio but none for one-text-per-file, so the
    # original archive layout (pos/*.txt, neg/*.txt) is read here.
    rows = {"text": [], "label": []}
    for label, sub in ((0, "neg"), (1, "pos")):
        for file in sorted((folder / sub).glob("*.txt")):
            rows["text"].append(file.read_text(encoding="utf-8", errors="replace"))
            rows["label"].append(label)
    return Dataset.from_dict(rows)


def find_split_file(folder: Path, split: str) -> Path | None:
    for ext in FILE_BUILDERS:
        if (folder / f"{split}{ext}").is_file():
            return folder / f"{split}{ext}"
    return None


def load_hub_dataset(name: str, config_name: str | None = None, split: str | None = None, *, what: str):
    """A dataset from the Hub by id; a name that looks like a local path but is not there is refused first.

    `datasets` raises many exception types for one cause (offline, missing repo or split, gated), so
    all are turned into one sentence; the cause stays chained and is logged at debug level.
    """
    if Path(name).suffix or Path(name).is_absolute() or name.startswith("."):
        raise UserError(f"{name} does not exist: give {what}, or a Hub dataset id like stanfordnlp/imdb")
    try:
        return load_dataset(name, config_name, split=split)
    except Exception as err:  # noqa: BLE001 - one sentence for the user, the cause chained and logged
        logger.debug("loading %s from the Hub failed", name, exc_info=True)
        part = f"split {split!r} of " if split else ""
        raise UserError(
            f"could not load {part}dataset {name} from the Hub ({type(err).__name__}): check the id and your "
            f"network, or give {what}"
        ) from err


def validation_count(size: float, available: int, flag: str = "--validation_size") -> int | float:
    """A held-out size as `train_test_split` takes it: a fraction below 1, else a count."""
    held = int(size) if size >= 1 else size
    if not 0 < held < available:
        raise UserError(f"{flag} {size} must be a fraction in (0, 1) or a count below {available}")
    return held


def load_raw(args: DataArguments) -> DatasetDict:
    """Return the raw train and test splits from files, a local folder, or the Hub."""
    if args.train_file or args.test_file:
        if not (args.train_file and args.test_file):
            raise UserError("give both --train_file and --test_file, or a folder with --dataset_name")
        return DatasetDict(train=load_file(Path(args.train_file)), test=load_file(Path(args.test_file)))

    local = Path(args.dataset_name)
    if local.is_dir():
        if (local / "train" / "pos").is_dir():
            splits = {s: _load_aclimdb_split(local / s) for s in ("train", "test")}
            return DatasetDict(splits)
        files = {s: find_split_file(local, s) for s in ("train", "test")}
        missing = [s for s, f in files.items() if f is None]
        if missing:
            raise UserError(
                f"{local} has no {' or '.join(missing)} file: expected train.<ext> and test.<ext> "
                f"({', '.join(FILE_BUILDERS)}) or the aclImdb layout train/pos, train/neg, test/pos, test/neg"
            )
        return DatasetDict({s: load_file(f) for s, f in files.items()})
    loaded = load_hub_dataset(args.dataset_name, args.dataset_config_name, what="a local folder")
    for split in ("train", "test"):
        if split not in loaded:
            raise UserError(
                f"dataset {args.dataset_name} has no {split!r} split (it has {', '.join(loaded)})"
            )
    return DatasetDict(train=loaded["train"], test=loaded["test"])


def infer_task(ds: Dataset, args: DataArguments) -> Task:
    """The task the training labels describe (train/task.py), read before any split is cleaned."""
    check_columns(ds, args, "train")
    values = ds[args.label_column]
    if args.task == REGRESSION:
        return rating_task(values, args.rating_midpoint)
    feature = ds.features.get(args.label_column)
    return classes_from(values, args.label_names, feature.names if isinstance(feature, ClassLabel) else None)


def read_task(train: Dataset, args: DataArguments) -> Task:
    """The task of a prepared train split: its ClassLabel's names, or the rating statistics of its labels."""
    if args.task == REGRESSION:
        return rating_task(train["label"], args.rating_midpoint)
    return Task(CLASSIFICATION, tuple(train.features["label"].names))


def check_columns(ds: Dataset, args: DataArguments, split: str) -> None:
    for column, flag in ((args.text_column, "--text_column"), (args.label_column, "--label_column")):
        if column not in ds.column_names:
            raise UserError(
                f"the {split} data has no column {column!r} (it has {', '.join(ds.column_names)}): "
                f"name the right one with {flag}"
            )


def normalise(ds: Dataset, args: DataArguments, split: str, task: Task) -> Dataset:
    """Keep `text` and `label` (a class id typed as the task's ClassLabel, or a float rating), checked and cleaned."""
    check_columns(ds, args, split)
    if len(ds) == 0:
        raise UserError(f"the {split} split is empty: check the data files")
    texts = ds[args.text_column]
    labels = task.label_ids(ds[args.label_column], f"{split} split")
    if args.clean_html:
        texts = [BR_TAG.sub(" ", t or "") for t in texts]
    out = Dataset.from_dict({"text": [t or "" for t in texts], "label": labels})
    if task.regression:
        return out.cast_column("label", Value("float32"))
    if len(set(labels)) < 2:
        raise UserError(
            f"the {split} split has only one class ({task.labels[labels[0]]}): "
            + ("both classes are needed" if task.binary else "at least two classes are needed")
        )
    return out.cast_column("label", ClassLabel(names=list(task.labels)))


def _split(ds: Dataset, seed: int, **size: int | float) -> DatasetDict:
    """train_test_split, stratified by class where the labels are classes (ratings are split at random)."""
    stratify = {"stratify_by_column": "label"} if isinstance(ds.features["label"], ClassLabel) else {}
    return ds.train_test_split(seed=seed, **size, **stratify)


def stratified_subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    if n is None or n >= len(ds):
        return ds
    if n < 2:
        raise UserError(f"a subset of {n} example(s) cannot hold both classes: ask for at least 2")
    return _split(ds, seed, train_size=n)["train"]


def prepare_splits(args: DataArguments, seed: int) -> DatasetDict:
    """Clean train/validation(/calibration)/test splits: held out of train, subsets stratified (classes) and seeded.

    The calibration split (--calibration_size) is held out before the train subset is drawn, so the
    temperature is fitted on reviews that neither trained the model nor chose its checkpoint.
    """
    raw = load_raw(args)
    task = infer_task(raw["train"], args)
    train = normalise(raw["train"], args, "train", task)
    test = normalise(raw["test"], args, "test", task)
    held = _split(train, seed, test_size=validation_count(args.validation_size, len(train)))
    splits = {"validation": stratified_subset(held["test"], args.max_eval_samples, seed)}
    train = held["train"]
    if args.calibration_size:
        cal = _split(train, seed, test_size=validation_count(args.calibration_size, len(train), "--calibration_size"))
        train, splits["calibration"] = cal["train"], cal["test"]
    return DatasetDict(
        train=stratified_subset(train, args.max_train_samples, seed),
        **splits,
        test=stratified_subset(test, args.max_test_samples, seed),
    )
