"""The Space and the Hub, against the local Hub server: the app pulls its model from the Hub, and
`python -m model_card deploy-space` publishes the Space with its MODEL_ID variable. Client code runs in subprocesses
(huggingface_hub reads HF_ENDPOINT when it is imported).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT as PROJECT, train_tiny
from huggingface_hub import HfApi
from space_fixtures import launched

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "space"
MODEL_CARD = "---\nlibrary_name: transformers\npipeline_tag: text-classification\n---\n# tiny test model\n"


@pytest.fixture
def hub_model(local_hub, tiny_model_dir: Path, tmp_path: Path) -> str:
    """The tiny model published to the local hub as alice/tiny-sentiment."""
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    repo_id = f"{local_hub.user}/tiny-sentiment"
    api.create_repo(repo_id)
    (tmp_path / "card").mkdir()
    (tmp_path / "card" / "README.md").write_text(MODEL_CARD)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id=repo_id)
    api.upload_file(
        path_or_fileobj=str(tmp_path / "card" / "README.md"), path_in_repo="README.md", repo_id=repo_id
    )
    return repo_id


@pytest.fixture
def served(local_hub, hub_model: str, tmp_path: Path) -> Iterator[str]:
    """`python space/app.py` with MODEL_ID naming the model on the hub; yields its address."""
    env = local_hub.client_env(tmp_path / "hf_home", local_hub.token)
    with launched(SPACE / "app.py", {**env, "MODEL_ID": hub_model}, tmp_path / "app.log") as url:
        yield url


def test_app_serves_a_model_pulled_from_the_hub(served: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    result = client.predict("Pulled from the Hub and still charming.", api_name="/predict")
    assert result["label"] in {"NEGATIVE", "POSITIVE"} and sum(
        result["probabilities"].values()
    ) == pytest.approx(1)
    batch = client.predict(["Good.", "Bad."], "float", api_name="/predict_batch")
    assert [r["engine"] for r in batch] == ["float", "float"]
    path = tmp_path / "reviews.txt"
    path.write_text("One.\nTwo.\n")
    csv_path, summary = client.predict(handle_file(str(path)), api_name="/predict_file")
    assert summary["classified"] == 2 and Path(csv_path).read_text().count("\n") == 3
    # A repo without ONNX files: the int8 engine is built from the model, and nothing is said about it.
    assert "model_quantized.onnx" not in (tmp_path / "app.log").read_text()


def test_app_starts_from_the_published_int8_file(
    local_hub, hub_model: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A model repo that holds onnx/model_quantized.onnx: the Space downloads it and serves it as its
    int8 engine (fused for its CPU at load) instead of exporting and quantising the model."""
    from gradio_client import Client

    sys.path.insert(0, str(SPACE))
    import onnx_build

    onnx_build.build_published_onnx(tiny_model_dir, tmp_path / "onnx")
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    api.upload_folder(folder_path=str(tmp_path / "onnx"), path_in_repo="onnx", repo_id=hub_model)
    env = local_hub.client_env(tmp_path / "hf_home", local_hub.token)
    log = tmp_path / "app.log"
    with launched(SPACE / "app.py", {**env, "MODEL_ID": hub_model}, log) as url:
        result = Client(url, verbose=False).predict("Straight from the published file.", "int8", api_name="/predict")
    assert result["engine"] == "int8" and sum(result["probabilities"].values()) == pytest.approx(1)
    assert "int8 engine: the model repo's onnx/model_quantized.onnx, fused for this CPU at load." in log.read_text()


