"""Speed of the Space on CPU: reviews/s through `/predict_file` against a plain `pipeline` called
once per review, and the latency of one `/predict` against a Gradio function that does nothing.

    .venv/bin/python bench/space_speed.py --model runs/minilm-imdb-cpu   # a fine-tuned model (judged)
    .venv/bin/python bench/space_speed.py --shape minilm                 # a random model of that shape

Each candidate runs alone, in its own process, one after another: the baseline pipeline, a
trivial Gradio app, then the Space (`space_speed_worker.py`); no other benchmark process is alive
while one is measured, so idle threads of one cannot take the cores from the next. Every engine
classifies the same file of `--n` test reviews (the full test split shuffled with `--seed`, or
the bundled sample) `--repeats` times; the table gives min / median / max reviews/s and the ratio
of medians to the baseline. A profile splits each `/predict_file` call into the engines' forward
passes, the rest of the Space's classifying loop, and what lies outside it (upload, reading the
file, writing the results CSV, HTTP). Latency: p50 and p90 of `/predict` for a review of median
length, of the trivial app's round trip, and of the Space's model call alone.

A random model costs the compute of a trained one of its shape, so it is fine for speed; label
agreement and accuracy only mean something for a trained model (`--model`). Results go to
bench/results/space_speed_<model>.{json,md}, with the command that reproduces them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.random_models import build_random_model
from train.results import cpu_features, cpu_model, cpu_slug

FULL_TEST = ROOT.parent / "shared" / "data" / "imdb" / "test.parquet"
SAMPLE_TEST = ROOT / "data" / "imdb_sample" / "test.parquet"
WORKER = Path(__file__).resolve().parent / "space_speed_worker.py"
LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
BASELINE = "baseline: `pipeline` per review (truncates at 512 tokens), float32"
# The bars: /predict_file at least this many times the baseline's throughput; an engine
# may be the default only if it gives float32's label on at least this share of reviews.
BAR_SPEEDUP, BAR_AGREEMENT = 4.0, 0.99


def load_reviews(n: int, seed: int) -> tuple[pd.DataFrame, Path]:
    """`n` test reviews, shuffled with `seed` (the full test split is sorted by label)."""
    source = FULL_TEST if FULL_TEST.exists() else SAMPLE_TEST
    frame = pd.read_parquet(source).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame.head(n), source


def cpu_description() -> dict[str, object]:
    """The CPU model and the instruction sets the engines' speed depends on."""
    flags = set(cpu_features())
    return {
        "model": cpu_model(),
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_tile" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """A candidate in its own process (see space_speed_worker.py), alive only while it is measured."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise SystemExit(f"the benchmark worker {args} did not start (exit {self.proc.wait()})")
        self.ready = json.loads(line)

    def ask(self, request: object) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=120)


def client_for(port: int):  # noqa: ANN201 - gradio_client is imported late, with the Space up
    from gradio_client import Client

    deadline = time.monotonic() + 60
    while True:
        try:
            return Client(f"http://127.0.0.1:{port}/", verbose=False)
        except Exception:  # noqa: BLE001 - the server may need a moment after its ready line
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def timed_ms(fn, reps: int) -> list[float]:  # noqa: ANN001
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 2),
        "median": round(float(np.median(values)), 2),
        "max": round(max(values), 2),
    }


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p90": round(float(np.percentile(ms, 90)), 1)}


