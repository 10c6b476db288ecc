"""Run a model card's Python snippets as written, then their example call on every review of a table.

    python tests/card_snippets.py CARD.md REVIEWS.csv EXAMPLE_TEXT [MERGED_REPO]

A subprocess of tests/test_publish.py, pointed at the local Hub by its environment. Each ```python
block of the card runs once, unchanged (loading the model from the repo it names); its last line,
the call on EXAMPLE_TEXT, is then evaluated with each review of REVIEWS.csv's `text` column in place of
the example. Prints one JSON object: per snippet (`pipeline`, `windows`, `adapter`) its results in
review order, and with MERGED_REPO the merged model's probabilities (a rating model's ratings) (`merged`) to
compare the adapter's with.
"""

from __future__ import annotations

import json
import sys

import pandas as pd
import torch

SNIPPETS = {"pipeline": "pipeline(", "windows": "def classify", "adapter": "PeftModel"}


def code_blocks(card: str) -> list[str]:
    return [part.split("```")[0] for part in card.split("```python\n")[1:]]


def run_block(block: str, example: str, reviews: list[str]) -> list:
    scope: dict = {}
    exec(block, scope)  # the snippet as a user pastes it
    call = [line for line in block.strip().splitlines() if line and not line.startswith("#")][-1]
    literal = json.dumps(example)
    if literal not in call:
        raise SystemExit(f"the snippet's last line does not call it on the example review: {call}")
    expression = call.split("  #")[0].replace(literal, "review")
    results = [eval(expression, {**scope, "review": text}) for text in reviews]
    return [r.tolist() if isinstance(r, torch.Tensor) else r for r in results]


def main() -> None:
    card_path, reviews_path, example, *merged_repo = sys.argv[1:]
    card = open(card_path, encoding="utf-8").read()
    reviews = pd.read_csv(reviews_path)["text"].tolist()
    out = {}
    for name, marker in SNIPPETS.items():
        block = next((b for b in code_blocks(card) if marker in b), None)
        if block is not None:
            out[name] = run_block(block, example, reviews)
    if merged_repo:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(merged_repo[0]).eval()
        tokenizer = AutoTokenizer.from_pretrained(merged_repo[0])
        with torch.no_grad():
            batches = [tokenizer(t, truncation=True, return_tensors="pt") for t in reviews]
            logits = [model(**batch).logits for batch in batches]
            # A rating model's one output is the rating itself; a classifier's are turned into probabilities.
            rating = model.config.problem_type == "regression"
            out["merged"] = [(x if rating else x.softmax(-1)).tolist() for x in logits]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
