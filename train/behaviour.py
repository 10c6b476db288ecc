"""A behaviour suite for the short things people type, in the spirit of CheckList (Ribeiro et al. 2020).

Accuracy on IMDb's long reviews says little about "Not bad at all." or "Avoid.", which is what a Space
visitor or an agent sends. Each capability is built here from templates and word lists (no model makes
the cases, so a model cannot pass by agreeing with itself), with at least 30 cases:

- negation: a negated positive is negative, a negated negative ("not bad") is positive;
- contrast: in "X, but Y" the clause after "but" decides;
- intensity: a strongly worded verdict is right and at least as sure as its plain form;
- short verdicts: one to four words ("Avoid.", "Loved it!");
- invariance: names, numbers, casing, punctuation and a typo must not flip a clear review (compared
  with the model's own answer on the unchanged review, as CheckList's INV tests are).

Neutral, factual sentences have no right answer for a two-class model; the suite reports how sure it
is on them. The CheckList package itself is unmaintained and pins old dependencies, hence this module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from train.config import LABELS

NEG, POS = 0, 1
EXAMPLES_KEPT = 3  # failing examples per capability in results.json and the card

SUBJECTS = ("The movie", "This film", "The acting", "The story", "The script", "The ending", "The soundtrack",
            "The cast", "The direction", "The dialogue")  # fmt: skip
POSITIVE_WORDS = ("good", "great", "funny", "enjoyable", "brilliant", "moving", "beautiful", "clever",
                  "entertaining", "wonderful")  # fmt: skip
NEGATIVE_WORDS = ("bad", "boring", "awful", "dull", "terrible", "stupid", "annoying", "weak", "predictable",
                  "painful")  # fmt: skip
NEGATIONS = ("was not", "wasn't", "is not", "isn't", "was never")
INTENSIFIERS = ("absolutely", "truly", "incredibly", "really", "extremely")
CONTRAST_POSITIVE = ("the ending is wonderful", "the acting makes up for it", "I loved every minute after that",
                     "it won me over in the end", "the final act is brilliant", "I would happily watch it again")  # fmt: skip
CONTRAST_NEGATIVE = ("the ending ruins it", "the acting is wooden", "it quickly becomes boring",
                     "the second half is a mess", "I would not watch it again", "it fails to deliver")  # fmt: skip
OPENERS_POSITIVE = ("The trailer looked great", "The cast is excellent", "It starts well",
                    "The first half is gripping", "The effects are impressive")  # fmt: skip
OPENERS_NEGATIVE = ("The first hour drags", "I expected to hate it", "The trailer looked awful",
                    "It starts slowly", "The effects are cheap")  # fmt: skip
VERDICTS = {
    POS: ("Loved it!", "Masterpiece.", "Brilliant.", "Two thumbs up.", "Must see!", "Highly recommended.",
          "Pure joy.", "Wonderful film.", "A gem.", "Fantastic!", "Great fun.", "Absolutely loved it.",
          "10/10, would watch again.", "Stunning.", "Beautifully made.", "Worth every minute."),
    NEG: ("Avoid.", "Total garbage.", "Don't bother.", "Waste of time.", "Awful.", "Terrible film.",
          "Boring.", "Skip it.", "Utter rubbish.", "1/10.", "Painfully dull.", "What a mess.",
          "Not worth it.", "Dreadful.", "I want my money back.", "A complete disaster."),
}  # fmt: skip
CLEAR_REVIEWS = (
    ("Tom Hanks gives a wonderful performance in this moving film.", POS),
    ("Meryl Streep is brilliant and the story kept me hooked for 2 hours.", POS),
    ("A beautiful, funny film that I enjoyed from start to finish.", POS),
    ("John Smith directed a clever thriller with a great cast.", POS),
    ("One of the best movies I have seen in 10 years.", POS),
    ("Sarah Jones is terrible and the plot makes no sense at all.", NEG),
    ("A boring, predictable film that wasted 2 hours of my life.", NEG),
    ("The worst movie I have seen in 10 years, avoid it.", NEG),
    ("Michael Brown's script is awful and the acting is even worse.", NEG),
    ("Dull, slow and painfully long; I fell asleep twice.", NEG),
)
NAME_SWAPS = {"Tom Hanks": "Priya Patel", "Meryl Streep": "Ana Lopez", "John Smith": "Kenji Watanabe",
              "Sarah Jones": "Fatima Ali", "Michael Brown": "Olga Ivanova"}  # fmt: skip
NUMBER_SWAPS = {"2": "3", "10": "20"}
NEUTRAL = (
    "The film was released in 1994.", "It runs for about two hours.", "The movie is in English with subtitles.",
    "It was shot in Canada.", "The director also wrote the script.", "The sequel came out three years later.",
    "It is based on a novel.", "The cast includes several newcomers.", "The story is set in Chicago.",
    "It was shown at a festival in May.", "The film is rated PG-13.", "The soundtrack was released on vinyl.",
    "It is the second film in the series.", "The movie was filmed in black and white.",
    "The screenplay was adapted from a play.", "It premiered on television.", "The film is 98 minutes long.",
    "Most scenes take place at night.", "The main character is a teacher.", "It was dubbed into French.",
    "The film has no opening credits.", "It was produced by a small studio.", "The story covers one summer.",
    "The lead actor is from Australia.", "The movie is available on DVD.", "It was remade in 2010.",
    "The plot follows two brothers.", "The film uses hand-drawn animation.", "It is narrated by the main character.",
    "The running time includes an intermission.",
)  # fmt: skip
DESCRIPTIONS = {
    "negation": "a negated positive is negative, a negated negative (\"not bad\") is positive",
    "contrast": "\"X, but Y\": the clause after \"but\" decides",
    "intensity": "a strongly worded verdict is right and at least as sure as its plain form",
    "short_verdicts": "verdicts of one to four words (\"Avoid.\", \"Loved it!\")",
    "invariance": "names, numbers, casing, punctuation or a typo must not flip a clear review",
}


@dataclass(frozen=True)
class Case:
    """One check: `text` should get `expected`; with `reference`, it is compared with that text's answer."""

    text: str
    expected: int | None = None  # None: the reference's predicted label (invariance)
    reference: str | None = None  # invariance: the unchanged review; intensity: the plain form


