"""The ONNX files published beside the weights, for transformers.js and ONNX Runtime users.

transformers.js loads `onnx/model.onnx` for `dtype: "fp32"` and `onnx/model_quantized.onnx` for
`dtype: "q8"`, reading labels from `config.json` and the tokenizer from `tokenizer.json` and
`tokenizer_config.json`, which every push already publishes. The files are built by the Space's own
builder (`space/onnx_build.py`: standard operators only, the Space's CPU fusions are applied when it
loads a file), so the published int8 engine is the Space's.

Nothing is published unless the files are the model: the float file must give the torch model's
labels and logits on real test reviews, and the int8 file must give float32's labels on most of a
stratified sample of them. The int8 file's agreement is measured at push time on that sample and
written to `onnx_agreement.json` in the run folder, where the card reads it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from model_card.space_modules import space_module
from train.errors import UserError

ONNX_DIR = "onnx"
# What transformers.js requests for dtype "fp32" and "q8" (DEFAULT_DTYPE_SUFFIX_MAPPING: q8 -> "_quantized").
FLOAT_FILE = "model.onnx"
INT8_FILE = "model_quantized.onnx"
AGREEMENT_FILE = "onnx_agreement.json"
PREDICTIONS_FILE = "test_predictions.csv"
# Test reviews the int8 file is compared with float32 on: a stratified sample (by true label) of this many,
# or all of them in a smaller run. Each review is one call, as transformers.js runs a single text.
AGREEMENT_REVIEWS = 1000
SAMPLE_SEED = 0
# Reviews on which the float file must reproduce the torch model (labels and logits).
CHECK_REVIEWS = 8
# The float32 export computes the same function as torch in another order of operations: logits agree
# to a few units in the last float32 digits per layer; more than this means another function.
LOGIT_TOLERANCE = 1e-3
# Below this share of float32's labels the int8 file is not the same classifier, whatever caused it.
MIN_INT8_AGREEMENT = 0.95


def hub_files(run_dir: Path) -> Iterator[tuple[Path, str]]:
    """(local file, path in repo) for the ONNX files a push built into `run_dir/onnx/`."""
    for name in (FLOAT_FILE, INT8_FILE):
        path = run_dir / ONNX_DIR / name
        if path.is_file():
            yield path, f"{ONNX_DIR}/{name}"


def load_agreement(run_dir: Path) -> dict[str, Any] | None:
    """What the card says about the ONNX files: the measured agreement, or None when none are built."""
    path = run_dir / AGREEMENT_FILE
    if not path.is_file() or len(list(hub_files(run_dir))) < 2:
        return None
    return json.loads(path.read_text())


def remove(run_dir: Path) -> None:
    """Forget the ONNX files of an earlier push (`--no_onnx`): neither the upload nor the card names them."""
    shutil.rmtree(run_dir / ONNX_DIR, ignore_errors=True)
    (run_dir / AGREEMENT_FILE).unlink(missing_ok=True)


def _space_builder() -> ModuleType:
    """The Space's ONNX builder module (space/onnx_build.py), so the published int8 engine is the Space's."""
    return space_module("onnx_build")


@contextmanager
def quiet() -> Iterator[None]:
    """No progress bars (transformers' weight loading) or advice (ONNX Runtime's quantiser logs to the root
    logger), so a refused push still ends with its one sentence; restored afterwards."""
    from transformers.utils import logging as hf_logging

    bars, root = hf_logging.is_progress_bar_enabled(), logging.getLogger()
    level = root.level
    hf_logging.disable_progress_bar()
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def build(run_dir: Path) -> dict[str, Any]:
    """Build, check and measure the run's ONNX files in run_dir/onnx/, quietly; the agreement the card shows.

    Raises UserError (and leaves no ONNX file behind) when the model cannot be exported or the files
    do not reproduce it.
    """
    with quiet():
        return _build(Path(run_dir))


def _build(run_dir: Path) -> dict[str, Any]:
    remove(run_dir)
    reviews, total = sample_reviews(run_dir)
    staging = Path(tempfile.mkdtemp(prefix=".onnx-", dir=run_dir))
    try:
        try:
            files = _space_builder().build_published_onnx(run_dir, staging)
        except Exception as err:  # noqa: BLE001 - any failure of the exporter means the same to the user
            detail = str(err).strip().splitlines()
            raise UserError(
                f"The model in {run_dir} could not be exported to ONNX ({type(err).__name__}"
                f"{': ' + detail[0][:200] if detail else ''}): fix the model, or publish without ONNX "
                "with --no_onnx."
            ) from None
        checked = check_float_file(run_dir, Path(files["model"]), reviews[:CHECK_REVIEWS])
        agreement = measure_int8_agreement(
            run_dir, Path(files["model"]), Path(files["model_quantized"]), reviews
        )
        if agreement["label_agreement"] < MIN_INT8_AGREEMENT:
            raise UserError(
                f"The int8 ONNX file gives float32's label on only {agreement['label_agreement']:.1%} of "
                f"{agreement['reviews']} test reviews (at least {MIN_INT8_AGREEMENT:.0%} needed): "
                "nothing was published; publish without ONNX with --no_onnx."
            )
        agreement |= {"test_reviews": total, "checked_reviews": len(reviews[:CHECK_REVIEWS])}
        agreement["float_max_logit_difference"] = checked
        out = run_dir / ONNX_DIR
        out.mkdir()
        Path(files["model"]).replace(out / FLOAT_FILE)
        Path(files["model_quantized"]).replace(out / INT8_FILE)
        (run_dir / AGREEMENT_FILE).write_text(json.dumps(agreement, indent=2) + "\n")
        return agreement
    except BaseException:
        remove(run_dir)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def sample_reviews(run_dir: Path) -> tuple[list[str], int]:
    """A sample of AGREEMENT_REVIEWS test reviews (stratified by label, seeded), and how many the run has."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        raise UserError(
            f"{run_dir} has no {PREDICTIONS_FILE}, whose test reviews check the ONNX files: "
            "publish a run the training command finished, or publish without ONNX with --no_onnx."
        )
    table = pd.read_csv(path, usecols=["text", "label"]).dropna()
    if len(table) > AGREEMENT_REVIEWS:
        table, _ = train_test_split(
            table, train_size=AGREEMENT_REVIEWS, stratify=table["label"], random_state=SAMPLE_SEED
        )
    texts = [str(text) for text in table["text"] if str(text).strip()]
    if not texts:
        raise UserError(f"{path} holds no review text to check the ONNX files on: publish with --no_onnx.")
    return texts, len(pd.read_csv(path, usecols=["label"]))


