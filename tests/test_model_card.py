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
from conftest import ROOT, train_tiny
from huggingface_hub import ModelCard

from model_card.card import escape_cell, fmt
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
    assert run_card_cli("build", str(given), "--repo_id", REPO_ID, "--space_id", "alice/demo").returncode == 0
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


def test_calibration_section_shows_results_json(card: ModelCard, results: dict) -> None:
    calibration = results["calibration"]  # written by the training command
    text = " ".join(card.text.split())
    assert f"T = {fmt(calibration['temperature'], 3)}" in text
    assert f"{fmt(calibration['num_examples'])} validation reviews" in text
    assert "returns calibrated scores with no custom code" in text and 'pipeline("text-classification"' in text
    rows = {row[0]: row[1:] for row in tables(card.text)["Scores"]}
    keys = ("ece_before", "ece_after", "nll_before", "nll_after")
    for split, label in (
        ("test_windowed", "test, long reviews in windows (the headline scores)"),
        ("test", "test, long reviews truncated"),
        ("validation", f"validation (the temperature was fitted on these {calibration['num_examples']})"),
    ):
        assert rows[label] == [fmt(calibration[split][k]) for k in keys], split
    assert "the score is not a calibrated probability" not in text


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
    assert run_card_cli("build", str(old), "--repo_id", REPO_ID).returncode == 0
    text = (old / "README.md").read_text()
    assert "### Calibration" not in text and "reliability_diagram.png" not in text
    assert "the score is not a calibrated probability" in text
    assert not (old / "reliability_diagram.png").exists()
