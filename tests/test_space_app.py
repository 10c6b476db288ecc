"""The Space through its public API: the app launched on localhost with the tiny model from a local
path, every endpoint called with gradio_client, each upload format, every bad input, the README's
snippets run as written.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "space"
sys.path.insert(0, str(SPACE))

import app
import batcher
import engines
import examples
import explain
import files
import model_files
import retention
import sentiment
import service
import views
import windows
from examples import EXAMPLES
from settings import Settings
from conftest import free_port
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from space_fixtures import TEST_LIMITS


@pytest.fixture(scope="session")
def reviews(sample_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(sample_dir / "test.parquet")


@pytest.fixture(scope="session")
def long_review(reviews: pd.DataFrame, tiny_model: sentiment.SentimentModel) -> str:
    """A real review longer than the model's 512 tokens."""
    for text in reviews["text"]:
        if len(tiny_model.tokenizer(text)["input_ids"]) > 700:
            return text
    raise AssertionError("the sample has no review over 700 tokens")


def assert_result(result: dict, engine: str | None = None) -> None:
    """A well-formed /predict result; from `engine`, or without one from the default engine, which
    the Space measured at start-up (any of those it offers)."""
    assert set(result) == {"label", "score", "probabilities", "windows", "tokens", "engine"}
    probs = result["probabilities"]
    assert set(probs) == {"NEGATIVE", "POSITIVE"}
    assert sum(probs.values()) == pytest.approx(1.0)
    assert result["label"] == max(probs, key=probs.get)
    assert result["score"] == pytest.approx(probs[result["label"]])
    assert result["engine"] == engine if engine else result["engine"] in engines.ENGINE_LABELS


def ok(client: Client) -> None:
    """The app still serves a normal request."""
    assert_result(client.predict("Still serving after that?", api_name="/predict"))


def upload(
    client: Client, path: Path, column: str = "", engine: str = engines.ENGINE_INT8
) -> tuple[pd.DataFrame, dict]:
    csv_path, summary = client.predict(handle_file(str(path)), column, engine, api_name="/predict_file")
    return pd.read_csv(csv_path, dtype=str, keep_default_na=False), summary


# --- /predict, /predict_batch, /explain ------------------------------------------------------------------


def test_api_lists_the_named_endpoints(client: Client) -> None:
    """Exactly these: the examples' click runs /predict's handlers privately, adding no endpoint."""
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/predict", "/predict_batch", "/predict_file", "/explain"}
    assert not api["unnamed_endpoints"]
    for private in ("/predict_example", "/explain_example"):
        with pytest.raises(ValueError, match="Cannot find a function"):
            client.predict("Fine.", api_name=private)


def test_predict_returns_label_score_and_both_probabilities(client: Client) -> None:
    result = client.predict("A moving, beautifully acted film.", api_name="/predict")
    assert_result(result)
    assert result["windows"] == 1 and result["tokens"] == 7


def test_float_engine_is_the_plain_pipeline(client: Client, space_model_dir: Path) -> None:
    """The float engine gives the pipeline's own probabilities for a review that fits the model."""
    from transformers import pipeline

    text = "The plot was thin but the acting carried it."
    result = client.predict(text, engines.ENGINE_FLOAT, api_name="/predict")
    assert_result(result, engines.ENGINE_FLOAT)
    pipe = pipeline("text-classification", model=str(space_model_dir), top_k=None)
    expected = {d["label"]: d["score"] for d in pipe([text])[0]}
    for label, p in expected.items():
        assert result["probabilities"][label] == pytest.approx(p, abs=1e-6)


def test_int8_engine_is_close_to_float(
    client: Client, tiny_model: sentiment.SentimentModel, reviews: pd.DataFrame
) -> None:
    texts = reviews["text"].head(16).tolist()
    fast = tiny_model.predict(texts, engines.ENGINE_INT8)
    exact = tiny_model.predict(texts, engines.ENGINE_FLOAT)
    gaps = [abs(a.probabilities["POSITIVE"] - b.probabilities["POSITIVE"]) for a, b in zip(fast, exact)]
    assert max(gaps) < 0.02
    assert [a.windows for a in fast] == [b.windows for b in exact]
    # One window at a time: a review's int8 score does not depend on what it was batched with.
    alone = tiny_model.predict(texts[:1], engines.ENGINE_INT8)[0]
    assert alone.probabilities == fast[0].probabilities
    via_api = client.predict(texts[0], engines.ENGINE_INT8, api_name="/predict")
    assert_result(via_api, engines.ENGINE_INT8)
    assert via_api["probabilities"]["POSITIVE"] == pytest.approx(alone.probabilities["POSITIVE"], abs=1e-12)


def test_bf16_engine_is_close_to_float(tiny_model: sentiment.SentimentModel, reviews: pd.DataFrame) -> None:
    if engines.ENGINE_BF16 not in tiny_model.engines:
        pytest.skip("this CPU has no native bfloat16, so the Space does not offer the bf16 engine")
    texts = reviews["text"].head(16).tolist()
    half = tiny_model.predict(texts, engines.ENGINE_BF16)
    exact = tiny_model.predict(texts, engines.ENGINE_FLOAT)
    gaps = [abs(a.probabilities["POSITIVE"] - b.probabilities["POSITIVE"]) for a, b in zip(half, exact)]
    assert max(gaps) < 0.03 and [a.windows for a in half] == [b.windows for b in exact]


def test_bf16_is_offered_only_where_the_cpu_computes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, check, lambda: False)
    assert engines.default_engines() == (engines.ENGINE_FLOAT, engines.ENGINE_INT8)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert engines.ENGINE_BF16 in engines.default_engines()


def test_default_engine_is_the_fastest_measured_that_keeps_float_labels() -> None:
    """An engine outside AUTO_ENGINES (not shown by the benchmark to keep float32's labels) is
    never the default, however fast it measured."""
    float_, bf16 = engines.ENGINE_FLOAT, engines.ENGINE_BF16
    assert bf16 in engines.AUTO_ENGINES
    assert engines.fastest_engine({float_: 0.30, bf16: 0.20, "unvetted": 0.10}) == bf16
    assert engines.fastest_engine({float_: 0.30, bf16: 0.40}) == float_
    assert engines.fastest_engine({"unvetted": 0.10}) == float_
    # ... nor one that gave other labels than float32 on the examples at start-up.
    assert engines.fastest_engine({float_: 0.30, bf16: 0.20}, same_labels={float_}) == float_
    assert engines.fastest_engine({float_: 0.30, bf16: 0.20}, same_labels={float_, bf16}) == bf16