def measure_space(
    model_dir: Path, typical: str, warm_csv: Path, reviews_csv: Path, n_texts: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The trivial Gradio round trip, then the Space: every engine on the same file, /predict, the model alone."""
    from gradio_client import handle_file

    labels: dict[str, np.ndarray] = {}
    # 2. A Gradio function that does nothing: the floor of any /predict round trip.
    port = free_port()
    with Worker("trivial", "-", str(port)):
        client = client_for(port)
        client.predict(typical, api_name="/echo")
        trivial_ms = timed_ms(lambda: client.predict(typical, api_name="/echo"), args.latency_reps)
        client.close()

    # 3. The Space: every engine on the same file, then /predict and its model call alone.
    port = free_port()
    with Worker("space", str(model_dir), str(port)) as space:
        client = client_for(port)
        engines = space.ready["engines"]
        default_engine = client.predict(typical, api_name="/predict")["engine"]
        rates: dict[str, list[float]] = {}
        profile: dict[str, dict[str, float]] = {}
        for engine in engines:
            client.predict(handle_file(str(warm_csv)), "", engine, api_name="/predict_file")
            walls, forward, server = [], [], []
            for _ in range(args.repeats):
                before = space.ask({"op": "forward"})["forward"]
                started = time.perf_counter()
                csv_path, summary = client.predict(
                    handle_file(str(reviews_csv)), "", engine, api_name="/predict_file"
                )
                walls.append(time.perf_counter() - started)
                forward.append(space.ask({"op": "forward"})["forward"] - before)
                server.append(summary["seconds"])
            rates[engine] = [n_texts / w for w in walls]
            labels[engine] = pd.read_csv(csv_path, keep_default_na=False)["predicted_label"].to_numpy()
            middle = int(np.argsort(walls)[len(walls) // 2])
            profile[engine] = {
                "request_s": round(walls[middle], 2),
                "forward_s": round(forward[middle], 2),
                "classify_loop_s": round(server[middle], 2),
            }
            print(f"{engine}: {spread(rates[engine])} reviews/s; {profile[engine]}", flush=True)
        latency = {"trivial Gradio function, round trip": percentiles(trivial_ms)}
        model_call: dict[str, dict[str, float]] = {}
        for engine in engines:
            client.predict(typical, engine, api_name="/predict")
            predict_ms = timed_ms(
                lambda e=engine: client.predict(typical, e, api_name="/predict"), args.latency_reps
            )
            model_ms = space.ask(
                {"op": "model", "text": typical, "engine": engine, "reps": args.latency_reps}
            )["ms"]
            model_call[engine] = percentiles(model_ms)
            latency[f"/predict, {engine}"] = percentiles(predict_ms)
            latency[f"model call alone, {engine}"] = model_call[engine]
        client.close()

    return {"engines": engines, "default_engine": default_engine, "rates": rates, "labels": labels,
            "profile": profile, "latency": latency, "model_call": model_call,
            "startup_timings": space.ready["timings"]}  # fmt: skip


def summarise(
    args: argparse.Namespace, m: dict[str, Any], baseline_rates: list[float], baseline_labels: np.ndarray,
    gold: np.ndarray, tag: str, source: Path, typical: str, cpu: dict[str, Any], n_texts: int,
) -> dict[str, Any]:  # fmt: skip
    """The results file: each candidate's spread and speed-up, label agreement, accuracy, latency, checks."""
    engines, default_engine, rates, profile = m["engines"], m["default_engine"], m["rates"], m["profile"]
    latency, model_call = m["latency"], m["model_call"]
    labels = {BASELINE: baseline_labels, **m["labels"]}
    base = float(np.median(baseline_rates))
    reference = labels.get("float", labels[BASELINE])
    rows = [
        {
            "candidate": BASELINE,
            "reviews_per_s": spread(baseline_rates),
            "speedup": 1.0,
            "agree_with_float": round(float((labels[BASELINE] == reference).mean()), 4),
            "accuracy": round(float((labels[BASELINE] == gold).mean()), 4),
        }
    ]
    for engine in engines:
        rows.append(
            {
                "candidate": f"Space `/predict_file`, {engine}"
                + (" (default)" if engine == default_engine else ""),
                "engine": engine,
                "reviews_per_s": spread(rates[engine]),
                "speedup": round(float(np.median(rates[engine])) / base, 2),
                "agree_with_float": round(float((labels[engine] == reference).mean()), 4),
                "accuracy": round(float((labels[engine] == gold).mean()), 4),
                "profile": profile[engine],
            }
        )
    default_row = next(r for r in rows if r.get("engine") == default_engine)
    trivial_p50 = latency["trivial Gradio function, round trip"]["p50"]
    predict_p50 = latency[f"/predict, {default_engine}"]["p50"]
    command = ".venv/bin/python bench/space_speed.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = {
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command.strip(),
        "model": tag,
        "trained": bool(args.model),
        "reviews": n_texts,
        "repeats": args.repeats,
        "source": str(source.relative_to(ROOT.parent)) if source.is_relative_to(ROOT.parent) else str(source),
        "median_review_chars": len(typical),
        "cpu": cpu,
        "default_engine": default_engine,
        "startup_timings_ms": {e: round(s * 1000, 1) for e, s in m["startup_timings"].items()},
        "rows": rows,
        "latency_ms": latency,
        "checks": {
            "file_speedup": default_row["speedup"],
            "file_speedup_at_least": BAR_SPEEDUP,
            "predict_p50_ms": predict_p50,
            "predict_p50_bound_ms": round(trivial_p50 + model_call[default_engine]["p50"], 1),
            "engines_agreeing_at_least": {
                r["engine"]: r["agree_with_float"] >= BAR_AGREEMENT for r in rows if "engine" in r
            }
            if args.model
            else None,
            **fastest_check(rows, default_engine, bool(args.model)),
        },
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }
    return result


