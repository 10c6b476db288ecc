"""The Space on a model of any label set (issue #28): three classes, and a 1-10 rating model.

Each model is a tiny random DistilBERT saved as training saves one (`build_tiny_model`, config.json as the
#28 contract writes it); the Space is launched on it on localhost and called with gradio_client and over MCP,
as the two-class Space is in test_space_app.py. Wide random weights (initializer_range 0.5) make every
review's answer differ clearly from another's; the int8 agreement checks use models at 0.2, as the shared
two-class tiny model does, since quantising weights that wide says nothing about a trained model's.
"""

from __future__ import annotations

import ast
import asyncio
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_tiny_model, free_port
from gradio_client import Client, handle_file
from space_fixtures import TEST_LIMITS
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "space"))

import app
import batcher
import engines
import explain
import onnx_build
import ort_cpu
import published_int8
import sentiment
import task as task_module
import views
import windows
from examples import EXAMPLES
from settings import Settings

CLASSES = ("negative", "neutral", "positive")
RATING_KEYS = {"label", "score", "rating", "range", "midpoint", "side", "windows", "tokens", "engine"}
TWO_REVIEWS = [
    "A moving, beautifully acted film.",
    "Two hours of my life I will never get back, dull and cheap.",
]


@pytest.fixture(scope="module")
def reviews(sample_dir: Path) -> list[str]:
    return pd.read_parquet(sample_dir / "test.parquet")["text"].head(12).tolist()


@pytest.fixture(scope="module")
def three_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("three"), seed=2, initializer_range=0.5, labels=CLASSES)


@pytest.fixture(scope="module")
def rating_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("rating"), seed=2, initializer_range=0.5, labels=None)


def launched(model_dir: Path) -> Iterator[tuple[Client, sentiment.SentimentModel, str]]:
    """The Space on `model_dir` on a free localhost port, as space_fixtures.py launches the two-class one."""
    model = sentiment.SentimentModel(str(model_dir))
    settings = Settings(limits=TEST_LIMITS, port=free_port())
    demo = app.build_app(model, settings)
    demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_options(settings))
    url = f"http://127.0.0.1:{settings.port}/"
    yield Client(url, verbose=False), model, url
    demo.close()


@pytest.fixture(scope="module")
def three(three_dir: Path) -> Iterator[tuple[Client, sentiment.SentimentModel, str]]:
    yield from launched(three_dir)


@pytest.fixture(scope="module")
def rated(rating_dir: Path) -> Iterator[tuple[Client, sentiment.SentimentModel, str]]:
    yield from launched(rating_dir)


def mcp_tools_and_answer(url: str, arguments: dict) -> tuple[dict, object]:
    """A real MCP client on the Space: each tool's description, and the `predict` tool's answer."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> tuple[dict, object]:
        async with streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool.description for tool in (await session.list_tools()).tools}
                answer = await session.call_tool("predict", arguments)
                assert not answer.isError, answer
                return tools, ast.literal_eval(answer.content[0].text)

    return asyncio.run(run())


def upload_csv(client: Client, path: Path, texts: list[str]) -> tuple[pd.DataFrame, dict, str]:
    """/predict_file on `texts` uploaded as a CSV: the results CSV (read), the summary, the CSV's path."""
    pd.DataFrame({"review": texts}).to_csv(path, index=False)
    csv_path, summary = client.predict(
        handle_file(str(path)), "", engines.ENGINE_FLOAT, api_name="/predict_file"
    )
    return pd.read_csv(csv_path), summary, csv_path


def page_component(demo_config: dict, kind: str, label: str | None = None) -> dict:
    return next(c["props"] for c in demo_config["components"]
                if c.get("type") == kind and (label is None or c["props"].get("label") == label))  # fmt: skip


# --- the task read from config.json -------------------------------------------------------------------------


