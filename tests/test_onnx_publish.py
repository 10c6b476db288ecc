"""ONNX files in the published repo: built at push time, checked against the model, in the same commit.

A real tiny full fine-tune is published by the training command's `--push_to_hub` (the other path,
`python -m model_card push`, publishes them in tests/test_publish.py and tests/test_transformers_js.py).
What was published is downloaded from the local Hub and run with ONNX Runtime as a user would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import ROOT, train_tiny
from huggingface_hub import HfApi
from local_hub import LocalHub, running_hub
from task_runs import THREE_CLASSES, build_task_run
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from model_card import onnx_files
from model_card.push import publish
from train.errors import UserError

TRAIN_REPO = "alice/imdb-onnx"
ONNX_FILES = {"onnx/model.onnx", "onnx/model_quantized.onnx"}
# The operator sets a stock ONNX Runtime build (onnxruntime-node, -web, Python) runs: the standard ones.
STANDARD_DOMAINS = {"", "ai.onnx"}


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    """One local Hub for the module, so the trained run is published once and read by every test; the test
    process's huggingface_hub is pointed at it as the `local_hub` fixture does (tests/local_hub.py)."""
    from huggingface_hub import constants

    with running_hub() as served, pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        patch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        patch.setattr(constants, "ENDPOINT", served.endpoint)
        patch.setattr(
            constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            served.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        yield served


@pytest.fixture(scope="module")
def trained(hub: LocalHub, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny full fine-tune, published by `python -m train --push_to_hub`."""
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("onnx-run") / "run"
    return train_tiny(tiny_model_dir, out, "--push_to_hub", TRAIN_REPO, env=hub.client_env(home, hub.token))


def _push(hub: LocalHub, home: Path, run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_card", "push", str(run_dir), *args],
        cwd=ROOT,
        check=False,
        env=hub.client_env(home, hub.token),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _torch_logits(run_dir: Path, texts: list[str]) -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    model = AutoModelForSequenceClassification.from_pretrained(run_dir).eval()
    with torch.inference_mode():
        return np.concatenate(
            [model(**tokenizer(t, truncation=True, return_tensors="pt")).logits.numpy() for t in texts]
        )


def _onnx_logits(path: Path, run_dir: Path, texts: list[str]) -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    rows = []
    for text in texts:
        encoded = tokenizer(text, truncation=True, return_tensors="np")
        rows.append(session.run(None, {n: encoded[n].astype(np.int64) for n in names})[0])
    return np.concatenate(rows)


def test_push_to_hub_publishes_both_onnx_files_with_the_weights_in_one_commit(
    hub: LocalHub, trained: Path, tmp_path: Path
) -> None:
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    files = set(api.list_repo_files(TRAIN_REPO))
    assert ONNX_FILES | {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files
    # One commit on top of the repo's initial one holds weights, card and both graphs.
    assert len(hub.commit_titles(TRAIN_REPO)) == 2

    texts = pd.read_csv(trained / "test_predictions.csv")["text"].tolist()[:16]
    expected = _torch_logits(trained, texts)
    downloaded = {
        name: Path(api.hf_hub_download(TRAIN_REPO, name, cache_dir=tmp_path)) for name in ONNX_FILES
    }
    # The published float graph is the model: same logits as torch on real test reviews.
    got = _onnx_logits(downloaded["onnx/model.onnx"], trained, texts)
    np.testing.assert_allclose(
        got, expected, atol=onnx_files.LOGIT_TOLERANCE, rtol=onnx_files.LOGIT_TOLERANCE
    )
    for path in downloaded.values():
        domains = {node.domain for node in onnx.load(str(path)).graph.node}
        assert domains <= STANDARD_DOMAINS, f"{path.name} uses non-standard operators: {domains}"
    quantized = onnx.load(str(downloaded["onnx/model_quantized.onnx"]))
    assert any(node.op_type == "MatMulInteger" for node in quantized.graph.node)  # int8 products, not a copy


def test_card_states_the_measured_int8_agreement_and_the_runtime_snippets(
    hub: LocalHub, trained: Path, tmp_path: Path
) -> None:
    agreement = json.loads((trained / onnx_files.AGREEMENT_FILE).read_text())
    reviews = pd.read_csv(trained / "test_predictions.csv")
    assert agreement["reviews"] == agreement["test_reviews"] == len(reviews)  # a small run: every test review
    # Recompute the figure from the published-to-be files: the card's number is a measurement, not a constant.
    texts = reviews["text"].tolist()
    float_labels = _onnx_logits(trained / "onnx/model.onnx", trained, texts).argmax(-1)
    int8_labels = _onnx_logits(trained / "onnx/model_quantized.onnx", trained, texts).argmax(-1)
    assert agreement["label_agreement"] == pytest.approx((float_labels == int8_labels).mean())

    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    card = Path(api.hf_hub_download(TRAIN_REPO, "README.md", cache_dir=tmp_path)).read_text()
    assert f"{100 * agreement['label_agreement']:.1f}%" in card
    assert f'pipeline("text-classification", "{TRAIN_REPO}"' in card  # transformers.js
    assert "@huggingface/transformers" in card and 'dtype: "q8"' in card
    assert "onnxruntime" in card and f'hf_hub_download("{TRAIN_REPO}", "onnx/model_quantized.onnx")' in card


def test_card_onnx_runtime_snippet_runs_as_written(hub: LocalHub, trained: Path, tmp_path: Path) -> None:
    """The card's ONNX Runtime block, unchanged, in a fresh process that reaches only the local Hub."""
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    card = Path(api.hf_hub_download(TRAIN_REPO, "README.md", cache_dir=tmp_path / "card")).read_text()
    blocks = [part.split("```")[0] for part in card.split("```python\n")[1:]]
    snippet = next(block for block in blocks if "onnxruntime" in block)
    result = subprocess.run(
        [sys.executable, "-c", snippet],
        env=hub.client_env(tmp_path / "home", None),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    example = snippet.split('tokenizer("')[1].split('"')[0]
    logits = _onnx_logits(trained / "onnx" / onnx_files.INT8_FILE, trained, [example])
    labels = AutoModelForSequenceClassification.from_pretrained(trained).config.id2label
    assert result.stdout.strip().splitlines()[-1] == labels[int(logits.argmax())]


def test_no_onnx_publishes_weights_and_card_only(hub: LocalHub, trained: Path, tmp_path: Path) -> None:
    run = shutil.copytree(trained, tmp_path / "run")
    result = _push(hub, tmp_path / "home", run, "--repo_id", "alice/imdb-no-onnx", "--no_onnx")
    assert result.returncode == 0, result.stderr[-3000:]
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    files = set(api.list_repo_files("alice/imdb-no-onnx"))
    assert "model.safetensors" in files and not files & ONNX_FILES
    card = (run / "README.md").read_text()
    assert "@huggingface/transformers" not in card and "onnxruntime" not in card
    assert not (run / "onnx").exists() and not (run / onnx_files.AGREEMENT_FILE).exists()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("truncated weights", "could not be exported to ONNX"),
        ("no test predictions", "has no test_predictions.csv, whose test reviews check the ONNX files"),
    ],
)
def test_run_whose_onnx_cannot_be_built_or_checked_is_one_sentence_and_nothing_published(
    hub: LocalHub, trained: Path, tmp_path: Path, case: str, expected: str
) -> None:
    run = shutil.copytree(trained, tmp_path / "run")
    if case == "truncated weights":  # an interrupted copy
        weights = run / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        (run / "test_predictions.csv").unlink()
    result = _push(hub, tmp_path / "home", run, "--repo_id", "alice/imdb-broken")
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0] and "--no_onnx" in lines[0]
    assert not HfApi(endpoint=hub.endpoint, token=hub.token).repo_exists("alice/imdb-broken")
    assert not (run / "onnx").exists()


