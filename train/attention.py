"""The CPU attention kernel, chosen per call by size: plain matmul attention, in batch chunks that fit the cache, or SDPA.

Why by hand: on CPU, PyTorch's fused attention (SDPA's flash kernel) has a backward pass that is poorly
vectorised for the 32-wide heads of small encoders, and costs a third of a bf16 training step at 256 tokens;
three matmuls and a softmax run the same step faster, until the batch's score matrices (batch x heads x
length x length) outgrow the last-level cache and the fused kernel wins again (bench/results/cpu_step.md,
the attention rows). A larger batch can still run as matmuls, a few reviews at a time, so that each chunk's
scores (at most CHUNK_SHARE of the budget) stay in the cache through its forward and its backward (autograd
runs each chunk's backward on that chunk's own tensors): that beat SDPA at every length from 320 to 512 tokens
on the EPYC (bench/results/attention_budget_amd-epyc.md), and SDPA's backward is what sets the pace of a step
on an AMX host (issue #25). So the choice is made per call,
by size: the whole batch as matmuls while its scores fit a budget, in chunks of half of it while one review's
scores are small enough for chunking to have won, SDPA beyond. Both limits are measured at start-up
(`choose_by_measurement`: the kernels, forward and backward, on the run's own batch size, head shape, precision
and lengths), since the cache that sysfs reports on a shared virtual machine is the whole host socket's
(105 MiB on a 2-vCPU Intel guest), not what this process gets.
transformers' own `eager` kernel is no substitute: it adds a float32 mask to the bf16 scores, which
promotes the whole softmax to float32 and loses most of what bf16 gains. transformers lets a kernel be registered under a name
(`AttentionInterface`), which is how this one is plugged in; the saved model does not depend on it.
"""

from __future__ import annotations

import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "sdpa_or_matmul"
MEASURE_STEP = 32  # lengths measured at start-up: every 32 tokens up to the run's max_length
MEASURE_REPEATS = 5
LAST_LEVEL_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
FALLBACK_CACHE_MIB = 32.0
# A chunk of a larger batch holds scores of at most this share of the budget: the budget sits where the whole
# batch's matmuls already near the cache's edge (past it their time per MiB of scores doubles), and a chunk
# at the budget itself measured slower than SDPA (bench/NOTES.md, "Chunked matmul attention").
CHUNK_SHARE = 0.5


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


def chunked_matmul_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    chunk: int,
    scaling: float | None = None,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, None]:
    """`matmul_attention` on `chunk` reviews of the batch at a time (a mask broadcast over the batch is shared)."""
    outputs = []
    for start in range(0, query.shape[0], chunk):
        part = slice(start, start + chunk)
        mask = attention_mask[part] if attention_mask is not None and attention_mask.shape[0] > 1 else attention_mask
        out, _ = matmul_attention(module, query[part], key[part], value[part], mask, scaling=scaling, dropout=dropout)
        outputs.append(out)
    return torch.cat(outputs), None