def test_task_is_read_from_the_contracts_config(
    three_dir: Path, rating_dir: Path, space_model_dir: Path
) -> None:
    from transformers import AutoConfig

    binary = task_module.Task.from_config(AutoConfig.from_pretrained(space_model_dir))
    assert binary.kind == task_module.KIND_BINARY and binary.answer_words() == "POSITIVE or NEGATIVE"
    classes = task_module.Task.from_config(AutoConfig.from_pretrained(three_dir))
    assert classes.kind == task_module.KIND_CLASSES and classes.labels == CLASSES
    assert classes.answer_words() == "negative, neutral or positive"
    rating = task_module.Task.from_config(AutoConfig.from_pretrained(rating_dir))
    assert (rating.kind, rating.labels, rating.rating_range, rating.rating_midpoint) == (
        task_module.KIND_RATING, ("RATING",), (1.0, 10.0), 5.5)  # fmt: skip
    assert rating.side(5.5) == "positive" and rating.side(5.4) == "negative" and rating.scale() == "1–10"
    assert rating.answer_words() == "a rating on a 1–10 scale"
    other_two = task_module.Task(task_module.KIND_BINARY, ("bad", "good"))
    assert "Is a movie review good or bad?" in app.page_intro("m", other_two)
    assert "Is a movie review positive or negative?" in app.page_intro("m", binary)
    no_scale = AutoConfig.from_pretrained(rating_dir, rating_range=[3, 3], rating_midpoint=None)
    assert task_module.Task.from_config(no_scale) == task_module.Task(task_module.KIND_RATING, ("RATING",))


# --- three classes ------------------------------------------------------------------------------------------