def fastest_check(rows: list[dict[str, Any]], default_engine: str, judged: bool) -> dict[str, Any]:
    """Whether the Space's start-up choice is the engine this benchmark finds fastest on the same host.

    The candidates are those the Space may choose (float32, and the others only where their labels agree
    with float32's on the bar's share of reviews, when a trained model lets that be judged).
    """
    eligible = [r for r in rows if "engine" in r and (r["engine"] == "float" or not judged
                                                        or r["agree_with_float"] >= BAR_AGREEMENT)]  # fmt: skip
    fastest = max(eligible, key=lambda r: r["reviews_per_s"]["median"])["engine"]
    return {"fastest_engine": fastest, "startup_choice_is_fastest": fastest == default_engine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a saved classifier folder (a random model of --shape without it)")
    parser.add_argument("--shape", choices=["distilbert", "minilm"], default="minilm")
    parser.add_argument("--n", type=int, default=500, help="test reviews in the file")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each candidate")
    parser.add_argument("--latency-reps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()


    work = Path(tempfile.mkdtemp(prefix="space-bench-"))
    reviews, source = load_reviews(args.n, args.seed)
    model_dir = Path(args.model) if args.model else build_random_model(work / "model", args.shape, args.seed)
    tag = Path(args.model).resolve().name if args.model else f"{args.shape}-random"
    texts, gold = reviews["text"].tolist(), np.array([LABELS[int(g)] for g in reviews["label"]])
    reviews_csv = work / "reviews.csv"
    reviews[["label", "text"]].to_csv(reviews_csv, index=False)
    warm_csv = work / "warm-up.csv"
    reviews[["label", "text"]].head(16).to_csv(warm_csv, index=False)
    lengths = np.array([len(t) for t in texts])
    typical = texts[int(np.argsort(lengths)[len(lengths) // 2])]
    cpu = cpu_description()
    print(
        f"{len(texts)} reviews from {source}; model {tag}; CPU {cpu['model']}, {cpu['cores']} cores",
        flush=True,
    )

    # 1. The baseline, alone.
    with Worker("pipeline", str(model_dir)) as baseline:
        runs = [baseline.ask(texts) for _ in range(args.repeats)]
        baseline_latency = [baseline.ask([typical])["wall"] * 1000 for _ in range(args.latency_reps)]
    baseline_rates = [len(texts) / run["wall"] for run in runs]
    labels = {BASELINE: np.array(runs[-1]["labels"])}
    print(f"baseline: {spread(baseline_rates)} reviews/s", flush=True)

    measured = measure_space(model_dir, typical, warm_csv, reviews_csv, len(texts), args)
    measured["latency"]["baseline pipeline call"] = percentiles(baseline_latency)
    result = summarise(args, measured, baseline_rates, labels[BASELINE], gold, tag, source, typical, cpu, len(texts))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"space_speed_{tag}_{cpu_slug()}"  # one file per model and CPU kind
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))
    print(f"wrote {stem}.json and {stem}.md")


def to_markdown(result: dict) -> str:
    cpu, checks = result["cpu"], result["checks"]
    isa = ", ".join(k for k in ("avx512_bf16", "amx", "avx512_vnni") if cpu[k]) or "no bf16/int8 extensions"
    lines = [
        f"### Space speed: {result['model']}, {result['reviews']:,} test reviews, {result['repeats']} runs each",
        "",
        f"Measured {result.get('measured', '(no date recorded)')}. CPU: {cpu['model']}, {cpu['cores']} cores ({isa}). "
        "Each candidate measured alone, in its own process.",
        "",
        "| candidate | reviews/s min | median | max | speed-up (medians) | same label as float32 | accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        r = row["reviews_per_s"]
        lines.append(
            f"| {row['candidate']} | {r['min']} | {r['median']} | {r['max']} | {row['speedup']}× "
            f"| {row['agree_with_float']:.1%} | {row['accuracy']:.1%} |"
        )
    lines += [
        "",
        "Where one `/predict_file` call's time goes (the median run): the engines' forward passes, "
        "the rest of the classifying loop (tokenising, windows, batching, progress), and the rest of "
        "the request (upload, reading the file, writing the results CSV, HTTP, queue):",
        "",
        "| engine | request s | forward passes s | rest of the loop s | outside the loop s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        if "profile" in row:
            p = row["profile"]
            lines.append(
                f"| {row['engine']} | {p['request_s']} | {p['forward_s']} | "
                f"{round(p['classify_loop_s'] - p['forward_s'], 2)} | {round(p['request_s'] - p['classify_loop_s'], 2)} |"
            )
    lines += [
        "",
        f"Latency, one review of median length ({result['median_review_chars']:,} characters), "
        f"{'p50 / p90'} ms:",
        "",
        "| call | p50 | p90 |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {v['p50']} | {v['p90']} |" for name, v in result["latency_ms"].items()]
    startup = ", ".join(f"{e} {ms} ms" for e, ms in result["startup_timings_ms"].items())
    agreeing = checks["engines_agreeing_at_least"]
    lines += [
        "",
        f"The Space's start-up measurement (a file of reviews of IMDb's spread of lengths): {startup}; default "
        f"engine: **{result['default_engine']}**; fastest here by this benchmark: **{checks['fastest_engine']}** "
        f"({'the same' if checks['startup_choice_is_fastest'] else 'NOT the same'}).",
        f"`/predict_file` on the default engine: **{checks['file_speedup']}×** the baseline "
        f"(bar {checks['file_speedup_at_least']}×). `/predict` p50 {checks['predict_p50_ms']} ms against "
        f"trivial round trip + model call = {checks['predict_p50_bound_ms']} ms.",
        (
            "Engines giving float32's label on ≥99% of reviews: "
            + ", ".join(f"{e} {'yes' if ok else 'no'}" for e, ok in agreeing.items())
            + "."
        )
        if agreeing is not None
        else "Label agreement not judged: a random model (use --model).",
        f"Load average at the end: {result['load_average_at_end']:.1f}.",
        "",
        f"Reproduce: `{result['command']}`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
