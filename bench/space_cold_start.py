"""The Space's cold start: process start to the first int8 answer, from the published int8 file against building it.

    .venv/bin/python -m bench.space_cold_start --model runs/minilm-imdb-cpu   # a fine-tuned model folder
    .venv/bin/python -m bench.space_cold_start                                # a random all-MiniLM-L6-v2 shape

Two copies of the same model folder: one with the files a push publishes in `onnx/`
(`space/onnx_build.py`), from which the Space loads its int8 engine, and one without, for which it
exports and quantises the model at start-up. Each candidate runs alone, `python space/app.py` in its
own process, one after the other, alternating, `--repeats` times; the time is from starting the
process to the first `/predict` answer on the int8 engine (loading torch and the model, building or
loading the engine, the start-up measurement of every engine, the server). Reported: min / median /
max seconds per candidate, the ratio of medians, the CPU model. Results go to
bench/results/space_cold_start_<model>.{json,md} with the command that reproduces them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "space"))

import onnx_build  # noqa: E402

from bench.random_models import build_random_model  # noqa: E402
from bench.space_speed import cpu_description, free_port, spread  # noqa: E402

PUBLISHED = "published int8 file (onnx/model_quantized.onnx)"
BUILT = "int8 engine built at start-up (no onnx/ in the repo)"
LOADED_LINE = "int8 engine: the model repo's onnx/model_quantized.onnx"


def cold_start(model_dir: Path, log_path: Path, timeout: float = 600) -> tuple[float, bool]:
    """Seconds from starting `python space/app.py` on `model_dir` to its first int8 answer, and whether it used the published file."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "MODEL_ID": str(model_dir), "PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "space" / "app.py")], env=env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            while url not in log_path.read_text():
                if proc.poll() is not None or time.perf_counter() - started > timeout:
                    raise SystemExit(f"the Space did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.05)
            answer = Client(url + "/", verbose=False).predict("A first review.", "int8", api_name="/predict")
            seconds = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    if answer.get("engine") != "int8":
        raise SystemExit(f"the first answer came from {answer.get('engine')}, not int8")
    return seconds, LOADED_LINE in log_path.read_text()


def to_markdown(result: dict) -> str:
    cpu = result["cpu"]
    rows = "\n".join(
        f"| {name} | {s['min']} | {s['median']} | {s['max']} |" for name, s in result["seconds"].items()
    )
    return f"""### Space cold start: {result['model']}, {result['repeats']} alternating runs each

CPU: {cpu['model']}, {cpu['cores']} cores; load average {result['load_average_at_end']} at the end. Each
candidate alone, `python space/app.py` in its own process; seconds from starting the process to the
first `/predict` answer on the int8 engine.

| candidate | min s | median s | max s |
|---|---:|---:|---:|
{rows}

Building at start-up over loading the published file (medians): **{result['built_over_published']}×**.

Reproduce: `{result['command']}`
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating cold starts of each candidate")
    parser.add_argument("--model", help="a saved classifier folder; without it, a random all-MiniLM-L6-v2 shape")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the results go")
    parser.add_argument("--seed", type=int, default=0, help="of the random model")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cold-start-"))
    source = Path(args.model) if args.model else build_random_model(work / "random", "minilm", args.seed)
    plain, published = work / "plain", work / "published"
    for folder in (plain, published):
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("onnx", "runs", "*.csv"))
    onnx_build.build_published_onnx(published, published / "onnx")
    runs: dict[str, list[float]] = {PUBLISHED: [], BUILT: []}
    for repeat in range(args.repeats):
        for name, folder in ((PUBLISHED, published), (BUILT, plain)):
            seconds, loaded = cold_start(folder, work / f"app-{repeat}.log")
            if loaded != (name == PUBLISHED):
                raise SystemExit(f"{name}: the Space {'did not load' if name == PUBLISHED else 'loaded'} the published file")
            runs[name].append(seconds)
            print(f"{name}: {seconds:.2f} s", flush=True)
    result = {
        "command": (".venv/bin/python -m bench.space_cold_start " + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip(),
        "model": Path(args.model).resolve().name if args.model else "minilm-random",
        "cpu": cpu_description(),
        "repeats": args.repeats,
        "seconds": {name: spread(values) for name, values in runs.items()},
        "built_over_published": round(float(np.median(runs[BUILT]) / np.median(runs[PUBLISHED])), 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"space_cold_start_{result['model']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