def test_three_classes_predict_returns_every_class(three, three_dir: Path) -> None:
    client, _, _ = three
    results = [client.predict(text, engines.ENGINE_FLOAT, api_name="/predict") for text in TWO_REVIEWS]
    pipe = pipeline("text-classification", model=str(three_dir), top_k=None)
    for text, result in zip(TWO_REVIEWS, results):
        assert set(result) == {"label", "score", "probabilities", "windows", "tokens", "engine"}
        probs = result["probabilities"]
        assert list(probs) == list(CLASSES) and sum(probs.values()) == pytest.approx(1.0)
        assert result["label"] == max(probs, key=probs.get) and result["score"] == pytest.approx(
            max(probs.values())
        )
        expected = {d["label"]: d["score"] for d in pipe([text])[0]}
        assert probs == pytest.approx(expected, abs=1e-6)  # the float engine is the plain pipeline
    gaps = [abs(results[0]["probabilities"][c] - results[1]["probabilities"][c]) for c in CLASSES]
    assert max(gaps) > 0.01, gaps  # two reviews, two answers
    batch = client.predict(TWO_REVIEWS, engines.ENGINE_FLOAT, api_name="/predict_batch")
    for together, alone in zip(batch, results):
        assert together["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-6)


def test_three_classes_are_described_and_served_over_mcp(three) -> None:
    client, model, url = three
    tools, answer = mcp_tools_and_answer(url, {"text": TWO_REVIEWS[0], "engine": "float"})
    for name in ("predict", "predict_batch"):
        assert "negative, neutral or positive" in tools[name] and "POSITIVE" not in tools[name], tools[name]
    assert '"probabilities"' in tools["predict"] and "for every class, summing to 1" in tools["predict"]
    assert answer == client.predict(TWO_REVIEWS[0], "float", api_name="/predict")
    assert set(answer["probabilities"]) == set(CLASSES)
    help_text = views.api_help(TEST_LIMITS, list(model.engines), model.task)
    assert "3 classes (`negative`, `neutral`, `positive`)" in help_text and "`prob_<class>`" in help_text


def test_three_classes_page_lists_every_class(three) -> None:
    _, model, _ = three
    demo = app.build_app(model, Settings(limits=TEST_LIMITS))
    config = demo.config
    assert page_component(config, "label")["num_top_classes"] == 3
    why = page_component(config, "highlightedtext")
    assert why["label"].endswith("(green: towards the predicted class, red: away from it)")
    assert set(why["color_map"]) == set(views.HIGHLIGHT_CATEGORIES[task_module.KIND_CLASSES])
    intro = next(c["props"]["value"] for c in config["components"] if c.get("type") == "markdown")
    assert "Is a movie review negative, neutral or positive?" in intro
    assert page_component(config, "nativeplot")["x"] == "P(predicted class)"


def test_three_classes_file_gets_a_probability_column_per_class(
    three, tmp_path: Path, reviews: list[str]
) -> None:
    client, model, _ = three
    table, summary, csv_path = upload_csv(client, tmp_path / "reviews.csv", [*reviews[:6], ""])
    probs = [f"prob_{c}" for c in CLASSES]
    assert list(table.columns) == ["review", "predicted_label", "score", *probs, "windows"]
    done = table.iloc[:6]
    assert np.allclose(done[probs].sum(axis=1), 1.0, atol=1e-5)
    assert (done["predicted_label"] == done[probs].idxmax(axis=1).str.removeprefix("prob_")).all()
    expected = [p.probabilities for p in model.predict(reviews[:6], engines.ENGINE_FLOAT)]
    np.testing.assert_allclose(done[probs].to_numpy(), [[e[c] for c in CLASSES] for e in expected], atol=1e-5)
    assert table["predicted_label"].fillna("").iloc[6] == "" and np.isnan(table["prob_neutral"].iloc[6])
    assert set(summary["counts"]) == set(CLASSES) and sum(summary["counts"].values()) == 6
    assert "share_positive" not in summary and sum(summary["shares"].values()) == pytest.approx(1.0)
    assert (
        summary["histogram"]["probability_of"] == "predicted label"
        and sum(summary["histogram"]["counts"]) == 6
    )
    preview, text, bins = views.file_view(csv_path, summary, task_module.KIND_CLASSES)
    assert list(preview.columns) == ["review", "predicted_label", "score", "windows"]
    assert "**6 reviews classified**" in text and "share positive" not in text
    assert list(bins.columns) == ["P(predicted class)", "reviews"]


def three_word_model(vocab: dict[str, int]):
    """A stand-in three-class model: "superb" raises neutral's logit, "awful" raises negative's."""

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        good, bad = (ids == vocab["superb"]).sum(axis=1) * 3.5, (ids == vocab["awful"]).sum(axis=1) * 3.0
        return np.stack([bad, good, np.zeros_like(good)], axis=1)

    return run


def test_three_class_explanation_is_about_the_predicted_class(three, monkeypatch: pytest.MonkeyPatch) -> None:
    client, model, _ = three
    monkeypatch.setitem(model.engines, "words", three_word_model(model.tokenizer.get_vocab()))
    result = explain.explain(
        batcher.Batcher(model), "The cast is superb but the script is awful indeed", "words"
    )
    assert result.target == "neutral"  # the predicted class, not a "positive" one
    spans, summary = views.render_explanation(result)
    assert summary.startswith(f"P(neutral) = {result.base:.3f}, the predicted class.")
    assert (
        "**Pushed towards neutral:** “superb” +" in summary
        and "**Pushed away from neutral:** “awful” -" in summary
    )
    categories = {span.strip(): category for span, category in spans}
    assert categories["superb"] == "strongly towards" and categories["awful"] == "away"
    assert {c for w, c in categories.items() if w not in ("superb", "awful")} == {None}
    # Through the endpoint, on the real model: the predicted class is the one explained.
    text = TWO_REVIEWS[1]
    label = client.predict(text, "float", api_name="/predict")["label"]
    spans, summary = client.predict(text, "float", api_name="/explain")
    assert summary.startswith(f"P({label}) = ") and f"**Pushed towards {label}:**" in summary
    assert "".join(s["token"] for s in spans) == windows.clean_text(text)


# --- a rating model -----------------------------------------------------------------------------------------


def test_rating_is_the_pipelines_value(rated, rating_dir: Path) -> None:
    client, _, _ = rated
    pipe = pipeline("text-classification", model=str(rating_dir), function_to_apply="none")
    results = [client.predict(text, engines.ENGINE_FLOAT, api_name="/predict") for text in TWO_REVIEWS]
    for text, result in zip(TWO_REVIEWS, results):
        assert set(result) == RATING_KEYS
        (expected,) = pipe([text])
        assert result["rating"] == pytest.approx(expected["score"], abs=1e-3)
        assert result["label"] == expected["label"] == "RATING" and result["score"] == result["rating"]
        assert result["range"] == [1.0, 10.0] and result["midpoint"] == 5.5
        assert result["side"] == ("positive" if result["rating"] >= 5.5 else "negative")
    assert abs(results[0]["rating"] - results[1]["rating"]) > 0.05  # two reviews, two ratings
    batch = client.predict(TWO_REVIEWS, engines.ENGINE_FLOAT, api_name="/predict_batch")
    assert [r["rating"] for r in batch] == pytest.approx(
        [r["rating"] for r in results], abs=1e-4
    )  # padded together


def test_rating_of_a_long_review_is_the_mean_of_its_windows(rated, rating_dir: Path) -> None:
    client, model, _ = rated
    text = dict(EXAMPLES)["Very long (split into windows)"]
    result = client.predict(text, engines.ENGINE_FLOAT, api_name="/predict")
    assert result["windows"] >= 2
    float_model = AutoModelForSequenceClassification.from_pretrained(rating_dir, dtype=torch.float32).eval()
    enc = model.tokenizer(
        windows.clean_text(text),
        truncation=True,
        max_length=512,
        stride=windows.WINDOW_OVERLAP,
        return_overflowing_tokens=True,
    )
    with torch.no_grad():
        values = [float(float_model(input_ids=torch.tensor([ids])).logits[0, 0]) for ids in enc["input_ids"]]
    assert len(values) == result["windows"] and np.std(values) > 0.01
    assert result["rating"] == pytest.approx(float(np.mean(values)), abs=1e-5)  # values, never a softmax
    shown, note = views.prediction_view(result, text, model.max_length, "")
    assert "averaged their ratings" in note


def test_rating_page_shows_the_rating(rated) -> None:
    client, model, url = rated
    result = client.predict(TWO_REVIEWS[0], "float", api_name="/predict")
    shown, note = views.prediction_view(result, TWO_REVIEWS[0], model.max_length, "a note")
    assert shown == f"{result['rating']:.1f} on a 1–10 scale: {result['side']}"
    side = "at or above" if result["side"] == "positive" else "below"
    assert note.startswith(f"**{result['side'].capitalize()} side**: {side} 5.5, the midpoint")
    no_midpoint = {**result, "midpoint": None, "side": None, "range": None}
    assert views.prediction_view(no_midpoint, "x", 512, "")[0] == f"Rating {result['rating']:.1f}"
    config = app.build_app(model, Settings(limits=TEST_LIMITS)).config
    intro = next(c["props"]["value"] for c in config["components"] if c.get("type") == "markdown")
    assert "How would a movie review rate, on a 1–10 scale?" in intro
    assert page_component(config, "highlightedtext")["label"].endswith(
        "(green: raised the rating, red: lowered it)"
    )
    engine_info = page_component(config, "radio", "Engine")["info"]
    assert "the fastest here of those that keep float32's ratings (within 0.18)" in engine_info
    tools, answer = mcp_tools_and_answer(url, {"text": TWO_REVIEWS[0], "engine": "float"})
    assert answer == result
    assert (
        "Rate one English movie review on a 1–10 scale." in tools["predict"]
        and "POSITIVE" not in tools["predict"]
    )
    assert '"midpoint": 5.5' in tools["predict"] and '"probabilities"' not in tools["predict"]
    help_text = views.api_help(TEST_LIMITS, list(model.engines), model.task)
    assert "`{label, score, rating, range, midpoint, side, windows, tokens, engine}`" in help_text


def test_rating_file_gets_a_rating_column(rated, tmp_path: Path, reviews: list[str]) -> None:
    client, model, _ = rated
    table, summary, csv_path = upload_csv(client, tmp_path / "reviews.csv", [*reviews[:6], ""])
    assert list(table.columns) == ["review", "rating", "side", "windows"]
    expected = [p.rating for p in model.predict(reviews[:6], engines.ENGINE_FLOAT)]
    assert table["rating"].iloc[:6].tolist() == pytest.approx(expected, abs=1e-5)
    assert (table["side"].iloc[:6] == np.where(np.array(expected) >= 5.5, "positive", "negative")).all()
    assert np.isnan(table["rating"].iloc[6]) and table["windows"].iloc[6] == 0
    assert summary["classified"] == 6 and summary["empty_rows"] == 1
    assert summary["mean_rating"] == pytest.approx(float(np.mean(expected)), abs=1e-5)
    assert (
        summary["counts"]["positive"] == sum(r >= 5.5 for r in expected)
        and sum(summary["counts"].values()) == 6
    )
    assert summary["histogram"]["edges"][0] == 1.0 and summary["histogram"]["edges"][-1] == 10.0
    assert sum(summary["histogram"]["counts"]) == 6  # ratings beyond the range count in the end bins
    preview, text, bins = views.file_view(csv_path, summary, task_module.KIND_RATING)
    assert list(preview.columns) == ["review", "rating", "side", "windows"]
    assert "**6 reviews rated**" in text and f"mean rating {summary['mean_rating']:.2f}" in text
    assert list(bins.columns) == ["rating", "reviews"]


def test_rating_explanation_pushes_the_rating_up_or_down(rated, monkeypatch: pytest.MonkeyPatch) -> None:
    client, model, _ = rated
    vocab = model.tokenizer.get_vocab()

    def two_word_rating(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rating = 5.5 + 2.0 * (ids == vocab["superb"]).sum(axis=1) - 1.5 * (ids == vocab["awful"]).sum(axis=1)
        return rating[:, None].astype(np.float32)

    monkeypatch.setitem(model.engines, "words", two_word_rating)
    result = explain.explain(
        batcher.Batcher(model), "The cast is superb but the script is awful indeed", "words"
    )
    assert result.base == pytest.approx(6.0) and result.scale == 9.0
    spans, summary = views.render_explanation(result)
    assert summary.startswith("Rating 6.000. Each span was deleted in turn")
    assert "**Pushed the rating up:** “superb” +2.000" in summary
    assert "**Pushed the rating down:** “awful” -1.500" in summary
    categories = {span.strip(): category for span, category in spans}
    assert categories["superb"] == "strongly raised" and categories["awful"] == "strongly lowered"
    assert {c for w, c in categories.items() if w not in ("superb", "awful")} == {None}
    _, summary = client.predict(TWO_REVIEWS[1], "float", api_name="/explain")
    assert summary.startswith("Rating ") and "**Pushed the rating up:**" in summary


# --- every engine -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [CLASSES, None], ids=["three-classes", "rating"])
def test_int8_engine_agrees_with_float(
    labels: tuple[str, ...] | None, tmp_path: Path, reviews: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = build_tiny_model(tmp_path / "model", seed=2, initializer_range=0.2, labels=labels)
    model = sentiment.SentimentModel(str(model_dir), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8])
    exact, fast = (model.predict(reviews, engine) for engine in (engines.ENGINE_FLOAT, engines.ENGINE_INT8))
    if labels is None:
        gaps = [abs(a.rating - b.rating) for a, b in zip(exact, fast)]
        assert max(gaps) <= model.task.rating_tolerance() and np.std([a.rating for a in exact]) > 0.05
    else:
        gaps = [abs(a.probabilities[c] - b.probabilities[c]) for a, b in zip(exact, fast) for c in CLASSES]
        assert max(gaps) < 0.02 and [a.label for a in exact] == [b.label for b in fast]
    model.measure(reviews[:4], repeats=1)
    assert model.same_labels == {engines.ENGINE_FLOAT, engines.ENGINE_INT8}
    # An engine that moves every rating by a quarter star (or swaps two classes) is not the same.
    float_fn = model.engines[engines.ENGINE_FLOAT]
    off = (lambda ids, mask: float_fn(ids, mask) + 0.25) if labels is None else \
        (lambda ids, mask: float_fn(ids, mask)[:, [1, 0, 2]])  # fmt: skip
    monkeypatch.setitem(model.engines, engines.ENGINE_INT8, off)
    model.measure(reviews[:4], repeats=1)
    assert model.same_labels == {engines.ENGINE_FLOAT}


def unscaled_copy(model_dir: Path, folder: Path, shift: float) -> Path:
    """The rating model with every rating moved by `shift` (as before its ratings were put on their scale)."""
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        model.classifier.bias += shift
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    return folder


def test_published_onnx_files_of_a_rating_model(
    tmp_path: Path, reviews: list[str], capsys: pytest.CaptureFixture
) -> None:
    """The ONNX build writes a rating model's files; the Space serves the published int8 file, and refuses
    one whose ratings are off the model's (in one log line)."""
    folder = build_tiny_model(tmp_path / "rating", seed=2, initializer_range=0.2, labels=None)
    built = sentiment.SentimentModel(str(folder), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8])
    paths = onnx_build.build_published_onnx(folder, folder / "onnx")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(reviews[:3], truncation=True, max_length=128, padding=True, return_tensors="np")
    feed = {
        "input_ids": batch["input_ids"].astype(np.int64),
        "attention_mask": batch["attention_mask"].astype(np.int64),
    }
    logits = ort_cpu.ort_session(paths["model"], threads=1).run(None, feed)[0]
    assert logits.shape == (3, 1)
    with torch.no_grad():
        torch_model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
        expected = torch_model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-3)

    capsys.readouterr()
    loaded = sentiment.SentimentModel(str(folder), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8])
    assert "int8 engine: the model repo's onnx/model_quantized.onnx" in capsys.readouterr().err
    ratings = [[p.rating for p in m.predict(reviews[:4], engines.ENGINE_INT8)] for m in (loaded, built)]
    assert ratings[0] == pytest.approx(ratings[1], abs=1e-9)

    other = unscaled_copy(folder, tmp_path / "unscaled", shift=-5.5)
    shutil.copyfile(
        onnx_build.build_published_onnx(other, other / "onnx")["model_quantized"], paths["model_quantized"]
    )
    capsys.readouterr()
    refused = sentiment.SentimentModel(str(folder), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8])
    lines = [line for line in capsys.readouterr().err.splitlines() if "model_quantized.onnx" in line]
    gap = published_int8.RATING_GAP_SHARE * 9
    assert len(lines) == 1 and f"gives a rating more than {gap:g} away from the model's on" in lines[0], lines
    assert [p.rating for p in refused.predict(reviews[:4], engines.ENGINE_INT8)] == pytest.approx(
        ratings[1], abs=1e-9
    )


