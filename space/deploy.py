"""Publish this folder as a Gradio Space that serves a model from the Hub.

    python space/deploy.py --repo_id USER/NAME --model_id USER/MODEL [--private]

Creates the Space (`exist_ok`, so it also updates one), uploads the app in one commit with the
README's `models:` pointed at MODEL_ID, and sets the Space variable MODEL_ID, which app.py reads.
The token comes from HF_TOKEN or the cached login (`hf auth login`) and is never printed;
HF_ENDPOINT selects another Hub. A failure the user can fix ends with one sentence and exit 2.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from files import SpaceError

SPACE_DIR = Path(__file__).resolve().parent
# Local-only files: the deploy and screenshot scripts, caches, and anything a local run leaves behind.
IGNORE = ("deploy.py", "screenshot.py", "__pycache__", "*.pyc", ".*", "flagged", ".gradio")
# The HTTP library's base error (connection refused, timeouts): HfHubHTTPError's parent in 1.x and 2.x.
TRANSPORT_ERROR: type[Exception] = HfHubHTTPError.__bases__[0]
MODELS_LINE = re.compile(r"^models:.*(\n[ \t]+-.*)*", re.MULTILINE)


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
        raise SpaceError("space/README.md has no YAML front matter between --- lines.")
    line = f"models:\n  - {model_id}"
    front = MODELS_LINE.sub(line, front) if MODELS_LINE.search(front) else f"{front}\n{line}"
    return front + sep + rest


def deploy(repo_id: str, model_id: str, private: bool, token: str | None = None) -> str:
    """Create or update the Space and point it at `model_id`; returns the Space's URL."""
    token = token or get_token()
    if not token:
        raise SpaceError("No Hugging Face token found: set HF_TOKEN or log in with `hf auth login`.")
    if repo_id.count("/") != 1 or model_id.count("/") != 1:
        raise SpaceError("--repo_id and --model_id must both look like user/name.")
    api = HfApi(token=token)
    try:
        api.whoami()
        try:
            api.model_info(model_id)
        except HfHubHTTPError as exc:
            if _status(exc) != 404:
                raise
            print(
                f"warning: model {model_id} was not found on the Hub; the Space will not start until it is published."
            )
        url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        operations = []
        for relative in space_files():
            content: bytes | str = str(SPACE_DIR / relative)
            if relative.as_posix() == "README.md":
                content = readme_for(model_id, (SPACE_DIR / relative).read_text(encoding="utf-8")).encode()
            operations.append(CommitOperationAdd(path_in_repo=relative.as_posix(), path_or_fileobj=content))
        api.create_commit(
            repo_id,
            operations,
            repo_type="space",
            commit_message=f"Deploy the sentiment Space for {model_id}",
        )
        api.add_space_variable(repo_id, "MODEL_ID", model_id, description="Hub model the Space serves")
    except HfHubHTTPError as exc:
        raise SpaceError(_explain(exc, repo_id)) from None
    except (TRANSPORT_ERROR, ConnectionError) as exc:
        raise SpaceError(
            f"Could not reach the Hub ({type(exc).__name__}): check the network and HF_ENDPOINT."
        ) from None
    return str(url)


def _status(exc: HfHubHTTPError) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _explain(exc: HfHubHTTPError, repo_id: str) -> str:
    status = _status(exc)
    if status == 401:
        return (
            "The Hugging Face token was rejected (invalid or expired): set HF_TOKEN to a valid write token."
        )
    if status == 403:
        return f"This token may not write to {repo_id}: the namespace belongs to someone else, or the token is read-only."
    return (
        f"The Hub refused the deploy (HTTP {status}): check the repo ids and that the token can write there."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish space/ as a Gradio Space serving MODEL_ID.")
    parser.add_argument("--repo_id", required=True, help="the Space to create or update, user/name")
    parser.add_argument("--model_id", required=True, help="the Hub model the Space serves, user/name")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    args = parser.parse_args(argv)
    try:
        url = deploy(args.repo_id, args.model_id, args.private)
    except SpaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Deployed {args.repo_id} serving {args.model_id}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
