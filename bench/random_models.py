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


def build_random_model(out_dir: Path, shape: str, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """Build, initialise with `seed` and save a SHAPES classifier (NEGATIVE/POSITIVE) to `out_dir`."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    model_type, sizes = SHAPES[shape]
    config = AutoConfig.for_model(
        model_type,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
        initializer_range=initializer_range,
        **sizes,
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
