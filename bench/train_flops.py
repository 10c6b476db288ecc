"""Model FLOPs of a training run, counted on real tokens, for model FLOPs utilisation (MFU).

Why not the Trainer's figure: `Trainer.floating_point_ops` returns 6 x input_ids.numel() x the
non-embedding parameters, so it counts padding tokens (every review padded to 512 in the
reference recipe looks like 512 tokens of useful work), leaves out attention's sequence-squared
term, and uses 6 even where frozen weights get no weight gradient (LoRA, head-only).

The count used here, per training sample of real length l (special tokens included, after
truncation; padding excluded), in the convention of PaLM (Chowdhery et al. 2022, appendix B):

    k * N_token * l + 6 * N_adapter * l + 6 * N_head + a * n_layers * d_model * l**2

- N_token: parameters applied to every token (encoder layers, embedding LayerNorm): the base
  model's non-embedding parameters without its pooler. N_head: pooler and classifier, applied
  once per review and always trained. N_adapter: LoRA's A and B matrices, applied to every token
  and trained. Embedding lookups cost no matmul FLOPs.
- k = 6 (forward 2 + backward 4) when the encoder trains; 4 for LoRA (frozen weights still
  pass gradients to activations, but compute no weight gradient); 2 for head-only (no backward
  through the encoder).
- LoRA's adapters are not negligible on a small model: r=16 on every linear layer of
  all-MiniLM-L6-v2 (the h100-lora preset) adds to a review's training FLOPs. With them the
  count agrees with torch's FlopCounterMode (bench/results/flop_check.md) for full, LoRA and head-only training
  (tests/test_bench.py).
- Attention scores and the weighted sum cost 4 * d_model * l per token per layer forward;
  a = 12 with backward, 4 for head-only.
Activation recomputation (gradient checkpointing) is not counted: MFU counts the model's
FLOPs, not the hardware's, so checkpointing lowers MFU as it should.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, DistilBertConfig

# (k, a) by --method: see the module docstring.
METHOD_FACTORS = {"full": (6, 12), "lora": (4, 12), "head": (2, 4)}
TRAINED = 6  # FLOPs per parameter and use of a trained weight: forward 2, backward 4


@dataclass(frozen=True)
class ModelShape:
    n_layers: int
    d_model: int
    token_params: int
    head_params: int


def model_shape(model_name_or_path: str) -> ModelShape:
    """Count parameters from the config alone: the model is built on the meta device, no weights read.

    "distilbert-base" names DistilBertConfig()'s default shape (distilbert-base-uncased's) without files.
    """
    if model_name_or_path == "distilbert-base":
        config = DistilBertConfig(num_labels=2)
    else:
        config = AutoConfig.from_pretrained(model_name_or_path, num_labels=2)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    non_embedding = model.num_parameters(exclude_embeddings=True)
    base = getattr(model, model.base_model_prefix)
    pooler = getattr(base, "pooler", None)
    pooler_params = sum(p.numel() for p in pooler.parameters()) if pooler is not None else 0
    base_non_embedding = base.num_parameters(exclude_embeddings=True) - pooler_params
    return ModelShape(
        n_layers=config.num_hidden_layers,
        d_model=config.hidden_size,
        token_params=base_non_embedding,
        head_params=non_embedding - base_non_embedding,
    )


def flops_per_sample(
    lengths: np.ndarray, shape: ModelShape, method: str, adapter_params: int = 0
) -> np.ndarray:
    """Training FLOPs of one pass over each sample, from its real (unpadded) length.

    adapter_params: LoRA's trainable parameters outside the head (a run's trainable parameters
    minus `shape.head_params`).
    """
    k, a = METHOD_FACTORS[method]
    lengths = np.asarray(lengths, dtype=np.float64)
    return (
        (k * shape.token_params + TRAINED * adapter_params) * lengths
        + TRAINED * shape.head_params
        + a * shape.n_layers * shape.d_model * lengths**2
    )


def mfu(flops: float, seconds: float, peak_flops: float) -> float:
    return flops / seconds / peak_flops
