"""How the Space reads a review: training's text cleaning, and long reviews cut into overlapping windows.

The int8 builder calibrates on windows cut exactly this way, so it shares this module with the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

# Tokens shared by consecutive windows of a long review, so a sentence cut at a window edge is
# still read whole in one of the two. A deliberate copy of the training command's `--eval_windows`
# default (`--window_stride 128`): the Space is deployed alone and imports nothing of train/, and
# with the same stride it reproduces the windowed figures of the model card.
WINDOW_OVERLAP = 128
# The IMDb reviews' line breaks; the training command replaces them with spaces, so the Space does
# too. A deliberate copy of train/'s BR_TAG, for the same reason.
BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


def clean_text(text: str) -> str:
    """The text as the model saw reviews in training: `<br />` tags replaced with spaces."""
    return BR_TAG.sub(" ", text)


def model_max_length(tokenizer: PreTrainedTokenizerBase, config: object) -> int:
    """Tokens the model reads at once: the tokenizer's limit, capped by the position embeddings."""
    positions = getattr(config, "max_position_embeddings", 512) or 512
    return int(min(tokenizer.model_max_length, positions))


def cut_windows(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> tuple[list[list[int]], list[int]]:
    """Token ids of every window of every (already cleaned) text, and which text each window belongs to.

    A text that fits is one window, exactly what the pipeline would feed the model. A longer one
    becomes consecutive windows of `max_length` tokens overlapping by WINDOW_OVERLAP, each with its
    own [CLS]/[SEP], so no part of the review is dropped. Not thread-safe: a fast tokenizer's
    truncation settings are shared state (callers that tokenise from several threads hold a lock).
    """
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=WINDOW_OVERLAP,
        return_overflowing_tokens=True,
        padding=False,
    )
    return enc["input_ids"], [int(i) for i in enc["overflow_to_sample_mapping"]]