def run_deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "model_card", "deploy-space", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_deploy_uploads_the_space_and_sets_model_id(local_hub, hub_model: str, tmp_path: Path) -> None:
    env = local_hub.client_env(tmp_path / "hf_home", local_hub.token)
    space_id = f"{local_hub.user}/sentiment-space"
    proc = run_deploy(env, "--space_id", space_id, "--model_id", hub_model, "--private")
    assert proc.returncode == 0, proc.stderr
    assert local_hub.token not in proc.stdout + proc.stderr
    assert f"Deployed {space_id} serving {hub_model}" in proc.stdout

    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    info = api.space_info(space_id)
    assert info.sdk == "gradio" and info.private
    files = set(api.list_repo_files(space_id, repo_type="space"))
    # Every module of the app goes up (whatever its split into files), the local-only script and caches do not.
    modules = {p.name for p in SPACE.glob("*.py")} - {"screenshot.py"}
    assert modules | {"requirements.txt", "README.md", "screenshot.png"} <= files
    assert "screenshot.py" not in files and not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert api.get_space_variables(space_id)["MODEL_ID"].value == hub_model
    readme = Path(
        api.hf_hub_download(space_id, "README.md", repo_type="space", cache_dir=tmp_path / "c")
    ).read_text()
    assert f"models:\n  - {hub_model}\n" in readme and "sdk: gradio" in readme
    app_py = Path(api.hf_hub_download(space_id, "app.py", repo_type="space", cache_dir=tmp_path / "c"))
    assert app_py.read_bytes() == (SPACE / "app.py").read_bytes()

    # Deploying again updates the same Space.
    again = run_deploy(env, "--space_id", space_id, "--model_id", f"{local_hub.user}/other-model")
    assert again.returncode == 0 and "warning: model" in again.stdout
    assert api.get_space_variables(space_id)["MODEL_ID"].value == f"{local_hub.user}/other-model"


@pytest.mark.parametrize("who", ["wrong token", "other user's namespace", "no token"])
def test_deploy_refusals_are_one_sentence(local_hub, tmp_path: Path, who: str) -> None:
    token = {
        "wrong token": "hf_not_a_real_token",
        "other user's namespace": local_hub.other_token,
        "no token": None,
    }[who]
    env = local_hub.client_env(tmp_path / "hf_home", token)
    env.pop("HF_TOKEN", None) if token is None else None
    proc = run_deploy(env, "--space_id", f"{local_hub.user}/space", "--model_id", f"{local_hub.user}/model")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    expected = {
        "wrong token": "token was rejected",
        "other user's namespace": f"may not write to {local_hub.user}/space",
        "no token": "No Hugging Face token found",
    }[who]
    assert expected in proc.stderr
    for secret in (local_hub.token, local_hub.other_token, "hf_not_a_real_token"):
        assert secret not in proc.stdout + proc.stderr


def test_card_snippet_calls_the_space_published_beside_the_model(
    local_hub, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Model and Space published to the Hub as a user would; the Space started from the files the Hub holds;
    the card's gradio_client snippet run as written, its Space id pointed at where that Space runs."""
    run = train_tiny(tiny_model_dir, tmp_path / "run")
    env = local_hub.client_env(tmp_path / "hf_home", local_hub.token)
    model_id, space_id = f"{local_hub.user}/imdb-tiny", f"{local_hub.user}/imdb-tiny-space"
    pushed = subprocess.run(
        [sys.executable, "-m", "model_card", "push", str(run), "--repo_id", model_id, "--space_id", space_id,
         "--no_onnx"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    deployed = run_deploy(env, "--space_id", space_id, "--model_id", model_id)
    assert deployed.returncode == 0, deployed.stderr[-3000:]

    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    folder = Path(api.snapshot_download(space_id, repo_type="space", local_dir=tmp_path / "space"))
    variable = api.get_space_variables(space_id)["MODEL_ID"].value
    card = Path(api.hf_hub_download(model_id, "README.md", cache_dir=tmp_path / "c")).read_text()
    blocks = [part.split("```")[0] for part in card.split("```python\n")[1:]]
    snippet = next(block for block in blocks if "gradio_client" in block)
    assert f'Client("{space_id}")' in snippet
    with launched(folder / "app.py", {**env, "MODEL_ID": variable}, tmp_path / "app.log") as url:
        answer = subprocess.run(
            [sys.executable, "-c", snippet.replace(f'Client("{space_id}")', f'Client("{url}")')],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert re.search(r"'label': '(NEGATIVE|POSITIVE)'", answer.stdout), answer.stdout
