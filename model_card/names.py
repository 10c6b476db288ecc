"""How a card names what a run started from and trained on: Hub ids where known, never a machine's path.

The card, its citations and the push all need these names; they live here so that none of those
modules has to import another for them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
GENERIC_DIR_NAMES = {"model", "models", "checkpoint", "final", "output", "weights"}
IMDB_ID = "stanfordnlp/imdb"
IMDB_TEST_SIZE = 25_000  # the official test split, which the card calls "IMDb" without a qualifier


@dataclass(frozen=True)
class BaseModel:
    """What the run was fine-tuned from: a Hub id when known, else a local folder's name."""

    name: str
    hub_id: str | None
    name_or_path: str | None = None

    @property
    def markdown(self) -> str:
        if self.hub_id:
            return f"[`{self.hub_id}`](https://huggingface.co/{self.hub_id})"
        origin = f"; config `_name_or_path`: `{self.name_or_path}`" if self.name_or_path else ""
        return f"`{self.name}` (a local model{origin})"


def is_hub_id(name: str) -> bool:
    """`org/name` could be either: a folder that exists here or in the project (runs start there) is local."""
    return bool(HUB_ID.match(name)) and not Path(name).exists() and not (PROJECT_ROOT / name).exists()


def resolve_base_model(name: str, override: str | None = None) -> BaseModel:
    """A Hub id stays as is; a local folder is shown by its name and the `_name_or_path` of its config."""
    if override:
        return BaseModel(override, override)
    if is_hub_id(name):
        return BaseModel(name, name)
    path = Path(name)
    shown = path.parent.name if path.name.lower() in GENERIC_DIR_NAMES and path.parent.name else path.name
    config = path / "config.json"
    name_or_path = json.loads(config.read_text()).get("_name_or_path") if config.is_file() else None
    return BaseModel(shown or name, None, name_or_path or None)


def dataset_id(name: str) -> str:
    """The Hub id of the training data: the project trains on IMDb, so a local folder is a copy of it."""
    return name if is_hub_id(name) and "/" in name else IMDB_ID


def local_dataset_name(name: str) -> str | None:
    """How the card names a local copy of the data: as the run recorded it, never by an absolute path
    (runs before results.json recorded portable names kept the path of the machine they ran on)."""
    if is_hub_id(name):
        return None
    return Path(name).name if Path(name).is_absolute() else name
