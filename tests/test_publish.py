"""`python -m model_card push` against the local Hub, through the real huggingface_hub and transformers code.

A real tiny LoRA run is trained once (merged model at the root, adapter in adapter/) and pushed by the
CLI in a subprocess; what was published is then loaded in a fresh process with an empty cache and no
token, so it can only have come from the server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, free_port, tiny_args, train_tiny
from huggingface_hub import HfApi, ModelCard
from local_hub import LocalHub
from test_model_card import assert_widget_is_the_models

from model_card.card import ONNX_TAGS, SNIPPET_TEXT, fmt

REPO_ID = "alice/imdb-tiny"
BASE_REPO = "alice/tiny-base"  # the tiny base model, published to the local Hub where a test needs it
PUBLISHED = {
    ".gitattributes",
    "README.md",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "results.json",
    "confusion_matrix.png",
    "training_curves.png",
    "length_histogram.png",
    "reliability_diagram.png",
    "adapter/adapter_config.json",
    "adapter/adapter_model.safetensors",
    "onnx/model.onnx",
    "onnx/model_quantized.onnx",
}
LOAD = """
import json, sys
from huggingface_hub import ModelCard
from transformers import pipeline

repo = sys.argv[1]
classifier = pipeline("text-classification", model=repo)
card = ModelCard.load(repo)
print(json.dumps({
    "prediction": classifier("A wonderful, moving film.", truncation=True, max_length=64),
    "eval_results": {r.metric_type: r.metric_value for r in card.data.eval_results},
    "text": card.text,
}))
"""


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA run that names its base by a Hub id and scores the test split with windows too, in float32
    (on a CPU with bf16 units `auto` would evaluate under bf16 autocast, and the card's float32 snippets could
    then differ on reviews scored near 0.5, as the card says)."""
    return train_tiny(
        tiny_model_dir,
        tmp_path_factory.mktemp("lora") / "run",
        "--method", "lora", "--hub_base_model", BASE_REPO, "--eval_windows", "--window_stride", "16",
        "--precision", "fp32",
    )  # fmt: skip


