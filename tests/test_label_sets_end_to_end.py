"""A three-class run and a rating run, each the whole way a user takes it: trained by `python -m train` on the
committed three-way sample, published by `python -m model_card push` to the local Hub (weights, card, ONNX files
checked against the model), then served from the Hub by id in the Space (`gradio_client`) and in transformers.js,
where each must give what Python's `pipeline` gives for the same reviews.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, tiny_args
from js_client import push, run_transformers_js
from local_hub import LocalHub
from space_fixtures import SPACE, launched
from transformers import pipeline

from train.run import main as train_main

THREE_WAY = ROOT / "data" / "three_way_sample"
REVIEWS = ["A wonderful, moving film with a cast at its best.", "Dull, slow and far too long; I left early.",
           "It was fine, I suppose: some good scenes, some weak ones."]  # fmt: skip
RUNS = {
    "3-class": [],
    "rating": ["--task", "regression", "--label_column", "rating", "--rating_midpoint", "5.5"],
}
# The Space's float engine and transformers.js's fp32 run the same float32 weights in other kernels.
SAME_WEIGHTS = 1e-4


@pytest.fixture(scope="module", params=list(RUNS))
def published(request: pytest.FixtureRequest, install: Path, hub: LocalHub, tiny_model_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:  # fmt: skip
    """(kind, run folder, repo id): trained on the three-way sample and pushed to the local Hub."""
    kind, run = request.param, tmp_path_factory.mktemp(request.param) / "run"
    train_main([*tiny_args(tiny_model_dir, run), "--dataset_name", str(THREE_WAY), "--max_train_samples", "150",
                "--max_eval_samples", "30", "--max_test_samples", "90", "--num_train_epochs", "2",
                "--learning_rate", "1e-3", "--precision", "fp32", *RUNS[kind]])  # fmt: skip
    repo = f"{hub.user}/three-way-{kind}"
    push(hub, run, repo, tmp_path_factory.mktemp("home"))
    return kind, run, repo


def test_published_run_serves_alike_in_python_the_space_and_transformers_js(
    published: tuple[str, Path, str], install: Path, hub: LocalHub, tmp_path: Path
) -> None:
    kind, run, repo = published
    served = pipeline("text-classification", model=str(run))
    env = hub.client_env(tmp_path / "hf_home", hub.token)
    if kind == "3-class":
        python = [{s["label"]: s["score"] for s in scores} for scores in served(REVIEWS, top_k=None)]
        assert len({max(p, key=p.get) for p in python}) > 1 or len({round(p["neutral"], 3) for p in python}) == 3
        js = run_transformers_js(install, hub, "fp32", REVIEWS, tmp_path / "js", repo=repo)["predictions"]
        assert [{s["label"]: s["score"] for s in scores} for scores in js] == [
            pytest.approx(p, abs=SAME_WEIGHTS) for p in python]
    else:
        python = [s["score"] for s in served(REVIEWS)]
        assert len({round(v, 3) for v in python}) == 3  # the rating differs from review to review
        js = run_transformers_js(install, hub, "fp32", REVIEWS, tmp_path / "js", repo=repo, output="logits")
        assert [row[0] for row in js["predictions"]] == pytest.approx(python, abs=SAME_WEIGHTS)
    with launched(SPACE / "app.py", {**env, "MODEL_ID": repo}, tmp_path / "app.log") as url:
        from gradio_client import Client

        answers = Client(url, verbose=False).predict(REVIEWS, "float", api_name="/predict_batch")
    if kind == "3-class":
        for answer, expected in zip(answers, python):
            assert answer["probabilities"] == pytest.approx(expected, abs=SAME_WEIGHTS)
            assert answer["label"] == max(expected, key=expected.get)
    else:
        assert [a["rating"] for a in answers] == pytest.approx(python, abs=SAME_WEIGHTS)
        midpoint = json.loads((run / "config.json").read_text())["rating_midpoint"]
        assert [a["side"] for a in answers] == ["positive" if v > midpoint else "negative" for v in python]