# --- in a browser -------------------------------------------------------------------------------------------


def classify_in_browser(page, url: str, text: str) -> str:
    """Type `text` into the Space at `url`, classify it, and return the label component's text."""
    page.goto(url)
    page.locator("#review textarea").fill(text)
    page.get_by_role("button", name="Classify", exact=True).click()
    page.locator("#prediction-note").get_by_text("tokens, read in one pass").wait_for()
    return page.locator("#prediction [data-testid=label-output-value]").inner_text().strip()


def upload_in_browser(page, path: Path) -> list[str]:
    """Upload `path` in the file tab, wait for its summary, and return the preview table's headers."""
    page.get_by_role("tab", name="File upload").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Classify file").click()
    page.locator("#file-summary").get_by_text(re.compile("3 reviews (classified|rated)")).wait_for()
    return [h.strip() for h in page.locator("#preview [role=columnheader]").all_inner_texts()]


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's Chromium is not installed")
def test_browser_shows_every_class_and_the_rating(three, rated, tmp_path: Path, reviews: list[str]) -> None:
    """The label component lists all three classes; a rating model's shows its rating; a file classified in
    the page gets its preview table in either."""
    from playwright.sync_api import sync_playwright
    from screenshot import CHROMIUM_ARGS

    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": reviews[:3]}).to_csv(path, index=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        assert classify_in_browser(page, three[2], TWO_REVIEWS[0]) in CLASSES
        bars = page.locator("#prediction .confidence-set")
        assert bars.count() == 3 and set(CLASSES) <= set(" ".join(bars.all_inner_texts()).split())
        assert upload_in_browser(page, path) == ["review", "predicted_label", "score", "windows"]

        shown = classify_in_browser(page, rated[2], TWO_REVIEWS[0])
        rating = rated[0].predict(TWO_REVIEWS[0], api_name="/predict")  # the page's default engine, as here
        assert shown == f"{rating['rating']:.1f} on a 1–10 scale: {rating['side']}"
        assert page.locator("#prediction .confidence-set").count() == 0
        assert "side**" not in page.locator("#prediction-note").inner_text()  # markdown rendered
        assert upload_in_browser(page, path) == ["review", "rating", "side", "windows"]
        browser.close()