def push(
    hub: LocalHub,
    home: Path,
    run_dir: Path,
    *args: str,
    token: str | None = "alice",
    endpoint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m model_card push` in a fresh process; `token` "alice" means alice's real token."""
    env = hub.client_env(home, hub.token if token == "alice" else token)
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    result = subprocess.run(
        [sys.executable, "-m", "model_card", "push", str(run_dir), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for secret in (hub.token, hub.other_token):
        assert secret not in result.stdout + result.stderr
    return result


def commit_of(result: subprocess.CompletedProcess[str], hub: LocalHub, repo_id: str) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(rf"{re.escape(hub.endpoint)}/{repo_id}/commit/([0-9a-f]{{40}})", result.stdout)
    assert match, result.stdout
    return match.group(1)


def assert_one_sentence(
    result: subprocess.CompletedProcess[str], expected: str, uploading: bool = False
) -> None:
    """Exit 2 with one `error:` line; only an upload that had started may also show its progress bars."""
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert uploading or len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_pushed_lora_run_loads_in_a_fresh_process(
    local_hub: LocalHub, lora_run: Path, tmp_path: Path
) -> None:
    oid = commit_of(push(local_hub, tmp_path / "push", lora_run, "--repo_id", REPO_ID), local_hub, REPO_ID)
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    # One commit holds everything: the merged model at the root, the adapter in adapter/, card and figures.
    assert api.model_info(REPO_ID).sha == oid
    assert set(api.list_repo_files(REPO_ID, revision=oid)) == PUBLISHED

    loaded = subprocess.run(
        [sys.executable, "-c", LOAD, REPO_ID],
        env=local_hub.client_env(tmp_path / "load", None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    out = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert out["prediction"][0]["label"] in {"NEGATIVE", "POSITIVE"}
    test = json.loads((lora_run / "results.json").read_text())["metrics"]["test"]
    assert out["eval_results"] == pytest.approx({k: test[k] for k in out["eval_results"]})
    assert {"accuracy", "f1", "precision", "recall"} <= set(out["eval_results"])
    assert f'model="{REPO_ID}"' in out["text"]
    # No Space was given, so the card names none: no link, no gradio_client snippet to fail.
    assert "huggingface.co/spaces" not in out["text"] and "gradio_client" not in out["text"]
    assert "### LoRA" in out["text"] and 'subfolder="adapter"' in out["text"]
    assert "| > 64 (in windows) |" in out["text"]  # the run scored long reviews with --eval_windows
    for path in lora_run.rglob("*"):
        assert not path.is_file() or local_hub.token.encode() not in path.read_bytes(), path
    # The adapter names its base as a user knows it (--hub_base_model), not the folder the run loaded.
    adapter = json.loads(
        Path(api.hf_hub_download(REPO_ID, "adapter/adapter_config.json", cache_dir=tmp_path / "c")).read_text()
    )
    assert adapter["base_model_name_or_path"] == BASE_REPO


def published_card(api: HfApi, repo_id: str, cache: Path) -> ModelCard:
    return ModelCard.load(api.hf_hub_download(repo_id, "README.md", cache_dir=cache))


def test_published_card_shows_the_widget_and_onnx_tags_only_with_onnx_files(
    local_hub: LocalHub, lora_run: Path, tmp_path: Path
) -> None:
    """The card as the Hub reads it: the Space's examples scored by the published (merged) model, and the
    transformers.js / ONNX tags exactly when onnx/ is uploaded (not with --no_onnx)."""
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    commit_of(push(local_hub, tmp_path / "a", lora_run, "--repo_id", REPO_ID), local_hub, REPO_ID)
    with_onnx = published_card(api, REPO_ID, tmp_path / "c1")
    assert {"onnx/model.onnx", "onnx/model_quantized.onnx"} <= set(api.list_repo_files(REPO_ID))
    assert set(ONNX_TAGS) <= set(with_onnx.data.tags) and with_onnx.data.library_name == "transformers"
    assert_widget_is_the_models(with_onnx.data, lora_run)

    run = tmp_path / "run"  # a copy: --no_onnx deletes the run's ONNX files, which other tests publish
    shutil.copytree(lora_run, run)
    commit_of(push(local_hub, tmp_path / "b", run, "--repo_id", REPO_ID, "--no_onnx"), local_hub, REPO_ID)
    without = published_card(api, REPO_ID, tmp_path / "c2")
    assert not any(f.startswith("onnx/") for f in api.list_repo_files(REPO_ID))
    assert not set(ONNX_TAGS) & set(without.data.tags) and without.data.library_name == "transformers"
    assert without.data.tags == [t for t in with_onnx.data.tags if t not in ONNX_TAGS]
    assert_widget_is_the_models(without.data, lora_run)


def _prob_positive(result: dict) -> float:
    return result["score"] if result["label"] == "POSITIVE" else 1 - result["score"]


def _assert_reproduced(figure: str, labels: pd.Series, predicted: list[str], borderline: int) -> None:
    """The snippet's accuracy is the card's figure, up to the reviews scored within the precision's reach of 0.5."""
    correct = int((labels == pd.Series(predicted, index=labels.index)).sum())
    card_correct = round(float(figure) * len(labels))
    assert abs(correct - card_correct) <= borderline, (figure, correct, len(labels), borderline)
    if borderline == 0:
        assert fmt(correct / len(labels)) == figure


def test_card_snippets_reproduce_its_figures_and_the_adapter_the_merged_model(
    local_hub: LocalHub, lora_run: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    api.create_repo(BASE_REPO)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id=BASE_REPO)
    commit_of(push(local_hub, tmp_path / "push", lora_run, "--repo_id", REPO_ID), local_hub, REPO_ID)
    card_path = api.hf_hub_download(REPO_ID, "README.md", cache_dir=tmp_path / "c")
    predictions = pd.read_csv(lora_run / "test_predictions.csv")
    ran = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "card_snippets.py"), card_path,
         str(lora_run / "test_predictions.csv"), SNIPPET_TEXT, REPO_ID],
        env=local_hub.client_env(tmp_path / "snippets", None), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    assert set(out) == {"pipeline", "windows", "adapter", "merged"}

    results = json.loads((lora_run / "results.json").read_text())
    # The run scored in float32 as the snippets do; only batching and padding differ.
    assert results["hyperparameters"]["precision"] == "fp32"
    tolerance = 1e-5
    text = " ".join(Path(card_path).read_text().split())
    headline = re.search(r"The headline figure \(accuracy \*\*([0-9.]+)\*\*\)", text).group(1)
    assert headline == fmt(results["metrics"]["test"]["accuracy"])
    windowed = [_prob_positive(r) for r in out["windows"]]
    assert windowed == pytest.approx(predictions["prob_positive"].tolist(), abs=tolerance)
    borderline = int((abs(predictions["prob_positive"] - 0.5) < tolerance).sum())
    assert borderline < len(predictions) // 4  # the check below says something only if few reviews are borderline
    _assert_reproduced(headline, predictions["label"], [r["label"] for r in out["windows"]], borderline)

    truncated = re.search(r"reproduces the \*\*truncated\*\* row of the table \(accuracy ([0-9.]+)\)", text)
    assert truncated.group(1) == fmt(results["metrics"]["test_truncated"]["accuracy"])
    cut = [r[0] for r in out["pipeline"]]
    borderline = sum(abs(_prob_positive(r) - 0.5) < tolerance for r in cut)
    _assert_reproduced(truncated.group(1), predictions["label"], [r["label"] for r in cut], borderline)

    # peft on the base from the Hub, with the published adapter: the merged model's probabilities.
    assert len(out["adapter"]) == len(out["merged"]) == len(predictions)
    for adapter, merged in zip(out["adapter"], out["merged"]):
        assert adapter[0] == pytest.approx(merged[0], abs=1e-5)


def test_training_command_publishes_over_a_lora_repo_and_leaves_no_stale_file(
    local_hub: LocalHub, lora_run: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """--push_to_hub with --hub_space_id; the repo held a LoRA run, an old figure, an old ONNX export and a
    file of its owner: one commit replaces the run, deletes what this full run lacks and keeps the owner's file."""
    repo = "alice/imdb-full"
    before = commit_of(push(local_hub, tmp_path / "lora", lora_run, "--repo_id", repo), local_hub, repo)
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    stale = {"old_figure.png": b"\x89PNG old", "onnx/model_fp16.onnx": b"old export"}
    for path, content in {**stale, "NOTES.md": b"the owner's own notes"}.items():
        api.upload_file(path_or_fileobj=content, path_in_repo=path, repo_id=repo)
    commits = len(local_hub.commit_titles(repo))

    run = train_tiny(
        tiny_model_dir,
        tmp_path / "run",
        "--push_to_hub", repo, "--hub_space_id", "alice/imdb-space",
        "--hub_base_model", "distilbert/distilbert-base-uncased",
        env=local_hub.client_env(tmp_path / "home", local_hub.token),
    )  # fmt: skip
    assert len(local_hub.commit_titles(repo)) == commits + 1  # one commit uploads and deletes
    files = set(api.list_repo_files(repo))
    expected = PUBLISHED - {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"}
    assert expected | {"NOTES.md"} <= files
    assert not any(f.startswith("adapter/") for f in files) and not files & set(stale)
    assert "adapter/adapter_config.json" in api.list_repo_files(repo, revision=before)  # history keeps it
    card = (run / "README.md").read_text()
    assert 'model="alice/imdb-full"' in card and "full fine-tuning" in card
    assert 'Client("alice/imdb-space")' in card and "(https://huggingface.co/spaces/alice/imdb-space)" in card
    # The run trained from a local folder; the card names the Hub base model it was given.
    published = ModelCard.load(api.hf_hub_download(repo, "README.md", cache_dir=tmp_path / "c"))
    assert published.data.base_model == "distilbert/distilbert-base-uncased"


def test_second_push_is_a_second_commit_and_the_first_stays_reachable(
    local_hub: LocalHub, lora_run: Path, tmp_path: Path
) -> None:
    first = commit_of(push(local_hub, tmp_path / "a", lora_run, "--repo_id", REPO_ID), local_hub, REPO_ID)
    second = commit_of(
        push(local_hub, tmp_path / "b", lora_run, "--repo_id", REPO_ID, "--space_id", "alice/new-demo"),
        local_hub,
        REPO_ID,
    )
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    assert first != second and api.model_info(REPO_ID).sha == second
    assert api.model_info(REPO_ID, revision=first).sha == first

    def readme(revision: str) -> str:
        return Path(
            api.hf_hub_download(REPO_ID, "README.md", revision=revision, cache_dir=tmp_path / "c")
        ).read_text()

    assert "gradio_client" not in readme(first)
    assert 'Client("alice/new-demo")' in readme(second)


def _closed_port() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("case", "repo_id", "expected"),
    [
        ("wrong token", REPO_ID, "token was rejected"),
        ("no token", REPO_ID, "No Hugging Face token found"),
        ("other namespace", "bob/imdb-tiny", "may not write to bob/imdb-tiny"),
        ("hub down", REPO_ID, "Cannot reach the Hugging Face Hub"),
    ],
)
def test_refused_push_says_why_in_one_sentence_and_publishes_nothing(
    local_hub: LocalHub, lora_run: Path, tmp_path: Path, case: str, repo_id: str, expected: str
) -> None:
    token = {"wrong token": "hf_wrong", "no token": None}.get(case, "alice")
    endpoint = _closed_port() if case == "hub down" else None
    result = push(
        local_hub, tmp_path / "home", lora_run, "--repo_id", repo_id, token=token, endpoint=endpoint
    )
    assert_one_sentence(result, expected)
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    assert not api.repo_exists(REPO_ID)
    assert not HfApi(endpoint=local_hub.endpoint, token=local_hub.other_token).repo_exists("bob/imdb-tiny")


def test_interrupted_upload_publishes_nothing_and_a_retry_works(
    local_hub: LocalHub, lora_run: Path, tmp_path: Path
) -> None:
    local_hub.fail_next_lfs_upload()
    assert_one_sentence(
        push(local_hub, tmp_path / "a", lora_run, "--repo_id", REPO_ID), "refused the upload", uploading=True
    )
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    # The local Hub cannot delete repos: the empty repo the push created may remain, with no file of the run.
    assert not api.repo_exists(REPO_ID) or api.list_repo_files(REPO_ID) == [".gitattributes"]
    oid = commit_of(push(local_hub, tmp_path / "b", lora_run, "--repo_id", REPO_ID), local_hub, REPO_ID)
    assert set(api.list_repo_files(REPO_ID, revision=oid)) == PUBLISHED


def test_push_of_an_unfinished_run_is_refused(local_hub: LocalHub, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result = push(local_hub, tmp_path / "home", tmp_path / "run", "--repo_id", REPO_ID)
    assert_one_sentence(result, "results.json is missing")
    assert not HfApi(endpoint=local_hub.endpoint, token=local_hub.token).repo_exists(REPO_ID)


def test_predict_windows_reproduces_the_windowed_scores(lora_run: Path, tmp_path: Path) -> None:
    """`python -m train.predict --windows`, with the card's window settings, gives the run's windowed scores."""
    predictions = pd.read_csv(lora_run / "test_predictions.csv")
    results = json.loads((lora_run / "results.json").read_text())
    length, stride = results["model"]["eval_window_length"], results["config"]["model"]["window_stride"]

    def predict(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "train.predict", "--model", str(lora_run), "--file",
             str(lora_run / "test_predictions.csv"), "--json", *flags],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    ran = predict("--windows", "--max_length", str(length), "--window_stride", str(stride))
    assert ran.returncode == 0, ran.stderr[-3000:]
    rows = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [_prob_positive(r) for r in rows] == pytest.approx(predictions["prob_positive"].tolist(), abs=1e-5)
    accuracy = float((pd.Series([r["label"] for r in rows]) == predictions["label"]).mean())
    assert fmt(accuracy) == fmt(results["metrics"]["test"]["accuracy"])
    # Without --windows a long review is cut, as pipeline does: some long review scores differently.
    cut = [json.loads(line) for line in predict("--max_length", str(length)).stdout.splitlines()]
    long = predictions["n_tokens"] > length
    assert long.any() and [_prob_positive(r) for r in cut] != pytest.approx(predictions["prob_positive"].tolist(), abs=1e-5)

    refused = predict("--windows", "--max_length", str(length), "--window_stride", str(length // 2))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: --window_stride") and refused.stderr.count("\n") == 1


def test_refused_push_after_training_keeps_the_run_and_gives_the_whole_push_command(
    local_hub: LocalHub, tiny_model_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    flags = ("--push_to_hub", REPO_ID, "--hub_space_id", "alice/imdb-space", "--hub_base_model", BASE_REPO)
    result = subprocess.run(
        [sys.executable, "-m", "train", *tiny_args(tiny_model_dir, run, *flags)],
        cwd=ROOT, env=local_hub.client_env(tmp_path / "home", "hf_wrong"), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: The Hugging Face token was rejected") and "Traceback" not in result.stderr
    assert last.endswith(
        f"python -m model_card push {run} --repo_id {REPO_ID} --space_id alice/imdb-space --base_model {BASE_REPO}"
    )
    assert (run / "results.json").is_file()
    assert not HfApi(endpoint=local_hub.endpoint, token=local_hub.token).repo_exists(REPO_ID)
