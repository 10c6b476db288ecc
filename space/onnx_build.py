"""The model as ONNX files every runtime can load: the float32 export and the Space's int8 engine.

    build_published_onnx(model_dir, out_dir)  ->  out_dir/model.onnx, out_dir/model_quantized.onnx

The layout and input names are those transformers.js and Optimum load from a Hub repo's `onnx/`
folder (`input_ids`, `attention_mask`, and `token_type_ids` for a model that takes them; `logits`
out; any batch size and length). Both graphs hold standard ONNX operators only (int8 through
`DynamicQuantizeLinear`/`MatMulInteger`/`DequantizeLinear`), which every ONNX Runtime build runs,
onnxruntime-web and -node included; the CPU-specific fusions are applied when the Space loads a
file (`ort_cpu.fuse_for_cpu`). Used by the Space at start-up and by publishing, which imports this
module from space/ (the Space is deployed alone and imports nothing outside it).
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from ort_cpu import ort_session
from transformers import PreTrainedTokenizerBase
from windows import clean_text, cut_windows, model_max_length

if TYPE_CHECKING:
    import onnx

PUBLISHED_FILES = {"model": "model.onnx", "model_quantized": "model_quantized.onnx"}
OPSET = 17  # the first with a standard LayerNormalization; supported by every current ONNX Runtime
STANDARD_DOMAINS = {"", "ai.onnx"}

# Operators whose outputs carry a few channels far larger than the rest in a BERT-style encoder
# (Bondarenko et al. 2021, "Understanding and Overcoming the Challenges of Efficient Transformer
# Quantization"; Dettmers et al. 2022, "LLM.int8()"): LayerNorm outputs (the residual stream's
# outlier dimensions) and GELU outputs. GELU is an `Erf` pattern in a standard graph, a contrib
# operator in a fused one.
LAYER_NORMS = {"LayerNormalization", "SkipLayerNormalization"}
GELUS = {"Gelu", "BiasGelu", "FastGelu"}
# A channel is computed in float32 when its largest activation on the calibration reviews exceeds
# this many times the median channel's largest (outlier_channels).
OUTLIER_RATIO = 4.0


class _Logits(torch.nn.Module):
    """The classifier with plain tensor inputs and outputs, as ONNX export wants it."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def onnx_input_names(model: torch.nn.Module) -> list[str]:
    """The graph's inputs: ids and mask, plus `token_type_ids` where the model takes them (BERT), as Optimum exports."""
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    return ["input_ids", "attention_mask", *(["token_type_ids"] if takes_types else [])]


