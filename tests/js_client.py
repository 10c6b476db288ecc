"""transformers.js run from Python: the pinned package installed once, tests/js/classify.mjs called on a repo,
a snippet run as written; and the fixtures `install` and `hub` (a module's own local Hub).

A pytest plugin (registered in conftest.py) shared by the tests that check what a published model gives in
transformers.js: test_transformers_js.py, and the label-set runs that go from training to every runtime
(test_label_sets_end_to_end.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from local_hub import LocalHub, running_hub

JS_DIR = ROOT / "tests" / "js"
CACHE = Path(
    os.environ.get("TRANSFORMERS_JS_CACHE", Path.home() / ".cache" / "imdb-sentiment" / "transformers-js")
)
# The Node version the pinned transformers.js needs (its image dependency, sharp, declares >= 20.9.0).
MIN_NODE = (20, 9)
REPO_ID = "alice/imdb-js"


def _node_version(node: str) -> tuple[int, ...]:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in out.strip().lstrip("v").split(".")[:2])


def install_transformers_js() -> Path:
    """Where tests/js's pinned dependencies are installed, once per lock file; skips where they cannot be."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip(
            "Node.js and npm are not installed (apt-get install nodejs npm), so transformers.js cannot run"
        )
    if _node_version(node) < MIN_NODE:
        pytest.skip(
            f"Node {_node_version(node)} is older than the {MIN_NODE} the pinned transformers.js needs"
        )
    files = ("package.json", "package-lock.json")
    key = hashlib.sha256(b"".join((JS_DIR / name).read_bytes() for name in files)).hexdigest()[:16]
    target = CACHE / key
    if (target / "node_modules" / "@huggingface" / "transformers" / "package.json").is_file():
        return target
    staging = CACHE / f".{key}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in files:
        shutil.copy(JS_DIR / name, staging / name)
    # --ignore-scripts: onnxruntime-node's install script only fetches CUDA libraries (from NuGet, off the
    # registry); its CPU binaries are in the npm package itself.
    result = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=staging,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()] or ["(no output)"]
        pytest.skip(f"npm could not install the pinned @huggingface/transformers (offline?): {errors[0]}")
    try:
        staging.rename(target)
    except OSError:  # another run installed the same lock file meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return target


def run_transformers_js(
    install: Path,
    hub: LocalHub,
    dtype: str,
    texts: list[str],
    cache: Path,
    repo: str = REPO_ID,
    output: str = "pipeline",
) -> dict:
    """tests/js/classify.mjs on `texts` with `repo` from the hub: {"predictions": [...]} (pipeline or logits)."""
    request = {
        "host": f"{hub.endpoint}/",
        "repo": repo,
        "dtype": dtype,
        "cache_dir": str(cache),
        "texts": texts,
        "output": output,
    }
    result = subprocess.run(
        ["node", str(JS_DIR / "classify.mjs"), str(install)],
        input=json.dumps(request),
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def run_node_module(install: Path, hub: LocalHub, code: str, cache: Path) -> subprocess.CompletedProcess:
    """`code` (an ES module, e.g. a card's snippet) run by node beside the installed package, after only the lines
    that point transformers.js at the local Hub; asserts it succeeded."""
    setup = (
        'import { env } from "@huggingface/transformers";\n'
        f'env.remoteHost = "{hub.endpoint}/";\n'
        "env.allowLocalModels = false;\n"
        f"env.cacheDir = {json.dumps(str(cache))};\n"
    )
    module = install / f"snippet-{os.getpid()}.mjs"
    module.write_text(setup + code)
    try:
        result = subprocess.run(["node", str(module)], capture_output=True, text=True, timeout=300, check=False)
    finally:
        module.unlink()
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def push(hub: LocalHub, run: Path, repo: str, home: Path) -> None:
    """`python -m model_card push run --repo_id repo` to the local Hub, as a user runs it; asserts it succeeded."""
    result = subprocess.run([sys.executable, "-m", "model_card", "push", str(run), "--repo_id", repo], cwd=ROOT,
                            check=False, env=hub.client_env(home, hub.token), capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def install() -> Path:
    """transformers.js, installed first: where it cannot be, the tests skip before training anything."""
    return install_transformers_js()


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    """A local Hub of the test module's own."""
    with running_hub() as served:
        yield served