def _encode(tokenizer, text: str, input_names: list[str]) -> dict[str, Any]:
    """One review as transformers.js and `pipeline` feed it: cut at the model's maximum length, no padding."""
    encoded = tokenizer(text, truncation=True, return_tensors="np")
    return {name: encoded[name].astype("int64") for name in input_names}


def _logits(session, tokenizer, texts: list[str]):
    import numpy as np

    names = [i.name for i in session.get_inputs()]
    return np.concatenate([session.run(None, _encode(tokenizer, text, names))[0] for text in texts])


def _session(path: Path):
    """ONNX Runtime with its default settings, as a user's service would load the published file."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def check_float_file(run_dir: Path, float_path: Path, texts: list[str]) -> float:
    """Raise UserError unless the float ONNX file gives the torch model's labels and logits on `texts`.

    Returns the largest logit difference.

    Its outputs must also be one logit per label of `config.json`, which is where transformers.js
    and `pipeline` take the label names from.
    """
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    model = AutoModelForSequenceClassification.from_pretrained(run_dir, dtype=torch.float32).eval()
    labels = len(model.config.id2label)
    with torch.inference_mode():
        expected = np.concatenate(
            [model(**tokenizer(text, truncation=True, return_tensors="pt")).logits.numpy() for text in texts]
        )
    try:
        got = _logits(_session(float_path), tokenizer, texts)
    except Exception as err:  # noqa: BLE001 - a file ORT cannot run is unpublishable, whatever the cause
        raise UserError(
            f"The exported ONNX file does not run in ONNX Runtime ({type(err).__name__}): nothing was "
            "published; publish without ONNX with --no_onnx."
        ) from None
    if got.shape != expected.shape or got.shape[-1] != labels:
        raise UserError(
            f"The exported ONNX file gives {got.shape[-1]} logits per review where config.json names "
            f"{labels} labels: nothing was published; publish without ONNX with --no_onnx."
        )
    same_labels = (got.argmax(-1) == expected.argmax(-1)).all()
    worst = float(np.abs(got - expected).max())
    if not same_labels or not np.allclose(got, expected, atol=LOGIT_TOLERANCE, rtol=LOGIT_TOLERANCE):
        raise UserError(
            f"The exported ONNX file disagrees with the model on {len(texts)} test reviews (logits differ "
            f"by up to {worst:.3g}, labels {'equal' if same_labels else 'differ'}): nothing was published; "
            "publish without ONNX with --no_onnx."
        )
    return worst


def measure_int8_agreement(
    run_dir: Path, float_path: Path, int8_path: Path, texts: list[str]
) -> dict[str, Any]:
    """How often the int8 file's label equals the float file's on `texts`, and how far P(label) moves."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    probabilities = {}
    for name, path in (("float32", float_path), ("int8", int8_path)):
        try:
            logits = _logits(_session(path), tokenizer, texts).astype(np.float64)
        except Exception as err:  # noqa: BLE001 - as in check_float_file
            raise UserError(
                f"The {name} ONNX file does not run in ONNX Runtime ({type(err).__name__}): nothing was "
                "published; publish without ONNX with --no_onnx."
            ) from None
        exp = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities[name] = exp / exp.sum(-1, keepdims=True)
    if probabilities["int8"].shape != probabilities["float32"].shape:
        raise UserError(
            "The int8 ONNX file gives another number of logits than the float one: nothing was published; "
            "publish without ONNX with --no_onnx."
        )
    same = probabilities["int8"].argmax(-1) == probabilities["float32"].argmax(-1)
    difference = np.abs(probabilities["int8"] - probabilities["float32"]).max(-1)
    return {
        "reviews": len(texts),
        "sample": f"stratified by true label, seed {SAMPLE_SEED}, from {PREDICTIONS_FILE}",
        "label_agreement": float(same.mean()),
        "disagreements": int((~same).sum()),
        "mean_abs_probability_difference": float(difference.mean()),
        "max_abs_probability_difference": float(difference.max()),
    }
