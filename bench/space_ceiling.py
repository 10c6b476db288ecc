"""Benchmark: how near the Space's int8 engine runs to this CPU's kernels, so how much any build of it could gain.

    .venv/bin/python -m bench.space_ceiling --model runs/minilm-imdb-cpu-384

Why: issue #25 asks `/predict_file` for 4x the `pipeline` loop. Before building another int8 engine,
this measures on the host it runs on, one thread as the Space's per-window workers run:

1. the products a window is made of, each as a one-operator ORT graph at the model's shapes and at
   several window lengths: a projection in dynamic int8 as the engine runs it (`DynamicQuantizeMatMul`,
   weights int8 per channel) and in float32, for each of the layer's three weight shapes; one layer's
   attention as ORT computes it in float32 (scores, softmax, weighted sum over all heads);
2. the Space's int8 engine (`space/engines.int8_logits_fn`) over the real windows of `--n` test reviews;
3. the ceiling: each window's time if its layers were only those kernels back to back (interpolated to
   its length) and nothing else ran, and the same with attention at the float32 projections' FLOP rate.
   Engine / ceiling is the most a build of the same arithmetic could gain here.

Results go to bench/results/space_ceiling_<model>_<cpu>.{json,md}, with the command that reproduces them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "space"))

from engines import int8_logits_fn
from examples import EXAMPLES
from windows import clean_text, cut_windows, model_max_length

from bench.space_speed import cpu_description, load_reviews, spread
from train.results import cpu_slug

LENGTHS = (64, 128, 256, 384, 512)  # window lengths the kernels are timed at; others are interpolated


def projection_graph(rows: int, cols: int, folder: Path, int8: bool) -> bytes:
    """x [1, L, rows] times a constant random weight [rows, cols]: float32, or dynamically quantised as the engine is."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight = np.random.default_rng(rows * cols).standard_normal((rows, cols), dtype=np.float32) / rows**0.5
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "projection",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "L", rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    if not int8:
        return model
    path = folder / f"projection-{rows}x{cols}.onnx"  # the quantiser reads and writes files
    path.write_bytes(model)
    quantize_dynamic(str(path), str(path.with_suffix(".int8.onnx")), weight_type=QuantType.QInt8, per_channel=True)
    return path.with_suffix(".int8.onnx").read_bytes()


def attention_graph(heads: int, head_dim: int) -> bytes:
    """One layer's attention products as the exported graph has them: softmax(q kᵀ · scale) v over all heads."""
    shape = [1, heads, "L", head_dim]
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in "qkv"]
    scale = numpy_helper.from_array(np.array(head_dim**-0.5, dtype=np.float32), "scale")
    graph = helper.make_graph(nodes, "attention", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [scale])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def one_thread_session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the Space's sessions
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def seconds_per_call(session: ort.InferenceSession, feeds: dict[str, np.ndarray], calls: int, repeats: int) -> float:
    """The median over `repeats` of the mean seconds of `calls` calls, after a few warm-up calls."""
    for _ in range(3):
        session.run(None, feeds)
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            session.run(None, feeds)
        runs.append((time.perf_counter() - started) / calls)
    return float(np.median(runs))


