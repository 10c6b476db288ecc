"""The model behind the Space: engines, windows for long reviews, batching and explanations.

Everything that touches the model lives here, so the UI (`app.py`) stays declarative and the
benchmark (`bench/space_speed.py`) times exactly the code the Space runs.
"""

from __future__ import annotations

import itertools
import math
import queue
import re
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from examples import EXAMPLES
from transformers import PreTrainedTokenizerBase, pipeline

if TYPE_CHECKING:
    import onnx

# A function from a padded batch (input_ids, attention_mask, both int64 [batch, seq]) to logits
# [batch, num_labels]. Every engine is one of these, so windowing, batching and aggregation are
# shared code and give identical results up to the engine's arithmetic.
LogitsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

ENGINE_INT8 = "int8"
ENGINE_BF16 = "bf16"
ENGINE_FLOAT = "float"
ENGINE_LABELS = {
    ENGINE_FLOAT: "float32, as trained",
    ENGINE_BF16: "bfloat16 (the CPU's own bf16 units)",
    ENGINE_INT8: "int8 (ONNX Runtime)",
}
# Engines the start-up measurement may pick as the default: those whose labels agreed with
# float32's on at least 99% of the fine-tuned model's test reviews in bench/space_speed.py
# (bench/results/space_speed_minilm-imdb-cpu.md). Others stay selectable.
AUTO_ENGINES = (ENGINE_FLOAT, ENGINE_BF16, ENGINE_INT8)
# Engines whose arithmetic depends on the batch: dynamic quantisation picks one activation scale
# per batch, so these run one window at a time and a review's score never depends on what else
# was in the queue; the windows are spread over one single-threaded worker per core.
PER_WINDOW_ENGINES = {ENGINE_INT8}

# Tokens shared by consecutive windows of a long review, so a sentence cut at a window edge is
# still read whole in one of the two. Same as the training command's `--eval_windows` default
# (`--window_stride 128`), so the Space reproduces the windowed figures of the model card.
WINDOW_OVERLAP = 128
# The IMDb reviews' line breaks; the training command replaces them with spaces, so the Space does too.
BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class Prediction:
    """One review's result; `windows` > 1 means the review was longer than the model reads at once."""

    label: str
    score: float
    probabilities: dict[str, float]
    windows: int
    tokens: int

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "score": self.score,
            "probabilities": dict(self.probabilities),
            "windows": self.windows,
            "tokens": self.tokens,
        }


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
    itself, so the bf16 engine is only offered where this is true.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def default_engines() -> tuple[str, ...]:
    """The engines this host can run well: bf16 only where the CPU computes it natively."""
    return (ENGINE_FLOAT, *((ENGINE_BF16,) if cpu_has_native_bf16() else ()), ENGINE_INT8)


class _Logits(torch.nn.Module):
    """The classifier with plain tensor inputs and outputs, as ONNX export wants it."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits


# ONNX Runtime's fused kernels that are slower on CPU than the operators they replace, so neither
# its offline transformer optimizer nor a session's own graph optimizer may introduce them: with
# onnxruntime 1.32, SkipLayerNormalization is several times slower than the Add + LayerNormalization
# it replaces (`python -m bench.space_engine_ops` measures the kernels, and the whole int8 engine
# built both ways, on the host it runs on; bench/results/space_engine_ops_minilm-imdb-cpu.md).
SLOW_FUSIONS = {
    # FusionOptions attribute of the offline optimizer -> the session optimizer that fuses the same pattern
    "enable_skip_layer_norm": "SkipLayerNormFusion",
    "enable_bias_skip_layer_norm": "SkipLayerNormFusion",
}


def fuse_transformer_graph(path: Path, config: object, avoid: Collection[str] = tuple(SLOW_FUSIONS)) -> None:
    """Rewrite an exported encoder in place with ONNX Runtime's fused operators for transformers.

    The exported graph computes attention, LayerNorm and GELU as dozens of small operators each;
    ORT's transformer optimizer replaces them with its fused `Attention`, `LayerNormalization`,
    `BiasGelu` and `EmbedLayerNormalization` kernels, and quantisation then turns `Attention` into the
    int8 `QAttention`. The fusions in SLOW_FUSIONS are left out. Where a pattern is not recognised,
    that part stays as exported.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    for name in avoid:
        setattr(options, name, False)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
    optimize_model(
        str(path), model_type="bert", num_heads=heads, hidden_size=hidden, optimization_options=options
    ).save_model_to_file(str(path))