def negation_cases() -> list[Case]:
    cases = []
    for i, (subject, negation) in enumerate(itertools.product(SUBJECTS, NEGATIONS[:4])):
        cases.append(Case(f"{subject} {negation} {POSITIVE_WORDS[i % len(POSITIVE_WORDS)]}.", NEG))
        cases.append(Case(f"{subject} {negation} {NEGATIVE_WORDS[i % len(NEGATIVE_WORDS)]}.", POS))
    cases += [Case("Not bad at all.", POS), Case("Not good at all.", NEG), Case("I didn't hate it.", POS),
              Case("I didn't like it.", NEG), Case("Never boring.", POS), Case("Never funny.", NEG)]  # fmt: skip
    return cases


def contrast_cases() -> list[Case]:
    cases = [Case(f"{opener}, but {turn}.", POS) for opener, turn in zip(
        itertools.cycle(OPENERS_NEGATIVE), [t for t in CONTRAST_POSITIVE for _ in range(3)])]  # fmt: skip
    cases += [Case(f"{opener}, but {turn}.", NEG) for opener, turn in zip(
        itertools.cycle(OPENERS_POSITIVE), [t for t in CONTRAST_NEGATIVE for _ in range(3)])]  # fmt: skip
    cases += [Case("I didn't expect to like it, but I did.", POS), Case("I wanted to love it, but I didn't.", NEG)]
    return cases


