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