def size_dispatch_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    matmul_max_bytes: float,
    chunked_max_review_bytes: float = 0.0,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Matmul attention while the scores fit in matmul_max_bytes; in chunks of CHUNK_SHARE of that while one review's
    scores fit in chunked_max_review_bytes; SDPA for larger batches and for causal layers."""
    review_bytes = query.shape[1] * query.shape[2] * key.shape[2] * query.element_size()
    if getattr(module, "is_causal", False):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    if review_bytes * query.shape[0] <= matmul_max_bytes:
        return matmul_attention(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout)
    chunk = int(CHUNK_SHARE * matmul_max_bytes // review_bytes)
    if chunk < 1 or review_bytes > chunked_max_review_bytes:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    return chunked_matmul_attention(
        module, query, key, value, attention_mask, chunk, scaling=scaling, dropout=dropout
    )


def register(matmul_max_mib: float | None = None, chunked_max_review_mib: float = 0.0) -> str:
    """Register the kernel (with SDPA's boolean masks) under NAME, for from_pretrained(attn_implementation=NAME).

    matmul_max_mib: the largest score tensor run as one matmul attention (none: this CPU's last-level cache as
    sysfs reports it, until `choose_by_measurement` replaces it). chunked_max_review_mib: the largest one
    review's scores for which a larger batch runs as matmuls in chunks (of CHUNK_SHARE of the budget; 0: never, SDPA).
    The model looks the kernel up at every call, so registering again changes the rule of a model already loaded."""
    budget = (matmul_max_mib if matmul_max_mib is not None else last_level_cache_mib()) * 2**20
    rule = partial(size_dispatch_attention, matmul_max_bytes=budget, chunked_max_review_bytes=chunked_max_review_mib * 2**20)
    AttentionInterface.register(NAME, rule)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def _fwd_bwd_seconds(kernel: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     mask: torch.Tensor, repeats: int) -> float:  # fmt: skip
    """Median seconds of one forward and backward pass of an attention kernel (after one warm-up)."""
    module = torch.nn.Module()  # what the kernels read of a layer: is_causal, training
    module.is_causal = False
    grad = torch.randn(q.shape[0], q.shape[2], q.shape[1], q.shape[3], dtype=q.dtype)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        out, _ = kernel(module, q, k, v, mask, scaling=q.shape[-1] ** -0.5)
        out.backward(grad)
        times.append(time.perf_counter() - started)
        q.grad = k.grad = v.grad = None
    return statistics.median(times[1:])


def _random_attention_inputs(
    shape: tuple[int, int, int, int], dtype: torch.dtype, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values of `shape` that take gradients, and SDPA's boolean mask (all attend), as in training."""
    q, k, v = (torch.randn(shape, generator=generator, dtype=dtype).requires_grad_() for _ in range(3))
    return q, k, v, torch.ones(shape[0], 1, shape[2], shape[2], dtype=torch.bool)


def measure_kernels(batch_size: int, num_heads: int, head_dim: int, lengths: list[int], dtype: torch.dtype,
                    repeats: int = MEASURE_REPEATS) -> list[dict[str, Any]]:  # fmt: skip
    """Both kernels on the whole batch, forward and backward, on random queries, keys and values of the run's shapes."""
    rows = []
    generator = torch.Generator().manual_seed(0)
    for length in lengths:
        q, k, v, mask = _random_attention_inputs((batch_size, num_heads, length, head_dim), dtype, generator)
        scores_mib = batch_size * num_heads * length * length * q.element_size() / 2**20
        rows.append({
            "length": length,
            "scores_mib": scores_mib,
            "review_mib": scores_mib / batch_size,
            "matmul_s": _fwd_bwd_seconds(matmul_attention, q, k, v, mask, repeats),
            "sdpa_s": _fwd_bwd_seconds(sdpa_attention_forward, q, k, v, mask, repeats),
        })  # fmt: skip
    return rows


def measure_chunked(rows: list[dict[str, Any]], num_heads: int, head_dim: int, dtype: torch.dtype, budget_mib: float,
                    repeats: int = MEASURE_REPEATS) -> list[dict[str, Any]]:  # fmt: skip
    """Add `chunk` and `chunked_s` (matmul attention in chunks of CHUNK_SHARE of `budget_mib`) to the rows over the budget."""
    generator = torch.Generator().manual_seed(1)
    for row in rows:
        batch_size = round(row["scores_mib"] / row["review_mib"])
        chunk = int(CHUNK_SHARE * budget_mib // row["review_mib"])
        if row["scores_mib"] <= budget_mib or chunk < 1:
            continue
        q, k, v, mask = _random_attention_inputs((batch_size, num_heads, row["length"], head_dim), dtype, generator)
        row["chunk"] = chunk
        row["chunked_s"] = _fwd_bwd_seconds(partial(chunked_matmul_attention, chunk=chunk), q, k, v, mask, repeats)
    return rows


def _size_where_sdpa_starts_winning(rows: list[dict[str, Any]], kernel: str, size: str) -> float:
    """The `size` up to which `kernel` ran faster than SDPA at every measured length, halfway to the first loss
    (so lengths between two measured ones go to the kernel that won the nearer one); 0 when SDPA won from the start."""
    won = 0.0
    for row in sorted(rows, key=lambda row: row["length"]):
        if row[kernel] > row["sdpa_s"]:
            return (won + row[size]) / 2 if won else 0.0
        won = row[size]
    return won


def budget_from_measurements(rows: list[dict[str, Any]]) -> float:
    """The score size (MiB) up to which matmul attention on the whole batch ran faster at every measured length,
    at most the last-level cache sysfs reports.

    A budget past the cache is a measurement that caught the host quiet: on the 2-core EPYC, whole-batch matmul
    at 320-480 tokens (38-84 MiB of scores against a 32 MiB cache) varied up to 2.5x between three start-up
    measurements, one of which set a 90 MiB budget, while matmul in chunks of half the budget was faster than
    whole-batch matmul's median at every such length (bench/results/attention_budget_amd-epyc.md). The cap is
    no guard where sysfs reports a whole socket's cache (a shared Intel guest), but there it costs nothing."""
    return min(_size_where_sdpa_starts_winning(rows, "matmul_s", "scores_mib"), last_level_cache_mib())


def chunked_limit_from_measurements(rows: list[dict[str, Any]]) -> float:
    """One review's score size (MiB) up to which chunked matmul attention beat SDPA at every length it was measured at."""
    return _size_where_sdpa_starts_winning([row for row in rows if "chunked_s" in row], "chunked_s", "review_mib")


def choose_by_measurement(model_config: Any, batch_size: int, max_length: int, dtype: torch.dtype) -> dict[str, Any]:
    """Measure the kernels on this run's shapes, register the rule they imply, and say what was measured."""
    heads = model_config.num_attention_heads
    head_dim = getattr(model_config, "head_dim", None) or model_config.hidden_size // heads
    lengths = list(range(MEASURE_STEP * 2, max_length, MEASURE_STEP)) + [max_length]
    started = time.perf_counter()
    rows = measure_kernels(batch_size, heads, head_dim, lengths, dtype)
    budget = budget_from_measurements(rows)
    rows = measure_chunked(rows, heads, head_dim, dtype, budget)
    chunked_limit = chunked_limit_from_measurements(rows)
    register(budget, chunked_limit)
    return {
        "kernel": NAME,
        "matmul_max_mib": budget,
        "chunked_max_review_mib": chunked_limit,
        "decided_by": "measured at start-up",
        "sysfs_last_level_cache_mib": last_level_cache_mib(),
        "dtype": str(dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "measure_seconds": time.perf_counter() - started,
        "measurements": rows,
    }
