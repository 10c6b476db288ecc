"""The int8 engine from the model repo's own `onnx/model_quantized.onnx`, when it has one that is this model's.

A model published by this project carries the Space's int8 engine as a file (onnx_build.py), so
the Space loads it (and fuses it for this CPU) instead of exporting and quantising at every cold
start. A file that cannot be loaded, or that is not this model's, is reported in one log line and
the Space builds the engine from the model as before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from model_files import find_model_file
from ort_cpu import LogitsFn, fuse_for_cpu, onnx_logits_fn, ort_session
from task import Task
from transformers import PreTrainedTokenizerBase
from windows import clean_text, cut_windows

PUBLISHED_INT8 = "onnx/model_quantized.onnx"
# The file must give float32's label on every example window that float32 classifies with at least
# this probability: int8 may flip a borderline window (so may the engine built here), a file of
# another model or with its labels in another order flips clear ones.
CLEAR_PROBABILITY = 0.6
# For a rating model, which has no labels to flip: the file must give float32's rating within this share
# of the rating range on every example window (where config.json gives no range, within this many of the
# model's units). int8 moves a rating by far less; a file of another model, or of the model before its
# ratings were put on their scale, by more.
RATING_GAP_SHARE = 0.1
RATING_GAP_NO_RANGE = 0.5


class UnusableFile(ValueError):
    """Why a published file cannot serve as this model's int8 engine (one clause, for the log line)."""


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def check_published_int8(
    run: LogitsFn,
    float_fn: LogitsFn,
    windows: Sequence[Sequence[int]],
    num_labels: int,
    task: Task | None = None,
) -> None:
    """Raise UnusableFile unless `run` gives one logit per label and float32's labels on the clear `windows`
    (for a rating model, float32's rating within `rating_gap` on every window)."""
    flipped = 0
    for window in windows:
        ids = np.array([window], dtype=np.int64)
        try:
            logits = np.asarray(run(ids, np.ones_like(ids)), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - whatever the runtime says, the file cannot serve
            raise UnusableFile(f"does not run on a review ({type(exc).__name__})") from None
        if logits.shape != (1, num_labels):
            raise UnusableFile(f"gives logits of shape {list(logits.shape)} where config.json names {num_labels} labels")
        reference = np.asarray(float_fn(ids, np.ones_like(ids)), dtype=np.float64)
        if task is not None and task.is_rating:
            flipped += int(abs(logits[0, 0] - reference[0, 0]) > rating_gap(task))
            continue
        expected = _softmax(reference)
        if expected.max() >= CLEAR_PROBABILITY and logits.argmax() != expected.argmax():
            flipped += 1
    if flipped and task is not None and task.is_rating:
        raise UnusableFile(
            f"gives a rating more than {rating_gap(task):g} away from the model's on {flipped} of the "
            f"{len(windows)} example windows (a file of another model)"
        )
    if flipped:
        raise UnusableFile(
            f"gives another label than the model on {flipped} of the {len(windows)} example windows "
            "(a file of another model, or its labels in another order than config.json's)"
        )


def rating_gap(task: Task) -> float:
    """How far the published file's rating may be from float32's on an example window."""
    if task.rating_range is None:
        return RATING_GAP_NO_RANGE
    return RATING_GAP_SHARE * (task.rating_range[1] - task.rating_range[0])


def published_int8_logits_fn(
    source: str,
    config: object,
    float_fn: LogitsFn,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[str],
    max_length: int,
    threads: int = 1,
) -> LogitsFn | None:
    """The published int8 file of `source` fused for this CPU and checked against `float_fn` on the
    `examples`' windows; None (with one log line where a file was found but is unusable) otherwise."""
    try:
        path = find_model_file(source, PUBLISHED_INT8)
    except Exception as exc:  # noqa: BLE001 - the Hub unreachable, a revoked token: build the engine instead
        print(f"Could not fetch {PUBLISHED_INT8} from {source} ({type(exc).__name__}); building the int8 engine from the model.",
              file=sys.stderr)  # fmt: skip
        return None
    if path is None:
        return None
    try:
        try:
            run = onnx_logits_fn(ort_session(fuse_for_cpu(path, config), threads))
        except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file fails in many ways
            raise UnusableFile(f"cannot be loaded ({type(exc).__name__}: it is corrupt or truncated)") from None
        windows, _ = cut_windows(tokenizer, [clean_text(t) for t in examples], max_length)
        num_labels = int(getattr(config, "num_labels", 2))
        check_published_int8(run, float_fn, windows, num_labels, Task.from_config(config))
    except UnusableFile as reason:
        print(f"The model repo's {PUBLISHED_INT8} {reason}; building the int8 engine from the model instead.",
              file=sys.stderr)  # fmt: skip
        return None
    print(f"int8 engine: the model repo's {PUBLISHED_INT8}, fused for this CPU at load.", file=sys.stderr)
    return run
