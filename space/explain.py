"""Why the model said what it said: word (or word-span) occlusion."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from batcher import PRIORITY_EXPLAIN, Batcher
from windows import clean_text


@dataclass(frozen=True)
class Explanation:
    """How much each span of the review moved P(positive): `deltas[i]` belongs to `spans[i]`."""

    spans: list[str]
    deltas: list[float]
    positive_label: str
    base_probability: float


def occlusion_spans(text: str, max_spans: int) -> list[str]:
    """Cut `text` into at most `max_spans` consecutive spans of whole words that join back to it.

    Each span keeps its trailing whitespace, so deleting one leaves the words around it apart.
    """
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    if not starts:
        return [text]
    starts[0] = 0
    per_span = math.ceil(len(starts) / max_spans)
    cuts = starts[::per_span] + [len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:])]


def explain(
    batcher: Batcher, text: str, engine: str, window_budget: int = 48, min_spans: int = 6
) -> Explanation:
    """Delete each span, re-score, and report the change.

    A span whose removal lowers P(positive) pushed the review towards positive. All variants go
    through the model as one batched request. The number of spans is capped so the whole
    explanation costs about `window_budget` model windows: single words for short reviews,
    runs of words for long ones.
    """
    model = batcher.model
    text = clean_text(text)
    windows_per_text = max(1, len(model.windows([text])[0]))
    max_spans = max(min_spans, window_budget // windows_per_text - 1)
    spans = occlusion_spans(text, max_spans)
    variants = ["".join(spans[:i] + spans[i + 1 :]) for i in range(len(spans))]
    predictions = batcher.predict([text, *variants], engine, priority=PRIORITY_EXPLAIN)
    positive = model.labels[model.positive_index]
    base = predictions[0].probabilities[positive]
    deltas = [base - p.probabilities[positive] for p in predictions[1:]]
    return Explanation(spans=spans, deltas=deltas, positive_label=positive, base_probability=base)
