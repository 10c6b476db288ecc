"""A classifier in its own process, for `space_speed.py` candidates that need their own thread settings.

    python bench/space_speed_worker.py {pipeline|int8} MODEL_DIR

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
from pathlib import Path


def main() -> None:
    kind, model_dir = sys.argv[1], sys.argv[2]
    import torch
    from transformers import pipeline

    if kind == "pipeline":
        pipe = pipeline("text-classification", model=model_dir, dtype=torch.float32)

        def classify(texts: list[str]) -> list[str]:
            return [pipe(text, truncation=True)[0]["label"] for text in texts]

    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "space"))
        from classifier import SentimentModel

        model = SentimentModel(model_dir, engines=(kind,))

        def classify(texts: list[str]) -> list[str]:
            return [p.label for p in model.predict(texts, kind)]

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
