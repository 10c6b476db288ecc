"""The model card of a real tiny run: metadata, model-index round trip, sections, numbers, figures, HTML.

One real two-preset sweep of the tiny model (`python -m train --sweep`) is trained once for the module,
so the card is checked on the files the training command really writes, sweep table included.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import markdown
import pandas as pd
import pytest
import torch
from conftest import ROOT, build_tiny_model, train_tiny
from examples import EXAMPLES  # space/examples.py (tests/space_fixtures.py puts space/ on sys.path)
from huggingface_hub import CardData, ModelCard
from transformers import pipeline

from model_card.card import build_card, escape_cell, fmt
from model_card.names import local_dataset_name, resolve_base_model

REPO_ID = "alice/imdb-tiny"
BASE_ID = "distilbert/distilbert-base-uncased"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = (
    "## Results",
    "### Calibration",
    "### Hyperparameter sweep",
    "### Per class",
    "### Confusion matrix",
    "### Training curves",
    "## How to use",
    "## Training data",
    "## Training procedure",
    "### Hyperparameters",
    "## Error analysis",
    "### Accuracy by review length",
    "### Misclassified examples",
    "## Intended use and limitations",
    "## Citation",
)


def run_card_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_card", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def tables(text: str) -> dict[str, list[list[str]]]:
    """Every Markdown table of the card by its first header cell, as rows of stripped cells."""
    found: dict[str, list[list[str]]] = {}
    for block in re.findall(r"(?:^\|.*\|\n)+", text, flags=re.MULTILINE):
        rows = [
            [cell.strip() for cell in line.strip("|").split(" | ")] for line in block.strip().splitlines()
        ]
        found[rows[0][0]] = rows[2:]
    return found


def expected_widget(model_dir: Path) -> list[dict]:
    """The Space's examples as Hub widget entries with the model's own float32 scores, computed here."""
    classifier = pipeline(
        "text-classification", model=str(model_dir), dtype=torch.float32, top_k=None, device="cpu"
    )
    scores = classifier([text for _, text in EXAMPLES], truncation=True)
    return [
        {"text": text, "example_title": title, "output": [{**o, "score": round(o["score"], 4)} for o in out]}
        for (title, text), out in zip(EXAMPLES, scores)
    ]


def assert_widget_is_the_models(data: CardData, model_dir: Path) -> None:
    """The card's widget lists every example of the Space with exactly the scores the model gives it."""
    widget = data.get("widget")
    assert widget == expected_widget(model_dir)
    assert [w["example_title"] for w in widget] == [title for title, _ in EXAMPLES]
    for entry in widget:
        assert {o["label"] for o in entry["output"]} == {"NEGATIVE", "POSITIVE"}
        assert sum(o["score"] for o in entry["output"]) == pytest.approx(1, abs=2e-4)


def rebuild(run_dir: Path, tmp_path: Path, **changes: object) -> ModelCard:
    """A copy of the run with results.json changed (a key set to None is removed), its card rebuilt."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    results = json.loads((copy / "results.json").read_text())
    for key, value in changes.items():
        results[key] = value
        if value is None:
            del results[key]
    (copy / "results.json").write_text(json.dumps(results))
    # In this process: the fixture's card and test_not_a_run_gives_one_sentence_and_exit_2 run the CLI itself.
    return ModelCard.load(build_card(copy, repo_id=REPO_ID))


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep member run dir with its card built by the CLI, as a user would."""
    sweep = train_tiny(
        tiny_model_dir,
        tmp_path_factory.mktemp("sweep"),
        "--sweep",
        "standard,high-lr",
        "--eval_windows",
        "--window_stride",
        "16",
    )
    run = sweep / "standard"
    result = run_card_cli("build", str(run), "--repo_id", REPO_ID, "--base_model", BASE_ID)
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="module")
def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def card(run_dir: Path) -> ModelCard:
    return ModelCard.load(run_dir / "README.md")


