"""transformers.js, a client no one here wrote, classifies with what `python -m model_card push` published.

The pinned `@huggingface/transformers` (tests/js/package.json and its lock file) is installed from the
npm registry with `npm ci` into a cache folder outside the project (TRANSFORMERS_JS_CACHE, default
~/.cache/imdb-sentiment/transformers-js/<hash of the lock file>), once, then reused by every run. Node
runs tests/js/classify.mjs, which loads the published repo by its id from the local Hub with
`pipeline("text-classification", ...)`, float32 (`dtype: "fp32"`, onnx/model.onnx) and int8 (`"q8"`,
onnx/model_quantized.onnx), on 200 real reviews; its labels and scores are compared with the torch
`pipeline`'s on the same run. Without Node/npm or the registry, this test alone is skipped, saying why.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from conftest import SAMPLE_DIR, train_tiny
from js_client import REPO_ID, push, run_node_module, run_transformers_js
from local_hub import LocalHub
from task_runs import THREE_CLASSES, build_task_run
from transformers import AutoTokenizer, pipeline

from model_card import onnx_files

REVIEWS = 200
MIN_LABEL_AGREEMENT = 0.99
# |P(label) from transformers.js - P(label) from torch|, every label of every review that fits the model's
# input. float32: the same function in another runtime, whose kernels round differently, far below what could
# turn a label. int8: dynamic quantisation moves a probability; on the fine-tuned MiniLM by 0.005 on average
# (the card's measured figure), on this tiny model by less; beyond 0.05 here it is not the same classifier.
# A longer review counts for labels only: transformers.js 4.3.2 cuts the encoded sequence, special tokens
# included (its truncateHelper), so there such a review loses its final [SEP], which Python keeps.
SCORE_TOLERANCE = {"fp32": 1e-5, "q8": 0.05}


@pytest.fixture(scope="module")
def run_dir(hub: LocalHub, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny full fine-tune published by `python -m model_card push` (weights, card, the two ONNX files)."""
    run = train_tiny(tiny_model_dir, tmp_path_factory.mktemp("js-run") / "run")
    push(hub, run, REPO_ID, tmp_path_factory.mktemp("home"))
    return run


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    """200 real IMDb test reviews, half of each label."""
    test = pd.read_parquet(SAMPLE_DIR / "test.parquet")
    return test.groupby("label").sample(n=REVIEWS // 2, random_state=0)["text"].tolist()


def _scores(predictions: list[list[dict]]) -> list[dict[str, float]]:
    return [{item["label"]: float(item["score"]) for item in prediction} for prediction in predictions]


@pytest.mark.parametrize("dtype", ["fp32", "q8"])
def test_transformers_js_classifies_the_published_model_like_torch(
    install: Path, hub: LocalHub, run_dir: Path, reviews: list[str], tmp_path: Path, dtype: str
) -> None:
    answer = run_transformers_js(install, hub, dtype, reviews, tmp_path / "transformers-js-cache")
    # It downloaded the file of its dtype from the local Hub (its cache was empty before).
    downloaded = {path.name for path in (tmp_path / "transformers-js-cache").rglob("*.onnx")}
    assert downloaded == {"model.onnx" if dtype == "fp32" else "model_quantized.onnx"}

    torch_pipe = pipeline("text-classification", model=str(run_dir), top_k=None)
    expected = _scores(torch_pipe(reviews, truncation=True))
    got = _scores(answer["predictions"])
    assert len(got) == len(expected) == REVIEWS
    same = [max(g, key=g.get) == max(e, key=e.get) for g, e in zip(got, expected)]
    agreement = sum(same) / len(same)
    tokenizer = torch_pipe.tokenizer
    fits = [len(tokenizer(text)["input_ids"]) <= tokenizer.model_max_length for text in reviews]
    differences = [abs(g[label] - e[label]) for g, e, f in zip(got, expected, fits) if f for label in e]
    print(
        f"transformers.js {answer['version']} {dtype}: labels agree with torch on {agreement:.1%} of "
        f"{REVIEWS} reviews; max |score difference| {max(differences):.2e} on the {sum(fits)} that fit"
    )
    # Both labels occur, so agreement is not the trivial one of a model that says the same to everything.
    assert len({max(e, key=e.get) for e in expected}) == 2
    assert agreement >= MIN_LABEL_AGREEMENT
    assert max(differences) <= SCORE_TOLERANCE[dtype]


def test_card_transformers_js_snippet_runs_as_written(
    install: Path, hub: LocalHub, run_dir: Path, tmp_path: Path
) -> None:
    """The card's JavaScript block, unchanged, after only the lines pointing transformers.js at the local Hub.

    The module is written into the install folder, where Node resolves the snippet's bare import.
    """
    card = (run_dir / "README.md").read_text()
    snippet = card.split("```js\n")[1].split("```")[0]
    assert f'"{REPO_ID}"' in snippet
    result = run_node_module(install, hub, snippet, tmp_path / "cache")
    example = snippet.split('classifier("')[1].split('"')[0]
    expected = pipeline("text-classification", model=str(run_dir))(example)[0]["label"]
    assert f"label: '{expected}'" in result.stdout, result.stdout


# Any label set (issue #28): a 3-class model and a 1-10 rating model (tests/task_runs.py), published by
# `python -m model_card push` with their ONNX files, served by transformers.js.

TASK_REPOS = {"3-class": "alice/three-way-js", "rating": "alice/rating-js"}
# transformers.js on the int8 file against ONNX Runtime's Python build on the same file: the same function in
# another build of the same runtime, so within float32 rounding (a probability, or a rating on 1-10).
INT8_SAME_FILE_TOLERANCE = 1e-4
# How a JavaScript user reads a rating model's value: its text-classification pipeline softmaxes the one
# output (a score of 1 whatever the review), so the rating is the model's output itself. Run below as written.
RATING_SNIPPET = """\
import { AutoModelForSequenceClassification, AutoTokenizer } from "@huggingface/transformers";

const tokenizer = await AutoTokenizer.from_pretrained("{repo}");
const model = await AutoModelForSequenceClassification.from_pretrained("{repo}", { dtype: "q8" });
const { logits } = await model(tokenizer("{text}", { truncation: true }));
console.log(logits.data[0]); // the rating itself, within config.json's rating_range
"""


@pytest.fixture(scope="module")
def task_runs(install: Path, hub: LocalHub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    runs = {}
    for kind, labels in (("3-class", THREE_CLASSES), ("rating", None)):
        run = build_task_run(tmp_path_factory.mktemp(f"js-{kind}") / "run", labels)
        push(hub, run, TASK_REPOS[kind], tmp_path_factory.mktemp("home"))
        runs[kind] = run
    return runs


def _int8_outputs(run: Path, texts: list[str]) -> np.ndarray:
    """The published int8 file's outputs in ONNX Runtime's Python build, one review per call."""
    tokenizer = AutoTokenizer.from_pretrained(run)
    path = run / "onnx" / onnx_files.INT8_FILE
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    rows = []
    for text in texts:
        encoded = tokenizer(text, truncation=True, return_tensors="np")
        rows.append(session.run(None, {name: encoded[name].astype(np.int64) for name in names})[0][0])
    return np.array(rows, dtype=np.float64)


def _fits(run: Path, texts: list[str]) -> list[bool]:
    """Reviews within the model's input, which transformers.js and Python encode alike (SCORE_TOLERANCE)."""
    tokenizer = AutoTokenizer.from_pretrained(run)
    return [len(tokenizer(text)["input_ids"]) <= tokenizer.model_max_length for text in texts]


@pytest.mark.parametrize("dtype", ["fp32", "q8"])
def test_transformers_js_gives_every_class_score_of_a_three_class_model(
    install: Path, hub: LocalHub, task_runs: dict[str, Path], reviews: list[str], tmp_path: Path, dtype: str
) -> None:
    run = task_runs["3-class"]
    answer = run_transformers_js(install, hub, dtype, reviews, tmp_path / "cache", repo=TASK_REPOS["3-class"])
    got = _scores(answer["predictions"])
    # top_k null: every class, by the names in config.json, for every review.
    assert all(set(scores) == set(THREE_CLASSES) for scores in got) and len(got) == REVIEWS
    if dtype == "fp32":  # the torch pipeline
        torch_pipe = pipeline("text-classification", model=str(run), top_k=None)
        expected = _scores(torch_pipe(reviews, truncation=True))
        tolerance = SCORE_TOLERANCE["fp32"]
    else:  # the same int8 file in Python's ONNX Runtime, softmaxed as the pipeline does
        logits = _int8_outputs(run, reviews)
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        expected = [dict(zip(THREE_CLASSES, row)) for row in probabilities]
        tolerance = INT8_SAME_FILE_TOLERANCE
    assert len({max(e, key=e.get) for e in expected}) == 3  # each class is somebody's answer
    same = [max(g, key=g.get) == max(e, key=e.get) for g, e in zip(got, expected)]
    fits = _fits(run, reviews)
    differences = [abs(g[name] - e[name]) for g, e, f in zip(got, expected, fits) if f for name in e]
    print(f"3 classes, {dtype}: labels agree on {sum(same) / len(same):.1%}, max {max(differences):.2e} apart")
    # Where both encode a review alike, the same label and every score within tolerance; a longer review
    # loses its final [SEP] in transformers.js, which can turn a close call.
    assert all(s for s, f in zip(same, fits) if f) and sum(same) / len(same) >= onnx_files.MIN_INT8_AGREEMENT
    assert max(differences) <= tolerance


@pytest.mark.parametrize("dtype", ["fp32", "q8"])
def test_transformers_js_gives_a_rating_models_value_called_directly(
    install: Path, hub: LocalHub, task_runs: dict[str, Path], reviews: list[str], tmp_path: Path, dtype: str
) -> None:
    run, repo = task_runs["rating"], TASK_REPOS["rating"]
    # Its text-classification pipeline softmaxes the one output: 1 for every review, the rating lost.
    piped = run_transformers_js(install, hub, dtype, reviews[:8], tmp_path / "pipe", repo=repo)["predictions"]
    assert all(p == [{"label": "RATING", "score": 1}] for p in piped), piped
    # Called directly, the model gives the rating Python's pipeline gives (its "score", no function applied).
    answer = run_transformers_js(install, hub, dtype, reviews, tmp_path / "cache", repo=repo, output="logits")
    got = np.array(answer["predictions"], dtype=np.float64)
    assert got.shape == (REVIEWS, 1)
    torch_pipe = pipeline("text-classification", model=str(run))
    python = np.array([result["score"] for result in torch_pipe(reviews, truncation=True)])
    low, high = json.loads((run / "config.json").read_text())["rating_range"]
    assert python.std() > 1.0 and low <= np.median(python) <= high  # ratings on the scale, differing
    fits = np.array(_fits(run, reviews))
    if dtype == "fp32":
        difference = np.abs(got[:, 0] - python)[fits]
        assert difference.max() <= INT8_SAME_FILE_TOLERANCE, difference.max()
    else:
        same_file = np.abs(got[:, 0] - _int8_outputs(run, reviews)[:, 0])[fits]
        assert same_file.max() <= INT8_SAME_FILE_TOLERANCE, same_file.max()
        # and int8 stays within the tolerance publishing checked on the test reviews, on most of these
        within = np.abs(got[:, 0] - python) <= onnx_files.RATING_TOLERANCE_SHARE * (high - low)
        assert within.mean() >= onnx_files.MIN_INT8_AGREEMENT


def test_rating_snippet_runs_as_written(
    install: Path, hub: LocalHub, task_runs: dict[str, Path], reviews: list[str], tmp_path: Path
) -> None:
    """RATING_SNIPPET, after only the lines pointing transformers.js at the local Hub, prints the rating."""
    run, text = task_runs["rating"], "A moving, funny and beautifully acted film."
    snippet = RATING_SNIPPET.replace("{repo}", TASK_REPOS["rating"]).replace("{text}", text)
    result = run_node_module(install, hub, snippet, tmp_path / "cache")
    rating = float(result.stdout.strip().splitlines()[-1])
    assert rating == pytest.approx(_int8_outputs(run, [text])[0, 0], abs=INT8_SAME_FILE_TOLERANCE)