def export_model_onnx(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Export a loaded classifier to ONNX at `path`: standard operators, any batch size and length.

    With eager attention: its MatMul/Softmax pattern is plain ONNX and the one ORT's optimizer
    fuses at load time. The model is given back its serving attention afterwards, as the Space's
    float and bf16 engines share it.
    """
    names = onnx_input_names(model)
    example = tokenizer(["a short example", "two"], padding=True, return_tensors="pt")
    inputs = tuple(example[n] if n in example else torch.zeros_like(example["input_ids"]) for n in names)
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in names}
    serving_attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns about its own future; it is what exports without onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Logits(model).eval(),
                inputs,
                str(path),
                dynamo=False,
                input_names=names,
                output_names=["logits"],
                opset_version=OPSET,
                dynamic_axes={**axes, "logits": {0: "batch_size"}},
            )
    finally:
        model.set_attn_implementation(serving_attention)


def export_float_onnx(model_dir: Path, out_path: Path) -> None:
    """The float32 graph of the classifier saved in `model_dir`, for publishing, written whole or not at all."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent, prefix=".onnx-export-") as work:
        export_model_onnx(model, tokenizer, Path(work) / "model.onnx")
        os.replace(Path(work) / "model.onnx", out_path)


def contrib_operators(model: onnx.ModelProto) -> list[str]:
    """`domain.op` of every operator outside standard ONNX (empty for a graph any runtime can run)."""
    return sorted({f"{n.domain}.{n.op_type}" for n in model.graph.node if n.domain not in STANDARD_DOMAINS})


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _gelu_outputs(graph: onnx.GraphProto) -> set[str]:
    """Outputs of GELUs: fused operators, or the end of the exported x·½(1 + erf(x/√2)) (Erf, Add, Mul, Mul)."""
    consumers = _consumers(graph)
    found = {node.output[0] for node in graph.node if node.op_type in GELUS}
    for node in graph.node:
        if node.op_type != "Erf":
            continue
        end = node
        for _ in range(3):
            nxt = consumers.get(end.output[0], [])
            if len(nxt) != 1 or nxt[0].op_type not in ("Add", "Mul"):
                break
            end = nxt[0]
        if end is not node:
            found.add(end.output[0])
    return found


def _feeds_gelu(node: onnx.NodeProto, consumers: dict[str, list], hops: int = 3) -> bool:
    """Whether `node`'s output reaches a GELU within `hops` operators (the bias Add, then Div and Erf)."""
    frontier = [node]
    for _ in range(hops):
        frontier = [c for n in frontier for c in consumers.get(n.output[0], [])]
        if any(c.op_type in GELUS or c.op_type == "Erf" for c in frontier):
            return True
    return False


def outlier_prone_matmuls(graph: onnx.GraphProto) -> list[str]:
    """The feed-forward projections: MatMuls with a constant weight that read a LayerNorm and feed a GELU, or read a GELU.

    In a BERT-style block: the first feed-forward projection (after a LayerNorm) and the second
    (after the GELU). The attention projections read a LayerNorm too but feed no GELU; they are
    quantised as they are (as in ORT's fused `Attention`, whose kernel takes its input whole).
    """
    weights = {init.name for init in graph.initializer}
    consumers = _consumers(graph)
    norms = {node.output[0] for node in graph.node if node.op_type in LAYER_NORMS}
    gelus = _gelu_outputs(graph)
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and node.input[1] in weights
        and (node.input[0] in gelus or (node.input[0] in norms and _feeds_gelu(node, consumers)))
    ]


def window_feeds(input_names: Sequence[str], windows: Sequence[Sequence[int]]) -> list[dict[str, np.ndarray]]:
    """One feed per window of token ids, for a graph with these inputs (type ids all zero: one segment)."""
    feeds = []
    for window in windows:
        ids = np.array([window], dtype=np.int64)
        values = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        feeds.append({name: values[name] for name in input_names})
    return feeds


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


def _split_nodes(node: onnx.NodeProto, outliers: np.ndarray, weight: np.ndarray) -> tuple[list, list]:
    """The nodes and initialisers that compute `node` with its `outliers` input channels apart (see split_outlier_channels)."""
    from onnx import helper, numpy_helper

    activations, _ = node.input
    keep = np.ones(weight.shape[0], dtype=np.float32)
    keep[outliers] = 0.0
    prefix = f"{node.name}/outlier_channels"
    initializers = [
        numpy_helper.from_array(keep, f"{prefix}/keep"),
        numpy_helper.from_array(outliers.astype(np.int64), f"{prefix}/index"),
        numpy_helper.from_array(np.ascontiguousarray(weight[outliers]), f"{prefix}/weight"),
    ]
    output = node.output[0]
    node.input[0], node.output[0] = f"{prefix}/inliers", f"{prefix}/inliers_out"
    nodes = [
        helper.make_node("Mul", [activations, f"{prefix}/keep"], [f"{prefix}/inliers"], name=f"{prefix}/Mul"),
        node,
        helper.make_node(
            "Gather", [activations, f"{prefix}/index"], [f"{prefix}/x"], name=f"{prefix}/Gather", axis=-1
        ),
        helper.make_node(
            "MatMul", [f"{prefix}/x", f"{prefix}/weight"], [f"{prefix}/out"], name=f"{prefix}/MatMul"
        ),
        helper.make_node("Add", [f"{prefix}/inliers_out", f"{prefix}/out"], [output], name=f"{prefix}/Add"),
    ]
    return nodes, initializers


