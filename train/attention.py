"""The CPU attention kernel, chosen per call by size: plain matmul attention for small batches, SDPA for large ones.

Why by hand: on CPU, PyTorch's fused attention (SDPA's flash kernel) has a backward pass that is poorly
vectorised for the 32-wide heads of small encoders, and costs a third of a bf16 training step at 256 tokens;
three matmuls and a softmax run the same step faster, until the batch's score matrices (batch x heads x
length x length) outgrow the last-level cache and the fused kernel wins again (bench/results/cpu_step.md,
the attention rows). So the choice is made per call, by the size of the score tensor against the cache.
transformers' own `eager` kernel is no substitute: it adds a float32 mask to the bf16 scores, which
promotes the whole softmax to float32 and loses most of what bf16 gains. transformers lets a kernel be registered under a name
(`AttentionInterface`), which is how this one is plugged in; the saved model does not depend on it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "sdpa_or_matmul"
LAST_LEVEL_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
FALLBACK_CACHE_MIB = 32.0


def last_level_cache_mib() -> float:
    """The largest cache of CPU 0 (sysfs reports e.g. "32768K"), or FALLBACK_CACHE_MIB where sysfs does not say."""
    sizes = []
    for entry in LAST_LEVEL_CACHE.glob("index*/size"):
        text = entry.read_text().strip()
        if text[:-1].isdigit() and text[-1] in "KM":
            sizes.append(int(text[:-1]) / (1024 if text[-1] == "K" else 1))
    return max(sizes, default=FALLBACK_CACHE_MIB)


def matmul_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, None]:
    """Scores, softmax and weighted sum in the inputs' dtype (bf16 under autocast: the mask is cast to it)."""
    scores = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.shape[-1] ** -0.5)
    if attention_mask is not None and attention_mask.dtype == torch.bool:  # SDPA's mask: True = attend
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:
        scores = scores + attention_mask.to(scores.dtype)
    probs = torch.nn.functional.dropout(torch.softmax(scores, dim=-1), p=dropout, training=module.training)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def size_dispatch_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    matmul_max_bytes: float,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Matmul attention while the scores fit in matmul_max_bytes in an encoder layer; SDPA for larger or causal."""
    scores_bytes = query.shape[0] * query.shape[1] * query.shape[2] * key.shape[2] * query.element_size()
    if scores_bytes > matmul_max_bytes or getattr(module, "is_causal", False):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    return matmul_attention(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout)


def register(matmul_max_mib: float | None = None) -> str:
    """Register the kernel (with SDPA's boolean masks) under NAME, for from_pretrained(attn_implementation=NAME).

    matmul_max_mib: the largest score tensor run as matmul attention (none: this CPU's last-level cache)."""
    budget = (matmul_max_mib or last_level_cache_mib()) * 2**20
    AttentionInterface.register(NAME, partial(size_dispatch_attention, matmul_max_bytes=budget))
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
