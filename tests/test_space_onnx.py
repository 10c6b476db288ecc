"""The Space's ONNX graphs: the published files (standard operators only, the layout transformers.js
loads), the int8 engine's outlier split and quantisation, and ORT's CPU fusions applied at load time."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bench.random_models import build_random_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "space"))

import engines  # noqa: E402
import onnx_build  # noqa: E402
import ort_cpu  # noqa: E402
import sentiment  # noqa: E402
from examples import EXAMPLES  # noqa: E402


def reviews(n: int) -> list[str]:
    return pd.read_parquet(ROOT / "data" / "imdb_sample" / "test.parquet")["text"].head(n).tolist()


def graph_inputs(tokenizer, texts: list[str], names: list[str], max_length: int = 64) -> dict[str, np.ndarray]:
    """A padded batch for a graph with inputs `names` (type ids all zero, as the Space feeds them)."""
    batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="np")
    values = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
    values["token_type_ids"] = np.zeros_like(values["input_ids"])
    return {name: values[name] for name in names}


def ops(model: onnx.ModelProto) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


@pytest.fixture
def bert(tmp_path: Path):
    model_dir = build_random_model(tmp_path / "bert", "tiny-bert", seed=0, initializer_range=0.2)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    return model_dir, model, AutoTokenizer.from_pretrained(model_dir)


def test_exported_bert_is_standard_onnx_and_fused_at_load_with_float_logits(bert, tmp_path: Path) -> None:
    _, model, tokenizer = bert
    serving_attention = model.config._attn_implementation
    path = tmp_path / "model.onnx"
    onnx_build.export_model_onnx(model, tokenizer, path)
    # The float and bf16 engines share the model: it must get its serving attention back.
    assert model.config._attn_implementation == serving_attention
    exported = onnx.load(str(path))
    assert onnx_build.contrib_operators(exported) == []
    names = [i.name for i in exported.graph.input]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]  # as Optimum exports a BERT
    assert [o.name for o in exported.graph.output] == ["logits"]

    fused = onnx.load_from_string(ort_cpu.fuse_for_cpu(path, model.config))
    layers = model.config.num_hidden_layers
    assert ops(fused)["Attention"] == layers and ops(fused)["LayerNormalization"] == 2 * layers, ops(fused)
    assert ops(fused)["Softmax"] == 0  # no attention left unfused
    assert onnx.load(str(path)) == exported  # the file itself is left as published
    # Where the int8 engine looks for outlier channels: both feed-forward projections of every block,
    # found alike in the plain graph and in the fused one.
    prone = onnx_build.outlier_prone_matmuls(exported.graph)
    assert len(prone) == 2 * layers, prone
    assert all(("/intermediate/dense/" in n or "/output/dense/" in n) and "attention" not in n for n in prone)
    assert onnx_build.outlier_prone_matmuls(fused.graph) == prone

    texts = reviews(6)
    texts[0] = texts[0][:80]  # a short one, so the batch is padded
    inputs = graph_inputs(tokenizer, texts, names)
    assert (inputs["attention_mask"] == 0).any()
    as_run = tmp_path / "as-run.onnx"
    session = ort_cpu.ort_session(fused.SerializeToString(), threads=1, save_optimized=as_run)
    logits = session.run(None, inputs)[0]
    # Neither the offline optimizer nor the session's own may bring in the slow fused kernel.
    run_ops = ops(onnx.load(str(as_run)))
    assert run_ops["SkipLayerNormalization"] == 0, run_ops
    assert run_ops["LayerNormalization"] == 2 * layers and run_ops["Attention"] == layers, run_ops
    with torch.no_grad():
        expected = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    assert expected[:, 1].std() > 0.05  # the reviews score differently: a mask or order slip would show
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-3)
    plain = ort_cpu.ort_session(path, threads=1).run(None, inputs)[0]
    np.testing.assert_allclose(plain, expected, atol=1e-4, rtol=1e-3)


def test_outlier_channels_are_split_off_exactly_and_kept_float(bert, tmp_path: Path) -> None:
    _, model, tokenizer = bert
    # One channel of layer 0's GELU output made an outlier, as fine-tuned encoders have them.
    outlier = 5
    with torch.no_grad():
        ffn_in = model.bert.encoder.layer[0].intermediate.dense
        ffn_in.weight[outlier] *= 20
        ffn_in.bias[outlier] += 20
    path = tmp_path / "model.onnx"
    onnx_build.export_model_onnx(model, tokenizer, path)
    names = [i.name for i in onnx.load(str(path)).graph.input]
    unsplit = ort_cpu.ort_session(path, threads=1)

    texts = reviews(12)
    windows = [tokenizer(text, truncation=True, max_length=64)["input_ids"] for text in texts[:3]]
    floats = onnx_build.split_outlier_channels(path, onnx_build.window_feeds(names, windows))
    graph = onnx.load(str(path)).graph
    index = {
        init.name: onnx.numpy_helper.to_array(init)
        for init in graph.initializer
        if init.name.endswith("/index")
    }
    layer0 = [name for name in index if "layer.0/output/dense/" in name]
    assert len(layer0) == 1 and outlier in index[layer0[0]], index
    assert floats == [name.replace("/index", "/MatMul") for name in index]
    assert onnx_build.contrib_operators(onnx.load(str(path))) == []

    # In float32 the split graph computes what the unsplit one does, on other reviews than it was calibrated on.
    inputs = graph_inputs(tokenizer, texts[3:], names)
    expected = unsplit.run(None, inputs)[0]
    assert (expected[:, 1] - expected[:, 0]).std() > 0.05, expected
    np.testing.assert_allclose(ort_cpu.ort_session(path, threads=1).run(None, inputs)[0], expected, atol=1e-5)

    # Quantised, the split-off products are the only float MatMuls with a weight left, and every
    # operator is standard ONNX (integer products as DynamicQuantizeLinear + MatMulInteger).
    fresh, int8 = tmp_path / "fresh.onnx", tmp_path / "model_quantized.onnx"
    onnx_build.export_model_onnx(model, tokenizer, fresh)
    onnx_build.quantize_int8_onnx(fresh, int8, tokenizer, texts[:3], max_length=256)
    quantised = onnx.load(str(int8))
    weights = {init.name for init in quantised.graph.initializer}
    float_left = [n.name for n in quantised.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert float_left and all(name.endswith("/outlier_channels/MatMul") for name in float_left), float_left
    assert onnx_build.contrib_operators(quantised) == []
    assert ops(quantised)["MatMulInteger"] >= 6 * model.config.num_hidden_layers, ops(quantised)
    assert ops(quantised)["DynamicQuantizeLinear"] > 0


def test_quantiser_refuses_a_fused_graph(bert, tmp_path: Path) -> None:
    _, model, tokenizer = bert
    path, fused = tmp_path / "model.onnx", tmp_path / "fused.onnx"
    onnx_build.export_model_onnx(model, tokenizer, path)
    fused.write_bytes(ort_cpu.fuse_for_cpu(path, model.config))
    with pytest.raises(ValueError, match="non-standard operators .*com.microsoft.Attention"):
        onnx_build.quantize_int8_onnx(fused, tmp_path / "int8.onnx", tokenizer, reviews(2))
    assert not (tmp_path / "int8.onnx").exists()


def test_published_files_are_what_the_space_serves(bert, tmp_path: Path) -> None:
    """`build_published_onnx` writes both files in the transformers.js layout; float32 gives torch's
    logits at any batch size and length; the int8 file, fused at load as the Space does, is the
    Space's int8 engine, number for number."""
    model_dir, model, tokenizer = bert
    out = tmp_path / "onnx"
    paths = onnx_build.build_published_onnx(model_dir, out)
    assert paths == {"model": out / "model.onnx", "model_quantized": out / "model_quantized.onnx"}
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model_quantized.onnx"]  # no scratch left
    for path in paths.values():
        graph = onnx.load(str(path))
        assert onnx_build.contrib_operators(graph) == []
        assert [i.name for i in graph.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
        assert [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim] == [
            "batch_size",
            "sequence_length",
        ]

    names = ["input_ids", "attention_mask", "token_type_ids"]
    texts = reviews(5)
    for batch in (texts[:1], texts[1:]):
        inputs = graph_inputs(tokenizer, batch, names, max_length=128)
        with torch.no_grad():
            expected = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
        published = ort_cpu.ort_session(paths["model"], threads=1).run(None, inputs)[0]
        np.testing.assert_allclose(published, expected, atol=1e-4, rtol=1e-3)

    # The Space's engine, built from the loaded model in memory, against the published file fused at load.
    windows = [tokenizer(t, truncation=True, max_length=128)["input_ids"] for t in texts]
    space = engines.int8_logits_fn(model, tokenizer, [t for _, t in EXAMPLES], 512)
    loaded = ort_cpu.onnx_logits_fn(
        ort_cpu.ort_session(ort_cpu.fuse_for_cpu(paths["model_quantized"], model.config), threads=1)
    )
    plain = ort_cpu.onnx_logits_fn(ort_cpu.ort_session(paths["model_quantized"], threads=1, avoid=()))
    for window in windows:
        ids = np.array([window], dtype=np.int64)
        np.testing.assert_allclose(loaded(ids, np.ones_like(ids)), space(ids, np.ones_like(ids)), atol=1e-6)
        # Load-time fusion changes the kernels, not the numbers.
        np.testing.assert_allclose(loaded(ids, np.ones_like(ids)), plain(ids, np.ones_like(ids)), atol=1e-4)


def test_a_failed_build_leaves_no_files(bert, tmp_path: Path) -> None:
    model_dir, _, _ = bert
    out = tmp_path / "onnx"
    with pytest.raises(ValueError, match="No calibration text"):
        onnx_build.build_published_onnx(model_dir, out, calibration_texts=[])
    assert list(out.iterdir()) == []
    with pytest.raises(OSError):
        onnx_build.build_published_onnx(tmp_path / "missing", out)
    assert list(out.iterdir()) == []


# --- the Space starting from the model repo's published int8 file ------------------------------------------


@pytest.fixture
def published_model(space_model_dir: Path, tmp_path: Path) -> Path:
    """The shared tiny model in a folder of its own, with the ONNX files a push publishes in onnx/."""
    folder = tmp_path / "published"
    shutil.copytree(space_model_dir, folder)
    onnx_build.build_published_onnx(folder, folder / "onnx")
    return folder


def int8_probabilities(model: sentiment.SentimentModel) -> list[float]:
    return [p.probabilities["POSITIVE"] for p in model.predict(reviews(6), engines.ENGINE_INT8)]


def test_space_serves_the_published_int8_file(
    published_model: Path, space_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    built = sentiment.SentimentModel(str(space_model_dir), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8])
    assert "the model repo's onnx/model_quantized.onnx" not in capsys.readouterr().err  # none to use: built

    def no_building(*args: object) -> None:
        raise AssertionError("the int8 engine was built although the model repo publishes it")

    monkeypatch.setattr(engines, "quantize_int8_onnx", no_building)
    loaded = sentiment.SentimentModel(str(published_model), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8])
    log = capsys.readouterr().err
    assert "int8 engine: the model repo's onnx/model_quantized.onnx, fused for this CPU at load." in log, log
    assert list(loaded.engines) == [engines.ENGINE_FLOAT, engines.ENGINE_INT8]
    # The published file is the engine the Space builds: the same answers, number for number.
    assert int8_probabilities(loaded) == pytest.approx(int8_probabilities(built), abs=1e-9)


