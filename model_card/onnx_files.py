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

Any number of classes is checked the same way (labels by argmax, probabilities by softmax). A rating
model (config.json `problem_type: "regression"`, one output) has no label to agree on: its outputs are
compared as values, the float file's within LOGIT_TOLERANCE of torch's and the int8 file's within a
share of config.json's `rating_range` of float32's (the agreement then holds `"task": "regression"`
and rating differences instead of label and probability ones).
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
# A rating model's int8 rating "agrees" with float32's within this share of the rating range (0.45 on 1-10,
# under half a star); below MIN_INT8_AGREEMENT of the reviews within it, it is not the same rating model.
RATING_TOLERANCE_SHARE = 0.05
REGRESSION = "regression"


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


def rating_range(run_dir: Path) -> tuple[float, float] | None:
    """config.json's `rating_range` for a rating model (problem_type "regression"); None for a classifier.

    Raises UserError when a rating model's config.json names no usable range, which the int8 check needs.
    """
    config = json.loads((run_dir / "config.json").read_text())
    if config.get("problem_type") != REGRESSION:
        return None
    bounds = config.get("rating_range")
    try:
        low, high = (float(value) for value in bounds)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not low < high:
        raise UserError(
            f"{run_dir / 'config.json'} is a rating model's (problem_type \"regression\") but has no "
            f"rating_range [min, max] (it has {bounds!r}), which the int8 ONNX check measures its tolerance "
            "by: add it, or publish without ONNX with --no_onnx."
        )
    return low, high


def _build(run_dir: Path) -> dict[str, Any]:
    remove(run_dir)
    ratings = rating_range(run_dir)
    reviews, total = sample_reviews(run_dir, rated=ratings is not None)
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
        if ratings is None:
            agreement = measure_int8_agreement(
                run_dir, Path(files["model"]), Path(files["model_quantized"]), reviews
            )
            require_int8_agreement(agreement)
        else:
            agreement = measure_int8_rating_agreement(
                run_dir, Path(files["model"]), Path(files["model_quantized"]), reviews, ratings
            )
        agreement |= {"test_reviews": total, "checked_reviews": len(reviews[:CHECK_REVIEWS])}
        agreement[f"float_max_{'logit' if ratings is None else 'rating'}_difference"] = checked
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


def require_int8_agreement(agreement: dict[str, Any]) -> None:
    """Raise UserError where the int8 file gives float32's label on under MIN_INT8_AGREEMENT of reviews."""
    if agreement["label_agreement"] < MIN_INT8_AGREEMENT:
        raise UserError(
            f"The int8 ONNX file gives float32's label on only {agreement['label_agreement']:.1%} of "
            f"{agreement['reviews']} test reviews (at least {MIN_INT8_AGREEMENT:.0%} needed): "
            "nothing was published; publish without ONNX with --no_onnx."
        )


def _strata(labels, rated: bool):
    """What the sample is stratified by: the label, or a rating rounded to a whole number; None where that
    cannot be done (a group of one review, more groups than either side of the split holds, a label that
    is no rating), so the sample is then a plain random one."""
    import pandas as pd

    if rated:
        labels = pd.to_numeric(labels, errors="coerce").round()
    counts = labels.value_counts()
    fits = len(counts) <= min(AGREEMENT_REVIEWS, len(labels) - AGREEMENT_REVIEWS)
    return labels if fits and counts.min() >= 2 and not labels.isna().any() else None


def sample_reviews(run_dir: Path, rated: bool = False) -> tuple[list[str], int]:
    """A sample of AGREEMENT_REVIEWS test reviews (stratified by label, seeded), and how many the run has.

    `rated`: the labels are ratings, stratified by their nearest whole number.
    """
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
            table,
            train_size=AGREEMENT_REVIEWS,
            stratify=_strata(table["label"], rated),
            random_state=SAMPLE_SEED,
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
    and `pipeline` take the label names from. A rating model's one output is its rating: no label is
    compared, only the values.
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
    worst = float(np.abs(got - expected).max())
    if model.config.problem_type == REGRESSION:
        if not np.allclose(got, expected, atol=LOGIT_TOLERANCE, rtol=LOGIT_TOLERANCE):
            raise UserError(
                f"The exported ONNX file disagrees with the rating model on {len(texts)} test reviews "
                f"(ratings differ by up to {worst:.3g}): nothing was published; publish without ONNX with "
                "--no_onnx."
            )
        return worst
    same_labels = (got.argmax(-1) == expected.argmax(-1)).all()
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

    probabilities = {}
    for name, logits in _outputs(run_dir, float_path, int8_path, texts).items():
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


def _outputs(run_dir: Path, float_path: Path, int8_path: Path, texts: list[str]) -> dict[str, Any]:
    """The float32 and int8 files' outputs on `texts` (float64), as a user's ONNX Runtime gives them."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    outputs = {}
    for name, path in (("float32", float_path), ("int8", int8_path)):
        try:
            outputs[name] = _logits(_session(path), tokenizer, texts).astype(np.float64)
        except Exception as err:  # noqa: BLE001 - as in check_float_file
            raise UserError(
                f"The {name} ONNX file does not run in ONNX Runtime ({type(err).__name__}): nothing was "
                "published; publish without ONNX with --no_onnx."
            ) from None
    return outputs


def measure_int8_rating_agreement(
    run_dir: Path, float_path: Path, int8_path: Path, texts: list[str], ratings: tuple[float, float]
) -> dict[str, Any]:
    """How far the int8 file's rating is from the float file's on `texts`, raw values (no softmax, no argmax).

    Raises UserError unless it is within RATING_TOLERANCE_SHARE of the rating range on at least
    MIN_INT8_AGREEMENT of them.
    """
    import numpy as np

    outputs = _outputs(run_dir, float_path, int8_path, texts)
    if outputs["int8"].shape != outputs["float32"].shape or outputs["float32"].shape[-1] != 1:
        raise UserError(
            f"The ONNX files give {outputs['float32'].shape[-1]} (float32) and {outputs['int8'].shape[-1]} "
            "(int8) values per review where a rating model gives one: nothing was published; publish "
            "without ONNX with --no_onnx."
        )
    difference = np.abs(outputs["int8"] - outputs["float32"])[:, 0]
    tolerance = RATING_TOLERANCE_SHARE * (ratings[1] - ratings[0])
    within = difference <= tolerance
    if within.mean() < MIN_INT8_AGREEMENT:
        raise UserError(
            f"The int8 ONNX file's rating is within {tolerance:.3g} of float32's on only "
            f"{within.mean():.1%} of {len(texts)} test reviews (at least {MIN_INT8_AGREEMENT:.0%} needed; "
            f"it differs by up to {difference.max():.3g} on a {ratings[0]:g}-{ratings[1]:g} scale): nothing "
            "was published; publish without ONNX with --no_onnx."
        )
    return {
        "task": REGRESSION,
        "reviews": len(texts),
        "sample": f"stratified by true rating (to the nearest whole number), seed {SAMPLE_SEED}, "
        f"from {PREDICTIONS_FILE}",
        "rating_range": list(ratings),
        "tolerance": tolerance,
        "within_tolerance": float(within.mean()),
        "outside_tolerance": int((~within).sum()),
        "mean_abs_rating_difference": float(difference.mean()),
        "max_abs_rating_difference": float(difference.max()),
    }
