"""Why the model said what it said: word (or word-span) occlusion.

What is measured: P(POSITIVE) for a two-class model (this project's), the predicted class's probability for
a model of more classes, and the rating itself for a rating model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from batcher import PRIORITY_EXPLAIN, Batcher
from sentiment import Prediction
from task import KIND_BINARY, KIND_RATING
from windows import clean_text


@dataclass(frozen=True)
class Explanation:
    """How much each span of the review moved the measured value: `deltas[i]` belongs to `spans[i]`.

    `target` is the label whose probability was measured (a rating model's output name for a rating), `base`
    the value for the whole review, `kind` the model's task (task.KIND_*), `scale` the width of the values'
    range (1 for a probability; a rating model's range).
    """

    spans: list[str]
    deltas: list[float]
    target: str
    base: float
    kind: str = KIND_BINARY
    scale: float = 1.0


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

    A span whose removal lowers P(positive) pushed the review towards positive (for more classes: towards
    the class predicted for the whole review; for a rating model: the rating up). All variants go
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
    task = model.task
    if task.kind == KIND_RATING:
        target, (low, high) = model.labels[0], task.rating_range or (0.0, 1.0)
    else:
        target = model.labels[model.positive_index] if task.kind == KIND_BINARY else predictions[0].label
        low, high = 0.0, 1.0
    base = measured(predictions[0], target)
    deltas = [base - measured(p, target) for p in predictions[1:]]
    return Explanation(spans, deltas, target, base, task.kind, high - low)


def measured(prediction: Prediction, target: str) -> float:
    """What an explanation measures of one prediction: the rating, or the `target` label's probability."""
    return prediction.score if prediction.rating is not None else prediction.probabilities[target]