def intensity_cases() -> list[Case]:
    cases = []
    for i, subject in enumerate(SUBJECTS):
        for label, words in ((POS, POSITIVE_WORDS), (NEG, NEGATIVE_WORDS)):
            for j in range(2):
                word, adverb = words[(i + 3 * j) % len(words)], INTENSIFIERS[(i + j) % len(INTENSIFIERS)]
                plain = f"{subject} was {word}."
                cases.append(Case(f"{subject} was {adverb} {word}.", label, reference=plain))
    return cases


def verdict_cases() -> list[Case]:
    return [Case(text, label) for label, texts in VERDICTS.items() for text in texts]


def _typo(text: str) -> str:
    """Swap two middle letters of the longest word: a typo a reader still reads."""
    words = text.split()
    k = max(range(len(words)), key=lambda i: len(words[i].strip(".,;!")))
    w = words[k]
    m = len(w) // 2
    words[k] = w[: m - 1] + w[m] + w[m - 1] + w[m + 1 :]
    return " ".join(words)


def invariance_cases() -> list[Case]:
    cases = []
    for text, _ in CLEAR_REVIEWS:
        variants = [text.upper(), text.lower(), text.rstrip(".") + "!!!", text.rstrip("."), _typo(text)]
        variants += [text.replace(a, b) for a, b in NAME_SWAPS.items() if a in text]
        variants += [text.replace(f" {a} ", f" {b} ") for a, b in NUMBER_SWAPS.items() if f" {a} " in text]
        cases += [Case(v, reference=text) for v in variants if v != text]
    return cases


def build_suite() -> dict[str, list[Case]]:
    return {
        "negation": negation_cases(),
        "contrast": contrast_cases(),
        "intensity": intensity_cases(),
        "short_verdicts": verdict_cases(),
        "invariance": invariance_cases(),
    }


def run_suite(prob_positive: Callable[[Sequence[str]], np.ndarray]) -> dict[str, object]:
    """Score every case with `prob_positive` (texts -> P(POSITIVE)); results.json's `behaviour` section."""
    suite = build_suite()
    texts = sorted({t for cases in suite.values() for c in cases for t in (c.text, c.reference) if t} | set(NEUTRAL))
    p = dict(zip(texts, np.asarray(prob_positive(texts), dtype=float)))

    def failed(case: Case) -> bool:
        predicted = int(p[case.text] >= 0.5)
        if case.expected is None:  # invariance: the unchanged review's answer is the expected one
            return predicted != int(p[case.reference] >= 0.5)
        if predicted != case.expected:
            return True
        sure = p[case.text] if case.expected == POS else 1 - p[case.text]
        return case.reference is not None and sure < (p[case.reference] if case.expected == POS
                                                       else 1 - p[case.reference])  # fmt: skip

    capabilities = {}
    for name, cases in suite.items():
        failures = [c for c in cases if failed(c)]
        capabilities[name] = {
            "description": DESCRIPTIONS[name],
            "cases": len(cases),
            "failures": len(failures),
            "failure_rate": len(failures) / len(cases),
            "examples": [_example(c, p) for c in failures[:EXAMPLES_KEPT]],
        }
    confidence = [max(p[t], 1 - p[t]) for t in NEUTRAL]
    return {
        "capabilities": capabilities,
        "neutral": {"cases": len(NEUTRAL), "mean_confidence": float(np.mean(confidence)),
                    "description": "neutral, factual sentences (a two-class model cannot say neutral)"},  # fmt: skip
    }


def _example(case: Case, p: dict[str, float]) -> dict[str, object]:
    expected = case.expected if case.expected is not None else int(p[case.reference] >= 0.5)
    predicted = int(p[case.text] >= 0.5)
    return {
        "text": case.text,
        "expected": LABELS[expected],
        "predicted": LABELS[predicted],
        "score": p[case.text] if predicted == POS else 1 - p[case.text],
        **({"reference": case.reference} if case.reference else {}),
    }