def test_start_up_measurement_finds_an_engine_that_changes_labels(
    tiny_model: sentiment.SentimentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An int8 engine that swaps the classes is measured, but not counted among those that keep float32's labels."""
    float_fn = tiny_model.engines[engines.ENGINE_FLOAT]
    monkeypatch.setitem(tiny_model.engines, engines.ENGINE_INT8, lambda ids, mask: float_fn(ids, mask)[:, ::-1])
    texts = [text for _, text in EXAMPLES]
    assert len({p.label for p in tiny_model.predict(texts, engines.ENGINE_FLOAT)}) == 2  # a swap shows
    timings = tiny_model.measure(texts, repeats=1)
    assert engines.ENGINE_INT8 in timings and engines.ENGINE_FLOAT in tiny_model.same_labels
    assert engines.ENGINE_INT8 not in tiny_model.same_labels
    assert engines.fastest_engine({**timings, engines.ENGINE_INT8: 0.0}, tiny_model.same_labels) != engines.ENGINE_INT8


def test_start_up_measurement_times_a_file_of_realistic_lengths(
    tiny_model: sentiment.SentimentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default engine is chosen on the work it will serve: a file of reviews spread like IMDb's lengths,
    long ones read as several windows, not on the six short examples."""
    timed: list[list[str]] = []
    real_measure = tiny_model.measure

    def measure(texts: list[str], repeats: int = 3) -> dict[str, float]:
        timed.append(list(texts))
        return real_measure(texts, repeats=1)

    monkeypatch.setattr(tiny_model, "measure", measure)
    demo = app.build_app(tiny_model, replace(Settings(), limits=TEST_LIMITS))
    (texts,) = timed
    assert [len(t.split()) for t in texts] == list(examples.TIMING_WORDS)
    assert len(set(texts)) == len(texts) and tiny_model.predict(texts[-1:])[0].windows > 1
    radio = next(c for c in demo.config["components"] if c.get("props", {}).get("label") == "Engine")
    assert "a file of 16 reviews of 53 to 680 words, median of 3 runs" in radio["props"]["info"]


def test_page_states_what_this_host_measured(
    tiny_model: sentiment.SentimentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine menu shows this machine's start-up timings; SPACE_ENGINE overrides the choice."""
    monkeypatch.setenv("SPACE_ENGINE", engines.ENGINE_INT8)
    demo = app.build_app(tiny_model, replace(Settings.from_env(), limits=TEST_LIMITS))
    radio = next(c for c in demo.config["components"] if c.get("props", {}).get("label") == "Engine")
    assert radio["props"]["value"] == engines.ENGINE_INT8
    info = radio["props"]["info"]
    assert "Measured on this machine at start-up" in info and "set by SPACE_ENGINE" in info
    for engine, seconds in tiny_model.timings.items():
        assert f"{engine} {seconds * 1000:.0f} ms" in info
    monkeypatch.setenv("SPACE_ENGINE", "gpu")
    with pytest.raises(ValueError, match="SPACE_ENGINE='gpu': choose one of float"):
        app.build_app(tiny_model, replace(Settings.from_env(), limits=TEST_LIMITS))


def test_long_review_is_split_into_windows_and_averaged(
    client: Client, tiny_model: sentiment.SentimentModel, long_review: str, space_model_dir: Path
) -> None:
    result = client.predict(long_review, engines.ENGINE_FLOAT, api_name="/predict")
    assert result["windows"] >= 2 and result["tokens"] > 512
    # The same numbers by hand: the float model on each overlapping window, probabilities averaged.
    import torch
    from transformers import AutoModelForSequenceClassification

    float_model = AutoModelForSequenceClassification.from_pretrained(space_model_dir, dtype=torch.float32).eval()
    enc = tiny_model.tokenizer(
        windows.clean_text(long_review),
        truncation=True,
        max_length=512,
        stride=windows.WINDOW_OVERLAP,
        return_overflowing_tokens=True,
    )
    assert len(enc["input_ids"]) == result["windows"]
    with torch.no_grad():
        window_probs = [
            torch.softmax(float_model(input_ids=torch.tensor([ids])).logits[0], -1).numpy()
            for ids in enc["input_ids"]
        ]
    assert result["probabilities"]["POSITIVE"] == pytest.approx(
        float(np.mean(window_probs, axis=0)[1]), abs=1e-6
    )
    # ... and the UI says it did.
    _, note = views.prediction_view(result, long_review, 512, "")
    assert f"split into {result['windows']} windows" in note and "Nothing was cut off" in note


SHORT_TEXT_SETS = {
    "tweets": {"path": "tweets.csv", "n": 2667, "mean_words": 13.2, "skipped_unlabelled": 3, "accuracy": 0.81,
               "f1": 0.8, "ece": 0.07, "nll": 0.45, "mean_confidence": 0.88},
    "news_snippets": {"path": "news.jsonl", "n": 1554, "mean_words": 24.6, "skipped_unlabelled": 0,
                      "accuracy": 0.7779, "f1": 0.77, "ece": 0.1, "nll": 0.5, "mean_confidence": 0.87},
    "rotten_tomatoes_long": {"path": "long.csv", "n": 500, "mean_words": 120.0, "skipped_unlabelled": 0,
                             "accuracy": 0.9, "f1": 0.9, "ece": 0.03, "nll": 0.3, "mean_confidence": 0.9},
}  # fmt: skip


def test_short_review_note_gives_the_models_own_short_text_figures(
    client: Client, space_model_dir: Path, tmp_path: Path
) -> None:
    """The note under a short review's label comes from results.json next to the model, as training
    writes it."""
    model = Path(shutil.copytree(space_model_dir, tmp_path / "model"))
    results = {
        "dataset": {"name": "imdb", "length": {"train": {"words": {"mean": 231.16, "median": 173.0}}}},
        "metrics": {"test": {"accuracy": 0.932, "f1": 0.9319}},
        "extra_eval": SHORT_TEXT_SETS,
    }
    (model / "results.json").write_text(json.dumps(results))
    note = views.short_text_note(model_files.read_results(str(model)))
    short = "Meh. Not for me."
    long = " ".join(["A slow, careful and rewarding drama about two brothers."] * 4)
    _, shown = views.prediction_view(client.predict(short, api_name="/predict"), short, 512, note)
    assert (
        "**Short review.** The model was trained on full movie reviews (231 words on average; 93.2% right on "
        "IMDb's test reviews). On short texts it was measured at 81.0% on tweets (2,667 texts, 13 words on "
        "average) and 77.8% on news snippets (1,554 texts, 25 words on average)."
    ) in shown
    assert "rotten tomatoes" not in shown  # 120 words on average: not short text
    _, shown = views.prediction_view(client.predict(long, api_name="/predict"), long, 512, note)
    assert "Short review" not in shown and "tweets" not in shown
    plain = "The model was trained on full movie reviews."
    del results["extra_eval"]
    (model / "results.json").write_text(json.dumps(results))
    assert views.short_text_note(model_files.read_results(str(model))) == plain
    (model / "results.json").write_text('{"extra_eval": ')
    assert model_files.read_results(str(model)) is None and views.short_text_note(None) == plain
    (model / "results.json").unlink()
    assert model_files.read_results(str(model)) is None


def test_br_tags_are_removed_as_in_training(tiny_model: sentiment.SentimentModel) -> None:
    with_tags, without = tiny_model.predict(
        ["Great fun.<br /><br />Loved it.", "Great fun.  Loved it."], "float"
    )
    assert (
        with_tags.probabilities == pytest.approx(without.probabilities) and with_tags.tokens == without.tokens
    )


def test_predict_batch_keeps_order_and_matches_predict(client: Client) -> None:
    texts = ["Wonderful.", "Dreadful, boring and far too long.", "It was fine."]
    batch = client.predict(texts, engines.ENGINE_FLOAT, api_name="/predict_batch")
    assert len(batch) == 3
    for text, result in zip(texts, batch):
        assert_result(result, engines.ENGINE_FLOAT)
        single = client.predict(text, engines.ENGINE_FLOAT, api_name="/predict")
        assert result["probabilities"]["POSITIVE"] == pytest.approx(
            single["probabilities"]["POSITIVE"], abs=1e-5
        )


def test_explain_returns_highlighted_spans_of_the_review(client: Client) -> None:
    text = "Sharp writing, lovely score,<br />and a dull ending."
    spans, summary = client.predict(text, api_name="/explain")
    assert "".join(s["token"] for s in spans) == windows.clean_text(text)
    assert {s["class_or_confidence"] for s in spans} <= {None, *views.HIGHLIGHT_COLORS}
    assert "P(POSITIVE) =" in summary and "Pushed positive" in summary


def test_explanation_comes_from_the_model(
    tiny_model: sentiment.SentimentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Occlusion finds the words a model reacts to: here an engine that only knows two words."""
    vocab = tiny_model.tokenizer.get_vocab()
    good, awful = vocab["superb"], vocab["awful"]

    def two_word_model(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        score = ((ids == good).sum(axis=1) - (ids == awful).sum(axis=1)) * 2.0
        return np.stack([np.zeros_like(score), score], axis=1)

    monkeypatch.setitem(tiny_model.engines, "two-words", two_word_model)
    merger = batcher.Batcher(tiny_model)
    result = explain.explain(merger, "The cast is superb but the script is awful indeed", "two-words")
    spans, summary = views.render_explanation(result)
    assert "**Pushed positive:** “superb” +" in summary and "**Pushed negative:** “awful” -" in summary
    categories = {span.strip(): category for span, category in spans}
    assert categories["superb"] == "strong positive"
    assert categories["awful"] == "strong negative"
    assert {c for w, c in categories.items() if w not in ("superb", "awful")} == {None}


def test_long_explanations_occlude_spans_of_words(
    tiny_model: sentiment.SentimentModel, long_review: str
) -> None:
    spans = explain.occlusion_spans(long_review, 10)
    assert len(spans) <= 10 and "".join(spans) == long_review
    assert all(s.strip() for s in spans)


# --- agents: the same endpoints over MCP ----------------------------------------------------------------------


def mcp_session(space_url: str, calls: list[tuple[str, dict]]) -> tuple[list, list]:
    """A real MCP client (the `mcp` package) on the launched Space: its tools, and the results of `calls`."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> tuple[list, list]:
        async with streamable_http_client(f"{space_url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                return tools, [await session.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(run())


def test_mcp_client_lists_the_tools_and_classifies_as_predict_does(
    client: Client, space_url: str, reviews: pd.DataFrame
) -> None:
    import ast

    text = reviews["text"].iloc[3]
    texts = reviews["text"].head(3).tolist()
    tools, (single, batch) = mcp_session(
        space_url,
        [("predict", {"text": text, "engine": "float"}), ("predict_batch", {"texts": texts, "engine": "float"})],
    )
    described = {tool.name: tool for tool in tools}
    assert {"predict", "predict_batch"} <= set(described), list(described)
    # What an agent reads: what each tool takes and returns, from the endpoints' docstrings.
    for name, argument in (("predict", "text"), ("predict_batch", "texts")):
        assert "POSITIVE or NEGATIVE" in described[name].description and "Returns" in described[name].description
        assert argument in described[name].inputSchema["properties"]
    assert not single.isError and not batch.isError
    answer = ast.literal_eval(single.content[0].text)
    assert answer == client.predict(text, "float", api_name="/predict")
    answers = ast.literal_eval(batch.content[0].text)
    assert answers == client.predict(texts, "float", api_name="/predict_batch") and len(answers) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "The review is empty"), ("x" * 40_000, "is 40,000 characters long; the limit is 30,000")],
    ids=["empty", "over-the-limit"],
)
def test_mcp_bad_text_is_one_sentence(client: Client, space_url: str, text: str, message: str) -> None:
    _, (result,) = mcp_session(space_url, [("predict", {"text": text})])
    assert result.isError
    said = " ".join(c.text for c in result.content)
    assert message in said and "Traceback" not in said and len(said.splitlines()) == 1, said
    ok(client)


def test_mcp_five_megabytes_are_refused_in_one_sentence(client: Client, space_url: str) -> None:
    """The MCP transport (the `mcp` package inside Gradio) refuses request bodies over 4 MiB before any
    tool runs: HTTP 413 with one sentence, "Request body too large"; the Space keeps serving."""
    import httpx

    def leaves(error: BaseException) -> list[BaseException]:
        inner = getattr(error, "exceptions", None)
        return [leaf for e in inner for leaf in leaves(e)] if inner else [error]

    with pytest.raises(BaseException) as caught:
        mcp_session(space_url, [("predict", {"text": "x" * (5 * 1024 * 1024)})])
    refused = [e for e in leaves(caught.value) if isinstance(e, httpx.HTTPStatusError)]
    assert refused and refused[0].response.status_code == 413, leaves(caught.value)
    # The body of that answer, read with a plain HTTP client sending the same call.
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "predict", "arguments": {"text": "x" * (5 * 1024 * 1024)}}}  # fmt: skip
    answer = httpx.post(f"{space_url}gradio_api/mcp/", json=call, timeout=60,
                        headers={"Accept": "application/json, text/event-stream"})  # fmt: skip
    assert answer.status_code == 413 and answer.text == "Request body too large"
    ok(client)