def test_metadata(card: ModelCard, results: dict) -> None:
    data = card.data
    assert data.license == "apache-2.0" and data.language == "en"
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert data.base_model == BASE_ID
    assert data.datasets == ["stanfordnlp/imdb"]
    assert data.metrics == ["accuracy", "f1", "precision", "recall"]
    assert {"text-classification", "sentiment-analysis", "imdb", "full-fine-tuning"} <= set(data.tags)
    assert data.model_name == REPO_ID.split("/")[1]
    # Built without ONNX files: nothing tells transformers.js users there is something for them.
    assert not {"onnx", "transformers.js"} & set(data.tags)


def test_widget_shows_the_space_examples_with_the_models_scores(
    card: ModelCard, run_dir: Path, tmp_path: Path
) -> None:
    assert_widget_is_the_models(card.data, run_dir)
    # The run's weights replaced by another random tiny model's, whose scores differ clearly from review to
    # review and from the run's: the widget follows the weights in the folder, example by example.
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    model = build_tiny_model(tmp_path / "model", seed=1, initializer_range=0.2)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model / name, other / name)
    build_card(other, repo_id=REPO_ID)
    data = ModelCard.load(other / "README.md").data
    assert_widget_is_the_models(data, other)
    positive = [next(o["score"] for o in w["output"] if o["label"] == "POSITIVE") for w in data["widget"]]
    assert max(positive) - min(positive) > 0.01, positive
    assert data["widget"] != card.data["widget"]


def test_model_index_round_trips_with_the_test_metrics(card: ModelCard, results: dict) -> None:
    test = results["metrics"]["test"]
    by_type = {r.metric_type: r for r in card.data.eval_results}
    assert {"accuracy", "f1", "precision", "recall"} <= set(by_type)
    for metric, result in by_type.items():
        assert result.metric_value == pytest.approx(test[metric])
        assert result.task_type == "text-classification"
        assert result.dataset_type == "stanfordnlp/imdb" and result.dataset_split == "test"
        assert result.dataset_name == f"IMDb ({test['num_examples']} test reviews)"


def test_every_section_is_there(card: ModelCard) -> None:
    for heading in SECTIONS:
        assert f"\n{heading}\n" in card.text, heading


def test_result_tables_equal_results_json(card: ModelCard, results: dict) -> None:
    metrics = results["metrics"]
    found = tables(card.text)
    # Rows by split and kind: the baseline, and with --eval_windows the test split without windows.
    kinds = ("baseline", "truncated")
    rows = {" ".join([row[1].strip("*"), *(k for k in kinds if k in row[0])]): row for row in found["Model"]}
    for key, m in (
        ("test", metrics["test"]),
        ("validation", metrics["validation"]),
        ("test baseline", metrics["baseline"]),
        ("test truncated", metrics["test_truncated"]),
    ):
        assert rows[key][2:] == [
            fmt(m["num_examples"]),
            *(fmt(m.get(k)) for k in ("accuracy", "f1", "precision", "recall", "roc_auc", "loss")),
        ], key
    per_class = {row[0]: row[1:] for row in found["Class"]}
    for label, c in metrics["test"]["per_class"].items():
        assert per_class[label] == [fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]), fmt(c["support"])]
    (tn, fp), (fn, tp) = metrics["test"]["confusion_matrix"]
    assert [row[1:] for row in found["True \\ Predicted"]] == [[fmt(tn), fmt(fp)], [fmt(fn), fmt(tp)]]
    splits = {row[0]: row for row in found["Split"]}
    for split, n in results["dataset"]["splits"].items():
        counts = results["dataset"]["label_counts"][split]
        assert splits[split][1:4] == [fmt(n), fmt(counts["NEGATIVE"]), fmt(counts["POSITIVE"])]
    setup = dict(found["Setting"])
    assert (
        f"{results['model']['trainable_parameters']:,} of {results['model']['num_parameters']:,}"
        in setup["Trainable parameters"]
    )
    assert fmt(results["timings"]["train_samples_per_second"], 1) in setup["Training throughput"]


