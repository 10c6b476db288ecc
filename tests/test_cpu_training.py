"""What the training command picks for the machine and records: precision, dropout, the baseline subset,
test-time windows, and results that name models and data without this machine's paths."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tiny_args

from train import training_args as train_run
from train.config import ModelArguments
from train.errors import UserError
from train.modeling import load_model
from train.run import main as train_main


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads the CPU flags from /proc/cpuinfo")
def test_native_bf16_detection_matches_the_cpu_flags() -> None:
    native = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    assert train_run.cpu_has_native_bf16() is native


def test_precision_auto_on_cpu_follows_native_bf16(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(train_run, "cpu_has_native_bf16", lambda: True)
    assert train_run.resolve_precision("auto") == "bf16"
    assert train_run.resolve_precision("fp32") == "fp32"
    monkeypatch.setattr(train_run, "cpu_has_native_bf16", lambda: False)
    assert train_run.resolve_precision("auto") == "fp32"
    with caplog.at_level(logging.WARNING, logger="train"):
        assert train_run.resolve_precision("bf16") == "bf16"
    assert "emulated" in caplog.text
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        train_run.resolve_precision("fp16")


def test_dropout_flags_set_the_architectures_own_names(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path / "bert"
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)

    model = load_model(ModelArguments(model_name_or_path=str(folder), dropout=0.0, attention_dropout=0.25))
    assert model.config.hidden_dropout_prob == 0.0 and model.config.classifier_dropout == 0.0
    assert model.config.attention_probs_dropout_prob == 0.25
    assert model.classifier.weight.shape[0] == 2
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.0, 0.25}  # hidden and classifier dropout 0; the attention's own module 0.25

    kept = load_model(ModelArguments(model_name_or_path=str(folder), dropout=None, attention_dropout=None))
    assert kept.config.hidden_dropout_prob == 0.1 and kept.config.attention_probs_dropout_prob == 0.1
    with pytest.raises(UserError, match="--dropout 1.5"):
        load_model(ModelArguments(model_name_or_path=str(folder), dropout=1.5))


@pytest.fixture(scope="module")
def subset_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("subset") / "run"
    cwd = os.getcwd()
    os.chdir(ROOT)  # results.json names local paths relative to where the command ran
    try:
        train_main(
            tiny_args(
                tiny_model_dir,
                out,
                "--baseline_samples",
                "16",
                "--eval_windows",
                "--eval_max_length",
                "128",
                "--window_stride",
                "32",
                "--dropout",
                "0",
            )  # fmt: skip
        )
    finally:
        os.chdir(cwd)
    return out


def test_baseline_on_a_stratified_subset_and_the_rest_on_the_whole_test_split(subset_run: Path) -> None:
    record = json.loads((subset_run / "results.json").read_text())
    baseline, test = record["metrics"]["baseline"], record["metrics"]["test"]
    assert baseline["num_examples"] == 16 and test["num_examples"] == 48
    assert [sum(row) for row in baseline["confusion_matrix"]] == [8, 8]
    assert record["hyperparameters"]["baseline_samples"] == 16


def test_windows_read_at_the_test_time_length(subset_run: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from train.data import prepare_splits
    from train.encoding import encode_windows
    from train.config import parse_config

    record = json.loads((subset_run / "results.json").read_text())
    assert record["model"]["max_length"] == 64 and record["model"]["eval_window_length"] == 128
    config = parse_config(tiny_args(tiny_model_dir, subset_run))
    tokenizer = AutoTokenizer.from_pretrained(subset_run)
    test = prepare_splits(config.data, seed=config.run.seed)["test"]
    assert record["metrics"]["test"]["windows"] == len(encode_windows(test, tokenizer, 128, 32))
    assert record["metrics"]["test"]["windows"] != len(encode_windows(test, tokenizer, 64, 32))


def test_results_record_the_dropout_used(subset_run: Path) -> None:
    record = json.loads((subset_run / "results.json").read_text())
    # The tiny DistilBERT's names: --dropout 0 and the default --attention_dropout 0.
    assert record["model"]["dropout"] == {
        "dropout": 0.0,
        "seq_classif_dropout": 0.0,
        "attention_dropout": 0.0,
    }
    saved = json.loads((subset_run / "config.json").read_text())
    assert saved["dropout"] == saved["attention_dropout"] == 0.0


def test_results_name_no_path_of_this_machine(
    subset_run: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text = (subset_run / "results.json").read_text()
    record = json.loads(text)
    for path in (str(ROOT), str(tmp_path_factory.getbasetemp()), str(tiny_model_dir)):
        assert path not in text
    assert record["dataset"]["name"] == "data/imdb_sample"
    # Outside the project the folder is named relative to it (here, the test's temporary folder).
    assert not record["base_model"].startswith("/") and record["base_model"].endswith(tiny_model_dir.name)
    assert "--dataset_name data/imdb_sample" in record["command"]


def test_hub_base_model_names_the_base_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "named"
    train_main(tiny_args(tiny_model_dir, out, "--max_steps", "1", "--baseline", "false",
                         "--hub_base_model", "org/tiny-distilbert"))  # fmt: skip
    assert json.loads((out / "results.json").read_text())["base_model"] == "org/tiny-distilbert"
