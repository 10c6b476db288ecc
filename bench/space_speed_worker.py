"""The baseline in its own process, so it runs with default thread settings (`space_speed.py`).

    python bench/space_speed_worker.py MODEL_DIR

Reads one JSON list of texts per stdin line and answers one JSON line per request:
{"labels": [...], "wall": seconds, "cpu": seconds}, timed inside this process. It imports neither
the app nor anything that sets OMP_WAIT_POLICY, so it runs with whatever environment it was given:
`pipeline` with the default one is the issue's baseline (a plain pipeline, once per review).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable


def main() -> None:
    import torch
    from transformers import pipeline

    pipe = pipeline("text-classification", model=sys.argv[1], dtype=torch.float32)

    def classify(texts: list[str]) -> list[str]:
        return [pipe(text, truncation=True)[0]["label"] for text in texts]

    serve(classify)


def serve(classify: Callable[[list[str]], list[str]]) -> None:
    classify(["warm-up", "a second warm-up text"])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        texts = json.loads(line)
        wall, cpu = time.perf_counter(), time.process_time()
        labels = classify(texts)
        reply = {"labels": labels, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
