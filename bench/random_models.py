"""Randomly initialised models of the real models' shapes, with the real uncased vocabulary.

A random model costs exactly the compute of a trained one of the same shape, so the speed
benchmarks use one where the real weights cannot be had (distilbert-base-uncased here) and the
CPU dry-runs use tiny ones. Saved like a fine-tuned run, so `python -m train`, the Space and
`pipeline(...)` load them as they are.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The real uncased WordPiece vocabulary, identical to all-MiniLM-L6-v2's and distilbert-base-uncased's.
FIXTURE_TOKENIZER = ROOT / "tests" / "fixtures" / "tokenizer"

SHAPES = {
    # distilbert-base-uncased (DistilBertConfig's defaults): 6 layers x 768.
    "distilbert": ("distilbert", {}),
    # all-MiniLM-L6-v2: a BERT, 6 layers x 384, 12 heads.
    "minilm": (
        "bert",
        {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
    ),
    # CPU dry-runs: 2 layers x 32, DistilBERT's modules.
    "tiny-distilbert": ("distilbert", {"dim": 32, "hidden_dim": 64, "n_layers": 2, "n_heads": 2}),
    # CPU dry-runs standing in for all-MiniLM-L6-v2: the LoRA presets name BERT's modules.
    "tiny-bert": (
        "bert",
        {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    ),
}


BINARY = ("NEGATIVE", "POSITIVE")


def head_config(labels: tuple[str, ...] | None) -> dict:
    """config.json's task keys: classes named `labels` (default NEGATIVE/POSITIVE), or a 1-10 rating for None.

    A rating model is the project's regression contract: one output, problem_type "regression", the
    rating range and the midpoint between negative and positive in config.json.
    """
    if labels is None:
        return {"num_labels": 1, "id2label": {0: "RATING"}, "label2id": {"RATING": 0}, "problem_type": "regression",
                "rating_range": [1.0, 10.0], "rating_midpoint": 5.5}  # fmt: skip
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)}}  # fmt: skip


def build_random_model(
    out_dir: Path, shape: str, seed: int = 0, initializer_range: float = 0.02,
    labels: tuple[str, ...] | None = BINARY,
) -> Path:  # fmt: skip
    """Build, initialise with `seed` and save a SHAPES model to `out_dir`: a classifier over `labels`, or a rating
    model (labels=None)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    model_type, sizes = SHAPES[shape]
    config = AutoConfig.for_model(
        model_type, initializer_range=initializer_range, **head_config(labels), **sizes
    )
    AutoModelForSequenceClassification.from_config(config).save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(FIXTURE_TOKENIZER).save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=list(SHAPES))
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    print(build_random_model(cli.out_dir, cli.shape, cli.seed))
