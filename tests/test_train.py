"""End to end: `python -m train` on the tiny DistilBERT and real reviews, for each method and input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, build_tiny_model, tiny_args
from safetensors import safe_open

from train.run import main as train_main

PY = sys.executable


def classify(model_dir: Path, texts: list[str]) -> list[list[dict]]:
    from transformers import pipeline

    return pipeline("text-classification", model=str(model_dir))(texts, top_k=None)


def assert_pipeline_ready(model_dir: Path) -> None:
    outputs = classify(model_dir, ["A wonderful, moving film.", "Dull and far too long."])
    for scores in outputs:
        assert {s["label"] for s in scores} == {"NEGATIVE", "POSITIVE"}
        assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def full_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    train_main(tiny_args(tiny_model_dir, out))
    return out


def test_full_run_writes_pipeline_ready_model_and_results(full_run: Path) -> None:
    assert_pipeline_ready(full_run)
    record = json.loads((full_run / "results.json").read_text())
    assert record["method"] == "full"
    assert record["model"]["trainable_share"] == 1.0
    assert record["dataset"]["splits"] == {"train": 64, "validation": 32, "test": 48}
    assert record["dataset"]["label_counts"]["test"] == {"NEGATIVE": 24, "POSITIVE": 24}
    for split, n in (("baseline", 48), ("validation", 32), ("test", 48)):
        metrics = record["metrics"][split]
        matrix = metrics["confusion_matrix"]
        assert sum(map(sum, matrix)) == metrics["num_examples"] == n
        assert metrics["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / n)
    steps = record["global_step"]
    assert record["timings"]["train_steps_per_second"] == pytest.approx(
        steps / record["timings"]["train_runtime_s"], rel=0.05
    )
    assert any("loss" in entry for entry in record["log_history"])
    predictions = pd.read_csv(full_run / "test_predictions.csv")
    assert len(predictions) == 48
    correct = (predictions["label"] == predictions["pred"]).mean()
    assert correct == pytest.approx(record["metrics"]["test"]["accuracy"])
    wrong = pd.read_csv(full_run / "misclassified.csv")
    assert len(wrong) == (~predictions["correct"]).sum()
    assert list(full_run.glob("checkpoint-*")) == []


def test_shared_tiny_model_scores_reviews_differently(tiny_model_dir: Path, sample_dir: Path) -> None:
    texts = [t[:400] for t in pd.read_parquet(sample_dir / "test.parquet")["text"].head(12)]
    scores = classify(tiny_model_dir, texts)
    positive = [next(s["score"] for s in row if s["label"] == "POSITIVE") for row in scores]
    assert max(positive) - min(positive) > 0.1


def test_lora_run_saves_merged_model_and_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    train_main(tiny_args(tiny_model_dir, out, "--method", "lora", "--lora_r", "4", "--learning_rate", "1e-3"))
    record = json.loads((out / "results.json").read_text())
    assert record["model"]["lora"]["target_modules"] == ["q_lin", "v_lin"]
    assert 0 < record["model"]["trainable_share"] < 0.5
    assert (out / "adapter" / "adapter_config.json").is_file()
    with safe_open(out / "model.safetensors", "pt") as weights:
        assert not any("lora" in key for key in weights.keys())
    assert_pipeline_ready(out)


def test_head_run_trains_only_the_head(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "head"
    train_main(tiny_args(tiny_model_dir, out, "--method", "head", "--learning_rate", "1e-2"))
    record = json.loads((out / "results.json").read_text())
    assert record["model"]["trainable_parameters"] == 32 * 32 + 32 + 32 * 2 + 2  # pre_classifier + classifier
    with (
        safe_open(tiny_model_dir / "model.safetensors", "pt") as a,
        safe_open(out / "model.safetensors", "pt") as b,
    ):
        key = "distilbert.transformer.layer.0.attention.q_lin.weight"
        assert (a.get_tensor(key) == b.get_tensor(key)).all()
        assert not (a.get_tensor("classifier.weight") == b.get_tensor("classifier.weight")).all()
    assert_pipeline_ready(out)


def test_sweep_writes_comparison_table(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    train_main(tiny_args(tiny_model_dir, out, "--sweep", "standard,high-lr", "--num_train_epochs", "1"))
    table = pd.read_csv(out / "sweep.csv")
    assert set(table["preset"]) == {"standard", "high-lr"}
    assert set(table["learning_rate"]) == {2e-5, 5e-5}
    for column in ("accuracy", "f1", "precision", "recall", "train_runtime_s"):
        assert table[column].notna().all()
    assert "| preset" in (out / "sweep.md").read_text()
    assert json.loads((out / "sweep.json").read_text())["best_preset"] == table.iloc[0]["preset"]
    assert (out / "standard" / "results.json").is_file() and (out / "high-lr" / "results.json").is_file()


def test_config_file_and_preset_precedence(tiny_model_dir: Path, tmp_path: Path) -> None:
    from train.config import parse_config

    config_file = tmp_path / "run.yaml"
    config_file.write_text("preset: small-batch\nlearning_rate: 1.0e-4\nmax_length: 128\n")
    config = parse_config(["--config", str(config_file), "--max_length", "96"])
    assert config.run.preset == "small-batch"
    assert config.run.per_device_train_batch_size == 8  # from the preset
    assert config.run.learning_rate == 1e-4  # the file beats the preset
    assert config.model.max_length == 96  # the command line beats the file


def test_resume_after_interrupted_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumable"
    args = tiny_args(
        tiny_model_dir,
        out,
        "--max_steps",
        "400",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "5",
        "--per_device_train_batch_size",
        "4",
        "--baseline",
        "false",
        "--early_stopping_patience",
        "0",
    )
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an ignored
    # SIGINT ignored: the child gets the default back, so Ctrl-C reaches it however the tests were launched.
    proc = subprocess.Popen(
        [PY, "-m", "train", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while (
        not list(out.glob("checkpoint-*/trainer_state.json"))
        and time.time() < deadline
        and proc.poll() is None
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()[-2000:]
    assert "--resume" in stderr.decode()
    assert not (out / "results.json").exists() and not (out / "config.json").exists()
    first_step = max(int(p.parent.name.split("-")[1]) for p in out.glob("checkpoint-*/trainer_state.json"))
    # A checkpoint cut off while saving (the interrupt can land there): trainer_state.json comes last.
    half = out / "checkpoint-999"
    shutil.copytree(
        out / f"checkpoint-{first_step}", half, ignore=shutil.ignore_patterns("trainer_state.json")
    )

    resumed = subprocess.run(
        [PY, "-m", "train", *args, "--max_steps", str(first_step + 10), "--resume"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{half} was not completely saved; skipping it" in resumed.stderr
    assert f"resuming from {out / f'checkpoint-{first_step}'}" in resumed.stderr
    record = json.loads((out / "results.json").read_text())
    steps = [e["step"] for e in record["log_history"] if "loss" in e]
    assert max(steps) <= first_step + 10
    assert_pipeline_ready(out)


def test_two_process_run_with_torchrun(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [PY, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", "-m", "train",
         *tiny_args(tiny_model_dir, out, "--baseline", "false")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    assert record["environment"]["world_size"] == 2
    assert record["metrics"]["test"]["num_examples"] == 48
    assert_pipeline_ready(out)


def test_predict_cli_prints_label_and_confidence(full_run: Path, tmp_path: Path) -> None:
    reviews = tmp_path / "reviews.csv"
    pd.DataFrame({"review": ["Loved every minute.", "A waste of time."]}).to_csv(reviews, index=False)
    proc = subprocess.run(
        [PY, "-m", "train.predict", "--model", str(full_run), "--text", "Great acting!",
         "--file", str(reviews), "--text_column", "review"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3
    for line, text in zip(lines, ["Great acting!", "Loved every minute.", "A waste of time."]):
        label, score, rest = line.split(maxsplit=2)
        assert label in {"NEGATIVE", "POSITIVE"} and 0.5 <= float(score) <= 1.0 and rest == text


def test_help_documents_every_option() -> None:
    proc = subprocess.run([PY, "-m", "train", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in (
        "--model_name_or_path",
        "--dataset_name",
        "--method",
        "--lora_r",
        "--truncation",
        "--preset",
        "--sweep",
        "--early_stopping_patience",
        "--resume",
        "--push_to_hub",
        "--max_train_samples",
    ):
        assert flag in proc.stdout
    assert "distilbert-base-uncased" in proc.stdout and "stanfordnlp/imdb" in proc.stdout


def test_windowed_evaluation_averages_windows_per_review(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "windows"
    train_main(
        tiny_args(tiny_model_dir, out, "--eval_windows", "--window_stride", "16", "--baseline", "false")
    )
    record = json.loads((out / "results.json").read_text())
    windowed, truncated = record["metrics"]["test"], record["metrics"]["test_truncated"]
    predictions = pd.read_csv(out / "test_predictions.csv")
    long_reviews = (predictions["n_tokens"] > 64).sum()
    assert windowed["num_examples"] == truncated["num_examples"] == 48
    assert windowed["windows"] > 48 + long_reviews  # every long review is split into two or more windows
    assert (predictions["pred"] == predictions["label"]).mean() == pytest.approx(windowed["accuracy"])


def test_length_grouping_keeps_predictions_aligned_with_reviews(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model", initializer_range=1.0)
    out = tmp_path / "grouped"
    # Long inputs, so that the reviews' lengths differ and grouping would reorder them.
    # float32: the pipeline below computes in float32, and this wild random model magnifies bf16 rounding.
    train_main(tiny_args(model, out, "--group_by_length", "--max_length", "512", "--baseline", "false",
                         "--precision", "fp32"))  # fmt: skip
    table = pd.read_csv(out / "test_predictions.csv")
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(out))
    assert table["n_tokens"].clip(upper=512).nunique() > 10 and table["prob_positive"].std() > 1e-3
    scores = classifier(table["text"].tolist(), top_k=None, truncation=True, max_length=512)
    prob_positive = [next(s["score"] for s in row if s["label"] == "POSITIVE") for row in scores]
    assert prob_positive == pytest.approx(table["prob_positive"].tolist(), abs=1e-4)
