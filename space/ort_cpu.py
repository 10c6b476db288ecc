"""ONNX Runtime on the Space's CPU: the fusions applied when a graph is loaded, and the sessions.

The published ONNX files hold standard operators only (onnx_build.py), so every runtime runs them;
the CPU kernels that pay off here (ORT's fused `Attention`, `EmbedLayerNormalization`, `Gelu`, and its
integer MatMul kernels) are brought in at load time, by `fuse_for_cpu` and by the session's own
graph optimizer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

# A function from a padded batch (input_ids, attention_mask, both int64 [batch, seq]) to logits
# [batch, num_labels]: what every engine of the Space is.
LogitsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# ONNX Runtime's fused kernels that are slower on CPU than the operators they replace, so neither
# its offline transformer optimizer nor a session's own graph optimizer may introduce them: with
# onnxruntime 1.32, SkipLayerNormalization is several times slower than the Add + LayerNormalization
# it replaces (`python -m bench.space_engine_ops` measures the kernels, and the whole int8 engine
# loaded both ways, on the host it runs on; bench/results/space_engine_ops_minilm-imdb-cpu.md).
SLOW_FUSIONS = {
    # FusionOptions attribute of the offline optimizer -> the session optimizer that fuses the same pattern
    "enable_skip_layer_norm": "SkipLayerNormFusion",
    "enable_bias_skip_layer_norm": "SkipLayerNormFusion",
}


def fuse_for_cpu(path: Path, config: object, avoid: Collection[str] = tuple(SLOW_FUSIONS)) -> bytes:
    """The graph at `path` rewritten with ONNX Runtime's fused transformer operators; the file is left as it is.

    An exported encoder computes attention, LayerNorm and GELU as dozens of small operators each;
    ORT's transformer optimizer replaces the patterns it recognises with its `Attention`,
    `LayerNormalization`, `Gelu`/`BiasGelu` and `EmbedLayerNormalization` kernels (contrib operators
    of ORT's CPU build, which is why they are applied here and not published). The fusions in
    `avoid` are left out. On an int8 graph the attention projections are integer MatMuls, a pattern
    the optimizer does not fuse into `Attention`: there attention stays as exported, and the
    session's optimizer turns the integer MatMuls into its `DynamicQuantizeMatMul` kernels.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    for name in avoid:
        setattr(options, name, False)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
    # The optimizer warns when the graph's producer is not PyTorch (a quantised file says
    # "onnx.quantize"); the model type is given explicitly, so that warning says nothing here.
    optimizer_log = logging.getLogger("onnxruntime.transformers.optimizer")
    level = optimizer_log.level
    optimizer_log.setLevel(logging.ERROR)
    try:
        fused = optimize_model(
            str(path), model_type="bert", num_heads=heads, hidden_size=hidden, optimization_options=options
        )
    finally:
        optimizer_log.setLevel(level)
    return fused.model.SerializeToString()


def ort_session(
    model: Path | bytes,
    threads: int,
    avoid: Collection[str] = tuple(SLOW_FUSIONS),
    save_optimized: Path | None = None,
):
    """A CPU session for `model` (a file, or a serialised graph) on `threads` threads, leaving out the fusions in `avoid`.

    `save_optimized`: where to write the graph as the session runs it, for tests and benchmarks to inspect.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if save_optimized is not None:
        options.optimized_model_filepath = str(save_optimized)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model if isinstance(model, bytes) else str(model),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=sorted({SLOW_FUSIONS[name] for name in avoid}),
    )


def onnx_logits_fn(session) -> LogitsFn:  # noqa: ANN001 - an onnxruntime.InferenceSession
    """Wrap an ONNX Runtime session of a classifier as a `LogitsFn` (type ids all zero where the graph takes them)."""
    takes_types = any(i.name == "token_type_ids" for i in session.get_inputs())

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if takes_types:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return session.run(None, feed)[0]

    return run
