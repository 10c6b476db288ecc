"""Uploaded review files: reading .txt/.csv/.tsv/.jsonl/.xlsx, and writing the results CSV and summary.

People upload what their tools write: Excel saves CSV with semicolons in many locales, "Unicode
text" as UTF-16 with tabs, older Windows tools save Windows-1252 or Shift-JIS, and workbooks are
.xlsx. So text files are decoded by their byte-order mark, else as UTF-8, else in the encoding
charset-normalizer detects; delimited files have their delimiter sniffed, and a workbook's first
sheet is read like a CSV. Every problem with a file raises `SpaceError` with one sentence a person
can act on; the UI and the API turn it into a `gr.Error`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer
import numpy as np
import pandas as pd
from task import KIND_BINARY, Task

SUPPORTED_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".xlsx")
# Byte-order marks and their codecs, longest first (UTF-32 LE's mark starts with UTF-16 LE's).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# When charset-normalizer finds several encodings equally likely (a short file whose only non-ASCII
# bytes are a few accents, quotes and a euro sign decodes without error in most Windows code pages),
# the first of these among them wins: the code pages Windows itself writes in Western Europe and the
# Americas, then Central Europe. Otherwise its own ranking stands.
PREFERRED_ON_A_TIE = ("cp1252", "cp1250")
# Delimiters a CSV/TSV upload may use: Excel writes ";" where "," is the decimal separator.
DELIMITERS = (",", ";", "\t", "|")
# How much of a delimited file the delimiter is sniffed from.
SNIFF_CHARS = 64 * 1024
# Column (or JSON field) names taken as the review text, in order of preference, case-insensitive.
TEXT_COLUMN_NAMES = (
    "text",
    "review",
    "reviews",
    "review_text",
    "review_body",
    "content",
    "comment",
    "body",
    "sentence",
)
# Columns the results add; an uploaded column with the same name is kept under an `input_` prefix.
RESULT_COLUMNS = ("predicted_label", "score", "windows")
# ... for a rating model: the rating, its side of the midpoint (where config.json has one), windows.
RATING_COLUMNS = ("rating", "side", "windows")
HISTOGRAM_BINS = 10

# A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class SpaceError(ValueError):
    """The Space's one error type: an input it cannot use (an upload, a deploy setting, a token).

    The message is one sentence for the person, saying what is wrong and what to do; it never holds a token.
    """


@dataclass(frozen=True)
class Limits:
    """What one upload may contain; shown in the UI and enforced before any model work."""

    max_bytes: int = 10 * 1024 * 1024
    max_rows: int = 2000
    max_chars: int = 30_000

    def describe(self) -> str:
        return (
            f"up to {self.max_bytes / 1024 / 1024:g} MB and {self.max_rows:,} reviews per file, "
            f"{self.max_chars:,} characters per review"
        )


@dataclass
class ReviewTable:
    """The uploaded rows (all columns kept, as text) and which column holds the reviews."""

    frame: pd.DataFrame
    text_column: str
    encoding: str | None = None  # how the file was decoded (None for a workbook), shown in the summary

    @property
    def texts(self) -> list[str]:
        return self.frame[self.text_column].tolist()


def read_reviews(path: Path, text_column: str | None, limits: Limits) -> ReviewTable:
    """Read an uploaded file into a `ReviewTable`, checking every limit before the model runs."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise SpaceError(
            f"'{path.name}' is not a supported file type: upload {', '.join(SUPPORTED_SUFFIXES)}."
        )
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise SpaceError(
            f"'{path.name}' is {size / 1024 / 1024:.1f} MB; the limit is "
            f"{limits.max_bytes / 1024 / 1024:g} MB. Split it into smaller files."
        )
    if suffix == ".xlsx":
        frame = _read_xlsx(path)
        table = ReviewTable(frame, _choose_column([str(c) for c in frame.columns], text_column, path.name))
    else:
        text, encoding = _decode(path.read_bytes(), path.name)
        if not text.strip():
            raise SpaceError(f"'{path.name}' is empty: there are no reviews to classify.")
        if suffix == ".jsonl":
            table = _read_jsonl(text, path.name, text_column)
        elif (sep := _delimiter(text, suffix)) is None:
            lines = [line.strip() for line in text.splitlines()]
            table = ReviewTable(pd.DataFrame({"text": [line for line in lines if line]}), "text")
        else:
            table = _read_delimited(text, path.name, sep, text_column)
        table.encoding = encoding
    _check_rows(table, path.name, limits)
    return table


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """The text and the encoding read: the byte-order mark's (UTF-8, UTF-16, UTF-32), else UTF-8, else
    the one charset-normalizer detects; a file that is none of these is refused in one sentence.

    The mark is checked before the binary test because UTF-16 text is full of zero bytes.
    """
    encoding = next((codec for bom, codec in BOMS if data.startswith(bom)), None)
    if encoding is None and b"\x00" in data[:8192]:
        raise SpaceError(
            f"'{name}' looks like a binary file, not text: upload reviews as UTF-8 text "
            "(or UTF-16 with a byte-order mark, Excel's 'Unicode text')."
        )
    try:
        return data.decode(encoding or "utf-8"), encoding or "utf-8"
    except UnicodeDecodeError as exc:
        if encoding is not None:
            raise SpaceError(
                f"'{name}' is not {encoding.upper().removesuffix('-SIG')} text (byte 0x{data[exc.start]:02x} "
                f"at position {exc.start:,}): save it as UTF-8 and upload it again."
            ) from None
        detected = _detect_encoding(data)
        if detected is None:
            raise SpaceError(
                f"'{name}' is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start:,}) "
                "and its encoding could not be recognised: save it as UTF-8 and upload it again."
            ) from None
        return data.decode(detected), detected


