"""Files published next to the model, in its local folder or its Hub repo: the int8 engine, the results.

The training command writes `results.json` beside the model it saves and publishing uploads both, so
what the Space tells visitors about the model comes from the model's own figures, never from constants.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS_FILE = "results.json"


def find_model_file(source: str, filename: str) -> Path | None:
    """`filename` in `source` (a local folder or a Hub model id), or None where it has none."""
    folder = Path(source)
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(source, filename))
    except EntryNotFoundError:  # no such file in the repo (or, offline, none cached)
        return None


def read_results(source: str) -> dict | None:
    """The model's results.json, or None where it has none or it cannot be read (what the page says
    about the model then leaves its figures out; the Space serves the model either way)."""
    try:
        path = find_model_file(source, RESULTS_FILE)
        results = json.loads(path.read_text()) if path else None
    except Exception:  # noqa: BLE001 - the Hub unreachable, a damaged file: the page goes without the figures
        return None
    return results if isinstance(results, dict) else None
