"""A small local server that speaks the parts of the Hugging Face Hub HTTP API the project's clients use.

Why: the real Hub is unreachable from tests (and must stay so), yet publishing code is only trustworthy
when it runs through the *real* client code, ``huggingface_hub`` (1.x and 2.x) and ``transformers`` (5.x),
not through mocks. Endpoints, payloads and headers here were read from the client source (``hf_api.py``,
``_commit_api.py``, ``lfs.py``, ``file_download.py``, ``utils/_http.py``, ``constants.py``).

Implemented (in memory, served by uvicorn on 127.0.0.1 only):

- ``GET /api/whoami-v2``: 401 with a JSON error for a missing or wrong token.
- ``POST /api/repos/create`` (models, datasets, Spaces; ``private`` from 1.x or ``visibility`` from 2.x;
  Space ``variables``): 409 if it exists (with the ``url`` that ``exist_ok=True`` reads), 403 outside the
  token user's own namespace. A new repo has an "initial commit" holding ``.gitattributes``, as on the Hub.
- ``GET /api/{models,datasets,spaces}/{repo}[/revision/{rev}]``: repo info with ``sha``, ``siblings``
  (with sizes and LFS info) and, from the README's YAML header, ``cardData``, ``pipeline_tag``,
  ``library_name`` and ``tags``. ``POST /api/validate-yaml`` (``create_commit`` calls it for a README.md).
- ``GET .../tree/{rev}[/{path}]`` (``recursive``) and ``POST .../paths-info/{rev}``.
- ``POST .../preupload/{rev}``: "lfs" for files of ``lfs_threshold`` bytes or more, binary samples (a NUL
  byte) and the suffixes listed in ``.gitattributes``; else "regular".
- ``POST .../commit/{rev}``: the NDJSON body (header, file, lfsFile, deletedFile, deletedFolder lines;
  ``parentCommit`` is checked, 412 on mismatch), all-or-nothing.
- Git LFS basic transfer: ``POST /{repo}.git/info/lfs/objects/batch`` (never offers xet), a pre-signed
  ``PUT /lfs-upload/{ticket}`` (checks size and sha256), ``POST /{repo}.git/info/lfs/objects/verify``.
- ``GET/HEAD /[datasets/|spaces/]{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` (the git
  blob sha1 of a regular file, the sha256 of an LFS file, then also in ``X-Linked-Etag``/``X-Linked-Size``)
  and ``Content-Length``; 404s carry ``X-Error-Code: RepoNotFound``/``RevisionNotFound``/``EntryNotFound``.
- ``GET/POST/DELETE /api/spaces/{repo}/variables``.
- Every commit is a full snapshot under a random 40-hex id; branch ``main`` points at the latest and any
  commit id works as ``revision``. Tokens (``Authorization: Bearer``) are checked on every write and on
  reads of private repos (401 without a token, 404 for another user); a wrong token gets 401 on any
  request, as on the Hub.
- ``LocalHub.fail_next_lfs_upload()``: the next LFS PUT fails (400, which clients do not retry), to show
  that an interrupted upload publishes nothing.

Not implemented (501, or 404 where the Hub would say so): the git protocol (clone/push), Xet storage,
discussions and pull requests (``create_pr=True``), branches other than ``main`` and tags, commit listing,
repo deletion/move/settings, organizations, gated repos, Space runtime/hardware/secrets, the LFS multipart
transfer, Range requests, pagination, ``expand``, ``.gitignore`` (``shouldIgnore`` is always false), the
CDN redirect of LFS files (their bytes are served directly), and the Hub's inference of ``pipeline_tag``
and ``library_name`` from config.json: for ``pipeline(model=...)`` without a task, the README's YAML
header must declare both (transformers refuses a model whose ``library_name`` is missing).

Usage notes:

- ``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HUB_DISABLE_XET`` at import time.
  So either call it in the test process with ``endpoint=hub.endpoint`` and ``token=...`` passed explicitly
  (``HfApi(endpoint=..., token=...)``; downloads also with ``cache_dir=tmp_path``), or run the client code
  in a subprocess with ``env=hub.client_env(empty_dir, token)``: it sets ``HF_ENDPOINT``, ``HF_TOKEN``, a
  fresh ``HF_HOME``, ``HF_HUB_OFFLINE=0`` (tests/conftest.py sets 1) and ``HF_HUB_DISABLE_XET=1``.
  ``transformers`` always goes in a subprocess (it keeps one HfApi, with the endpoint it first saw).
- Recent huggingface_hub (1.33, 2.x) uploads through Xet whenever ``hf_xet`` is installed, without asking
  the server; this server has no Xet (a client that tries gets a 501 saying so), hence
  ``HF_HUB_DISABLE_XET=1``.
- The ``local_hub`` fixture patches ``huggingface_hub.constants`` for the test: online, no Xet, and
  ``ENDPOINT`` (with the resolve-URL template, which ``hf_hub_url`` builds URLs from) pointing at the hub,
  so that a stray call without ``endpoint=`` reaches this hub and never huggingface.co, and so that 1.0's
  ``CommitInfo`` (which parses commit URLs against ``constants.ENDPOINT``) works. ``running_hub()`` alone
  patches nothing.
- Typical test::

      # the local_hub fixture reaches every test module through conftest.py
      def test_publish(local_hub, tmp_path):
          api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
          api.create_repo(f"{local_hub.user}/demo")
          ...
          env = local_hub.client_env(tmp_path / "hf_home", local_hub.token)
          subprocess.run([sys.executable, "-c", CODE], env=env, check=True)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}  # /api/{plural}/...
URL_PREFIX_TYPES = {"": "model", "datasets": "dataset", "spaces": "space"}  # /[{prefix}/]{repo}/resolve/...
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".onnx",
    ".msgpack",
    ".model",
    ".npy",
    ".npz",
    ".pkl",
    ".joblib",
    ".parquet",
    ".arrow",
    ".zip",
    ".gz",
    ".tar",
    ".tgz",
)
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)
YAML_HEADER = re.compile(r"^\s*---[\r\n]+([\S\s]*?)[\r\n]+---(\r\n|\n|$)")  # as huggingface_hub.repocard
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
# Variables that would make a client subprocess share the caller's cache, credentials or offline mode.
_CLIENT_ENV_DROPPED = (
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "TRANSFORMERS_CACHE",
    "TRANSFORMERS_OFFLINE",
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _yaml_header(text: str) -> Any:
    """The YAML header of a README.md (the card): None if it has none; raises yaml.YAMLError if invalid."""
    match = YAML_HEADER.match(text)
    return yaml.safe_load(match.group(1)) if match else None


def _card_metadata(readme: Blob | None) -> dict[str, Any]:
    """The card's metadata, where the Hub reads pipeline_tag, library_name and tags; {} if unusable."""
    try:
        metadata = _yaml_header(readme.content.decode(errors="replace")) if readme else None
    except yaml.YAMLError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