def three_label_int8(space_model_dir: Path, folder: Path) -> Path:
    """The int8 file of a model like the tiny one, but with three labels."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(space_model_dir, num_labels=3, id2label={0: "A", 1: "B", 2: "C"},
                                        label2id={"A": 0, "B": 1, "C": 2})  # fmt: skip
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(space_model_dir).save_pretrained(folder)
    return onnx_build.build_published_onnx(folder, folder / "onnx")["model_quantized"]


def swapped_labels_int8(space_model_dir: Path, folder: Path) -> Path:
    """The int8 file of the tiny model with its two classes' rows swapped: labels in another order than config.json's."""
    model = AutoModelForSequenceClassification.from_pretrained(space_model_dir, dtype=torch.float32)
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight.flip(0))
        model.classifier.bias.copy_(model.classifier.bias.flip(0))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(space_model_dir).save_pretrained(folder)
    return onnx_build.build_published_onnx(folder, folder / "onnx")["model_quantized"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "cannot be loaded (DecodeError: it is corrupt or truncated)"),
        ("three labels", "gives logits of shape [1, 3] where config.json names 2 labels"),
        ("swapped labels", "gives another label than the model on"),
    ],
)
def test_unusable_published_file_is_one_log_line_and_the_engine_is_built(
    published_model: Path, space_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    damage: str, message: str,
) -> None:  # fmt: skip
    path = published_model / "onnx" / "model_quantized.onnx"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "three labels":
        shutil.copyfile(three_label_int8(space_model_dir, tmp_path / "three"), path)
    else:
        shutil.copyfile(swapped_labels_int8(space_model_dir, tmp_path / "swapped"), path)
    capsys.readouterr()
    model = sentiment.SentimentModel(str(published_model), engines=[engines.ENGINE_FLOAT, engines.ENGINE_INT8])
    lines = [line for line in capsys.readouterr().err.splitlines() if "model_quantized.onnx" in line]
    assert len(lines) == 1 and message in lines[0], lines
    assert lines[0].endswith("; building the int8 engine from the model instead.")
    assert engines.ENGINE_INT8 in model.engines  # built as before, and it serves
    floats = [p.label for p in model.predict(reviews(6), engines.ENGINE_FLOAT)]
    assert len(int8_probabilities(model)) == 6 and len(floats) == 6
