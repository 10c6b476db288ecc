"""One benchmark candidate in its own process, so `space_speed.py` can run each one alone.

    python bench/space_speed_worker.py pipeline MODEL_DIR      # the baseline: a plain pipeline
    python bench/space_speed_worker.py space MODEL_DIR PORT    # the Space, served on PORT
    python bench/space_speed_worker.py trivial - PORT          # a Gradio app whose function does nothing

Each prints one JSON line when it is ready, then answers one JSON line per request line on stdin,
and exits when stdin closes (the Space and the trivial app shut their servers down first):

- pipeline: a JSON list of texts -> {"labels": [...], "wall": seconds, "cpu": seconds}, timed here,
  without the pipe's overhead. `pipeline(..., truncation=True)` once per review is the issue's
  baseline; this mode imports nothing of the Space's, so it runs with default thread settings.
- space: {"op": "forward"} -> {"forward": seconds inside the engines' forward passes so far, timed by
  wrapping the Space's engines};
  {"op": "model", "text": ..., "engine": ..., "reps": n} -> {"ms": [...]}: the Space's model
  call alone for one review, without HTTP and queue. The ready line carries the default engine
  and the start-up measurement the Space chose it by.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pipeline_worker(model_dir: str) -> None:
    import torch
    from transformers import pipeline

    pipe = pipeline("text-classification", model=model_dir, dtype=torch.float32)

    def classify(texts: list[str]) -> dict:
        wall, cpu = time.perf_counter(), time.process_time()
        labels = [pipe(text, truncation=True)[0]["label"] for text in texts]
        return {"labels": labels, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}

    classify(["warm-up", "a second warm-up text"])
    serve({}, classify)


def timed_engines(engines: dict[str, Callable], seconds: list[float]) -> None:
    """Wrap every engine so its forward passes add their wall time to `seconds[0]` (the Space carries no timer).

    The int8 engine's per-window calls run on several workers at once, so their wall time is the
    span from the first call's start to the last call's end, as the Space's own loop waits for it.
    """
    lock, running, started = threading.Lock(), [0], [0.0]

    def wrap(fn: Callable) -> Callable:
        def run(*args: object) -> object:
            with lock:
                if running[0] == 0:
                    started[0] = time.perf_counter()
                running[0] += 1
            try:
                return fn(*args)
            finally:
                with lock:
                    running[0] -= 1
                    if running[0] == 0:
                        seconds[0] += time.perf_counter() - started[0]

        return run

    for name, fn in list(engines.items()):
        engines[name] = wrap(fn)


def space_worker(model_dir: str, port: int) -> None:
    sys.path.insert(0, str(ROOT / "space"))
    import app
    from files import Limits
    from sentiment import SentimentModel
    from settings import Settings

    model = SentimentModel(model_dir)
    forward = [0.0]
    timed_engines(model.engines, forward)
    demo = app.build_app(model, Settings(limits=Limits(max_rows=10_000, max_chars=10**6)))
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True)

    def answer(request: dict) -> dict:
        if request["op"] == "forward":
            return {"forward": forward[0]}
        times = []
        for _ in range(request["reps"]):
            started = time.perf_counter()
            model.predict([request["text"]], request["engine"])
            times.append((time.perf_counter() - started) * 1000)
        return {"ms": times}

    try:
        serve({"engines": list(model.engines), "timings": model.timings}, answer)
    finally:
        demo.close()


def trivial_worker(port: int) -> None:
    import gradio as gr

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(lambda text: text, box, box, api_name="echo")
    demo.queue(max_size=64, default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True)
    try:
        serve({}, lambda request: {})
    finally:
        demo.close()


def serve(ready: dict, handle: Callable) -> None:
    print(json.dumps({"ready": True, **ready}), flush=True)
    for line in sys.stdin:
        print(json.dumps(handle(json.loads(line))), flush=True)


if __name__ == "__main__":
    mode, model_dir, *port = sys.argv[1:]
    if mode == "pipeline":
        pipeline_worker(model_dir)
    elif mode == "space":
        space_worker(model_dir, int(port[0]))
    else:
        trivial_worker(int(port[0]))