def test_sweep_table_lists_every_preset(card: ModelCard, run_dir: Path) -> None:
    sweep = pd.read_csv(run_dir.parent / "sweep.csv")
    rows = tables(card.text)["Preset"]
    assert len(rows) == len(sweep)
    for row, expected in zip(rows, sweep.to_dict("records")):
        assert f"`{expected['preset']}`" in row[0]
        assert row[5:9] == [fmt(float(expected[k])) for k in ("accuracy", "f1", "precision", "recall")]
    assert "this model" in next(row[0] for row in rows if "`standard`" in row[0])


def test_error_analysis_counts_every_test_review(card: ModelCard, run_dir: Path, results: dict) -> None:
    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    max_length = results["model"]["max_length"]
    buckets = tables(card.text)["Tokens"]
    assert sum(int(row[1].replace(",", "")) for row in buckets) == len(predictions)
    assert buckets[-1][0] == f"> {max_length} (in windows)"  # the run used --eval_windows
    assert int(buckets[-1][1]) == int((predictions["n_tokens"] > max_length).sum())
    wrong = predictions[~predictions["correct"]]
    fp = int((wrong["label"] == "NEGATIVE").sum())
    assert f"makes {fp} false positives" in " ".join(card.text.split())
    shown = tables(card.text).get("True", [])
    assert len(shown) == sum(min(3, n) for n in wrong["label"].value_counts())
    assert all(row[0] != row[1] for row in shown)


def test_usage_snippets_name_the_repo_and_command_and_no_space_unless_given(
    card: ModelCard, results: dict, run_dir: Path, tmp_path: Path
) -> None:
    assert f'pipeline("text-classification", model="{REPO_ID}")' in card.text
    # Built without --space_id: no Space is guessed, so nothing links or calls one.
    assert "huggingface.co/spaces" not in card.text and "gradio_client" not in card.text
    given = tmp_path / "run"
    shutil.copytree(run_dir, given)
    build_card(given, repo_id=REPO_ID, space_id="alice/demo")
    text = (given / "README.md").read_text()
    assert "[`alice/demo`](https://huggingface.co/spaces/alice/demo)" in text and 'Client("alice/demo")' in text
    assert results["command"] in card.text.replace(" \\\n    ", " ")  # one option per line in the card
    assert "@inproceedings{maas-etal-2011-learning" in card.text and "sanh2019distilbert" in card.text


def test_figures_are_small_pngs_referenced_by_the_card(card: ModelCard, run_dir: Path) -> None:
    for name in ("confusion_matrix.png", "training_curves.png", "length_histogram.png", "reliability_diagram.png"):
        data = (run_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) < 300_000, name
        assert f"]({name})" in card.text


def test_card_renders_to_html_with_tables_images_and_code(card: ModelCard) -> None:
    html = markdown.markdown(card.text, extensions=["tables", "fenced_code"])
    assert html.count("<table>") == len(tables(card.text)) >= 9
    assert sorted(re.findall(r'<img alt="[^"]+" src="([^"]+)"', html)) == [
        "confusion_matrix.png",
        "length_histogram.png",
        "reliability_diagram.png",
        "training_curves.png",
    ]
    assert '<code class="language-python">' in html and '<code class="language-bibtex">' in html
    # No table row fell out of its table, no review HTML leaked into the page.
    assert not re.search(r"<p>\|", html) and "<br" not in html


def test_local_base_model_shows_its_name_and_config_origin(tmp_path: Path) -> None:
    folder = tmp_path / "my-encoder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    base = resolve_base_model(str(folder))
    assert base.hub_id is None and base.name == "my-encoder"
    assert (
        base.markdown
        == "`my-encoder` (a local model; config `_name_or_path`: `nreimers/MiniLM-L6-H384-uncased`)"
    )
    assert resolve_base_model("distilbert-base-uncased").hub_id == "distilbert-base-uncased"


def test_review_text_is_escaped_for_a_table_cell() -> None:
    assert escape_cell("Great<br /><br />*not*  | 5/10 <b>") == r"Great \*not\* \| 5/10 &lt;b&gt;"