def time_kernels(config: object, folder: Path, calls: int, repeats: int) -> list[dict]:
    """Seconds per call of every kernel at every length in LENGTHS, with the FLOPs of each call."""
    hidden, inner, heads = config.hidden_size, config.intermediate_size, config.num_attention_heads
    rng = np.random.default_rng(0)
    kernels = []
    for rows, cols, per_layer in ((hidden, hidden, 4), (hidden, inner, 1), (inner, hidden, 1)):
        for int8 in (True, False):
            session = one_thread_session(projection_graph(rows, cols, folder, int8))
            for length in LENGTHS:
                x = {"x": rng.standard_normal((1, length, rows), dtype=np.float32)}
                kernels.append({"kernel": f"projection {rows}x{cols} {'int8' if int8 else 'float32'}",
                                "per_layer": per_layer, "length": length, "flop": 2 * length * rows * cols,
                                "seconds": seconds_per_call(session, x, calls, repeats)})  # fmt: skip
    session = one_thread_session(attention_graph(heads, hidden // heads))
    for length in LENGTHS:
        qkv = {name: rng.standard_normal((1, heads, length, hidden // heads), dtype=np.float32) for name in "qkv"}
        kernels.append({"kernel": "attention float32", "per_layer": 1, "length": length,
                        "flop": 4 * length * length * hidden, "seconds": seconds_per_call(session, qkv, calls, repeats)})  # fmt: skip
    return kernels


def layer_seconds(kernels: list[dict], length: int, hidden: int, attention_rate: float | None = None) -> float:
    """One layer of a `length`-token window as the int8 kernels back to back (attention at `attention_rate` FLOP/s if given)."""
    total = 0.0
    for name in {k["kernel"] for k in kernels if k["kernel"].endswith("int8") or k["kernel"].startswith("attention")}:
        rows = [k for k in kernels if k["kernel"] == name]
        if name.startswith("attention") and attention_rate:
            total += 4 * length * length * hidden / attention_rate
            continue
        seconds = np.interp(length, [k["length"] for k in rows], [k["seconds"] for k in rows])
        total += rows[0]["per_layer"] * float(seconds)
    return total


def time_engine(model_dir: Path, n: int, seed: int, repeats: int) -> tuple[list[int], list[float]]:
    """The windows' lengths, and the Space's int8 engine's seconds a window over them (one thread), per repeat."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(1)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    max_length = model_max_length(tokenizer, model.config)
    run = int8_logits_fn(model, tokenizer, [text for _, text in EXAMPLES], max_length, threads=1)
    texts = load_reviews(n, seed)[0]["text"].tolist()
    windows, _ = cut_windows(tokenizer, [clean_text(t) for t in texts], max_length)
    feeds = [np.array([w], dtype=np.int64) for w in windows]
    for ids in feeds[:5]:
        run(ids, np.ones_like(ids))
    per_window = []
    for _ in range(repeats):
        started = time.perf_counter()
        for ids in feeds:
            run(ids, np.ones_like(ids))
        per_window.append((time.perf_counter() - started) / len(feeds))
    return [len(w) for w in windows], per_window


def measure(model_dir: Path, n: int, seed: int, calls: int, repeats: int) -> dict:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory(prefix="space-ceiling-") as folder:
        kernels = time_kernels(config, Path(folder), calls, repeats)
    lengths, engine = time_engine(model_dir, n, seed, repeats)
    float_rate = max(k["flop"] / k["seconds"] for k in kernels if k["kernel"].endswith("float32") and "projection" in k["kernel"])
    layers = config.num_hidden_layers
    ceiling = float(np.mean([layers * layer_seconds(kernels, length, config.hidden_size) for length in lengths]))
    peak_attention = float(np.mean([layers * layer_seconds(kernels, length, config.hidden_size, float_rate) for length in lengths]))
    engine_median = float(np.median(engine))
    return {
        "model": model_dir.resolve().name,
        "cpu": cpu_description(),
        "onnxruntime": ort.__version__,
        "reviews": n,
        "windows": len(lengths),
        "mean_window_tokens": round(float(np.mean(lengths)), 1),
        "kernels": kernels,
        "float32_projection_peak_gflops": round(float_rate / 1e9, 1),
        "engine_ms_per_window": spread([s * 1000 for s in engine]),
        "ceiling_ms_per_window": round(ceiling * 1000, 2),
        "ceiling_attention_at_float_peak_ms_per_window": round(peak_attention * 1000, 2),
        "engine_over_ceiling": round(engine_median / ceiling, 2),
        "engine_over_ceiling_attention_at_float_peak": round(engine_median / peak_attention, 2),
    }


def to_markdown(result: dict, command: str) -> str:
    cpu = result["cpu"]
    lines = [
        f"### The int8 engine against this CPU's kernels: {result['model']}, {cpu['model']}, one thread",
        "",
        f"CPU: {cpu['model']} (avx512_vnni {cpu['avx512_vnni']}, avx512_bf16 {cpu['avx512_bf16']}, AMX {cpu['amx']}); "
        f"onnxruntime {result['onnxruntime']}. Kernels: median of the runs' mean per call; GFLOP/s (GOP/s for int8).",
        "",
        "| kernel | per layer | " + " | ".join(f"{n} tokens: ms (GFLOP/s)" for n in LENGTHS) + " |",
        "|---|---:|" + "---:|" * len(LENGTHS),
    ]
    for name in dict.fromkeys(k["kernel"] for k in result["kernels"]):
        rows = [k for k in result["kernels"] if k["kernel"] == name]
        cells = " | ".join(f"{k['seconds'] * 1000:.2f} ({k['flop'] / k['seconds'] / 1e9:.0f})" for k in rows)
        lines.append(f"| {name} | {rows[0]['per_layer']} | {cells} |")
    e = result["engine_ms_per_window"]
    lines += [
        "",
        f"The Space's int8 engine over the {result['windows']} windows of {result['reviews']} test reviews "
        f"(mean {result['mean_window_tokens']} tokens): **{e['median']} ms a window** (min {e['min']}, max {e['max']}).",
        f"Its kernels back to back, nothing else: **{result['ceiling_ms_per_window']} ms**, so engine / ceiling "
        f"**{result['engine_over_ceiling']}×**; with attention at the float32 projections' rate "
        f"({result['float32_projection_peak_gflops']} GFLOP/s): {result['ceiling_attention_at_float_peak_ms_per_window']} ms, "
        f"{result['engine_over_ceiling_attention_at_float_peak']}×. No build of the same arithmetic on this CPU "
        "gains more than these ratios.",
        "",
        f"Reproduce: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved classifier folder")
    parser.add_argument("--n", type=int, default=100, help="test reviews whose windows the engine classifies")
    parser.add_argument("--calls", type=int, default=50, help="kernel calls per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    result = measure(args.model, args.n, args.seed, args.calls, args.repeats)
    command = ".venv/bin/python -m bench.space_ceiling " + shlex.join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"space_ceiling_{result['model']}_{cpu_slug()}"
    stem.with_suffix(".json").write_text(json.dumps({**result, "command": command}, indent=2) + "\n")
    stem.with_suffix(".md").write_text(to_markdown(result, command))
    print(to_markdown(result, command))


if __name__ == "__main__":
    main()
