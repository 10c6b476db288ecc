"""The Space launched for the tests, shared by every Space test module (registered in conftest.py).

A pytest plugin rather than fixtures in one test module, so that no test module imports another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SPACE = Path(__file__).resolve().parent.parent / "space"
sys.path.insert(0, str(SPACE))  # space/ is deployed alone and imports its siblings by bare name

import app  # noqa: E402
import sentiment  # noqa: E402
import files  # noqa: E402
from settings import Settings  # noqa: E402
from conftest import free_port  # noqa: E402
from gradio_client import Client  # noqa: E402

# Small limits keep the bad-input files small; the messages are the same as with the defaults.
TEST_LIMITS = files.Limits(max_bytes=1024 * 1024, max_rows=50, max_chars=30_000)


@pytest.fixture(scope="session")
def space_model_dir(tiny_model_dir: Path) -> Path:
    """The shared tiny model (conftest.py), whose P(positive) differs clearly between reviews, so a test
    can tell one review's answer from another's."""
    return tiny_model_dir


@pytest.fixture(scope="session")
def tiny_model(space_model_dir: Path) -> sentiment.SentimentModel:
    return sentiment.SentimentModel(str(space_model_dir))


@pytest.fixture(scope="session")
def space_url(tiny_model: sentiment.SentimentModel) -> Iterator[str]:
    """The Space on the tiny model, launched in this process on a free localhost port."""
    settings = Settings(limits=TEST_LIMITS, port=free_port())
    demo = app.build_app(tiny_model, settings)
    demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_options(settings))  # as the Space launches
    port = settings.port
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def client(space_url: str) -> Client:
    return Client(space_url, verbose=False)


@contextmanager
def launched(app_py: Path, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`python app.py` on a free port, with `env` (MODEL_ID and the Hub); yields its address once it serves."""
    port = free_port()
    env = {**env, "PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    log = log_path.open("w+")
    proc = subprocess.Popen([sys.executable, str(app_py)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while url not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.5)
        yield url + "/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
