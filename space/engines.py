"""The Space's engines: float32 and bf16 through torch, int8 through ONNX Runtime, and which one is the default.

Every engine is a `LogitsFn`, so windowing, batching and aggregation (sentiment.py) are shared code
and give identical results up to the engine's arithmetic.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import torch
from onnx_build import export_model_onnx, quantize_int8_onnx
from ort_cpu import LogitsFn, fuse_for_cpu, onnx_logits_fn, ort_session
from published_int8 import published_int8_logits_fn
from transformers import PreTrainedTokenizerBase

ENGINE_INT8 = "int8"
ENGINE_BF16 = "bf16"
ENGINE_FLOAT = "float"
ENGINE_LABELS = {
    ENGINE_FLOAT: "float32, as trained",
    ENGINE_BF16: "bfloat16 (the CPU's own bf16 units)",
    ENGINE_INT8: "int8 (ONNX Runtime)",
}
# Engines the start-up measurement may pick over float32 (the reference, and the default when no
# other qualifies): those whose labels agreed with float32's on at least 99% of the fine-tuned
# model's test reviews in bench/space_speed.py (bench/results/space_speed_minilm-imdb-cpu.md), and
# which give float32's labels on the start-up workload (`fastest_engine`). Others stay selectable.
AUTO_ENGINES = (ENGINE_BF16, ENGINE_INT8)
# Engines whose arithmetic depends on the batch: dynamic quantisation picks one activation scale
# per batch, so these run one window at a time and a review's score never depends on what else
# was in the queue; the windows are spread over one single-threaded worker per core.
PER_WINDOW_ENGINES = {ENGINE_INT8}


def torch_logits_fn(model: torch.nn.Module, autocast: torch.dtype | None = None) -> LogitsFn:
    """Wrap a transformers sequence classifier as a `LogitsFn`, optionally under CPU autocast.

    Autocast to bfloat16 runs the matrix products on the CPU's bf16 units while softmax and
    LayerNorm stay in float32, from the same weights (no second copy of the model): measured
    faster and closer to float32 than casting the whole model to bf16 (bench/results/space_speed_*.md).
    """

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None),
        ):
            out = model(
                input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask)
            )
        return out.logits.float().numpy()

    return run


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX tiles).

    Without either, torch emulates bfloat16 through float32 conversions, slower than float32
    itself, so the bf16 engine is only offered where this is true. A deliberate copy of the
    training command's check (the Space imports nothing of train/).
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return torch.backends.mkldnn.is_available() and any(
        getattr(torch.cpu, c, lambda: False)() for c in checks
    )


def default_engines() -> tuple[str, ...]:
    """The engines this host can run well: bf16 only where the CPU computes it natively."""
    return (ENGINE_FLOAT, *((ENGINE_BF16,) if cpu_has_native_bf16() else ()), ENGINE_INT8)


def int8_logits_fn(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    calibration: Sequence[str],
    max_length: int,
    threads: int = 1,
) -> LogitsFn:
    """The int8 engine: the graph `onnx_build` publishes, fused for this CPU at load and served on `threads` threads.

    Built from the loaded model (export, outlier channels found on the `calibration` reviews,
    quantisation): a few seconds at start. The files live in a temporary folder for the life of the process.
    """
    folder = Path(tempfile.mkdtemp(prefix="sentiment-onnx-"))
    export_model_onnx(model, tokenizer, folder / "model.onnx")
    quantize_int8_onnx(folder / "model.onnx", folder / "model_quantized.onnx", tokenizer, calibration, max_length)
    return onnx_logits_fn(ort_session(fuse_for_cpu(folder / "model_quantized.onnx", model.config), threads))


def int8_engine(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    calibration: Sequence[str],
    max_length: int,
    source: str | None,
) -> LogitsFn | None:
    """The int8 engine: the model repo's published file where `source` (a Hub id or folder) has a
    usable one, else built from the model; None, with one log line, where neither works."""
    if source:
        published = published_int8_logits_fn(source, model.config, torch_logits_fn(model), tokenizer, calibration, max_length)
        if published is not None:
            return published
    try:
        return int8_logits_fn(model, tokenizer, calibration, max_length)
    except Exception as exc:  # noqa: BLE001 - an optional engine must not stop the Space
        print(
            f"The int8 engine is unavailable for this model ({type(exc).__name__}: {exc}); serving float32 only.",
            file=sys.stderr,
        )
        return None


def build_engines(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    names: Sequence[str],
    calibration: Sequence[str],
    max_length: int,
    source: str | None = None,
) -> dict[str, LogitsFn]:
    """The named engines for a loaded model (`source`: where it came from, for a published int8 file)."""
    engines: dict[str, LogitsFn] = {}
    for engine in names:
        if engine == ENGINE_FLOAT:
            engines[engine] = torch_logits_fn(model)
        elif engine == ENGINE_BF16:
            engines[engine] = torch_logits_fn(model, autocast=torch.bfloat16)
        elif engine == ENGINE_INT8:
            if (int8 := int8_engine(model, tokenizer, calibration, max_length, source)) is not None:
                engines[engine] = int8
        else:
            raise ValueError(f"unknown engine {engine!r}; choose from {sorted(ENGINE_LABELS)}")
    return engines


def fastest_engine(timings: dict[str, float], same_labels: Collection[str] | None = None) -> str:
    """The engine to serve by default: the fastest measured of float32 and the AUTO_ENGINES that
    gave float32's labels at start-up (`same_labels`; None: not checked); float32 if none was measured."""
    eligible = {
        engine: seconds
        for engine, seconds in timings.items()
        if engine == ENGINE_FLOAT or (engine in AUTO_ENGINES and (same_labels is None or engine in same_labels))
    }
    return min(eligible, key=eligible.__getitem__) if eligible else ENGINE_FLOAT