def _tamper_logits(path: Path, keep: list[int]) -> None:
    """Rewrite the float graph: its logits become columns `keep` of the real ones (swapped, or one lost)."""
    model = onnx.load(str(path))
    graph = model.graph
    output = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{name}/real" if name == output else name for name in node.output]
    graph.initializer.append(onnx.numpy_helper.from_array(np.array(keep, dtype=np.int64), "tamper/keep"))
    graph.node.append(onnx.helper.make_node("Gather", [f"{output}/real", "tamper/keep"], [output], axis=1))
    del graph.output[0].type.tensor_type.shape.dim[:]
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        ([1, 0], "disagrees with the model"),
        ([0], "gives 1 logits per review where config.json names 2 labels"),
    ],
)
def test_onnx_file_that_disagrees_with_the_model_is_not_published(
    local_hub: LocalHub,
    trained: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    keep: list[int],
    expected: str,
) -> None:
    run = shutil.copytree(trained, tmp_path / "run")
    real = onnx_files._space_builder()

    class Tampered:
        @staticmethod
        def build_published_onnx(model_dir: Path, out_dir: Path, calibration_texts=None) -> dict[str, Path]:
            files = real.build_published_onnx(model_dir, out_dir, calibration_texts)
            _tamper_logits(Path(files["model"]), keep)
            return files

    monkeypatch.setattr(onnx_files, "_space_builder", lambda: Tampered)
    with pytest.raises(UserError, match=expected) as raised:
        publish(run, "alice/imdb-tampered", token=local_hub.token)
    assert "nothing was published" in str(raised.value)
    assert not HfApi(endpoint=local_hub.endpoint, token=local_hub.token).repo_exists("alice/imdb-tampered")
    assert not (run / "onnx").exists() and not (run / onnx_files.AGREEMENT_FILE).exists()