def export_onnx(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Export the classifier (input ids and mask in, logits out, any batch and length) to ONNX at `path`.

    With eager attention: its MatMul/Softmax pattern is the one ORT's optimizer fuses. The model is
    given back its serving attention afterwards, as the float and bf16 engines share it.
    """
    example = tokenizer(["a short example", "two"], padding=True, return_tensors="pt")
    serving_attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns about its own future; it is what exports without onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Logits(model).eval(),
                (example["input_ids"], example["attention_mask"]),
                str(path),
                dynamo=False,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                opset_version=17,
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
            )
    finally:
        model.set_attn_implementation(serving_attention)


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


# Operators whose outputs carry a few channels far larger than the rest in a BERT-style encoder
# (Bondarenko et al. 2021, "Understanding and Overcoming the Challenges of Efficient Transformer
# Quantization"; Dettmers et al. 2022, "LLM.int8()"): LayerNorm outputs (the residual stream's
# outlier dimensions) and GELU outputs.
OUTLIER_SOURCES = {"LayerNormalization", "SkipLayerNormalization", "Gelu", "BiasGelu", "FastGelu"}
# A channel is computed in float32 when its largest activation on the calibration reviews exceeds
# this many times the median channel's largest (outlier_channels).
OUTLIER_RATIO = 4.0


def outlier_prone_matmuls(graph: onnx.GraphProto) -> list[str]:
    """The MatMuls with a constant weight that read a LayerNorm's or a GELU's output.

    In a BERT-style block: the first feed-forward projection (after a LayerNorm) and the second
    (after the GELU). The attention projections read a LayerNorm too, but inside ORT's fused
    `Attention` kernel, out of reach.
    """
    weights = {init.name for init in graph.initializer}
    sources = {node.output[0] for node in graph.node if node.op_type in OUTLIER_SOURCES}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and node.input[0] in sources and node.input[1] in weights
    ]


def channel_maxima(
    model: onnx.ModelProto, tensors: list[str], feeds: list[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The largest |value| of each channel (last axis) of the graph's `tensors` over the `feeds`."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors
    )
    session = ort_session(probe.SerializeToString(), threads=torch.get_num_threads())
    maxima: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in zip(tensors, session.run(tensors, feed)):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            maxima[name] = np.maximum(maxima.get(name, channel_max), channel_max)
    return maxima


def outlier_channels(channel_max: np.ndarray, ratio: float) -> np.ndarray:
    """Indices of the channels whose largest |value| exceeds `ratio` times the median channel's."""
    return np.flatnonzero(channel_max > ratio * np.median(channel_max))


def split_outlier_channels(
    path: Path, feeds: list[dict[str, np.ndarray]], ratio: float = OUTLIER_RATIO
) -> list[str]:
    """Rewrite each outlier-prone MatMul in place so its outlier input channels are computed apart.

    The inputs of `outlier_prone_matmuls` have a few channels whose values are many times the rest;
    with one uint8 scale per call they would leave the other channels a handful of levels. As
    LLM.int8() does, those channels, found on the calibration `feeds`, are multiplied in float32 by
    their rows of the weight, while the MatMul, with them masked to zero, is quantised. Returns the
    float MatMuls' names (for the quantiser to leave alone). Written by hand: ONNX Runtime's
    quantiser has no mixed decomposition.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    targets = set(outlier_prone_matmuls(graph))
    inputs = [node.input[0] for node in graph.node if node.name in targets]
    maxima = channel_maxima(model, inputs, feeds)
    rewritten, floats = [], []
    for node in graph.node:
        outliers = outlier_channels(maxima[node.input[0]], ratio) if node.name in targets else []
        if not len(outliers):
            rewritten.append(node)
            continue
        activations, weight_name = node.input
        weight = numpy_helper.to_array(weights[weight_name])
        keep = np.ones(weight.shape[0], dtype=np.float32)
        keep[outliers] = 0.0
        prefix = f"{node.name}/outlier_channels"
        graph.initializer.extend(
            [
                numpy_helper.from_array(keep, f"{prefix}/keep"),
                numpy_helper.from_array(outliers.astype(np.int64), f"{prefix}/index"),
                numpy_helper.from_array(np.ascontiguousarray(weight[outliers]), f"{prefix}/weight"),
            ]
        )
        output = node.output[0]
        node.input[0], node.output[0] = f"{prefix}/inliers", f"{prefix}/inliers_out"
        rewritten += [
            helper.make_node(
                "Mul", [activations, f"{prefix}/keep"], [f"{prefix}/inliers"], name=f"{prefix}/Mul"
            ),
            node,
            helper.make_node(
                "Gather", [activations, f"{prefix}/index"], [f"{prefix}/x"], name=f"{prefix}/Gather", axis=-1
            ),
            helper.make_node(
                "MatMul", [f"{prefix}/x", f"{prefix}/weight"], [f"{prefix}/out"], name=f"{prefix}/MatMul"
            ),
            helper.make_node(
                "Add", [f"{prefix}/inliers_out", f"{prefix}/out"], [output], name=f"{prefix}/Add"
            ),
        ]
        floats.append(f"{prefix}/MatMul")
    del graph.node[:]
    graph.node.extend(rewritten)
    onnx.save(model, str(path))
    return floats


def build_int8_onnx(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    folder: Path,
    calibration: Sequence[Sequence[int]],
    avoid: Collection[str] = tuple(SLOW_FUSIONS),
) -> Path:
    """Export `model` to ONNX in `folder`, fuse its transformer blocks, quantise it to int8; the int8 file.

    Dynamic quantisation: weights int8 (one scale per output channel), activations uint8 with a
    scale computed per call, integer matrix products on the CPU's int8 units, except the few outlier
    channels of each feed-forward projection's input, found on the `calibration` windows (token ids,
    as `SentimentModel.windows` cuts them; `split_outlier_channels`).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exported, quantised = folder / "model.onnx", folder / "model-int8.onnx"
    export_onnx(model, tokenizer, exported)
    fuse_transformer_graph(exported, model.config, avoid)
    feeds = [
        {
            "input_ids": np.array([window], dtype=np.int64),
            "attention_mask": np.ones((1, len(window)), dtype=np.int64),
        }
        for window in calibration
    ]
    float_matmuls = split_outlier_channels(exported, feeds)
    # The fused operators are outside ONNX's shape inference, so the quantiser is told their outputs are float.
    quantize_dynamic(
        str(exported),
        str(quantised),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=float_matmuls,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return quantised


def onnx_int8_logits_fn(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    threads: int,
    calibration: Sequence[Sequence[int]],
) -> LogitsFn:
    """The int8 engine: `build_int8_onnx` served by ONNX Runtime on `threads` threads.

    Takes a few seconds at start; the files live in a temporary folder for the life of the process.
    """
    folder = Path(tempfile.mkdtemp(prefix="sentiment-onnx-"))
    session = ort_session(build_int8_onnx(model, tokenizer, folder, calibration), threads)

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    return run


def clean_text(text: str) -> str:
    """The text as the model saw reviews in training: `<br />` tags replaced with spaces."""
    return BR_TAG.sub(" ", text)


def _positive_index(id2label: dict[int, str]) -> int:
    """Index of the class that explanations are measured against (POSITIVE for this project)."""
    for index, name in id2label.items():
        if str(name).upper().startswith("POS"):
            return int(index)
    return max(id2label)


class SentimentModel:
    """A text classifier loaded once, with one or more engines and windowed long-text scoring.

    The Space sends every model call through one `Batcher` thread, which keeps the CPU's cores
    on one batch at a time instead of splitting them between requests. Tokenising is also done
    from request threads (to size explanations), so it holds a lock: a fast tokenizer's
    truncation settings are shared state that concurrent calls would trip over. The int8 engine
    finds its outlier channels on `calibration` (default: the Space's example reviews).
    """

    def __init__(
        self,
        model_id: str,
        engines: Sequence[str] | None = None,
        max_batch_size: int = 64,
        max_batch_tokens: int = 4096,
        calibration: Sequence[str] = tuple(text for _, text in EXAMPLES),
    ) -> None:
        # The pipeline resolves a Hub id or a local folder and pairs the model with its tokenizer;
        # float32 explicitly, because transformers keeps a float16 checkpoint in float16 otherwise.
        pipe = pipeline("text-classification", model=model_id, dtype=torch.float32, top_k=None)
        model = pipe.model.eval()
        self.model_id = model_id
        self.tokenizer = pipe.tokenizer
        self.labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        self.positive_index = _positive_index(model.config.id2label)
        positions = getattr(model.config, "max_position_embeddings", 512) or 512
        self.max_length = int(min(self.tokenizer.model_max_length, positions))
        self.num_special = self.tokenizer.num_special_tokens_to_add()
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self._tokenizer_lock = threading.Lock()
        self.engines: dict[str, LogitsFn] = {}
        # Seconds spent inside engines' forward passes, for the benchmark's profile of a request.
        self.forward_seconds = 0.0
        for engine in default_engines() if engines is None else engines:
            if engine == ENGINE_FLOAT:
                self.engines[engine] = torch_logits_fn(model)
            elif engine == ENGINE_BF16:
                self.engines[engine] = torch_logits_fn(model, autocast=torch.bfloat16)
            elif engine == ENGINE_INT8:
                try:
                    self.engines[engine] = onnx_int8_logits_fn(
                        model, self.tokenizer, 1, self.windows([clean_text(t) for t in calibration])[0]
                    )
                except Exception as exc:  # noqa: BLE001 - an optional engine must not stop the Space
                    print(
                        f"The int8 engine is unavailable for this model ({type(exc).__name__}: {exc}); "
                        "serving float32 only.",
                        file=sys.stderr,
                    )
            else:
                raise ValueError(f"unknown engine {engine!r}; choose from {sorted(ENGINE_LABELS)}")
        self.float_model = model
        # Seconds per engine for the example reviews, measured on this host by `measure`.
        self.timings: dict[str, float] = {}
        self.per_window = set(PER_WINDOW_ENGINES) & set(self.engines)
        self._window_workers = ThreadPoolExecutor(torch.get_num_threads(), thread_name_prefix="window-worker")

    def add_engine(self, name: str, logits_fn: LogitsFn, per_window: bool = False) -> None:
        """Register another engine (the benchmark adds its candidates this way)."""
        self.engines[name] = logits_fn
        if per_window:
            self.per_window.add(name)

    def measure(self, texts: Sequence[str], repeats: int = 3) -> dict[str, float]:
        """Seconds each engine takes to classify `texts` here: the best of `repeats`, after a warm-up.

        Which engine is fastest depends on the CPU (bf16 units, int8 instructions, core count), so
        the Space measures at start-up instead of assuming a speed-up seen on another machine.
        """
        self.timings = {}
        for engine in self.engines:
            self.predict(texts, engine)  # the first call allocates and picks kernels
            best = math.inf
            for _ in range(repeats):
                started = time.perf_counter()
                self.predict(texts, engine)
                best = min(best, time.perf_counter() - started)
            self.timings[engine] = best
        return self.timings

    def windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids of every window of every text, and which text each window belongs to.

        A text that fits is one window, exactly what the pipeline would feed the model. A longer
        one becomes consecutive windows of `max_length` tokens overlapping by WINDOW_OVERLAP, each
        with its own [CLS]/[SEP], so no part of the review is dropped.
        """
        with self._tokenizer_lock:
            enc = self.tokenizer(
                list(texts),
                truncation=True,
                max_length=self.max_length,
                stride=WINDOW_OVERLAP,
                return_overflowing_tokens=True,
                padding=False,
            )
        return enc["input_ids"], [int(i) for i in enc["overflow_to_sample_mapping"]]

    def _batches(
        self, windows: list[list[int]], max_batch: int
    ) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
        """Length-sorted, padding-light batches: (window indices, input ids, attention mask).

        A batch holds at most `max_batch_tokens` padded tokens (eight full windows by default):
        short texts run faster batched on CPU (bench/space_speed.py), and under bf16 autocast fewer, larger calls
        cast the weights fewer times; for long float32 windows the batch size makes no difference.
        """
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]), reverse=True)
        pad_id = self.tokenizer.pad_token_id or 0
        batches = []
        start = 0
        while start < len(order):
            longest = len(windows[order[start]])
            size = max(1, min(max_batch, self.max_batch_tokens // longest))
            batch = order[start : start + size]
            ids = np.full((len(batch), longest), pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), longest), dtype=np.int64)
            for row, index in enumerate(batch):
                ids[row, : len(windows[index])] = windows[index]
                mask[row, : len(windows[index])] = 1
            batches.append((batch, ids, mask))
            start += size
        return batches

    def _window_probabilities(self, windows: list[list[int]], engine: str) -> np.ndarray:
        """Softmax probabilities for each window.

        A per-window engine's calls are spread over one single-threaded worker per core: on small
        one-window calls that keeps both cores busier than one call using both (bench/space_speed.py);
        each window's result is the same either way, since no call sees another's.
        """
        logits_fn = self.engines[engine]
        per_window = engine in self.per_window
        batches = self._batches(windows, 1 if per_window else self.max_batch_size)
        started = time.perf_counter()
        if per_window:
            all_logits = list(self._window_workers.map(lambda b: logits_fn(b[1], b[2]), batches))
        else:
            all_logits = [logits_fn(ids, mask) for _, ids, mask in batches]
        self.forward_seconds += time.perf_counter() - started
        probs = np.zeros((len(windows), len(self.labels)), dtype=np.float64)
        for (batch, _, _), logits in zip(batches, all_logits):
            logits = logits.astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            exp = np.exp(logits)
            probs[batch] = exp / exp.sum(axis=1, keepdims=True)
        return probs

    def predict(self, texts: Sequence[str], engine: str = ENGINE_FLOAT) -> list[Prediction]:
        """Classify `texts`; a long review's probabilities are the mean of its windows'.

        A plain mean, as the training command's `--eval_windows` evaluation computes it.
        """
        if not texts:
            return []
        windows, owner = self.windows([clean_text(t) for t in texts])
        probs = self._window_probabilities(windows, engine)
        totals = np.zeros((len(texts), len(self.labels)))
        counts = np.zeros(len(texts), dtype=np.int64)
        tokens = np.zeros(len(texts), dtype=np.int64)
        np.add.at(totals, owner, probs)
        np.add.at(counts, owner, 1)
        np.add.at(tokens, owner, [len(w) - self.num_special for w in windows])
        # Overflow windows repeat WINDOW_OVERLAP tokens of the previous one: count those once.
        tokens -= WINDOW_OVERLAP * (counts - 1)
        results = []
        for i in range(len(texts)):
            p = totals[i] / counts[i]
            best = int(p.argmax())
            results.append(
                Prediction(
                    label=self.labels[best],
                    score=float(p[best]),
                    probabilities={name: float(v) for name, v in zip(self.labels, p)},
                    windows=int(counts[i]),
                    tokens=int(tokens[i]),
                )
            )
        return results


def fastest_engine(timings: dict[str, float]) -> str:
    """The engine to serve by default: the fastest measured among AUTO_ENGINES (float32 if none)."""
    eligible = {engine: seconds for engine, seconds in timings.items() if engine in AUTO_ENGINES}
    return min(eligible, key=eligible.__getitem__) if eligible else ENGINE_FLOAT


# Priorities for the batcher's queue: a person waiting on one review goes before a file's chunk.
PRIORITY_INTERACTIVE = 0
PRIORITY_EXPLAIN = 1
PRIORITY_BULK = 2


@dataclass
class _Job:
    texts: list[str]
    engine: str
    future: Future


class Batcher:
    """Runs every model call on one thread and merges requests that are waiting at the same time.

    Requests that arrive while the model is busy are taken together as the next call, so
    concurrent users share it without anyone waiting on a timer; inside it, short windows are
    batched (see `SentimentModel._window_probabilities`). Requests are validated before they are
    queued, so a bad one never reaches a shared call (with gradio's `batch=True` validation happens
    inside the batch, where one exception fails every request in it). One thread also means the
    model's intra-op threads own the CPU instead of competing with each other.
    """

    def __init__(self, model: SentimentModel, max_texts: int = 32) -> None:
        self.model = model
        self.max_texts = max_texts
        self._queue: queue.PriorityQueue[tuple[int, int, _Job]] = queue.PriorityQueue()
        self._order = itertools.count()
        self.batches_run = 0
        self.jobs_run = 0
        threading.Thread(target=self._serve, name="model-batcher", daemon=True).start()

    def predict(
        self, texts: Sequence[str], engine: str, priority: int = PRIORITY_INTERACTIVE
    ) -> list[Prediction]:
        """Queue `texts` for the model and wait for their predictions."""
        if engine not in self.model.engines:
            raise ValueError(f"unknown engine {engine!r}; choose from {sorted(self.model.engines)}")
        job = _Job(list(texts), engine, Future())
        self._queue.put((priority, next(self._order), job))
        return job.future.result()

    def _serve(self) -> None:
        while True:
            jobs = [self._queue.get()[2]]
            size = len(jobs[0].texts)
            while size < self.max_texts:
                try:
                    job = self._queue.get_nowait()[2]
                except queue.Empty:
                    break
                jobs.append(job)
                size += len(job.texts)
            for engine in dict.fromkeys(job.engine for job in jobs):
                group = [job for job in jobs if job.engine == engine]
                self._run(group, engine)

    def _run(self, jobs: list[_Job], engine: str) -> None:
        texts = [text for job in jobs for text in job.texts]
        try:
            predictions = self.model.predict(texts, engine)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, not swallowed
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.batches_run += 1
        self.jobs_run += len(jobs)
        start = 0
        for job in jobs:
            job.future.set_result(predictions[start : start + len(job.texts)])
            start += len(job.texts)


@dataclass(frozen=True)
class Explanation:
    """How much each span of the review moved P(positive): `deltas[i]` belongs to `spans[i]`."""

    spans: list[str]
    deltas: list[float]
    positive_label: str
    base_probability: float


def occlusion_spans(text: str, max_spans: int) -> list[str]:
    """Cut `text` into at most `max_spans` consecutive spans of whole words that join back to it.

    Each span keeps its trailing whitespace, so deleting one leaves the words around it apart.
    """
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    if not starts:
        return [text]
    starts[0] = 0
    per_span = math.ceil(len(starts) / max_spans)
    cuts = starts[::per_span] + [len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:])]


def explain(
    batcher: Batcher, text: str, engine: str, window_budget: int = 48, min_spans: int = 6
) -> Explanation:
    """Word (or word-span) occlusion: delete each span, re-score, and report the change.

    A span whose removal lowers P(positive) pushed the review towards positive. All variants go
    through the model as one batched request. The number of spans is capped so the whole
    explanation costs about `window_budget` model windows: single words for short reviews,
    runs of words for long ones.
    """
    model = batcher.model
    text = clean_text(text)
    windows_per_text = max(1, len(model.windows([text])[0]))
    max_spans = max(min_spans, window_budget // windows_per_text - 1)
    spans = occlusion_spans(text, max_spans)
    variants = ["".join(spans[:i] + spans[i + 1 :]) for i in range(len(spans))]
    predictions = batcher.predict([text, *variants], engine, priority=PRIORITY_EXPLAIN)
    positive = model.labels[model.positive_index]
    base = predictions[0].probabilities[positive]
    deltas = [base - p.probabilities[positive] for p in predictions[1:]]
    return Explanation(spans=spans, deltas=deltas, positive_label=positive, base_probability=base)
