"""The local Hub (tests/local_hub.py) driven by the real clients: huggingface_hub and transformers.

Downloads run in subprocesses with an empty HF_HOME, so what they get can only have come from the server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile
from local_hub import LocalHub, running_hub

CARD = "---\nlicense: mit\npipeline_tag: text-classification\nlibrary_name: transformers\n---\n# Tiny\n"


def run_client(hub: LocalHub, home: Path, code: str, *args: str) -> dict:
    """Run `code` in a new Python with a fresh cache and alice's token; return the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=hub.client_env(home, hub.token),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    return error.value.response.status_code


@pytest.fixture
def api(local_hub: LocalHub) -> HfApi:
    return HfApi(endpoint=local_hub.endpoint, token=local_hub.token)


@pytest.fixture
def bob(local_hub: LocalHub) -> HfApi:
    return HfApi(endpoint=local_hub.endpoint, token=local_hub.other_token)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small model folder: a text file, a binary (LFS by content) and a large text file (LFS by size)."""
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"version": 1}')
    (folder / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "big.txt").write_text("x" * 200_000)
    return folder


def test_whoami_checks_the_token(local_hub: LocalHub, api: HfApi, bob: HfApi) -> None:
    assert api.whoami()["name"] == local_hub.user
    assert bob.whoami()["name"] == local_hub.other_user
    with pytest.raises(HfHubHTTPError) as error:
        HfApi(endpoint=local_hub.endpoint, token="hf_wrong").whoami()
    assert status_of(error) == 401


def test_create_repo_exist_ok_and_private(local_hub: LocalHub, api: HfApi, bob: HfApi) -> None:
    url = api.create_repo("alice/secret", private=True)
    assert url.repo_id == "alice/secret" and url.endpoint == local_hub.endpoint
    with pytest.raises(HfHubHTTPError) as error:
        api.create_repo("alice/secret")
    assert status_of(error) == 409
    assert api.create_repo("alice/secret", exist_ok=True).repo_id == "alice/secret"

    assert api.model_info("alice/secret").private
    assert api.list_repo_files("alice/secret") == [".gitattributes"]
    assert not bob.repo_exists("alice/secret")
    assert not HfApi(endpoint=local_hub.endpoint, token=False).repo_exists("alice/secret")


def test_upload_commits_and_downloads_in_a_fresh_process(
    local_hub: LocalHub, api: HfApi, folder: Path, tmp_path: Path
) -> None:
    local_hub.lfs_threshold = 100_000
    api.create_repo("alice/model")
    first = api.upload_folder(repo_id="alice/model", folder_path=folder, commit_message="first").oid

    tree = api.list_repo_tree("alice/model", recursive=True)
    lfs = {entry.path: entry.lfs is not None for entry in tree if isinstance(entry, RepoFile)}
    assert lfs == {".gitattributes": False, "config.json": False, "big.txt": True, "sub/weights.bin": True}
    paths = api.get_paths_info("alice/model", ["sub", "big.txt", "missing"])
    assert [p.path for p in paths] == ["sub", "big.txt"]

    second = api.create_commit(
        "alice/model",
        [CommitOperationAdd("config.json", b'{"version": 2}'), CommitOperationDelete("big.txt")],
        commit_message="second",
        parent_commit=first,
    ).oid
    assert second != first and api.model_info("alice/model").sha == second
    with pytest.raises(HfHubHTTPError) as error:  # `first` is no longer the head
        api.create_commit(
            "alice/model", [CommitOperationAdd("x", b"")], commit_message="x", parent_commit=first
        )
    assert status_of(error) == 412

    got = run_client(
        local_hub,
        tmp_path / "home",
        """if True:
        import json, sys
        from huggingface_hub import hf_hub_download, snapshot_download
        first = sys.argv[1]
        print(json.dumps({
            "config": hf_hub_download("alice/model", "config.json"),
            "old_config": hf_hub_download("alice/model", "config.json", revision=first),
            "old_snapshot": snapshot_download("alice/model", revision=first),
            "snapshot": snapshot_download("alice/model"),
        }))
    """,
        first,
    )
    assert Path(got["config"]).read_text() == '{"version": 2}'
    assert Path(got["old_config"]).read_text() == '{"version": 1}'
    old, new = Path(got["old_snapshot"]), Path(got["snapshot"])
    assert old.name == first and new.name == second
    for name in ("config.json", "big.txt", "sub/weights.bin"):
        assert (old / name).read_bytes() == (folder / name).read_bytes()
    assert not (new / "big.txt").exists()
    assert (new / "sub" / "weights.bin").read_bytes() == (folder / "sub" / "weights.bin").read_bytes()


def test_refused_writes_publish_nothing(local_hub: LocalHub, api: HfApi, bob: HfApi, folder: Path) -> None:
    api.create_repo("alice/model")
    head = api.model_info("alice/model").sha

    intruder = HfApi(endpoint=local_hub.endpoint, token="hf_wrong")
    with pytest.raises(HfHubHTTPError) as error:
        intruder.create_commit("alice/model", [CommitOperationAdd("a", b"a")], commit_message="x")
    assert status_of(error) == 401
    with pytest.raises(HfHubHTTPError) as error:
        bob.upload_folder(repo_id="alice/model", folder_path=folder)
    assert status_of(error) == 403
    with pytest.raises(HfHubHTTPError) as error:
        api.create_repo("bob/model")
    assert status_of(error) == 403

    assert api.model_info("alice/model").sha == head
    assert api.list_repo_files("alice/model") == [".gitattributes"]
    assert not api.repo_exists("bob/model")


def test_interrupted_lfs_upload_publishes_nothing(local_hub: LocalHub, api: HfApi, folder: Path) -> None:
    api.create_repo("alice/model")
    head = api.model_info("alice/model").sha

    local_hub.fail_next_lfs_upload()
    with pytest.raises(RuntimeError, match="sub/weights.bin"):
        api.upload_folder(repo_id="alice/model", folder_path=folder)
    assert api.model_info("alice/model").sha == head
    assert api.list_repo_files("alice/model") == [".gitattributes"]

    api.upload_folder(repo_id="alice/model", folder_path=folder)  # the failure was one-off
    assert "sub/weights.bin" in api.list_repo_files("alice/model")


def test_space_repo_and_variables(api: HfApi, bob: HfApi, tmp_path: Path) -> None:
    api.create_repo("alice/demo", repo_type="space", space_sdk="gradio")
    api.upload_file(
        path_or_fileobj=b"import gradio\n", path_in_repo="app.py", repo_id="alice/demo", repo_type="space"
    )
    api.add_space_variable("alice/demo", "MODEL_REPO", "alice/model", description="model to serve")

    assert api.space_info("alice/demo").sdk == "gradio"
    variables = api.get_space_variables("alice/demo")
    assert variables["MODEL_REPO"].value == "alice/model"
    assert variables["MODEL_REPO"].description == "model to serve"
    with pytest.raises(HfHubHTTPError) as error:
        bob.add_space_variable("alice/demo", "K", "v")
    assert status_of(error) == 403
    assert api.delete_space_variable("alice/demo", "MODEL_REPO") == {}

    app = api.hf_hub_download("alice/demo", "app.py", repo_type="space", cache_dir=tmp_path / "cache")
    assert Path(app).read_text() == "import gradio\n"
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/demo")  # a Space is not a model


def test_tiny_model_loads_with_transformers_in_a_fresh_process(
    local_hub: LocalHub, api: HfApi, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (model_dir / "README.md").write_text(CARD)
    api.create_repo("alice/tiny-sentiment")
    api.upload_folder(repo_id="alice/tiny-sentiment", folder_path=model_dir)
    files = {entry.path: entry for entry in api.list_repo_tree("alice/tiny-sentiment")}
    assert files["model.safetensors"].lfs is not None

    got = run_client(
        local_hub,
        tmp_path / "home",
        """if True:
        import json
        from huggingface_hub import ModelCard
        from transformers import pipeline
        explicit = pipeline("text-classification", model="alice/tiny-sentiment")
        inferred = pipeline(model="alice/tiny-sentiment")  # task from the card's pipeline_tag
        print(json.dumps({
            "explicit": explicit("A wonderful film."),
            "inferred": inferred("A dull film."),
            "card_tag": ModelCard.load("alice/tiny-sentiment").data.pipeline_tag,
        }))
    """,
    )
    for prediction in got["explicit"] + got["inferred"]:
        assert prediction["label"] in {"NEGATIVE", "POSITIVE"} and 0 <= prediction["score"] <= 1
    assert got["card_tag"] == "text-classification"


def test_running_hub_serves_the_given_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the local_hub fixture does this
    with running_hub({"carol": "hf_carol", "dave": "hf_dave"}) as hub:
        assert (hub.user, hub.token) == ("carol", "hf_carol")
        assert (hub.other_user, hub.other_token) == ("dave", "hf_dave")
        assert HfApi(endpoint=hub.endpoint, token="hf_dave").create_repo("dave/x").repo_id == "dave/x"
