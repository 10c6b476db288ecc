"""ONNX Runtime's fused kernels against the operators they replace, and the int8 engine loaded three ways.

    .venv/bin/python -m bench.space_engine_ops --model runs/minilm-imdb-cpu   # a fine-tuned model
    .venv/bin/python -m bench.space_engine_ops                                # a random all-MiniLM-L6-v2 shape

Why: `space/ort_cpu.py` keeps ORT's SkipLayerNormalization fusion out of the int8 engine
(SLOW_FUSIONS) because on CPU it ran slower than the unfused operators, and keeps BiasGelu, which did
not; and the Space's int8 engine is the published int8 file (standard operators) fused at load, where
ORT's optimizer cannot fuse attention over integer MatMuls. This measures on the host it runs on,
single-threaded as the Space's per-window workers run:

1. each kernel pair on one window's activations (`--length` tokens): the fused op against its parts;
2. the whole int8 engine over the real windows of `--n` test reviews, alternating `--repeats` times:
   the Space's build, the same file with every fusion, and the graph fused before quantising (the
   Space's earlier build, with ORT's int8 `QAttention`; contrib operators, so not publishable).

Reported: min / median / max, the ratio of medians, the CPU model. Results go to
bench/results/space_engine_ops_<model>.{json,md} with the command that reproduces them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "space"))

import onnx_build
import ort_cpu
from examples import EXAMPLES
from windows import clean_text, cut_windows, model_max_length

from bench.random_models import build_random_model
from bench.space_speed import cpu_description, load_reviews, spread

HIDDEN, INTERMEDIATE = 384, 1536  # all-MiniLM-L6-v2's widths, for the kernel pairs
SPACE_BUILD = "published int8 file, fused at load (the Space)"
PREVIOUS_BUILD = "fused before quantising (QAttention; not publishable)"
KERNELS_SHOWN = ("SkipLayerNormalization", "LayerNormalization", "BiasGelu", "Attention", "QAttention",
                 "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "EmbedLayerNormalization")  # fmt: skip


def kernel_graph(kind: str, width: int) -> bytes:
    """A one-kernel model: the fused op, or the operators it replaces, on [1, L, width] inputs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "L", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inputs = [x]
    init = [
        helper.make_tensor(name, TensorProto.FLOAT, [width], np.full(width, value, np.float32))
        for name, value in (("gamma", 1.0), ("beta", 0.0), ("bias", 0.1))
    ]
    if kind in ("SkipLayerNormalization", "Add + LayerNormalization"):
        inputs.append(helper.make_tensor_value_info("skip", TensorProto.FLOAT, [1, "L", width]))
    nodes = {
        "SkipLayerNormalization": [
            helper.make_node(
                "SkipLayerNormalization",
                ["x", "skip", "gamma", "beta", "bias"],
                ["y"],
                domain="com.microsoft",
                epsilon=1e-12,
            )
        ],
        "Add + LayerNormalization": [
            helper.make_node("Add", ["x", "skip"], ["s"]),
            helper.make_node("Add", ["s", "bias"], ["t"]),
            helper.make_node("LayerNormalization", ["t", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12),
        ],
        "BiasGelu": [helper.make_node("BiasGelu", ["x", "bias"], ["y"], domain="com.microsoft")],
        "Add + Gelu": [
            helper.make_node("Add", ["x", "bias"], ["t"]),
            helper.make_node("Gelu", ["t"], ["y"], domain="com.microsoft"),
        ],
    }[kind]
    graph = helper.make_graph(nodes, kind, inputs, [y], init)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def time_kernels(length: int, repeats: int, calls: int, folder: Path) -> list[dict]:
    """Microseconds per call of each fused kernel and of its parts, in sessions that keep them as built."""
    rows = []
    rng = np.random.default_rng(0)
    for fused, parts, width in (
        ("SkipLayerNormalization", "Add + LayerNormalization", HIDDEN),
        ("BiasGelu", "Add + Gelu", INTERMEDIATE),
    ):
        micro = {}
        for kind in (fused, parts):
            path = folder / f"{kind.replace(' ', '')}.onnx"
            path.write_bytes(kernel_graph(kind, width))
            # One thread, and no fusion: each graph runs as built.
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feeds = {
                i.name: rng.standard_normal((1, length, width), dtype=np.float32)
                for i in session.get_inputs()
            }
            for _ in range(20):
                session.run(None, feeds)
            per_call = []
            for _ in range(repeats):
                started = time.perf_counter()
                for _ in range(calls):
                    session.run(None, feeds)
                per_call.append((time.perf_counter() - started) / calls * 1e6)
            micro[kind] = spread(per_call)
        rows.append(
            {
                "fused": fused,
                "parts": parts,
                "shape": [1, length, width],
                "fused_us": micro[fused],
                "parts_us": micro[parts],
                "fused_over_parts": round(micro[fused]["median"] / micro[parts]["median"], 2),
            }
        )
    return rows


def build_sessions(model_dir: Path, folder: Path) -> tuple[dict, dict]:
    """The int8 engine's builds, each a single-threaded session: the Space's (the published int8 file,
    fused at load without the slow fusions), the same file with every fusion, and the graph fused
    before quantising (ORT's fused `Attention` becomes `QAttention`, out of a published file's reach)."""
    from transformers import AutoConfig, AutoTokenizer

    config, tokenizer = AutoConfig.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    published = onnx_build.build_published_onnx(model_dir, folder / "published")  # calibrated as the Space is
    calibration, _ = cut_windows(tokenizer, [clean_text(t) for _, t in EXAMPLES], model_max_length(tokenizer, config))
    fused_float = folder / "fused-float.onnx"
    fused_float.write_bytes(ort_cpu.fuse_for_cpu(published["model"], config))
    fused_first = folder / "fused-then-quantised.onnx"
    names = [i.name for i in onnx.load(str(published["model"]), load_external_data=False).graph.input]
    onnx_build.quantize_graph(fused_float, fused_first, onnx_build.window_feeds(names, calibration))
    slow = tuple(ort_cpu.SLOW_FUSIONS)
    builds = {
        SPACE_BUILD: (ort_cpu.fuse_for_cpu(published["model_quantized"], config, slow), slow),
        "published int8 file, every fusion at load": (ort_cpu.fuse_for_cpu(published["model_quantized"], config, ()), ()),
        PREVIOUS_BUILD: (fused_first.read_bytes(), slow),
    }
    sessions, kernels = {}, {}
    for index, (name, (graph, avoid)) in enumerate(builds.items()):
        as_run = folder / f"as-run-{index}.onnx"
        sessions[name] = ort_cpu.ort_session(graph, threads=1, avoid=avoid, save_optimized=as_run)
        ops = [node.op_type for node in onnx.load(str(as_run)).graph.node]
        kernels[name] = {op: ops.count(op) for op in KERNELS_SHOWN}
    return sessions, kernels


def time_engines(model_dir: Path, n: int, seed: int, repeats: int, folder: Path) -> dict:
    """Reviews/s of each int8 build over the real windows of `n` reviews, one window per call, one thread."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    max_length = model_max_length(tokenizer, AutoConfig.from_pretrained(model_dir))
    texts = load_reviews(n, seed)[0]["text"].tolist()
    windows, _ = cut_windows(tokenizer, [clean_text(t) for t in texts], max_length)
    sessions, kernels = build_sessions(model_dir, folder)
    logits = {name: ort_cpu.onnx_logits_fn(session) for name, session in sessions.items()}
    feeds = [np.array([w], dtype=np.int64) for w in windows]
    for run in logits.values():
        for ids in feeds[:5]:
            run(ids, np.ones_like(ids))
    rates: dict[str, list[float]] = {name: [] for name in sessions}
    # Also per second of this thread's CPU time: a one-thread session computes on the calling thread,
    # so this figure holds where other work on the host takes the cores from the wall-clock one.
    cpu_rates: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, run in logits.items():
            started, cpu_started = time.perf_counter(), time.thread_time()
            for ids in feeds:
                run(ids, np.ones_like(ids))
            rates[name].append(len(texts) / (time.perf_counter() - started))
            cpu_rates[name].append(len(texts) / (time.thread_time() - cpu_started))
    space, every, previous = sessions
    median = {name: float(np.median(r)) for name, r in rates.items()}
    cpu_median = {name: float(np.median(r)) for name, r in cpu_rates.items()}
    return {
        "reviews": len(texts),
        "windows": len(windows),
        "kernels_as_run": kernels,
        "reviews_per_s": {name: spread(r) for name, r in rates.items()},
        "reviews_per_cpu_s": {name: spread(r) for name, r in cpu_rates.items()},
        "speedup": round(median[space] / median[every], 2),
        "space_over_previous": round(median[space] / median[previous], 2),
        "space_over_previous_cpu": round(cpu_median[space] / cpu_median[previous], 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }


def to_markdown(result: dict) -> str:
    cpu = result["cpu"]
    lines = [
        f"### ORT kernels on {cpu['model']}, {cpu['cores']} cores, one thread",
        "",
        f"Microseconds per call, {result['repeats']} runs of {result['calls']} calls (min / median / max):",
        "",
        "| fused kernel | its parts | shape | fused | parts | fused / parts |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in result["kernels"]:
        f, p = r["fused_us"], r["parts_us"]
        lines.append(
            f"| {r['fused']} | {r['parts']} | {r['shape']} | {f['min']:.0f} / {f['median']:.0f} / {f['max']:.0f} "
            f"| {p['min']:.0f} / {p['median']:.0f} / {p['max']:.0f} | {r['fused_over_parts']}× |"
        )
    e = result["engine"]
    lines += [
        "",
        (
            f"The int8 engine of `{result['model']}` over the {e['windows']} windows of {e['reviews']} test "
            f"reviews, one window per call, {result['repeats']} alternating runs (reviews/s):"
        ),
        "",
        "| build | kernels as the session runs them | min | median | max | per CPU second: min | median | max |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in e["reviews_per_s"].items():
        kernels = ", ".join(f"{op} {n}" for op, n in e["kernels_as_run"][name].items() if n)
        c = e["reviews_per_cpu_s"][name]
        lines.append(f"| {name} | {kernels} | {r['min']} | {r['median']} | {r['max']} "
                     f"| {c['min']} | {c['median']} | {c['max']} |")  # fmt: skip
    lines += [
        "",
        f"The Space's build against every fusion (medians): **{e['speedup']}×**; against fusing before "
        f"quantising: **{e['space_over_previous']}×** (per CPU second: {e['space_over_previous_cpu']}×). "
        f"Load average at the end: {e['load_average_at_end']}.",
        "",
        f"Reproduce: `{result['command']}`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", help="a saved classifier folder (a random all-MiniLM-L6-v2 shape without it)"
    )
    parser.add_argument("--n", type=int, default=100, help="test reviews whose windows the engines classify")
    parser.add_argument("--length", type=int, default=256, help="tokens per window in the kernel pairs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="kernel calls per timed run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="engine-ops-"))
    model_dir = Path(args.model) if args.model else build_random_model(folder / "model", "minilm", args.seed)
    result = {
        "command": ".venv/bin/python -m bench.space_engine_ops "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "model": Path(args.model).resolve().name if args.model else "minilm-random",
        "cpu": cpu_description(),
        "repeats": args.repeats,
        "calls": args.calls,
        "kernels": time_kernels(args.length, args.repeats, args.calls, folder),
        "engine": time_engines(model_dir, args.n, args.seed, args.repeats, folder),
    }
    result["command"] = result["command"].strip()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"space_engine_ops_{result['model']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
