"""What the served model predicts, read from its config.json: two classes, N classes, or a rating.

- two classes (this project's NEGATIVE/POSITIVE IMDb models): what the Space has always served;
- N classes (`id2label` names any classes, e.g. negative/neutral/positive): every class's probability;
- a rating (`problem_type` "regression", one output): the model's value itself, with the `rating_range`
  and `rating_midpoint` (the value between negative and positive ratings) that training writes into
  config.json. No softmax is ever applied to a rating, and windows average values, not probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

KIND_BINARY = "binary"
KIND_CLASSES = "classes"
KIND_RATING = "rating"
# Two engines give the same rating when they differ by at most this share of the rating range (0.18 on
# a 1-10 scale, about a fifth of a star), and by at most this much where config.json gives no range.
RATING_AGREEMENT_SHARE = 0.02
RATING_AGREEMENT_NO_RANGE = 0.1


class Answer(Protocol):
    """What an engine answered for one review (a `sentiment.Prediction`)."""

    label: str
    score: float


def _rating_range(value: object) -> tuple[float, float] | None:
    """config.json's `rating_range` as (min, max); None where it is missing or not two increasing numbers."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    low, high = float(value[0]), float(value[1])
    return (low, high) if low < high else None


@dataclass(frozen=True)
class Task:
    """The model's outputs: `labels` in id2label order; a rating model's range and midpoint where
    config.json has them."""

    kind: str
    labels: tuple[str, ...]
    rating_range: tuple[float, float] | None = None
    rating_midpoint: float | None = None

    @classmethod
    def from_config(cls, config: object) -> Task:
        """The task of a transformers config: a rating where problem_type is "regression" or there is one
        output (as transformers' own loss decides), else classes (two of them: the binary case)."""
        num_labels = int(getattr(config, "num_labels", 2))
        id2label = getattr(config, "id2label", None) or {}
        labels = tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(num_labels))
        if getattr(config, "problem_type", None) == "regression" or num_labels == 1:
            midpoint = getattr(config, "rating_midpoint", None)
            usable = isinstance(midpoint, (int, float)) and not isinstance(midpoint, bool)
            return cls(KIND_RATING, labels[:1], _rating_range(getattr(config, "rating_range", None)),
                       float(midpoint) if usable else None)  # fmt: skip
        return cls(KIND_BINARY if num_labels == 2 else KIND_CLASSES, labels)

    @property
    def is_rating(self) -> bool:
        return self.kind == KIND_RATING

    def side(self, rating: float) -> str | None:
        """ "positive" at or above the midpoint, "negative" below it; None for a model without a midpoint."""
        if self.rating_midpoint is None:
            return None
        return "positive" if rating >= self.rating_midpoint else "negative"

    def scale(self) -> str:
        """The rating range in words, "1–10", or "" where config.json gives none."""
        return f"{self.rating_range[0]:g}–{self.rating_range[1]:g}" if self.rating_range else ""

    def rating_tolerance(self) -> float:
        """How far two engines' ratings may differ and still count as the same answer."""
        if self.rating_range is None:
            return RATING_AGREEMENT_NO_RANGE
        return RATING_AGREEMENT_SHARE * (self.rating_range[1] - self.rating_range[0])

    def same_answers(self, reference: Sequence[Answer], other: Sequence[Answer]) -> bool:
        """Whether `other` gives `reference`'s answers: the same labels, or ratings that close."""
        if len(reference) != len(other):
            return False
        if self.is_rating:
            return all(abs(a.score - b.score) <= self.rating_tolerance() for a, b in zip(reference, other))
        return [a.label for a in reference] == [b.label for b in other]

    def answer_words(self) -> str:
        """What one review gets, for the page and the API's descriptions: "POSITIVE or NEGATIVE" for this
        project's two classes (today's wording), "negative, neutral or positive", or "a rating on a 1–10
        scale"."""
        if self.is_rating:
            return f"a rating on a {self.scale()} scale" if self.rating_range else "a rating"
        names = list(reversed(self.labels)) if self.kind == KIND_BINARY else list(self.labels)
        return ", ".join(names[:-1]) + " or " + names[-1]