@dataclass
class Blob:
    """One version of a file. LFS files live in git as a pointer; their bytes are in LFS storage."""

    content: bytes
    lfs: bool

    @property
    def size(self) -> int:
        return len(self.content)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return LFS_POINTER.format(oid=self.sha256, size=self.size).encode()

    @cached_property
    def git_oid(self) -> str:
        """The git blob id the Hub lists as ``oid``/``blobId``: of the pointer for an LFS file."""
        return _git_blob_sha1(self.pointer if self.lfs else self.content)

    @property
    def etag(self) -> str:
        """What ``resolve`` sends as ETag and preupload as ``oid``: the client compares it to its own hash."""
        return self.sha256 if self.lfs else self.git_oid

    def tree_entry(self, path: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "path": path, "size": self.size, "oid": self.git_oid}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(self.pointer)}
        return entry


@dataclass
class Commit:
    oid: str
    title: str
    date: str
    files: dict[str, Blob]  # the full snapshot: every file of the repo at this commit


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None
    created_at: str = field(default_factory=_now)
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit oid
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes, committed or not
    variables: dict[str, dict[str, str | None]] = field(default_factory=dict)  # Space variables

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]

    def add_commit(self, branch: str, title: str, files: dict[str, Blob]) -> Commit:
        commit = Commit(oid=secrets.token_hex(20), title=title, date=_now(), files=files)
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit

    def set_variable(self, key: str, value: str, description: str | None) -> None:
        self.variables[key] = {"value": value, "description": description, "updatedAt": _now()}


