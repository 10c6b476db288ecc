"""Short spans of training reviews as extra training examples, so the model also sees text of the length people type.

IMDb reviews run to 230 words; the Space's visitors send a sentence or two. Spans of one to three sentences,
labelled by their review, are too noisy as they are (a positive review retells the plot and complains in passing:
bench/NOTES.md, "Short text"), so a span's label can be made trustworthy two ways:

- by position (`--span_position last`): a review's last sentences are usually its verdict;
- by a teacher (`--span_teacher MODEL`): a model trained on full reviews must give the span its review's label
  with at least `--span_teacher_min` probability. With `--span_unlabelled_file`, spans of unlabelled reviews are
  added too, labelled by the teacher where it is that sure (self-training).

Spans are cut from the training split only, after the validation and calibration splits are held out, so those
stay whole reviews and no short-text measuring set is ever involved.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets
from transformers import pipeline

from train.config import DataArguments
from train.data import BR_TAG, load_file
from train.errors import UserError
from train.task import Task
from train.training_args import cpu_has_native_bf16

logger = logging.getLogger("train.spans")

# A sentence ends at . ! or ? followed by space and a capital, a quote or a bracket. nltk's punkt needs a data
# download this project cannot assume; for cutting training spans an occasional wrong split does no harm.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z])")
MIN_WORDS, MAX_WORDS = 3, 60  # a span shorter says nothing; longer is not what people type
MAX_SENTENCES = 3


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(BR_TAG.sub(" ", text)) if s.strip()]


def cut_span(text: str, position: str, rng: random.Random) -> str | None:
    """One to MAX_SENTENCES consecutive sentences of a review (its last ones for `last`), or None if too short."""
    parts = sentences(text)
    if not parts:
        return None
    count = rng.randint(1, min(MAX_SENTENCES, len(parts)))
    start = len(parts) - count if position == "last" else rng.randint(0, len(parts) - count)
    words = " ".join(parts[start : start + count]).split()
    if len(words) < MIN_WORDS:
        return None
    return " ".join(words[:MAX_WORDS])


def cut_spans(texts: Sequence[str], per_text: int, position: str, seed: int) -> tuple[list[str], list[int]]:
    """Up to `per_text` distinct spans of each text; returns the spans and the index of the text each came from."""
    rng = random.Random(seed)
    spans, sources = [], []
    for i, text in enumerate(texts):
        seen = set()
        for _ in range(per_text):
            span = cut_span(text, position, rng)
            if span is not None and span not in seen:
                seen.add(span)
                spans.append(span)
                sources.append(i)
    return spans, sources


def load_teacher(model: str, task: Task) -> Callable[[list[str]], np.ndarray]:
    """The teacher, loaded once: a function giving its class probabilities for texts, columns in the task's order."""
    dtype = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    try:
        classify = pipeline("text-classification", model=model, top_k=None, dtype=dtype, device="cpu")
    except (OSError, ValueError) as err:
        raise UserError(f"--span_teacher {model} could not be loaded ({str(err).splitlines()[0]}): give a folder "
                        f"that `python -m train` saved, or a Hub model id") from err  # fmt: skip
    names = list(classify.model.config.id2label.values())
    if sorted(names) != sorted(task.labels):
        raise UserError(f"--span_teacher {model} predicts {', '.join(names)}, and this run's labels are "
                        f"{', '.join(task.labels)}: give a teacher trained on the same labels")  # fmt: skip
    order = {name: i for i, name in enumerate(task.labels)}

    def probabilities(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(task.labels)), dtype=np.float32)
        for row, scores in enumerate(classify(texts, batch_size=64, truncation=True, max_length=128)):
            for entry in scores:
                out[row, order[entry["label"]]] = entry["score"]
        return out

    return probabilities


def check_span_flags(args: DataArguments) -> None:
    if args.train_spans < 0:
        raise UserError(f"--train_spans {args.train_spans} must be 0 (no spans) or a positive number per review")
    if (args.span_teacher or args.span_unlabelled_file) and not args.train_spans:
        raise UserError("--span_teacher and --span_unlabelled_file act on spans: add --train_spans 1 (or more)")
    if args.span_unlabelled_file and not args.span_teacher:
        raise UserError("--span_unlabelled_file needs --span_teacher to label its spans")
    if not 0 < args.span_teacher_min <= 1:
        raise UserError(f"--span_teacher_min {args.span_teacher_min} must be a probability in (0, 1]")


def add_spans(train: Dataset, args: DataArguments, task: Task, seed: int) -> Dataset:
    """The training split with its spans (and any teacher-labelled unlabelled spans) appended."""
    check_span_flags(args)
    if args.train_spans <= 0:
        return train
    texts, labels = train["text"], np.asarray(train["label"])
    spans, sources = cut_spans(texts, args.train_spans, args.span_position, seed)
    span_labels = labels[sources]
    if args.span_teacher:
        teacher = load_teacher(args.span_teacher, task)
        probs = teacher(spans)
        keep = probs[np.arange(len(spans)), span_labels] >= args.span_teacher_min
        logger.info("the teacher agreed with %d of %d spans at >= %.2f", keep.sum(), len(spans), args.span_teacher_min)
        spans, span_labels = [s for s, k in zip(spans, keep) if k], span_labels[keep]
        if args.span_unlabelled_file:
            extra, extra_labels = unlabelled_spans(args, teacher, seed, len(texts))
            spans, span_labels = spans + extra, np.concatenate([span_labels, extra_labels])
    logger.info("training on %d reviews and %d spans", len(texts), len(spans))
    added = Dataset.from_dict({"text": spans, "label": span_labels.tolist()}, features=train.features)
    return concatenate_datasets([train, added]).shuffle(seed=seed)


def unlabelled_spans(
    args: DataArguments, teacher: Callable[[list[str]], np.ndarray], seed: int, count: int
) -> tuple[list[str], np.ndarray]:
    """Spans of up to `count` unlabelled reviews, labelled by the teacher where it is at least span_teacher_min sure."""
    raw = load_file(Path(args.span_unlabelled_file))
    if args.text_column not in raw.column_names:
        raise UserError(f"--span_unlabelled_file {args.span_unlabelled_file} has no {args.text_column!r} column "
                        f"(it has {', '.join(raw.column_names)})")  # fmt: skip
    raw = raw.shuffle(seed=seed).select(range(min(count, len(raw))))
    spans, _ = cut_spans(raw[args.text_column], args.train_spans, args.span_position, seed + 1)
    probs = teacher(spans)
    keep = probs.max(axis=1) >= args.span_teacher_min
    logger.info("the teacher labelled %d of %d unlabelled spans", keep.sum(), len(spans))
    return [s for s, k in zip(spans, keep) if k], probs.argmax(axis=1)[keep]