def _detect_encoding(data: bytes) -> str | None:
    """charset-normalizer's most likely encoding of `data` (ties broken by PREFERRED_ON_A_TIE), or None."""
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    tied = [m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    return next((e for e in PREFERRED_ON_A_TIE if e in tied), best.encoding)


def sniff_delimiter(text: str, suffix: str) -> str:
    """The delimiter that splits the header and the rows into the same number of fields.

    Each of DELIMITERS is tried with a quote-aware parse of the file's start; the one that gives
    a header of two or more columns and the most rows of that width wins, the suffix's own
    (tab for .tsv, comma for .csv) on a tie. A review's commas or semicolons are not mistaken for
    columns, because they make the rows' widths disagree with the header's. A one-column file
    gets the suffix's delimiter.
    """
    default = "\t" if suffix == ".tsv" else ","
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS:  # drop the row the cut went through
        sample = sample[: sample.rfind("\n") + 1] or sample
    best, best_score = default, (0.0, False)
    for delimiter in DELIMITERS:
        rows = [row for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        agreeing = sum(len(row) == width for row in rows[1:]) / max(1, len(rows) - 1)
        score = (agreeing, delimiter == default)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _delimiter(text: str, suffix: str) -> str | None:
    """The delimiter of a table upload, or None for a .txt that is a list of reviews.

    A .txt is a table when its first line is tab-separated names, one of them a text column:
    Excel's "Unicode text" export is such a file; a plain list of reviews is not.
    """
    if suffix != ".txt":
        return sniff_delimiter(text, suffix)
    header = text.split("\n", 1)[0].rstrip("\r").split("\t")
    return "\t" if len(header) > 1 and detect_column(header) is not None else None


def _read_xlsx(path: Path) -> pd.DataFrame:
    """The first sheet of an Excel workbook, every cell as text, the first row as the header."""
    try:
        frame = pd.read_excel(path, sheet_name=0, dtype=str, keep_default_na=False, na_filter=False)
    except Exception as exc:  # noqa: BLE001 - openpyxl and zipfile raise many kinds for a bad workbook
        raise SpaceError(
            f"'{path.name}' could not be read as an Excel workbook ({type(exc).__name__}): "
            "save it again as .xlsx, or as CSV."
        ) from exc
    if frame.empty and not len(frame.columns):
        raise SpaceError(f"'{path.name}' is empty: there are no reviews to classify.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _choose_column(columns: Sequence[str], requested: str | None, name: str) -> str:
    """The user's column if given, else the first column whose name says it holds review text."""
    if requested:
        if requested not in columns:
            raise SpaceError(
                f"'{name}' has no column '{requested}'; its columns are: {', '.join(map(str, columns))}."
            )
        return requested
    by_name = {str(c).strip().lower(): c for c in columns}
    for candidate in TEXT_COLUMN_NAMES:
        if candidate in by_name:
            return by_name[candidate]
    raise SpaceError(
        f"'{name}' has no text column: none of its columns ({', '.join(map(str, columns))}) is called "
        f"{', '.join(TEXT_COLUMN_NAMES[:3])}, …; rename one, or choose it under 'Text column'."
    )


def _read_delimited(text: str, name: str, sep: str, requested: str | None) -> ReviewTable:
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, csv.Error) as exc:
        kind = "TSV" if sep == "\t" else f"CSV separated by '{sep}'"
        raise SpaceError(f"'{name}' could not be read as {kind}: {exc}".strip()) from None
    return ReviewTable(frame, _choose_column([str(c) for c in frame.columns], requested, name))


def _read_jsonl(text: str, name: str, requested: str | None) -> ReviewTable:
    """One JSON object (the text in a field found by name) or one JSON string (the text) per line."""
    records: list[dict[str, object] | str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpaceError(f"Line {number} of '{name}' is not valid JSON: {exc.msg}.") from None
        if not isinstance(value, (dict, str)):
            raise SpaceError(f"Line {number} of '{name}' is not a JSON object or string.")
        records.append(value)
    keys = list(dict.fromkeys(str(k) for r in records if isinstance(r, dict) for k in r))
    column = _choose_column(keys, requested, name) if keys else (requested or "text")
    rows = [r if isinstance(r, dict) else {column: r} for r in records]
    frame = pd.DataFrame.from_records(rows, columns=keys or [column])
    frame = frame.astype(object).where(frame.notna(), "")
    frame[column] = frame[column].map(lambda v: v if isinstance(v, str) else json.dumps(v))
    return ReviewTable(frame, column)


def _check_rows(table: ReviewTable, name: str, limits: Limits) -> None:
    rows = len(table.frame)
    if rows > limits.max_rows:
        raise SpaceError(
            f"'{name}' has {rows:,} reviews; the limit is {limits.max_rows:,} per file. "
            "Split it into smaller files."
        )
    if not any(t.strip() for t in table.texts):
        raise SpaceError(f"'{name}' has no review text in column '{table.text_column}'.")
    lengths = [len(t) for t in table.texts]
    longest = int(np.argmax(lengths))
    if lengths[longest] > limits.max_chars:
        raise SpaceError(
            f"Review {longest + 1:,} in '{name}' is {lengths[longest]:,} characters long; "
            f"the limit is {limits.max_chars:,} per review."
        )


def neutralise_formula(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with ', leaving numbers alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def results_frame(
    table: ReviewTable,
    predictions: Sequence[dict[str, object] | None],
    labels: Sequence[str],
    task: Task | None = None,
) -> pd.DataFrame:
    """Every uploaded row with its predicted label, score and one probability column per class (for a
    rating model: its rating and side of the midpoint, `rating_frame`).

    Rows without text keep their place with empty results, so the output lines up with the input.
    """
    if task is not None and task.is_rating:
        return rating_frame(table, predictions, task)
    frame = table.frame.copy()
    added = [*RESULT_COLUMNS, *(f"prob_{label}" for label in labels)]
    frame = frame.rename(columns={c: f"input_{c}" for c in frame.columns if c in added})
    empty = {"label": "", "score": np.nan, "windows": 0, "probabilities": {}}
    rows = [p if p is not None else empty for p in predictions]
    frame["predicted_label"] = [r["label"] for r in rows]
    frame["score"] = [r["score"] for r in rows]
    for label in labels:
        frame[f"prob_{label}"] = [r["probabilities"].get(label, np.nan) for r in rows]  # type: ignore[union-attr]
    frame["windows"] = [r["windows"] for r in rows]
    return frame


def rating_frame(
    table: ReviewTable, predictions: Sequence[dict[str, object] | None], task: Task
) -> pd.DataFrame:
    """Every uploaded row with its rating, its side of the midpoint (a column only where the model has a
    midpoint) and its windows; rows without text get an empty rating."""
    frame = table.frame.copy()
    added = tuple(c for c in RATING_COLUMNS if c != "side" or task.rating_midpoint is not None)
    frame = frame.rename(columns={c: f"input_{c}" for c in frame.columns if c in added})
    empty = {"rating": np.nan, "side": "", "windows": 0}
    rows = [p if p is not None else empty for p in predictions]
    for column in added:
        frame[column] = [(r[column] or "") if column == "side" else r[column] for r in rows]
    return frame


def write_results_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write the results CSV with formula-like text cells neutralised (numbers stay numbers)."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_formula)
    safe.columns = [neutralise_formula(str(c)) for c in safe.columns]
    safe.to_csv(path, index=False, float_format="%.6f")
    return path


def summarize(
    frame: pd.DataFrame, labels: Sequence[str], positive_label: str, task: Task | None = None
) -> dict[str, object]:
    """Counts per label, share positive and a histogram of P(positive) over the classified rows.

    For more than two classes: counts and shares per class, and a histogram of the predicted class's
    probability; for a rating model `rating_summary`.
    """
    if task is not None and task.is_rating:
        return rating_summary(frame, task)
    classified = frame[frame["predicted_label"] != ""]
    counts = {label: int((classified["predicted_label"] == label).sum()) for label in labels}
    binary = task is None or task.kind == KIND_BINARY
    column = f"prob_{positive_label}" if binary else "score"
    scores = classified[column].to_numpy(dtype=float)
    hist, edges = np.histogram(scores, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    n = len(classified)
    shares = {"share_positive": float(counts[positive_label] / n) if n else 0.0} if binary else {
        "shares": {label: float(count / n) if n else 0.0 for label, count in counts.items()}}  # fmt: skip
    return {
        "rows": len(frame),
        "classified": int(n),
        "empty_rows": int(len(frame) - n),
        "counts": counts,
        **shares,
        "split_into_windows": int((classified["windows"] > 1).sum()),
        "histogram": {
            "probability_of": positive_label if binary else "predicted label",
            "edges": [round(float(e), 2) for e in edges],
            "counts": [int(c) for c in hist],
        },
    }


def rating_summary(frame: pd.DataFrame, task: Task) -> dict[str, object]:
    """For a rating model: the mean rating, counts per side of the midpoint (where there is one) and a
    histogram of the ratings over the model's range (a rating outside it counts in the end bin)."""
    classified = frame[frame["rating"].notna()]
    ratings = classified["rating"].to_numpy(dtype=float)
    n = len(classified)
    low, high = task.rating_range or ((float(ratings.min()), float(ratings.max())) if n else (0.0, 1.0))
    hist, edges = np.histogram(np.clip(ratings, low, high), bins=HISTOGRAM_BINS, range=(low, high))
    sides = {}
    if task.rating_midpoint is not None:
        counts = {side: int((classified["side"] == side).sum()) for side in ("negative", "positive")}
        sides = {"counts": counts, "share_positive": float(counts["positive"] / n) if n else 0.0}
    return {
        "rows": len(frame),
        "classified": int(n),
        "empty_rows": int(len(frame) - n),
        "mean_rating": float(ratings.mean()) if n else None,
        **sides,
        "split_into_windows": int((classified["windows"] > 1).sum()),
        "histogram": {
            "of": "rating",
            "edges": [round(float(e), 2) for e in edges],
            "counts": [int(c) for c in hist],
        },
    }


def list_columns(path: Path) -> list[str]:
    """Column (or JSON field) names of an upload, for the 'Text column' menu; [] when there are none."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            return [str(c) for c in _read_xlsx(path).columns]
        text, _ = _decode(path.read_bytes(), path.name)  # whole: a cut could split a character
        if suffix in (".csv", ".tsv", ".txt"):
            sep = _delimiter(text, suffix)
            return (
                []
                if sep is None
                else [str(c) for c in pd.read_csv(io.StringIO(text), sep=sep, nrows=0).columns]
            )
        if suffix == ".jsonl":
            names: dict[str, None] = {}
            for line in text.splitlines()[:50]:
                value = json.loads(line) if line.strip() else None
                if isinstance(value, dict):
                    names.update(dict.fromkeys(map(str, value)))
            return list(names)
    except (ValueError, pd.errors.ParserError, csv.Error):
        return []
    return []


def detect_column(columns: Sequence[str]) -> str | None:
    """The column `read_reviews` would pick by name, or None."""
    try:
        return _choose_column(columns, None, "")
    except SpaceError:
        return None
