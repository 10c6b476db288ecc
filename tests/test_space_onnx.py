"""The Space's int8 engine graph: ORT's fused transformer kernels on a BERT model, with float32's logits."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bench.random_models import build_random_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "space"))

import classifier  # noqa: E402


def test_exported_bert_runs_fused_kernels_with_float_logits(tmp_path: Path) -> None:
    model_dir = build_random_model(tmp_path / "bert", "tiny-bert", seed=0, initializer_range=0.2)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    serving_attention = model.config._attn_implementation
    path = tmp_path / "model.onnx"
    classifier.export_onnx(model, tokenizer, path)
    # The float and bf16 engines share the model: it must get its serving attention back.
    assert model.config._attn_implementation == serving_attention
    classifier.fuse_transformer_graph(path, model.config)

    ops = Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    layers = model.config.num_hidden_layers
    assert ops["Attention"] == layers and ops["LayerNormalization"] == 2 * layers, ops
    assert ops["Softmax"] == 0  # no attention left unfused
    # Where the int8 engine looks for outlier channels: both feed-forward projections of every block.
    prone = classifier.outlier_prone_matmuls(onnx.load(str(path)).graph)
    assert len(prone) == 2 * layers, prone
    assert all(("/intermediate/dense/" in n or "/output/dense/" in n) and "attention" not in n for n in prone)

    reviews = pd.read_parquet(ROOT / "data" / "imdb_sample" / "test.parquet")["text"].head(6).tolist()
    reviews[0] = reviews[0][:80]  # a short one, so the batch is padded
    batch = tokenizer(reviews, truncation=True, max_length=64, padding=True, return_tensors="np")
    assert (batch["attention_mask"] == 0).any()
    inputs = {
        "input_ids": batch["input_ids"].astype(np.int64),
        "attention_mask": batch["attention_mask"].astype(np.int64),
    }
    as_run = tmp_path / "as-run.onnx"
    fused = classifier.ort_session(path, threads=1, save_optimized=as_run).run(None, inputs)[0]
    # Neither the offline optimizer nor the session's own may bring in the slow fused kernel.
    run_ops = Counter(node.op_type for node in onnx.load(str(as_run)).graph.node)
    assert run_ops["SkipLayerNormalization"] == 0, run_ops
    assert run_ops["LayerNormalization"] == 2 * layers and run_ops["Attention"] == layers, run_ops
    with torch.no_grad():
        expected = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    assert expected[:, 1].std() > 0.05  # the reviews score differently: a mask or order slip would show
    np.testing.assert_allclose(fused, expected, atol=1e-4, rtol=1e-3)


def test_outlier_channels_are_split_off_exactly_and_kept_float(tmp_path: Path) -> None:
    model_dir = build_random_model(tmp_path / "bert", "tiny-bert", seed=0, initializer_range=0.2)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # One channel of layer 0's GELU output made an outlier, as fine-tuned encoders have them.
    outlier = 5
    with torch.no_grad():
        ffn_in = model.bert.encoder.layer[0].intermediate.dense
        ffn_in.weight[outlier] *= 20
        ffn_in.bias[outlier] += 20
    path = tmp_path / "model.onnx"
    classifier.export_onnx(model, tokenizer, path)
    classifier.fuse_transformer_graph(path, model.config)
    unsplit = classifier.ort_session(path, threads=1)

    reviews = pd.read_parquet(ROOT / "data" / "imdb_sample" / "test.parquet")["text"].head(12).tolist()
    feeds = [
        {
            k: v.astype(np.int64)
            for k, v in tokenizer(text, truncation=True, max_length=64, return_tensors="np").items()
        }
        for text in reviews[:3]
    ]
    floats = classifier.split_outlier_channels(path, feeds)
    graph = onnx.load(str(path)).graph
    index = {
        init.name: onnx.numpy_helper.to_array(init)
        for init in graph.initializer
        if init.name.endswith("/index")
    }
    layer0 = [name for name in index if "layer.0/output/dense/" in name]
    assert len(layer0) == 1 and outlier in index[layer0[0]], index
    assert floats == [name.replace("/index", "/MatMul") for name in index]

    # In float32 the split graph computes what the unsplit one does, on other reviews than it was calibrated on.
    batch = tokenizer(reviews[3:], truncation=True, max_length=64, padding=True, return_tensors="np")
    inputs = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
    expected = unsplit.run(None, inputs)[0]
    assert (expected[:, 1] - expected[:, 0]).std() > 0.05, expected
    np.testing.assert_allclose(
        classifier.ort_session(path, threads=1).run(None, inputs)[0], expected, atol=1e-5
    )

    # Quantised, the split-off products are the only float MatMuls left.
    windows = [tokenizer(text, truncation=True, max_length=64)["input_ids"] for text in reviews[:3]]
    int8 = classifier.build_int8_onnx(model, tokenizer, tmp_path, calibration=windows)
    float_left = [node.name for node in onnx.load(str(int8)).graph.node if node.op_type == "MatMul"]
    assert float_left and all(name.endswith("/outlier_channels/MatMul") for name in float_left), float_left
