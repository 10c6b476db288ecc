"""Publish a finished run to the Hugging Face Hub in one commit.

Everything (model, tokenizer, card, figures, results.json, the LoRA adapter) goes up in a single
`create_commit`, so a failure half-way leaves the repo as it was: the Hub only records a commit
once all its files are uploaded. The same commit deletes what an earlier push published and this
run lacks (a LoRA run's adapter/, a figure or an ONNX export no longer made), so the repo holds one
run, never a mix. The token is checked with `whoami` before anything is created, and a repo this
call created is removed again if the commit fails.

Every failure a user can fix is raised as `UserError` with one sentence; the token never
appears in a message.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token

from model_card import onnx_files
from model_card.card import build_card, check_repo_id, has_model, load_results
from model_card.hub_errors import HUB_ERRORS, NO_TOKEN, explain, remove_created_repo
from train.errors import UserError

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
# Folders this publisher owns in the repo (onnx/: the exported graphs): what it finds there and the run
# lacks is deleted. Files outside ROOT_FILES and these folders are the repo owner's and are kept.
OWNED_DIRS = (ADAPTER_DIR, "onnx")


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
    yield from onnx_files.hub_files(run_dir)


def _stale_files(remote: list[str], uploading: set[str]) -> list[str]:
    """Files of an earlier push that this run does not have: at the root by ROOT_FILES, or in OWNED_DIRS."""
    owned = [
        path
        for path in remote
        if path.split("/")[0] in OWNED_DIRS
        or ("/" not in path and any(fnmatch.fnmatch(path, pattern) for pattern in ROOT_FILES))
    ]
    return sorted(set(owned) - uploading)


def commit_operations(
    run_dir: Path, remote: list[str]
) -> list[CommitOperationAdd | CommitOperationDelete]:
    """Everything one publish commit does: upload the run, delete what an earlier push left and it lacks."""
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=path) for path, name in _hub_files(run_dir)
    ]
    uploading = {op.path_in_repo for op in operations}
    operations += [CommitOperationDelete(path_in_repo=path) for path in _stale_files(remote, uploading)]
    return operations


def _headline(results: dict) -> str:
    """The commit title's test figures: accuracy and F1 (macro F1 beyond two classes), or MAE and RMSE."""
    test = results["metrics"]["test"]
    if (results.get("task") or {}).get("kind") == "regression":
        return f"test MAE {test['mae']:.4f}, RMSE {test['rmse']:.4f}"
    if "f1" not in test:
        return f"test accuracy {test['accuracy']:.4f}, macro F1 {test['f1_macro']:.4f}"
    return f"test accuracy {test['accuracy']:.4f}, F1 {test['f1']:.4f}"


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
    onnx: bool = True,
) -> str:
    """Build the card for `repo_id`, then create the repo if missing and upload the run in one commit.

    `token` defaults to HF_TOKEN or the cached login. `revision` is a branch, created from main if
    missing. `onnx`: also publish onnx/model.onnx and onnx/model_quantized.onnx (model_card.onnx_files).
    Returns the commit URL; raises UserError with nothing published on any failure.
    """
    run_dir = Path(run_dir)
    check_repo_id(repo_id)
    results = load_results(run_dir)
    if not has_model(run_dir):
        raise UserError(f"{run_dir} has no model (config.json and *.safetensors): nothing to publish.")
    token = token or get_token()
    if not token:
        raise UserError(NO_TOKEN)

    api = HfApi(token=token)
    try:
        api.whoami()
    except HUB_ERRORS as err:
        raise UserError(explain(err, repo_id)) from None

    if onnx:  # before the card, which states how close the int8 file's labels are to float32's
        onnx_files.build(run_dir)
    else:
        onnx_files.remove(run_dir)
    build_card(
        run_dir,
        repo_id=repo_id,
        space_id=space_id,
        sweep=Path(sweep) if sweep else None,
        base_model=base_model,
    )
    message = f"Upload {repo_id.split('/')[-1]}: {results['method']} fine-tune, {_headline(results)}"

    created_repo = False
    try:
        existed = api.repo_exists(repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True)
        created_repo = not existed
        if revision and revision != "main":
            # A new branch starts from main, so before the commit it publishes nothing new.
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        # What the branch holds now decides what to delete; committing on top of exactly that head
        # (parent_commit) makes a push that raced another one fail instead of deleting the wrong files.
        head = api.model_info(repo_id, revision=revision)
        remote = [sibling.rfilename for sibling in head.siblings or []]
        commit = api.create_commit(
            repo_id,
            commit_operations(run_dir, remote),
            commit_message=message,
            commit_description=f"Trained with:\n\n    {results['command']}",
            revision=revision,
            parent_commit=head.sha,
        )
    except (*HUB_ERRORS, RuntimeError) as err:
        # huggingface_hub wraps a failed LFS upload in a RuntimeError; any other RuntimeError is a bug.
        cause = err.__cause__ if isinstance(err, RuntimeError) else err
        if not isinstance(cause, HUB_ERRORS):
            raise
        if created_repo:
            remove_created_repo(api, repo_id)
        raise UserError(explain(cause, repo_id)) from None
    return commit.commit_url

