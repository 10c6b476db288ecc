"""Publish a finished run to the Hugging Face Hub in one commit.

Everything (model, tokenizer, card, figures, results.json, the LoRA adapter) goes up in a single
`create_commit`, so a failure half-way leaves the repo as it was: the Hub only records a commit
once all its files are uploaded. The token is checked with `whoami` before anything is created,
and a repo this call created is removed again if the commit fails.

Every failure a user can fix is raised as `UserError` with one sentence; the token never
appears in a message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from model_card.card import build_card, check_repo_id, load_results
from train.errors import UserError

# The HTTP library's base error (httpx in huggingface_hub 1.x, httpx2 in 2.x): connection refused,
# timeouts and resets are its subclasses. Taken from HfHubHTTPError so both majors work.
TRANSPORT_ERROR: type[Exception] = HfHubHTTPError.__bases__[0]
# ConnectionError covers OfflineModeIsEnabled; other OSErrors (a local file) are not the Hub's doing.
HUB_ERRORS = (HfHubHTTPError, TRANSPORT_ERROR, ConnectionError)

# What a pipeline-ready repo needs at its root, plus the card and what it shows. Checkpoints,
# logs and the prediction tables stay local.
ROOT_FILES = (
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "*.model",
    "README.md",
    "*.png",
    "results.json",
)
ADAPTER_DIR = "adapter"


def _hub_files(run_dir: Path) -> Iterator[tuple[Path, str]]:
    """(local file, path in repo) for the model at the root and, for LoRA runs, the adapter in adapter/."""
    seen = set()
    for pattern in ROOT_FILES:
        for path in sorted(run_dir.glob(pattern)):
            if path.is_file() and path.name not in seen:
                seen.add(path.name)
                yield path, path.name
    adapter = run_dir / ADAPTER_DIR
    if adapter.is_dir():
        for path in sorted(adapter.rglob("*")):
            # peft writes a placeholder README into the adapter folder; the repo's card is the real one.
            if path.is_file() and path.name != "README.md":
                yield path, path.relative_to(run_dir).as_posix()


def _explain(err: Exception, repo_id: str) -> str:
    """One sentence for a Hub or network failure, without the token or a traceback."""
    if isinstance(err, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, so nothing can be published: unset it (or set it to 0) and retry."
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code
        if status == 401:
            return (
                "The Hugging Face token was rejected (invalid or expired): "
                "set a valid HF_TOKEN or run `hf auth login`."
            )
        if status == 403:
            return (
                f"Your token may not write to {repo_id}: the namespace belongs to another user or "
                "organisation, or the token is read-only."
            )
        if status == 404:
            return (
                f"The Hub does not know {repo_id} or its namespace: "
                "check the repo id and that the token can write there."
            )
        detail = (err.server_message or "").strip().splitlines()
        return f"The Hub refused the upload to {repo_id} (HTTP {status}{': ' + detail[0] if detail else ''})."
    return (
        f"Cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({type(err).__name__}): "
        "check the network connection or HF_ENDPOINT and retry."
    )


def publish(
    run_dir: str | os.PathLike[str],
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    *,
    space_id: str | None = None,
    sweep: str | os.PathLike[str] | None = None,
    base_model: str | None = None,
) -> str:
    """Build the card for `repo_id`, then create the repo if missing and upload the run in one commit.

    `token` defaults to HF_TOKEN or the cached login. `revision` is a branch, created from main if
    missing. Returns the commit URL; raises UserError with nothing published on any failure.
    """
    run_dir = Path(run_dir)
    check_repo_id(repo_id)
    results = load_results(run_dir)
    if not (run_dir / "config.json").is_file() or not any(run_dir.glob("*.safetensors")):
        raise UserError(f"{run_dir} has no model (config.json and *.safetensors): nothing to publish.")
    token = token or get_token()
    if not token:
        raise UserError("No Hugging Face token found: set HF_TOKEN or log in with `hf auth login`.")

    api = HfApi(token=token)
    try:
        api.whoami()
    except HUB_ERRORS as err:
        raise UserError(_explain(err, repo_id)) from None

    build_card(
        run_dir,
        repo_id=repo_id,
        space_id=space_id,
        sweep=Path(sweep) if sweep else None,
        base_model=base_model,
    )
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=path) for path, name in _hub_files(run_dir)
    ]
    test = results["metrics"]["test"]
    message = (
        f"Upload {repo_id.split('/')[-1]}: {results['method']} fine-tune, "
        f"test accuracy {test['accuracy']:.4f}, F1 {test['f1']:.4f}"
    )

    created_repo = False
    try:
        existed = api.repo_exists(repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True)
        created_repo = not existed
        if revision and revision != "main":
            # A new branch starts from main, so before the commit it publishes nothing new.
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=message,
            commit_description=f"Trained with:\n\n    {results['command']}",
            revision=revision,
        )
    except (*HUB_ERRORS, RuntimeError) as err:
        # huggingface_hub wraps a failed LFS upload in a RuntimeError; any other RuntimeError is a bug.
        cause = err.__cause__ if isinstance(err, RuntimeError) else err
        if not isinstance(cause, HUB_ERRORS):
            raise
        if created_repo:
            _delete_quietly(api, repo_id)
        raise UserError(_explain(cause, repo_id)) from None
    return commit.commit_url


def _delete_quietly(api: HfApi, repo_id: str) -> None:
    """Remove the empty repo this call created, so a failed first push leaves the Hub as it was."""
    try:
        api.delete_repo(repo_id, missing_ok=True)
    except HUB_ERRORS:
        pass  # best effort: the repo holds no file of the run either way, and the original error matters