class HubError(Exception):
    """An error answered as the Hub does: JSON ``{"error": ...}`` plus the X-Error-Code/X-Error-Message
    headers from which huggingface_hub picks its exception type (RepositoryNotFoundError, ...).
    ``extra`` adds fields to the JSON body."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.extra = headers or {}, extra or {}


async def _error_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    headers = {"X-Error-Message": exc.message, **exc.headers}
    if exc.code:
        headers["X-Error-Code"] = exc.code
    return JSONResponse({"error": exc.message, **exc.extra}, exc.status, headers)


def _new_token() -> str:
    return f"hf_local_{secrets.token_urlsafe(24)}"


class LocalHub:
    """The hub's state and HTTP handlers; get a served one from ``running_hub()`` or ``local_hub``.

    ``users`` maps user name to token; the first entry is ``user``/``token``, the second
    ``other_user``/``other_token``. ``lfs_threshold`` (bytes, 10 MB as on the Hub) may be lowered by a test.
    """

    def __init__(self, users: dict[str, str]):
        if len(users) < 2:
            raise ValueError("LocalHub needs at least two users (the second one is `other_user`)")
        (self.user, self.token), (self.other_user, self.other_token) = list(users.items())[:2]
        self.endpoint = ""  # set by running_hub() once the port is known
        self.lfs_threshold = 10 * 1000 * 1000
        self._users_by_token = {token: user for user, token in users.items()}
        self._repos: dict[tuple[str, str], Repo] = {}  # (repo type, repo id) -> repo
        self._upload_tickets: dict[str, tuple[Repo, str, int]] = {}  # ticket -> (repo, sha256, size)
        self._fail_next_lfs_upload = False
        api = "/api/{api_type}/{ns}/{name}"
        self.app = Starlette(
            routes=[
                Route("/api/whoami-v2", self.whoami),
                Route("/api/repos/create", self.create_repo, methods=["POST"]),
                Route("/api/validate-yaml", self.validate_yaml, methods=["POST"]),
                Route(api, self.repo_info),
                Route(api + "/revision/{rev}", self.repo_info),
                Route(api + "/tree/{rev}", self.tree),
                Route(api + "/tree/{rev}/{path:path}", self.tree),
                Route(api + "/paths-info/{rev}", self.paths_info, methods=["POST"]),
                Route(api + "/preupload/{rev}", self.preupload, methods=["POST"]),
                Route(api + "/commit/{rev}", self.commit, methods=["POST"]),
                Route(api + "/variables", self.space_variables, methods=["GET", "POST", "DELETE"]),
                Route("/lfs-upload/{ticket}", self.lfs_upload, methods=["PUT"]),
                # Web URLs: models at /{ns}/{name}/..., datasets and Spaces under /datasets/ and /spaces/.
                *(
                    Route(prefix + path, handler, methods=methods)
                    for prefix in ("", "/{url_prefix}")
                    for path, handler, methods in (
                        ("/{ns}/{name}.git/info/lfs/objects/batch", self.lfs_batch, ["POST"]),
                        ("/{ns}/{name}.git/info/lfs/objects/verify", self.lfs_verify, ["POST"]),
                        ("/{ns}/{name}/resolve/{rev}/{path:path}", self.resolve, ["GET", "HEAD"]),
                    )
                ),
                Route("/{path:path}", self.not_implemented, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
            ],
            exception_handlers={HubError: _error_response},
        )

    def fail_next_lfs_upload(self) -> None:
        """Make the next LFS object upload (the PUT of its bytes) fail with a 400, never retried."""
        self._fail_next_lfs_upload = True

    def commit_titles(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """Every commit of a repo, oldest first (the Hub's commit listing is not served): lets a test
        count the commits an operation made."""
        return [commit.title for commit in self._repos[(repo_type, repo_id)].commits.values()]

    def client_env(self, hf_home: Path, token: str | None) -> dict[str, str]:
        """Environment for a subprocess running real client code against this hub: a fresh cache in
        ``hf_home`` (pass an empty directory), ``token`` as HF_TOKEN (None: anonymous), online, no Xet."""
        env = {key: value for key, value in os.environ.items() if key not in _CLIENT_ENV_DROPPED}
        env.update(HF_ENDPOINT=self.endpoint, HF_HOME=str(hf_home), HF_HUB_OFFLINE="0")
        env["HF_HUB_DISABLE_XET"] = "1"
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    # --- helpers -------------------------------------------------------------------------------------------

    def _user(self, request: Request) -> str | None:
        """The token's user, None without a token. A wrong token is refused on any request, as on the Hub."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        user = self._users_by_token.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _repo(self, request: Request, write: bool = False) -> Repo:
        """The repo named by the URL, if the caller may read it (or write it, with ``write``)."""
        params = request.path_params
        if "api_type" in params:
            repo_type = API_REPO_TYPES.get(params["api_type"])
        else:
            repo_type = URL_PREFIX_TYPES.get(params.get("url_prefix", ""))
        user = self._user(request)
        repo = self._repos.get((repo_type or "", f"{params['ns']}/{params['name']}"))
        if repo is None or (repo.private and user != repo.owner):
            raise HubError(401 if user is None else 404, "Repository not found", code="RepoNotFound")
        if write and user is None:
            raise HubError(401, "You must be authenticated to write to a repository")
        if write and user != repo.owner:
            raise HubError(403, f"You don't have write access to {repo.repo_id}")
        return repo

    @staticmethod
    def _commit_at(repo: Repo, revision: str) -> Commit:
        """A branch name or a commit id, resolved to its commit."""
        commit = repo.commits.get(repo.branches.get(revision, revision))
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return commit

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.endpoint}/{URL_PREFIXES[repo.repo_type]}{repo.repo_id}"

    def _is_lfs(self, path: str, size: int, sample: bytes) -> bool:
        return size >= self.lfs_threshold or path.endswith(LFS_SUFFIXES) or b"\0" in sample

    # --- account and repos ---------------------------------------------------------------------------------

    async def whoami(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            raise HubError(401, "Invalid username or password.")
        auth = {"type": "access_token", "accessToken": {"displayName": "local-hub", "role": "write"}}
        return JSONResponse({"type": "user", "name": user, "fullname": user, "orgs": [], "auth": auth})

    async def create_repo(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            raise HubError(401, "You must be authenticated to create a repository")
        body = await request.json()
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        namespace = body.get("organization") or user
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a {repo_type} under {namespace}")
        repo_id = f"{namespace}/{body['name']}"
        url = f"{self.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self._repos:  # create_repo(exist_ok=True) reads the url from this 409
            raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
        private = body.get("private", body.get("visibility") == "private")  # 1.x: private, 2.x: visibility
        repo = Repo(repo_type=repo_type, repo_id=repo_id, private=bool(private), sdk=body.get("sdk"))
        repo.add_commit("main", "initial commit", {".gitattributes": Blob(GITATTRIBUTES.encode(), lfs=False)})
        for variable in body.get("variables") or []:
            repo.set_variable(variable["key"], variable["value"], variable.get("description"))
        self._repos[(repo_type, repo_id)] = repo
        return JSONResponse({"url": url, "name": repo_id})

    async def repo_info(self, request: Request) -> Response:
        repo = self._repo(request)
        commit = self._commit_at(repo, request.path_params.get("rev", "main"))
        card = _card_metadata(commit.files.get("README.md"))
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path, "size": blob.size, "blobId": blob.git_oid}
            if blob.lfs:
                sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "id": repo.repo_id,
            "author": repo.owner,
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "downloads": 0,
            "likes": 0,
            "tags": card.get("tags") or [],
            "siblings": siblings,
        }
        if card:
            info["cardData"] = card
        for key in ("pipeline_tag", "library_name"):
            if card.get(key):
                info[key] = card[key]
        if repo.repo_type == "space":
            info["sdk"] = repo.sdk
        return JSONResponse(info)

    async def validate_yaml(self, request: Request) -> Response:
        """Check that a card's YAML header is a mapping (the Hub also checks it against a schema)."""
        try:
            metadata = _yaml_header((await request.json())["content"])
        except yaml.YAMLError as exc:
            return JSONResponse({"errors": [{"message": f"Invalid YAML: {exc}"}]}, 400)
        if not isinstance(metadata, dict | None):
            return JSONResponse({"errors": [{"message": "The YAML metadata must be a mapping"}]}, 400)
        return JSONResponse({"errors": [], "warnings": []})

    async def space_variables(self, request: Request) -> Response:
        repo = self._repo(request, write=request.method != "GET")
        if repo.repo_type != "space":
            raise HubError(404, "Variables exist only for Spaces")
        if request.method == "POST":
            body = await request.json()
            repo.set_variable(body["key"], body["value"], body.get("description"))
        elif request.method == "DELETE":
            repo.variables.pop((await request.json())["key"], None)
        return JSONResponse(repo.variables)

    # --- listing -------------------------------------------------------------------------------------------

    async def tree(self, request: Request) -> Response:
        repo = self._repo(request)
        files = self._commit_at(repo, request.path_params["rev"]).files
        folder = request.path_params.get("path", "").strip("/")
        recursive = request.query_params.get("recursive", "false").lower() == "true"
        prefix = f"{folder}/" if folder else ""
        folders: set[str] = set()
        entries = []
        for path, blob in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            depths = range(1, len(parts)) if recursive else range(1, min(2, len(parts)))
            folders.update(prefix + "/".join(parts[:depth]) for depth in depths)
            if recursive or len(parts) == 1:
                entries.append(blob.tree_entry(path))
        if folder and not entries and not folders:
            raise HubError(404, f"{folder} does not exist at this revision", code="EntryNotFound")
        return JSONResponse([_folder_entry(path, files) for path in sorted(folders)] + entries)

    async def paths_info(self, request: Request) -> Response:
        """Info on the given paths (form-encoded, as the client sends them); unknown paths are left out."""
        repo = self._repo(request)
        files = self._commit_at(repo, request.path_params["rev"]).files
        entries = []
        for path in parse_qs((await request.body()).decode()).get("paths", []):
            path = path.strip("/")
            if path in files:
                entries.append(files[path].tree_entry(path))
            elif any(name.startswith(f"{path}/") for name in files):
                entries.append(_folder_entry(path, files))
        return JSONResponse(entries)

    # --- uploads and commits --------------------------------------------------------------------------------

    async def preupload(self, request: Request) -> Response:
        """Tell the client how to send each file: inline in the commit ("regular") or through LFS."""
        repo = self._repo(request, write=True)
        head = self._commit_at(repo, request.path_params["rev"])
        answers = []
        for file in (await request.json())["files"]:
            path, size, sample = file["path"], file["size"], base64.b64decode(file["sample"])
            existing = head.files.get(path)
            answers.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if self._is_lfs(path, size, sample) else "regular",
                    "shouldIgnore": False,
                    "oid": existing.etag if existing else None,  # lets the client skip unchanged files
                }
            )
        return JSONResponse({"files": answers, "commitOid": head.oid})

    async def lfs_batch(self, request: Request) -> Response:
        """Git LFS batch API: a pre-signed upload URL (and a verify URL) per object the repo lacks."""
        repo = self._repo(request, write=True)
        body = await request.json()
        if body.get("operation") != "upload" or "basic" not in body.get("transfers", ["basic"]):
            raise HubError(400, "The local hub only supports LFS uploads with the basic transfer")
        objects = []
        for obj in body["objects"]:
            oid, size = obj["oid"], obj["size"]
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in repo.lfs_objects:  # no "actions": the client skips the upload
                ticket = secrets.token_urlsafe(16)
                self._upload_tickets[ticket] = (repo, oid, size)
                answer["actions"] = {
                    "upload": {"href": f"{self.endpoint}/lfs-upload/{ticket}"},
                    "verify": {"href": f"{self._repo_url(repo)}.git/info/lfs/objects/verify"},
                }
            objects.append(answer)
        body = {"transfer": "basic", "objects": objects}
        return JSONResponse(body, media_type="application/vnd.git-lfs+json")

    async def lfs_upload(self, request: Request) -> Response:
        """The storage side of an LFS upload: like a pre-signed S3 URL, the ticket in it is the only right."""
        ticket = request.path_params["ticket"]
        if ticket not in self._upload_tickets:
            raise HubError(403, "Unknown or used upload URL")
        repo, oid, size = self._upload_tickets[ticket]
        content = await request.body()
        if self._fail_next_lfs_upload:
            self._fail_next_lfs_upload = False
            raise HubError(400, "Upload interrupted (failure injected by the test)")
        if len(content) != size or hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match the announced oid and size")
        repo.lfs_objects[oid] = content
        del self._upload_tickets[ticket]
        return Response()

    async def lfs_verify(self, request: Request) -> Response:
        repo = self._repo(request, write=True)
        body = await request.json()
        content = repo.lfs_objects.get(body["oid"])
        if content is None or len(content) != body["size"]:
            raise HubError(404, f"LFS object {body['oid']} was not uploaded")
        return JSONResponse({})

    async def commit(self, request: Request) -> Response:
        """Apply an NDJSON commit to a copy of the branch head; publish it only if every line is valid."""
        repo = self._repo(request, write=True)
        if request.query_params.get("create_pr"):
            raise HubError(501, "Pull requests are not supported by the local hub")
        branch = request.path_params["rev"]
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch} (commits go to a branch)", code="RevisionNotFound")
        lines = [json.loads(line) for line in (await request.body()).splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            raise HubError(400, "The first line of a commit must be its header")
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, repo.branches[branch]):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.commits[repo.branches[branch]].files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"]
            if key == "file":
                files[path] = Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                if value["oid"] not in repo.lfs_objects:
                    raise HubError(400, f"{path}: LFS object {value['oid']} was never uploaded to this repo")
                files[path] = Blob(repo.lfs_objects[value["oid"]], lfs=True)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise _no_such_file(path)
            elif key == "deletedFolder":
                doomed = [name for name in files if name.startswith(path.rstrip("/") + "/")]
                if not doomed:
                    raise _no_such_file(path)
                for name in doomed:
                    del files[name]
            else:
                raise HubError(400, f"Unsupported commit operation: {key}")
        commit = repo.add_commit(branch, header.get("summary", ""), files)
        commit_url = f"{self._repo_url(repo)}/commit/{commit.oid}"
        return JSONResponse({"success": True, "commitOid": commit.oid, "commitUrl": commit_url})

    # --- downloads ------------------------------------------------------------------------------------------

    async def resolve(self, request: Request) -> Response:
        """A file's bytes, with the headers hf_hub_download needs to name and check it in the cache."""
        repo = self._repo(request)
        commit = self._commit_at(repo, request.path_params["rev"])
        blob = commit.files.get(request.path_params["path"])
        headers = {"X-Repo-Commit": commit.oid}
        if blob is None:
            raise HubError(404, "Entry not found", code="EntryNotFound", headers=headers)
        headers["ETag"] = f'"{blob.etag}"'
        if blob.lfs:
            headers |= {"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)}
        return Response(blob.content, headers=headers, media_type="application/octet-stream")

    async def not_implemented(self, request: Request) -> Response:
        message = f"The local hub does not implement {request.method} {request.url.path}."
        if "xet" in request.url.path:
            message += " It has no Xet storage: set HF_HUB_DISABLE_XET=1 in the client."
        raise HubError(501, message)


def _folder_entry(path: str, files: dict[str, Blob]) -> dict[str, Any]:
    """A tree entry for a folder; its oid is derived from its content (stable, but not git's tree hash)."""
    inside = sorted(name for name in files if name.startswith(f"{path}/"))
    listing = "".join(f"{name}:{files[name].git_oid}\n" for name in inside)
    return {"type": "directory", "path": path, "size": 0, "oid": hashlib.sha1(listing.encode()).hexdigest()}


def _no_such_file(path: str) -> HubError:
    # create_commit looks for this exact wording to hint at file vs folder deletes.
    return HubError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")


@contextmanager
def running_hub(users: dict[str, str] | None = None) -> Iterator[LocalHub]:
    """Serve a new, empty hub on 127.0.0.1 (a free port) for the duration of the block.

    ``users`` maps user name to token; by default "alice" and "bob" with random tokens.
    """
    hub = LocalHub(users or {"alice": _new_token(), "bob": _new_token()})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: no race for the port
    hub.endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(hub.app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="local-hub", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The local hub did not start")
            time.sleep(0.01)
        yield hub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def local_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHub]:
    """A new hub per test, with in-process huggingface_hub pointed at it (see the module docstring)."""
    from huggingface_hub import constants

    with running_hub() as hub:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        resolve_url = hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", resolve_url)
        yield hub