def split_outlier_channels(
    path: Path, feeds: list[dict[str, np.ndarray]], ratio: float = OUTLIER_RATIO
) -> list[str]:
    """Rewrite each outlier-prone MatMul in place so its outlier input channels are computed apart.

    The inputs of `outlier_prone_matmuls` have a few channels whose values are many times the rest;
    with one uint8 scale per call they would leave the other channels a handful of levels. As
    LLM.int8() does, those channels, found on the calibration `feeds`, are multiplied in float32 by
    their rows of the weight (standard Mul, Gather, MatMul, Add), while the MatMul, with them masked
    to zero, is quantised. Returns the float MatMuls' names (for the quantiser to leave alone).
    Written by hand: ONNX Runtime's quantiser has no mixed decomposition.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    targets = set(outlier_prone_matmuls(graph))
    maxima = channel_maxima(model, [node.input[0] for node in graph.node if node.name in targets], feeds)
    rewritten, floats = [], []
    for node in graph.node:
        outliers = outlier_channels(maxima[node.input[0]], ratio) if node.name in targets else []
        if not len(outliers):
            rewritten.append(node)
            continue
        nodes, initializers = _split_nodes(node, outliers, numpy_helper.to_array(weights[node.input[1]]))
        graph.initializer.extend(initializers)
        rewritten += nodes
        floats.append(nodes[3].name)
    del graph.node[:]
    graph.node.extend(rewritten)
    onnx.save(model, str(path))
    return floats


def quantize_graph(float_path: Path, out_path: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Outlier channels split off (found on `feeds`), then ONNX Runtime's dynamic int8 quantisation of the rest.

    Weights int8 with one scale per output channel; activations uint8 with a scale computed per call.
    Operators are kept as they come: given a standard graph, the result is standard too.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=Path(out_path).parent, prefix=".onnx-int8-") as work:
        split = Path(work) / "split.onnx"
        shutil.copyfile(float_path, split)
        float_matmuls = split_outlier_channels(split, feeds)
        # Fused operators are outside ONNX's shape inference, so the quantiser is told their outputs are float.
        quantize_dynamic(
            str(split),
            str(Path(work) / "int8.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=float_matmuls,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(Path(work) / "int8.onnx", out_path)


def quantize_int8_onnx(
    float_path: Path,
    out_path: Path,
    tokenizer: PreTrainedTokenizerBase,
    calibration_texts: Sequence[str],
    max_length: int = 512,
) -> None:
    """The Space's int8 engine as a file: `export_float_onnx`'s graph quantised, standard operators only.

    The outlier channels of both feed-forward projections are found on the windows of
    `calibration_texts` cut as the Space reads them (cleaned, `max_length` tokens, overlapping).
    """
    import onnx

    float_model = onnx.load(str(float_path), load_external_data=False)
    if contrib := contrib_operators(float_model):
        raise ValueError(f"{float_path} holds non-standard operators ({', '.join(contrib)}); quantise the plain export.")
    if not calibration_texts:
        raise ValueError("No calibration text: the outlier channels are found on at least one review.")
    windows, _ = cut_windows(tokenizer, [clean_text(t) for t in calibration_texts], max_length)
    names = [i.name for i in float_model.graph.input]
    quantize_graph(float_path, out_path, window_feeds(names, windows))


def build_published_onnx(
    model_dir: Path, out_dir: Path, calibration_texts: Sequence[str] | None = None
) -> dict[str, Path]:
    """`out_dir/model.onnx` (float32) and `out_dir/model_quantized.onnx` (int8) for the model in `model_dir`.

    Calibrated by default on the Space's example reviews, as the Space's own engine is. Both files
    are written into a scratch folder in `out_dir` first and moved into place only when both exist.
    """
    from transformers import AutoConfig, AutoTokenizer

    if calibration_texts is None:
        from examples import EXAMPLES

        calibration_texts = [text for _, text in EXAMPLES]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    max_length = model_max_length(tokenizer, AutoConfig.from_pretrained(model_dir))
    paths = {key: out_dir / name for key, name in PUBLISHED_FILES.items()}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".onnx-build-") as work:
        scratch = {key: Path(work) / name for key, name in PUBLISHED_FILES.items()}
        export_float_onnx(Path(model_dir), scratch["model"])
        quantize_int8_onnx(scratch["model"], scratch["model_quantized"], tokenizer, calibration_texts, max_length)
        for key, path in scratch.items():
            os.replace(path, paths[key])
    return paths
