"""The Space's own code, reused by the publisher instead of copied: its ONNX builder and its example reviews.

space/ is deployed alone and its modules import their siblings by bare names (`from examples import
EXAMPLES`), so they are imported the same way here, with the folder on sys.path; nothing in space/
imports model_card.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

SPACE_DIR = Path(__file__).resolve().parent.parent / "space"


def space_module(name: str) -> ModuleType:
    """The module space/<name>.py, imported as the Space imports it."""
    if str(SPACE_DIR) not in sys.path:
        sys.path.insert(0, str(SPACE_DIR))
    return importlib.import_module(name)