# --- every request its own answer ------------------------------------------------------------------------
# The Space merges concurrent requests into shared model calls and reorders reviews by length inside
# them, so each result must be traced back to its own review. These tests use models whose scores
# differ clearly from review to review (a mix-up changes the numbers, not just noise) and compare
# every answer with the same review classified alone.


def token_mean_engine(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A stand-in model: each window's score is a function of its own tokens only (padding masked),
    spread over (-4, 4), so two different reviews practically never share a score."""
    mean = (ids * mask).sum(axis=1) / mask.sum(axis=1)
    score = (mean * 7.31) % 8.0 - 4.0
    return np.stack([np.zeros_like(score), score], axis=1)


@pytest.fixture
def fake_engines(tiny_model: sentiment.SentimentModel, monkeypatch: pytest.MonkeyPatch):
    """Registers `token_mean_engine` as "tokens", and a gated copy that holds the model on its
    first call until released; removes both afterwards."""
    release, started = threading.Event(), threading.Event()

    def gated(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        started.set()
        release.wait(10)
        return token_mean_engine(ids, mask)

    monkeypatch.setitem(tiny_model.engines, "tokens", token_mean_engine)
    monkeypatch.setitem(tiny_model.engines, "gated", gated)
    yield release, started
    release.set()


def positives(predictions: list[sentiment.Prediction]) -> list[float]:
    return [p.probabilities["POSITIVE"] for p in predictions]


# Two float32 results for one review differ by less than this (batched or alone, and rounded to the
# results CSV's 6 decimals); different reviews' answers must be further apart than twice this.
SAME = 2e-6


def assert_distinct(values: list[float], gap: float) -> None:
    """The test's own precondition: answers far enough apart that a swap cannot pass as noise."""
    ordered = sorted(values)
    assert min(b - a for a, b in itertools.pairwise(ordered)) > gap, ordered


def test_waiting_requests_each_get_their_own_predictions(
    tiny_model: sentiment.SentimentModel, reviews: pd.DataFrame, fake_engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five requests of different sizes wait behind a busy model, run as one merged call, and
    each gets back the predictions of its own texts, in its own order."""
    release, started = fake_engines
    texts = reviews["text"].tolist()
    requests = {i: texts[10 * i : 10 * i + i + 1] for i in range(1, 6)}  # 2, 3, ... 6 reviews each
    alone = {i: positives(tiny_model.predict(t, "tokens")) for i, t in requests.items()}
    assert_distinct([p for ps in alone.values() for p in ps], 1e-9)

    # The model's calls as the batcher makes them, (engine, number of texts): the model wrapped, not instrumented.
    calls: list[tuple[str, int]] = []
    model_predict = tiny_model.predict

    def counted(texts: list[str], engine: str) -> list[sentiment.Prediction]:
        calls.append((engine, len(texts)))
        return model_predict(texts, engine)

    monkeypatch.setattr(tiny_model, "predict", counted)
    merger = batcher.Batcher(tiny_model)
    answers: dict[int, list[float]] = {}

    def ask(i: int, engine: str) -> None:
        answers[i] = positives(merger.predict(requests.get(i, ["holds the model"]), engine))

    first = threading.Thread(target=ask, args=(0, "gated"))
    first.start()
    assert started.wait(10)
    waiting = [threading.Thread(target=ask, args=(i, "tokens")) for i in requests]
    for thread in waiting:
        thread.start()
    while merger._queue.qsize() < len(requests):
        time.sleep(0.01)
    release.set()
    for thread in [first, *waiting]:
        thread.join(10)
    # The five really shared one call: two model calls, the second with all five requests' texts.
    assert calls == [("gated", 1), ("tokens", sum(len(t) for t in requests.values()))], calls
    for i in requests:
        assert answers[i] == pytest.approx(alone[i], abs=1e-12), f"request {i} got another request's answer"


def test_reviews_reordered_by_length_come_back_in_input_order(
    tiny_model: sentiment.SentimentModel, reviews: pd.DataFrame, fake_engines
) -> None:
    """One call with short, long (several windows) and medium reviews in mixed order: the model
    sees them sorted by length and batched, each answer still lands on its own review."""
    texts = reviews["text"].tolist()
    by_length = sorted(texts, key=len)
    mixed = [
        by_length[-1],
        by_length[0],
        by_length[len(texts) // 2],
        by_length[1],
        by_length[-2],
        by_length[5],
    ]
    mixed += ["Fine.", "An utterly joyless slog."]
    for engine in ("tokens", engines.ENGINE_FLOAT):
        together = tiny_model.predict(mixed, engine)
        alone = [tiny_model.predict([text], engine)[0] for text in mixed]
        assert_distinct(positives(alone), 2 * SAME)
        assert positives(together) == pytest.approx(positives(alone), abs=SAME)
        assert [p.windows for p in together] == [p.windows for p in alone]
        assert [p.tokens for p in together] == [p.tokens for p in alone]
    assert max(p.windows for p in together) >= 2  # the long review really was split


def test_concurrent_api_requests_each_get_their_own_answer(
    client: Client, tiny_model: sentiment.SentimentModel, reviews: pd.DataFrame
) -> None:
    """Eight /predict requests and a /predict_batch sent at once, on the real (tiny) model: every
    answer is the one its review gets alone."""
    texts = reviews["text"].head(12).tolist()
    alone = positives([tiny_model.predict([t], engines.ENGINE_FLOAT)[0] for t in texts])
    assert_distinct(alone, 2 * SAME)
    singles = [client.submit(t, engines.ENGINE_FLOAT, api_name="/predict") for t in texts[:8]]
    batch = client.submit(texts[8:], engines.ENGINE_FLOAT, api_name="/predict_batch")
    answers = [job.result(timeout=120) for job in singles] + batch.result(timeout=120)
    assert [a["probabilities"]["POSITIVE"] for a in answers] == pytest.approx(alone, abs=SAME)


def test_file_rows_each_get_their_own_answer(
    client: Client, tiny_model: sentiment.SentimentModel, reviews: pd.DataFrame, tmp_path: Path
) -> None:
    """A file of real reviews in no particular length order (the Space classifies them sorted
    by length, in chunks): each row's result is the one its review gets alone."""
    sample = reviews.sample(40, random_state=1)[["label", "text"]].reset_index(drop=True)
    path = tmp_path / "mixed_lengths.csv"
    sample.to_csv(path, index=False)
    table, summary = upload(client, path, engine=engines.ENGINE_FLOAT)
    alone = positives([tiny_model.predict([t], engines.ENGINE_FLOAT)[0] for t in sample["text"]])
    assert_distinct(alone, 2 * SAME)
    assert table["text"].tolist() == sample["text"].tolist()
    assert table["prob_POSITIVE"].astype(float).tolist() == pytest.approx(alone, abs=SAME)
    assert summary["classified"] == 40


def test_file_chunks_group_similar_lengths_and_cover_every_row() -> None:
    texts = ["x" * n for n in (50, 5, 500, 0, 20, 300, 7)]
    texts[3] = "   "
    chunks = service.length_sorted_chunks(texts, 320)
    assert sorted(i for chunk in chunks for i in chunk) == [0, 1, 2, 4, 5, 6]
    assert [[len(texts[i]) for i in chunk] for chunk in chunks] == [[5, 7, 20, 50], [300], [500]]


# --- /predict_file: every format ----------------------------------------------------------------------------


def test_upload_txt_one_review_per_line(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "reviews.txt"
    path.write_text("Loved every minute.\n\nHated it.\n  A solid, enjoyable thriller.  \n")
    table, summary = upload(client, path)
    assert table["text"].tolist() == ["Loved every minute.", "Hated it.", "A solid, enjoyable thriller."]
    assert set(table["predicted_label"]) <= {"NEGATIVE", "POSITIVE"}
    assert summary["rows"] == summary["classified"] == 3
    assert sum(summary["counts"].values()) == 3 and sum(summary["histogram"]["counts"]) == 3
    assert summary["share_positive"] == pytest.approx(summary["counts"]["POSITIVE"] / 3)
    probs = table["prob_POSITIVE"].astype(float)
    assert ((table["predicted_label"] == "POSITIVE") == (probs > 0.5)).all()


def test_upload_csv_finds_the_text_column_by_name(
    client: Client, tmp_path: Path, reviews: pd.DataFrame
) -> None:
    sample = reviews.head(20).rename(columns={"text": "Review"})[["label", "Review"]]
    path = tmp_path / "imdb.csv"
    sample.to_csv(path, index=False)
    table, summary = upload(client, path)
    assert summary["text_column"] == "Review" and summary["classified"] == 20
    assert table["Review"].tolist() == sample["Review"].tolist()
    # The upload's own "label" column is kept, beside the prediction.
    assert table["label"].tolist() == sample["label"].astype(str).tolist()
    assert summary["split_into_windows"] == int((table["windows"].astype(int) > 1).sum())


def test_upload_csv_with_the_column_chosen_by_the_user(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "survey.csv"
    path.write_text("id,opinion,stars\n1,Terrible sound and a silly plot,1\n2,A joy to watch,5\n")
    table, summary = upload(client, path, column="opinion")
    assert summary["text_column"] == "opinion" and len(table) == 2 and table["stars"].tolist() == ["1", "5"]


def test_upload_tsv(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "reviews.tsv"
    path.write_text("text\tsource\nGreat, with commas, inside.\tweb\nNot for me.\tmail\n")
    table, summary = upload(client, path)
    assert (
        table["text"].tolist() == ["Great, with commas, inside.", "Not for me."]
        and summary["classified"] == 2
    )


def test_upload_jsonl_objects_and_strings(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    lines = [{"review": "A classic.", "id": 1}, "Utterly forgettable.", {"review": "Funny & warm", "id": 3}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    _, summary = upload(client, path, engine=engines.ENGINE_FLOAT)
    assert summary["classified"] == 3 and summary["engine"] == engines.ENGINE_FLOAT
    assert summary["text_column"] == "review"


def test_upload_keeps_empty_rows_unclassified(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text('text\nGood.\n""\nBad.\n')
    table, summary = upload(client, path)
    assert (
        table["predicted_label"].tolist()[1] == ""
        and summary["empty_rows"] == 1
        and summary["classified"] == 2
    )


def test_download_neutralises_spreadsheet_formulas(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "evil.csv"
    rows = [
        ["text", "note"],
        ['=HYPERLINK("http://evil.example","click")', "+1+2"],
        ["-2+3 fine film", "@SUM(A1:A2)"],
        ["A normal review", "-3.5"],
    ]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    csv_path, _ = client.predict(handle_file(str(path)), api_name="/predict_file")
    with open(csv_path, newline="") as f:
        out = list(csv.DictReader(f))
    assert out[0]["text"] == "'" + rows[1][0] and out[0]["note"] == "'+1+2"
    assert out[1]["text"] == "'-2+3 fine film" and out[1]["note"] == "'@SUM(A1:A2)"
    assert out[2]["text"] == "A normal review" and out[2]["note"] == "-3.5"  # a plain number stays a number
    for row in out:
        float(row["score"])  # the app's own numbers are numbers


def classified_alone(model: sentiment.SentimentModel, texts: list[str]) -> list[float]:
    return [model.predict([t], engines.ENGINE_FLOAT)[0].probabilities["POSITIVE"] for t in texts]


@pytest.mark.parametrize("delimiter", [";", "|", "\t", ","], ids=["semicolon", "pipe", "tab", "comma"])
def test_upload_csv_delimiter_is_sniffed(
    client: Client,
    tiny_model: sentiment.SentimentModel,
    reviews: pd.DataFrame,
    tmp_path: Path,
    delimiter: str,
) -> None:
    """Excel writes semicolons where the comma is the decimal mark; reviews are full of commas and
    semicolons themselves. Every row comes back with its own text and its own score."""
    texts = [*reviews["text"].head(6), "Dull; too long, and loud.", 'She said "never again", twice.']
    path = tmp_path / "excel_export.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["id", "Review", "stars"])
        writer.writerows([i, text, f"{i % 5},5"] for i, text in enumerate(texts))
    table, summary = upload(client, path, engine=engines.ENGINE_FLOAT)
    assert summary["text_column"] == "Review" and summary["classified"] == len(texts)
    assert table["Review"].tolist() == texts and table["stars"].tolist() == [
        f"{i % 5},5" for i in range(len(texts))
    ]
    assert table["prob_POSITIVE"].astype(float).tolist() == pytest.approx(
        classified_alone(tiny_model, texts), abs=1e-5
    )


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter"),
    [
        ("utf8_bom.csv", "utf-8-sig", ","),
        ("excel_unicode_text.txt", "utf-16", "\t"),  # Excel's "Unicode text": UTF-16 LE with a BOM, tabs
        ("utf16_be.csv", "utf-16-be", ";"),
        ("utf16.tsv", "utf-16", "\t"),
    ],
)
def test_upload_encodings_with_a_byte_order_mark(
    client: Client,
    tiny_model: sentiment.SentimentModel,
    tmp_path: Path,
    name: str,
    encoding: str,
    delimiter: str,
) -> None:
    texts = ["Un film très réussi et émouvant.", "Schrecklich – zwei Stunden verloren.", "Ótimo! 🎬 Loved it."]
    body = (
        delimiter.join(["id", "text"])
        + "\r\n"
        + "".join(f"{i}{delimiter}{t}\r\n" for i, t in enumerate(texts))
    )
    data = body.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    (tmp_path / name).write_bytes(data)
    table, summary = upload(client, tmp_path / name, engine=engines.ENGINE_FLOAT)
    assert table["text"].tolist() == texts and table["id"].tolist() == ["0", "1", "2"]
    assert table["prob_POSITIVE"].astype(float).tolist() == pytest.approx(
        classified_alone(tiny_model, texts), abs=1e-5
    )


# Files without a byte-order mark that are not UTF-8, as older Windows tools write them.
LEGACY_ENCODED = {
    "windows-1252": (
        "cp1252",
        ",",
        [
            "“Amélie” is a delight – worth every €, I’d see it again.",
            "Dreadful: the café scene drags, and the “twist” is obvious.",
            "Naïve but charming; the soundtrack is très bien.",
        ],
        "cp1252",
    ),
    "latin-1": (
        "latin-1",
        ";",
        [
            "Un film très réussi, émouvant et drôle à la fois.",
            "Quelle déception : des acteurs fatigués, un scénario creux.",
            "Ça se regarde, sans plus. Les décors sont jolis.",
        ],
        "cp1252",  # Windows-1252 decodes every Latin-1 letter the same: charset-normalizer names it
    ),
    "shift-jis": (
        "shift_jis",
        ",",
        [
            "この映画は本当に素晴らしかった。俳優の演技が最高です。",
            "退屈で長すぎる。二度と見たくない映画だ。",
            "まあまあの作品。音楽は良かったが、話が弱い。",
        ],
        "cp932",  # Microsoft's Shift-JIS, a superset of it
    ),
}


@pytest.mark.parametrize("sample", list(LEGACY_ENCODED))
def test_upload_without_a_byte_order_mark_is_decoded_by_detection(
    client: Client, tiny_model: sentiment.SentimentModel, tmp_path: Path, sample: str
) -> None:
    encoding, delimiter, texts, detected = LEGACY_ENCODED[sample]
    body = f"id{delimiter}text\r\n" + "".join(f'{i}{delimiter}"{t}"\r\n' for i, t in enumerate(texts))
    path = tmp_path / f"{sample}.csv"
    path.write_bytes(body.encode(encoding))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    table, summary = upload(client, path, engine=engines.ENGINE_FLOAT)
    assert table["text"].tolist() == texts
    assert summary["encoding"] == detected
    assert table["prob_POSITIVE"].astype(float).tolist() == pytest.approx(
        classified_alone(tiny_model, texts), abs=1e-5
    )
    table.to_csv(tmp_path / "results.csv", index=False)  # the page's summary line names it too
    assert f"the file read as {detected}" in views.file_view(str(tmp_path / "results.csv"), summary)[1]


def test_upload_xlsx_first_sheet(
    client: Client, tiny_model: sentiment.SentimentModel, reviews: pd.DataFrame, tmp_path: Path
) -> None:
    sheet = pd.DataFrame(
        {"id": range(1, 9), "Review": reviews["text"].head(8), "stars": [4.5, 1, 2, 3, 5, 1, 2, 3]}
    )
    path = tmp_path / "reviews.xlsx"
    with pd.ExcelWriter(path) as writer:
        sheet.to_excel(writer, sheet_name="reviews", index=False)
        pd.DataFrame({"text": ["not this sheet"]}).to_excel(writer, sheet_name="other", index=False)
    assert files.list_columns(path) == ["id", "Review", "stars"]
    table, summary = upload(client, path, engine=engines.ENGINE_FLOAT)
    assert summary["text_column"] == "Review" and summary["rows"] == 8
    assert table["Review"].tolist() == sheet["Review"].tolist() and table["id"].tolist()[:2] == ["1", "2"]
    expected = classified_alone(tiny_model, sheet["Review"].tolist())
    assert table["prob_POSITIVE"].astype(float).tolist() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        ("id;review\n1;Great, fun, loud\n2;Bad, dull\n", ".csv", ";"),
        ('id,review\n1,"Great; fun; loud"\n2,"Bad; dull"\n', ".csv", ","),
        ("text\nGreat, fun\nBad; dull\n", ".csv", ","),
        ("text\tsource\nGreat, fun\tweb\n", ".tsv", "\t"),
        ("a|b\n1|x, y; z\n", ".csv", "|"),
    ],
    ids=["semicolon-with-commas", "comma-with-quoted-semicolons", "one-column", "tsv", "pipe"],
)
def test_sniff_delimiter(content: str, suffix: str, expected: str) -> None:
    assert files.sniff_delimiter(content, suffix) == expected


def test_upload_menu_lists_and_detects_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,Review_Text,stars\n1,ok,3\n")
    columns = files.list_columns(path)
    assert columns == ["id", "Review_Text", "stars"] and files.detect_column(columns) == "Review_Text"
    (tmp_path / "semi.csv").write_bytes("id;opinion\n1;ok, fine\n".encode("utf-16"))
    assert files.list_columns(tmp_path / "semi.csv") == ["id", "opinion"]
    (tmp_path / "y.jsonl").write_text('{"a": 1, "body": "x"}\n{"c": 2}\n')
    assert files.list_columns(tmp_path / "y.jsonl") == ["a", "body", "c"]
    (tmp_path / "z.txt").write_text("one review\n")
    assert files.list_columns(tmp_path / "z.txt") == []


# --- bad input: one clear message each, and the app keeps serving -------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The review is empty"),
        ("  \n\t ", "The review is empty"),
        ("x" * (5 * 1024 * 1024), "is 5,242,880 characters long; the limit is 30,000"),
    ],
    ids=["empty", "whitespace", "5MB"],
)
def test_bad_text(client: Client, text: str, message: str) -> None:
    for endpoint in ("/predict", "/explain"):
        with pytest.raises(AppError, match=re.escape(message)):
            client.predict(text, api_name=endpoint)
    ok(client)


def test_bad_batches(client: Client) -> None:
    with pytest.raises(AppError, match="non-empty list"):
        client.predict([], api_name="/predict_batch")
    with pytest.raises(AppError, match="Review 2 of 3 is empty"):
        client.predict(["fine", " ", "fine"], api_name="/predict_batch")
    for item, kind in ((7, "a number"), (None, "null"), (["fine"], "a list"), ({"text": "fine"}, "an object")):
        message = f"Review 2 of 3 is not text but {kind}: send each review as a string."
        with pytest.raises(AppError, match=re.escape(message)):
            client.predict(["fine", item, "fine"], api_name="/predict_batch")
    with pytest.raises(AppError, match="51 reviews in one call; the limit is 50"):
        client.predict(["fine"] * 51, api_name="/predict_batch")
    with pytest.raises(
        AppError, match=re.escape("Value: 'gpu' (type: <class 'str'>) is not in the list of choices")
    ):
        client.predict("fine", "gpu", api_name="/predict")
    with pytest.raises(AppError, match="Unknown engine 'gpu': choose one of float, (bf16, )?int8"):
        client.predict(["fine"], "gpu", api_name="/predict_batch")
    ok(client)


def _bad_files(tmp_path: Path) -> list[tuple[str, bytes | str, str]]:
    rows = "text\n" + "".join(f"review {i}\n" for i in range(51))
    return [
        ("binary.txt", bytes(range(256)) * 4, "looks like a binary file"),
        (
            "undetectable.csv",
            bytes(range(1, 256)) * 3,
            "is not UTF-8 text (byte 0x80 at position 127) and its encoding could not be recognised",
        ),
        ("empty.txt", b"", "is empty: there are no reviews"),
        ("blank.csv", "\n \n", "is empty: there are no reviews"),
        ("no_text.csv", "id,stars\n1,5\n2,1\n", "has no text column: none of its columns (id, stars)"),
        ("header_only.csv", "text\n", "has no review text in column 'text'"),
        ("too_many.csv", rows, "has 51 reviews; the limit is 50 per file"),
        ("too_big.txt", "a review\n" * 130_000, "is 1.1 MB; the limit is 1 MB"),
        (
            "long_row.txt",
            "x" * 40_000,
            "Review 1 in 'long_row.txt' is 40,000 characters long; the limit is 30,000",
        ),
        ("broken.jsonl", '{"text": "ok"}\n{"text": \n', "Line 2 of 'broken.jsonl' is not valid JSON"),
        ("numbers.jsonl", "1\n2\n", "Line 1 of 'numbers.jsonl' is not a JSON object or string"),
        ("no_bom.csv", "text\nGood film\n".encode("utf-16-le"), "looks like a binary file"),
        ("broken.xlsx", b"PK\x03\x04 not really a workbook", "could not be read as an Excel workbook"),
        ("bad_utf16.csv", codecs.BOM_UTF16_LE + b"t\x00\x00\xd8", "is not UTF-16 text"),
    ]


@pytest.mark.parametrize("case", range(14))
def test_bad_file(client: Client, tmp_path: Path, case: int) -> None:
    name, content, message = _bad_files(tmp_path)[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(handle_file(str(path)), api_name="/predict_file")
    ok(client)


def test_bad_file_choices(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("text\nfine\n")
    with pytest.raises(AppError, match=re.escape("has no column 'body'; its columns are: text")):
        client.predict(handle_file(str(path)), "body", api_name="/predict_file")
    other = tmp_path / "reviews.pdf"
    other.write_bytes(b"%PDF-1.4")
    with pytest.raises(AppError, match="(?i)file type"):
        client.predict(handle_file(str(other)), api_name="/predict_file")
    with pytest.raises(AppError, match="Upload a file of reviews first"):
        client.predict(None, api_name="/predict_file")
    ok(client)


def test_settings_are_read_once_from_the_environment() -> None:
    environ = {"MODEL_ID": " user/model ", "SPACE_ENGINE": "int8", "SPACE_MAX_FILE_MB": "2", "SPACE_MAX_ROWS": "9",
               "GRADIO_SERVER_PORT": "8001", "GRADIO_SERVER_NAME": "0.0.0.0"}  # fmt: skip
    expected = files.Limits(max_bytes=2 * 2**20, max_rows=9, max_chars=files.Limits().max_chars)
    assert Settings.from_env(environ) == Settings("user/model", "int8", expected, "0.0.0.0", 8001)
    assert Settings.from_env({**environ, "PORT": "7000"}).port == 7000  # PORT first, as Spaces set it
    assert Settings.from_env({}) == Settings()
    with pytest.raises(ValueError, match=re.escape("SPACE_MAX_ROWS='many' is not a number")):
        Settings.from_env({"SPACE_MAX_ROWS": "many"})
    with pytest.raises(ValueError, match=re.escape("SPACE_MAX_CHARS='-3' must be positive")):
        Settings.from_env({"SPACE_MAX_CHARS": "-3"})
    assert Settings.from_env({"SPACE_RETENTION_MINUTES": "0.05"}).retention_minutes == 0.05
    assert Settings().retention_minutes == 60
    with pytest.raises(ValueError, match=re.escape("SPACE_RETENTION_MINUTES='an hour' is not a number")):
        Settings.from_env({"SPACE_RETENTION_MINUTES": "an hour"})
    with pytest.raises(ValueError, match=re.escape("SPACE_RETENTION_MINUTES='0' must be positive")):
        Settings.from_env({"SPACE_RETENTION_MINUTES": "0"})


@pytest.mark.parametrize(
    ("model_id", "extra", "message"),
    [
        ("/nonexistent/model-folder", {}, "Could not load the model '/nonexistent/model-folder'"),
        ("", {}, "MODEL_ID is not set"),
        ("/nonexistent/model-folder", {"SPACE_MAX_FILE_MB": "ten"}, "SPACE_MAX_FILE_MB='ten' is not a number"),
    ],
    ids=["unreadable", "unset", "malformed-limit"],
)
def test_unreadable_model_at_start_exits_with_one_sentence(model_id: str, extra: dict, message: str) -> None:
    env = {**os.environ, "MODEL_ID": model_id, "PORT": str(free_port()), **extra}
    proc = subprocess.run(
        [sys.executable, str(SPACE / "app.py")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --- retention: nothing of a visitor's kept past it ---------------------------------------------------------


def files_named(marker: str) -> list[Path]:
    """Every file on this machine's server side whose name holds `marker`: in Gradio's cache (uploads and
    the outputs it serves) and in the Space's own results folders."""
    from gradio.utils import get_upload_folder

    found = [p for p in Path(get_upload_folder()).rglob(f"*{marker}*") if p.is_file()]
    return found + list(Path(tempfile.gettempdir()).glob(f"{retention.RESULTS_PREFIX}*/*{marker}*"))


def test_uploads_and_results_are_deleted_after_the_retention(
    tiny_model: sentiment.SentimentModel, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    minutes = 0.1  # 6 seconds
    settings = Settings(limits=TEST_LIMITS, port=free_port(), retention_minutes=minutes)
    demo = app.build_app(tiny_model, settings)
    demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_options(settings))
    try:
        url = f"http://127.0.0.1:{settings.port}/"
        page = json.dumps(Client(url, verbose=False).config)
        assert "Uploads and results are deleted from the server 6 seconds after they are made" in page
        marker = uuid.uuid4().hex
        upload_path = tmp_path / "mine" / f"reviews_{marker}.csv"
        upload_path.parent.mkdir()
        upload_path.write_text("text\nA fine film.\nA dull film.\n")
        started = time.time()
        # The visitor's own download goes outside the server's folders.
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        csv_path, _ = client.predict(handle_file(str(upload_path)), api_name="/predict_file")
        assert pd.read_csv(csv_path)["predicted_label"].tolist()[0] in {"POSITIVE", "NEGATIVE"}
        kept = files_named(marker)
        names = sorted(p.name for p in kept)
        # the upload, the results CSV the Space wrote and the copy Gradio served
        results_name = f"predictions_{upload_path.stem}.csv"
        assert names == sorted([upload_path.name, results_name, results_name]), names
        assert any(p.parent.name.startswith(retention.RESULTS_PREFIX) for p in kept)
        time.sleep(max(0.0, started + minutes * 60 + 1.5 - time.time()))  # 1.5 s: the checks' own run time
        assert files_named(marker) == []
        assert marker not in "".join(capfd.readouterr())  # the upload's name is never logged
    finally:
        demo.close()


def test_retention_schedule_deletes_by_the_retention() -> None:
    for minutes in (60, 0.1, 0.05, 7.5):
        frequency, age = retention.cache_schedule(minutes)
        assert frequency >= 1 and age >= 1 and frequency + age <= max(2, minutes * 60)
    assert retention.cache_schedule(60) == (60, 3540)
    assert [retention.describe_retention(m) for m in (60, 90, 0.1, 1.5)] == [
        "1 hour", "90 minutes", "6 seconds", "90 seconds"
    ]


# --- README --------------------------------------------------------------------------------------------------


def readme_snippets() -> list[str]:
    text = (SPACE / "README.md").read_text()
    return [s for s in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "gradio_client" in s]


def test_readme_front_matter_matches_requirements() -> None:
    import yaml

    front = yaml.safe_load((SPACE / "README.md").read_text().split("---")[1])
    assert {
        "title",
        "emoji",
        "sdk",
        "sdk_version",
        "app_file",
        "models",
        "license",
        "short_description",
    } <= set(front)
    assert (
        front["sdk"] == "gradio" and front["app_file"] == "app.py" and len(front["short_description"]) <= 60
    )
    requirements = (SPACE / "requirements.txt").read_text()
    assert f"gradio>={front['sdk_version']}" in requirements.split()
    assert (SPACE / front["app_file"]).exists() and (SPACE / "screenshot.png").exists()
    assert "screenshot.png" in (SPACE / "README.md").read_text()


def test_readme_snippets_run_as_written(space_url: str, tmp_path: Path) -> None:
    snippets = readme_snippets()
    assert len(snippets) >= 2
    uses = "\n".join(snippets)
    for needed in ("/predict", "/predict_batch", "/predict_file", "handle_file("):
        assert needed in uses
    pd.DataFrame({"review": ["Great film.", "Awful film."]}).to_csv(tmp_path / "reviews.csv", index=False)
    env = {**os.environ, "SPACE": space_url}
    for snippet in snippets:
        proc = subprocess.run(
            [sys.executable, "-c", snippet],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip()


def test_float_is_served_when_the_int8_engine_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, space_model_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    def no_export(*args: object) -> None:
        raise RuntimeError("exporter missing")

    monkeypatch.setattr(engines, "int8_logits_fn", no_export)
    model = sentiment.SentimentModel(
        str(space_model_dir), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8]
    )
    assert list(model.engines) == [engines.ENGINE_FLOAT]
    assert (
        "int8 engine is unavailable for this model (RuntimeError: exporter missing)"
        in capsys.readouterr().err
    )
