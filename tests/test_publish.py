"""`python -m model_card push` against the local Hub, through the real huggingface_hub and transformers code.

A real tiny LoRA run is trained once (merged model at the root, adapter in adapter/) and pushed by the
CLI in a subprocess; what was published is then loaded in a fresh process with an empty cache and no
token, so it can only have come from the server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, free_port, train_tiny
from huggingface_hub import HfApi, ModelCard
from local_hub import LocalHub

REPO_ID = "alice/imdb-tiny"
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
    return train_tiny(tiny_model_dir, tmp_path_factory.mktemp("lora") / "run", "--method", "lora")


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
    assert f'model="{REPO_ID}"' in out["text"] and f'Client("{REPO_ID}-demo")' in out["text"]
    assert "### LoRA" in out["text"] and 'subfolder="adapter"' in out["text"]
    assert "| > 64 (truncated) |" in out["text"]
    for path in lora_run.rglob("*"):
        assert not path.is_file() or local_hub.token.encode() not in path.read_bytes(), path


def test_training_command_publishes_with_push_to_hub(
    local_hub: LocalHub, tiny_model_dir: Path, tmp_path: Path
) -> None:
    run = train_tiny(
        tiny_model_dir,
        tmp_path / "run",
        "--push_to_hub",
        "alice/imdb-full",
        "--hub_base_model",
        "distilbert/distilbert-base-uncased",
        env=local_hub.client_env(tmp_path / "home", local_hub.token),
    )
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    expected = PUBLISHED - {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"}
    assert set(api.list_repo_files("alice/imdb-full")) == expected
    card = (run / "README.md").read_text()
    assert 'model="alice/imdb-full"' in card and "full fine-tuning" in card
    # The run trained from a local folder; the card names the Hub base model it was given.
    published = ModelCard.load(api.hf_hub_download("alice/imdb-full", "README.md", cache_dir=tmp_path / "c"))
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

    assert 'Client("alice/imdb-tiny-demo")' in readme(first)
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
