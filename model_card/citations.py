"""BibTeX for the card's citation section: the IMDb dataset always, the base model's paper when known.

The base model is recognised by name (Hub id or local folder and its `_name_or_path`), so a
local copy of a known model still cites the right paper.
"""

from __future__ import annotations

import re
from pathlib import Path

from model_card.names import BaseModel

# The entries live in a .bib file, as BibTeX does; each is looked up by its key.
BIB_FILE = Path(__file__).with_name("citations.bib")
ENTRIES = {
    match.group(1): match.group(0).strip()
    for match in re.finditer(r"^@\w+\{([^,]+),.*?^\}", BIB_FILE.read_text(), re.S | re.M)
}


# First match wins: the more specific names come before the families they belong to.
BASE_MODELS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("all-minilm", "all_minilm", "sentence-transformers"),
        ("reimers-gurevych-2019-sentence", "wang2020minilm"),
    ),
    (("minilm",), ("wang2020minilm",)),
    (("distilbert",), ("sanh2019distilbert",)),
    (("roberta",), ("liu2019roberta",)),
    (("bert",), ("devlin-etal-2019-bert",)),
)
DATASET, LORA = "maas-etal-2011-learning", "hu2022lora"


def citations_for(base: BaseModel, method: str, model_type: str | None = None) -> list[str]:
    """IMDb, then the base model's paper(s) when its name (or else its config's model_type) is recognised,
    then LoRA when it was used."""
    names = " ".join(filter(None, (base.name, base.hub_id, base.name_or_path, model_type))).lower()
    found = next((keys for words, keys in BASE_MODELS if any(w in names for w in words)), ())
    return [ENTRIES[key] for key in (DATASET, *found, *([LORA] if method == "lora" else []))]