# Any label set (issue #28): a 3-class model and a 1-10 rating model, published by `model_card push`.

TASK_REPOS = {"3-class": "alice/three-way-onnx", "rating": "alice/rating-onnx"}
TASK_LABELS = {"3-class": THREE_CLASSES, "rating": None}


@pytest.fixture(scope="module")
def task_runs(hub: LocalHub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished 3-class run and a rating run (tests/task_runs.py), each published with its ONNX files."""
    runs = {}
    for kind, labels in TASK_LABELS.items():
        run = build_task_run(tmp_path_factory.mktemp(f"{kind}-run") / "run", labels)
        result = _push(hub, tmp_path_factory.mktemp("home"), run, "--repo_id", TASK_REPOS[kind])
        assert result.returncode == 0, result.stderr[-3000:]
        runs[kind] = run
    return runs


@pytest.mark.parametrize("kind", list(TASK_REPOS))
def test_three_class_and_rating_models_publish_onnx_files_that_are_the_model(
    hub: LocalHub, task_runs: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    run, api = task_runs[kind], HfApi(endpoint=hub.endpoint, token=hub.token)
    assert ONNX_FILES <= set(api.list_repo_files(TASK_REPOS[kind]))
    texts = pd.read_csv(run / "test_predictions.csv")["text"].tolist()
    repo = TASK_REPOS[kind]
    paths = {name: Path(api.hf_hub_download(repo, name, cache_dir=tmp_path)) for name in ONNX_FILES}
    float_out = _onnx_logits(paths["onnx/model.onnx"], run, texts)
    int8_out = _onnx_logits(paths["onnx/model_quantized.onnx"], run, texts)
    expected = _torch_logits(run, texts)
    # One output per class (3), or the rating itself (1): the float graph gives torch's values.
    assert float_out.shape == expected.shape == (len(texts), 3 if kind == "3-class" else 1)
    tolerance = onnx_files.LOGIT_TOLERANCE
    np.testing.assert_allclose(float_out, expected, atol=tolerance, rtol=tolerance)
    agreement = json.loads((run / onnx_files.AGREEMENT_FILE).read_text())
    assert agreement["reviews"] == agreement["test_reviews"] == len(texts)
    if kind == "3-class":
        assert len(set(expected.argmax(-1))) == 3  # every class is predicted somewhere: a real 3-way check
        same = float_out.argmax(-1) == int8_out.argmax(-1)
        assert agreement["label_agreement"] == pytest.approx(same.mean())
        probabilities = {name: torch.softmax(torch.tensor(out), -1).numpy() for name, out in
                         (("float", float_out), ("int8", int8_out))}  # fmt: skip
        difference = np.abs(probabilities["int8"] - probabilities["float"]).max(-1)
        assert agreement["max_abs_probability_difference"] == pytest.approx(difference.max(), abs=1e-6)
        return
    # A rating: raw values compared, never a softmax (which would make every value 1.0) or a label.
    assert "label_agreement" not in agreement and agreement["task"] == "regression"
    assert expected.std() > 1.0  # ratings that differ from review to review, on the 1-10 scale
    low, high = json.loads((run / "config.json").read_text())["rating_range"]
    assert agreement["rating_range"] == [low, high]
    assert agreement["tolerance"] == pytest.approx(onnx_files.RATING_TOLERANCE_SHARE * (high - low))
    difference = np.abs(int8_out - float_out)[:, 0]
    assert 0 < agreement["max_abs_rating_difference"] == pytest.approx(difference.max(), abs=1e-5)
    assert agreement["mean_abs_rating_difference"] == pytest.approx(difference.mean(), abs=1e-5)
    assert agreement["within_tolerance"] == pytest.approx((difference <= agreement["tolerance"]).mean())
    assert agreement["float_max_rating_difference"] <= onnx_files.LOGIT_TOLERANCE


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (THREE_CLASSES, "The int8 ONNX file gives float32's label on only"),
        (None, "The int8 ONNX file's rating is within 0.45 of float32's on only"),
    ],
    ids=["3-class", "rating"],
)
def test_int8_file_that_is_not_the_same_model_is_refused(
    local_hub: LocalHub, tmp_path: Path, labels: tuple[str, ...] | None, expected: str
) -> None:
    """A random model this wide loses its labels (or its ratings, by more than 5% of the scale) to int8."""
    run = build_task_run(tmp_path / "run", labels, seed=2, initializer_range=0.5)
    with pytest.raises(UserError, match=expected) as raised:
        publish(run, "alice/int8-refused", token=local_hub.token)
    assert "nothing was published" in str(raised.value) and "--no_onnx" in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1
    assert not HfApi(endpoint=local_hub.endpoint, token=local_hub.token).repo_exists("alice/int8-refused")
    assert not (run / "onnx").exists() and not (run / onnx_files.AGREEMENT_FILE).exists()


def _tamper_output(path: Path, op_type: str, value: float) -> None:
    """Rewrite the float graph: its output becomes the real one `op_type` (Mul, Add) a constant."""
    model = onnx.load(str(path))
    graph = model.graph
    output = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{name}/real" if name == output else name for name in node.output]
    graph.initializer.append(onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), "tamper/value"))
    graph.node.append(onnx.helper.make_node(op_type, [f"{output}/real", "tamper/value"], [output]))
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("kind", "op_type", "value", "expected"),
    [
        # Same labels (a positive scale keeps the argmax), other probabilities: not the model.
        ("3-class", "Mul", 1.5, r"disagrees with the model on \d+ test reviews \(logits .*labels equal"),
        # A rating a quarter of a star off.
        (
            "rating",
            "Add",
            0.25,
            r"disagrees with the rating model on \d+ test reviews \(ratings differ by up to 0\.25",
        ),
    ],
)
def test_float_file_that_gives_other_values_than_the_model_is_refused(
    local_hub: LocalHub,
    task_runs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    op_type: str,
    value: float,
    expected: str,
) -> None:
    run = shutil.copytree(task_runs[kind], tmp_path / "run")
    real = onnx_files._space_builder()

    class Tampered:
        @staticmethod
        def build_published_onnx(model_dir: Path, out_dir: Path, calibration_texts=None) -> dict[str, Path]:
            files = real.build_published_onnx(model_dir, out_dir, calibration_texts)
            _tamper_output(Path(files["model"]), op_type, value)
            return files

    monkeypatch.setattr(onnx_files, "_space_builder", lambda: Tampered)
    with pytest.raises(UserError, match=expected) as raised:
        publish(run, "alice/task-tampered", token=local_hub.token)
    assert "nothing was published" in str(raised.value)
    assert not HfApi(endpoint=local_hub.endpoint, token=local_hub.token).repo_exists("alice/task-tampered")
    assert not (run / "onnx").exists()


@pytest.mark.parametrize("bounds", [None, [10.0, 1.0], "1-10"])
def test_rating_model_without_a_rating_range_is_one_sentence(
    local_hub: LocalHub, task_runs: dict[str, Path], tmp_path: Path, bounds: object
) -> None:
    run = shutil.copytree(task_runs["rating"], tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config.pop("rating_range")
    if bounds is not None:
        config["rating_range"] = bounds
    (run / "config.json").write_text(json.dumps(config))
    result = _push(local_hub, tmp_path / "home", run, "--repo_id", "alice/rating-no-range")
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "has no rating_range [min, max]" in lines[0] and "--no_onnx" in lines[0]
    assert not HfApi(endpoint=local_hub.endpoint, token=local_hub.token).repo_exists("alice/rating-no-range")


def test_rating_sample_is_stratified_by_whole_ratings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ratings that are not whole numbers (an average of votes) are sampled by the nearest whole rating,
    in the test set's proportions; labels that cannot be stratified give a plain sample, never a traceback."""
    monkeypatch.setattr(onnx_files, "AGREEMENT_REVIEWS", 100)
    ratings = np.repeat([1.2, 2.9, 3.1, 8.4, 9.6], [100, 60, 40, 150, 50])  # nearest: 1, 3, 3, 8, 10
    table = pd.DataFrame({"text": [f"review {i}" for i in range(len(ratings))], "label": ratings})
    table.to_csv(tmp_path / onnx_files.PREDICTIONS_FILE, index=False)
    texts, total = onnx_files.sample_reviews(tmp_path, rated=True)
    assert total == 400 and len(texts) == 100
    picked = table.set_index("text").loc[texts, "label"].round()
    shares = table["label"].round().value_counts(normalize=True)
    assert all(abs(picked.value_counts()[value] - 100 * share) <= 1 for value, share in shares.items())
    table.loc[0, "label"] = 5.0  # a rating of its own: no stratification possible
    table.to_csv(tmp_path / onnx_files.PREDICTIONS_FILE, index=False)
    assert len(onnx_files.sample_reviews(tmp_path, rated=True)[0]) == 100
