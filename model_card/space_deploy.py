"""Publish space/ as a Gradio Space that serves a model from the Hub.

    python -m model_card deploy-space --space_id USER/NAME --model_id USER/MODEL [--private]

Creates the Space (or updates it), uploads the app in one commit with the README's `models:`
pointed at MODEL_ID, and sets the Space variable MODEL_ID, which the app reads. It lives here, beside
the model publisher, because it is publishing code that is never part of the Space it uploads.
The token comes from HF_TOKEN or the cached login and is never printed; HF_ENDPOINT selects
another Hub. Every failure a user can fix is raised as UserError with one sentence.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from model_card.card import check_repo_id
from model_card.hub_errors import HUB_ERRORS, NO_TOKEN, explain, http_status, remove_created_repo
from model_card.space_modules import SPACE_DIR
from train.errors import UserError

# Local-only files: the screenshot script, caches, and anything a local run of the app leaves behind.
IGNORE = ("screenshot.py", "__pycache__", "*.pyc", ".*", "flagged", ".gradio")
MODELS_LINE = re.compile(r"^models:.*(\n[ \t]+-.*)*", re.MULTILINE)
MODEL_VARIABLE = "MODEL_ID"


def space_files(folder: Path = SPACE_DIR) -> list[Path]:
    """The files that make up the Space, relative to `folder`, in a stable order."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(fnmatch.fnmatch(part, p) for part in relative.parts for p in IGNORE):
            files.append(relative)
    return files


def readme_for(model_id: str, readme: str) -> str:
    """The Space README with its front matter's `models:` naming the model the Space serves."""
    front, sep, rest = readme.partition("\n---\n")
    if not front.startswith("---\n") or not sep:
        raise UserError("space/README.md has no YAML front matter between --- lines: restore its header.")
    line = f"models:\n  - {model_id}"
    front = MODELS_LINE.sub(line, front) if MODELS_LINE.search(front) else f"{front}\n{line}"
    return front + sep + rest


def space_operations(model_id: str, folder: Path = SPACE_DIR) -> list[CommitOperationAdd]:
    """One upload per Space file, the README rewritten to name `model_id`."""
    operations = []
    for relative in space_files(folder):
        content: bytes | str = str(folder / relative)
        if relative.as_posix() == "README.md":
            content = readme_for(model_id, (folder / relative).read_text(encoding="utf-8")).encode()
        operations.append(CommitOperationAdd(path_in_repo=relative.as_posix(), path_or_fileobj=content))
    return operations


def _warn_if_model_missing(api: HfApi, model_id: str) -> None:
    """A Space may be deployed before its model; say so, since it will not start until the model exists."""
    try:
        api.model_info(model_id)
    except HfHubHTTPError as err:
        if http_status(err) != 404:
            raise
        print(
            f"warning: model {model_id} was not found on the Hub; "
            "the Space will not start until it is published."
        )


def deploy(space_id: str, model_id: str, private: bool = False, token: str | None = None) -> str:
    """Create or update the Space and point it at `model_id`; returns the Space's URL.

    A Space this call created is removed again if its first commit fails, so a failed first deploy
    leaves no empty Space behind; an existing Space keeps its files until a commit succeeds.
    """
    check_repo_id(space_id)
    check_repo_id(model_id)
    operations = space_operations(model_id)  # before any request: a broken README publishes nothing
    token = token or get_token()
    if not token:
        raise UserError(NO_TOKEN)
    api = HfApi(token=token)
    variable = {"key": MODEL_VARIABLE, "value": model_id, "description": "Hub model the Space serves"}
    created = False
    try:
        api.whoami()
        _warn_if_model_missing(api, model_id)
        existed = api.repo_exists(space_id, repo_type="space")
        url = api.create_repo(
            space_id,
            repo_type="space",
            space_sdk="gradio",
            private=private,
            exist_ok=True,
            space_variables=[variable],
        )
        created = not existed
        api.create_commit(
            space_id,
            operations,
            repo_type="space",
            commit_message=f"Deploy the sentiment Space for {model_id}",
        )
        api.add_space_variable(space_id, MODEL_VARIABLE, model_id, description=variable["description"])
    except (*HUB_ERRORS, RuntimeError) as err:
        # huggingface_hub wraps a failed LFS upload in a RuntimeError; any other RuntimeError is a bug.
        cause = err.__cause__ if isinstance(err, RuntimeError) else err
        if not isinstance(cause, HUB_ERRORS):
            raise
        if created:
            remove_created_repo(api, space_id, repo_type="space")
        raise UserError(explain(cause, space_id)) from None
    return str(url)