def test_not_a_run_gives_one_sentence_and_exit_2(tmp_path: Path, run_dir: Path) -> None:
    for args, expected in (
        ([str(tmp_path / "nowhere")], "does not exist"),
        ([str(tmp_path)], "results.json is missing"),
        ([str(run_dir.parent)], f"is a sweep, not a run: give one of its runs, e.g. {run_dir.parent}/"),
        ([str(run_dir), "--repo_id", "not a repo"], "is not a Hub repo id"),
    ):
        result = run_card_cli("build", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0
        assert expected in result.stderr, result.stderr


def test_card_names_no_path_of_this_machine(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    text = (run_dir / "README.md").read_text()
    for path in (str(ROOT), str(tmp_path_factory.getbasetemp())):
        assert path not in text
    # A results.json from before portable names: its absolute dataset path shows as the folder's name.
    assert local_dataset_name("/home/someone/data/imdb") == "imdb"
    assert local_dataset_name("../shared/data/imdb") == "../shared/data/imdb"
    assert local_dataset_name("stanfordnlp/imdb") is None


def test_ctrl_c_names_resume_only_for_the_command_that_has_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import model_card.__main__ as card_cli
    import train.run as train_cli

    def interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(card_cli, "_parser", interrupt)
    monkeypatch.setattr(train_cli, "parse_config", interrupt)
    for main, resumable in ((card_cli.main, False), (train_cli.main, True)):
        with pytest.raises(SystemExit) as stopped:
            main([])
        message = capsys.readouterr().err
        assert stopped.value.code == 130 and message.startswith("interrupted: ") and message.count("\n") == 1
        assert ("--resume" in message) is resumable, message


NEW_KEYS = ("applied", "fitted_temperature", "check", "reason")
BEFORE_AFTER = ("ece_before", "ece_after", "nll_before", "nll_after")
REPORTS = ("test", "test_windowed", "validation")
TWO_PANELS_WIDER_THAN = 650  # pixels: the one-panel diagram is about 460 wide, the two-panel one about 840


def raw_side_only(report: dict) -> dict:
    """A report whose "after" side is unusable: a card reading it for unapplied scores shows 0.999, or fails."""
    raw = {k: v for k, v in report.items() if k != "reliability_after"}
    return {**raw, "ece_after": 0.999, "nll_after": 9.999}


def decided(calibration: dict, applied: bool) -> dict:
    """The run's calibration record as the training command writes it since the held-out check (fixture)."""
    before, after = (0.312, 0.298) if applied else (0.312, 0.318)
    verdict = "lowered" if applied else "did not lower"
    if not applied:  # nothing folded in: the card may show the raw side only
        calibration = {k: raw_side_only(v) if k in REPORTS and v else v for k, v in calibration.items()}
    return {
        **calibration,
        "applied": applied,
        "temperature": 1.4137 if applied else 1.0,
        "fitted_temperature": 1.4137,
        "fitted_on": "calibration reviews held out of training",
        "num_examples": 200,
        "check": {"held_out_nll_before": before, "held_out_nll_after": after, "folds": 2},
        "reason": f"{'' if applied else 'not '}calibrated: a temperature fitted on half of the 200 "
        f"calibration reviews {verdict} the negative log-likelihood on the other half "
        f"({before:.3f} -> {after:.3f})",
    }


def calibration_claims(text: str) -> list[str]:
    """Where the card calls something calibrated: all but "not (a) calibrated" and "perfectly calibrated"."""
    return [
        text[max(0, m.start() - 30) : m.end()]
        for m in re.finditer("calibrated", text, flags=re.IGNORECASE)
        if not re.search(r"(not|not a|perfectly) $", text[max(0, m.start() - 12) : m.start()], re.IGNORECASE)
    ]


def png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # the IHDR chunk's width


def assert_calibration_section(card: ModelCard, calibration: dict) -> None:
    """The section says what the training command did: applied, or not and why, never calibrated when not."""
    text = " ".join(card.text.split())
    rows = {row[0]: row[1:] for row in tables(card.text)["Scores"]}
    windowed = bool(calibration.get("test_windowed"))
    headline = f"test{', long reviews in windows' if windowed else ''} (the headline scores)"
    report = calibration["test_windowed" if windowed else "test"]
    if calibration.get("reason"):
        reason = calibration["reason"]
        assert f"{reason[0].upper()}{reason[1:]}." in text
    if calibration.get("check"):
        check = calibration["check"]
        assert f"negative log-likelihood {fmt(check['held_out_nll_before'], 3)} without it, " in text
        assert f"{fmt(check['held_out_nll_after'], 3)} with it" in text
    if calibration.get("applied", True):
        temperature = fmt(calibration["temperature"], 3)
        claim = f"temperature-calibrated probabilities: after training, one temperature T = {temperature}"
        assert claim in text
        assert "returns calibrated scores with no custom code" in text
        assert rows[headline] == [fmt(report[k]) for k in BEFORE_AFTER]
        assert "the score is calibrated on IMDb reviews (see Calibration)" in text
        assert "the score is not a calibrated probability" not in text
        return
    assert "The scores are **not calibrated**" in text and "returns the model's own softmax" in text
    if calibration.get("fitted_temperature"):
        assert f"T = {fmt(calibration['fitted_temperature'], 3)} fitted on" in text and "was left out" in text
    # The published scores are the raw ones: the table and diagram show those, nothing calls them calibrated.
    assert rows[headline] == [fmt(report[k]) for k in ("ece_before", "nll_before")]
    assert calibration_claims(card.text) == []
    assert "the score is not a calibrated probability" in text


def test_calibration_section_shows_results_json(card: ModelCard, results: dict) -> None:
    """The real run's record, applied or not (the training command decides by its held-out check)."""
    calibration = results["calibration"]  # written by the training command
    assert_calibration_section(card, calibration)
    if calibration.get("applied", True) and calibration.get("fitted_on") == "validation":
        rows = {row[0]: row[1:] for row in tables(card.text)["Scores"]}
        label = f"validation (the temperature was fitted on these {calibration['num_examples']})"
        assert rows[label] == [fmt(calibration["validation"][k]) for k in BEFORE_AFTER]


@pytest.mark.parametrize("applied", [True, False])
def test_calibration_section_follows_the_held_out_check(
    run_dir: Path, results: dict, tmp_path: Path, applied: bool
) -> None:
    calibration = decided(results["calibration"], applied)
    card = rebuild(run_dir, tmp_path, calibration=calibration)
    assert_calibration_section(card, calibration)
    text = " ".join(card.text.split())
    assert "200 calibration reviews held out of training" in text
    assert ("temperature-calibrated" in text) is applied and ("not calibrated" in text) is not applied
    # The diagram stays; without a temperature it shows the published scores alone, in one panel.
    assert "](reliability_diagram.png)" in card.text
    assert (png_width(tmp_path / "run" / "reliability_diagram.png") > TWO_PANELS_WIDER_THAN) is applied


def test_results_json_from_before_the_check_reads_as_calibrated(
    run_dir: Path, results: dict, tmp_path: Path
) -> None:
    """Committed runs' results.json has no `applied`: their temperature was folded in; the card says so."""
    old = {k: v for k, v in decided(results["calibration"], True).items() if k not in NEW_KEYS}
    old |= {"fitted_on": "validation", "num_examples": 32, "validation": results["calibration"]["test"]}
    card = rebuild(run_dir, tmp_path, calibration=old)
    assert_calibration_section(card, old)
    assert "the temperature was fitted on these 32" in card.text and "32 validation reviews" in card.text


def test_committed_runs_still_render(tmp_path: Path) -> None:
    """The results/ folders (no model or predictions): each card builds, calibrated as it was, with the Beyond IMDb
    and Behaviour suite sections exactly where its results.json has them."""
    for results_file in sorted((ROOT / "results").glob("*/results.json")):
        run = tmp_path / results_file.parent.name
        run.mkdir()
        shutil.copy(results_file, run)
        card = ModelCard.load(build_card(run, repo_id=REPO_ID))
        results = json.loads(results_file.read_text())
        calibration = results.get("calibration")
        assert ("### Calibration" in card.text) is bool(calibration)
        if calibration and (results.get("task") or {}).get("kind") == "regression":  # a rating: no temperature
            reason = calibration["reason"]
            assert f"{reason[0].upper()}{reason[1:]}." in " ".join(card.text.split())
            assert "temperature-calibrated" not in card.text
        elif calibration:
            assert_calibration_section(card, calibration)
        assert ("## Beyond IMDb" in card.text) is bool(results.get("extra_eval"))
        assert ("## Behaviour suite" in card.text) is bool(results.get("behaviour"))
        assert card.data.get("widget") is None  # no weights to score the examples with


def test_reliability_diagram_counts_every_test_review(run_dir: Path, results: dict) -> None:
    """The figure is drawn from the windowed (headline) table, whose bins hold every test review."""
    report = results["calibration"]["test_windowed"]
    for side in ("reliability_before", "reliability_after"):
        assert sum(b["count"] for b in report[side]) == results["metrics"]["test"]["num_examples"]
    image = (run_dir / "reliability_diagram.png").read_bytes()
    assert image.startswith(PNG_MAGIC)


def test_run_without_calibration_has_no_section_and_no_diagram(run_dir: Path, tmp_path: Path) -> None:
    """An older run's results.json has no `calibration`: no section, and an earlier build's figure is removed."""
    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old)
    results = json.loads((old / "results.json").read_text())
    del results["calibration"]
    (old / "results.json").write_text(json.dumps(results))
    assert (old / "reliability_diagram.png").is_file()
    build_card(old, repo_id=REPO_ID)
    text = (old / "README.md").read_text()
    assert "### Calibration" not in text and "reliability_diagram.png" not in text
    assert "the score is not a calibrated probability" in text
    assert not (old / "reliability_diagram.png").exists()


EXTRA_EVAL = {
    "amazon-books": {"path": "/home/someone/data/amazon_books.csv", "n": 300, "mean_words": 80.46,
                     "skipped_unlabelled": 2, "accuracy": 0.85, "f1": 0.8421, "ece": 0.0512, "nll": 0.4013,
                     "mean_confidence": 0.9032},
    "tweets": {"path": "data/tweets.jsonl", "n": 100, "mean_words": 15.0, "skipped_unlabelled": 0,
               "accuracy": 0.7, "f1": 0.7143, "ece": 0.1501, "nll": 0.7012, "mean_confidence": 0.8811},
}  # fmt: skip
BEHAVIOUR = {
    "capabilities": {
        "negation": {"cases": 20, "failures": 5, "failure_rate": 0.25,
                     "description": "a negated praise is negative",
                     "examples": [{"text": "The film was not good | at all.", "expected": "NEGATIVE",
                                   "predicted": "POSITIVE", "score": 0.81}]},
        "intensity": {"cases": 10, "failures": 1, "failure_rate": 0.1,
                      "description": "a strong verdict is as sure as its plain form",
                      "examples": [{"text": "The film was truly bad.", "expected": "NEGATIVE",
                                    "predicted": "NEGATIVE", "score": 0.55,
                                    "reference": "The film was bad."}]},
        "invariance": {"cases": 10, "failures": 0, "failure_rate": 0.0,
                       "description": "a name must not flip a review", "examples": []},
    },
    "neutral": {"cases": 30, "mean_confidence": 0.874, "description": "e.g. 'The film runs 120 minutes.'"},
}  # fmt: skip


def test_card_without_extra_sets_or_behaviour_suite_has_neither_section(
    run_dir: Path, tmp_path: Path
) -> None:
    card = rebuild(run_dir, tmp_path, extra_eval=None, behaviour=None)
    assert "## Beyond IMDb" not in card.text and "## Behaviour suite" not in card.text
    assert "Behaviour suite" not in card.text and "Beyond IMDb" not in card.text  # nor a reference to them
    assert {r.dataset_type for r in card.data.eval_results} == {"stanfordnlp/imdb"}


def test_the_runs_own_behaviour_suite_is_in_its_card(card: ModelCard, results: dict) -> None:
    """The training command's own suite, when it wrote one: each capability, its cases and failure rate."""
    if not results.get("behaviour"):
        pytest.skip("this training command writes no behaviour suite")
    capabilities = results["behaviour"]["capabilities"]
    rows = tables(card.text)["Capability"]
    assert [row[0] for row in rows] == [escape_cell(name) for name in capabilities]
    for row, c in zip(rows, capabilities.values()):
        assert row[2:4] == [fmt(c["cases"]), f"{c['failure_rate']:.1%} ({c['failures']})"]
        assert (row[4] == "–") is (not c["examples"])


def test_beyond_imdb_section_and_model_index_follow_extra_eval(
    run_dir: Path, results: dict, tmp_path: Path
) -> None:
    # Not calibrated, with an unusable "after" side: the IMDb row must show the published (raw) scores.
    calibration = decided(results["calibration"], applied=False)
    card = rebuild(run_dir, tmp_path, extra_eval=EXTRA_EVAL, behaviour=None, calibration=calibration)
    text = " ".join(card.text.split())
    assert "## Beyond IMDb" in card.text and "## Behaviour suite" not in card.text
    assert "These sets were only measured: the model was never trained on them" in text
    assert "choosing the checkpoint or in fitting the calibration temperature" in text
    rows = tables(card.text)["Set"]
    test, words = results["metrics"]["test"], results["dataset"]["length"]["test"]["words"]["mean"]
    report = calibration["test_windowed"]
    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    assert rows[0] == [
        "**IMDb test** (for comparison)", "the IMDb test split of the tables above",
        fmt(test["num_examples"]), fmt(words, 1), fmt(test["accuracy"]), fmt(test["f1"]),
        fmt(report["ece_before"]),
        fmt(report["nll_before"], 3), fmt(float(predictions["confidence"].mean())),
    ]  # fmt: skip
    assert rows[1:] == [
        ["amazon-books", r"amazon\_books.csv (2 unlabelled rows skipped)", "300", "80.5", "0.8500", "0.8421",
         "0.0512", "0.401", "0.9032"],
        ["tweets", "tweets.jsonl", "100", "15.0", "0.7000", "0.7143", "0.1501", "0.701", "0.8811"],
    ]  # fmt: skip
    assert "/home/someone" not in card.text  # a file is named, never a path of the machine that measured it
    # model-index: one entry per set (the Hub groups by dataset type), accuracy and F1 each.
    extra = {
        (r.dataset_name, r.metric_type): r
        for r in card.data.eval_results
        if r.dataset_type != "stanfordnlp/imdb"
    }
    assert {k: r.metric_value for k, r in extra.items()} == {
        (name, metric): EXTRA_EVAL[name][metric] for name in EXTRA_EVAL for metric in ("accuracy", "f1")
    }
    assert {extra[(name, "f1")].dataset_type for name in EXTRA_EVAL} == {"amazon_books.csv", "tweets.jsonl"}
    assert len(card.data.to_dict()["model-index"][0]["results"]) == 3


def test_behaviour_suite_section_follows_results_json(run_dir: Path, tmp_path: Path) -> None:
    card = rebuild(run_dir, tmp_path, behaviour=BEHAVIOUR, extra_eval=None)
    text = " ".join(card.text.split())
    assert "## Behaviour suite" in card.text and "## Beyond IMDb" not in card.text
    assert tables(card.text)["Capability"] == [
        ["negation", "a negated praise is negative", "20", "25.0% (5)",
         r"The film was not good \| at all. (expected NEGATIVE, predicted POSITIVE at 0.81)"],
        ["intensity", "a strong verdict is as sure as its plain form", "10", "10.0% (1)",
         "The film was truly bad. (expected NEGATIVE, predicted NEGATIVE at 0.55; "
         "against The film was bad.)"],
        ["invariance", "a name must not flip a review", "10", "0.0% (0)", "–"],
    ]  # fmt: skip
    assert (
        "A two-class model cannot say neutral; on 30 neutral factual sentences its mean confidence is 87.4%"
        in text
    )
    html = markdown.markdown(card.text, extensions=["tables"])
    assert not re.search(r"<p>\|", html)  # the pipe in the example stayed inside its cell
