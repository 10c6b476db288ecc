"""The per-size CPU attention kernel (train/attention.py): same answers as SDPA, the kernel its size calls for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from train import attention
from train.config import ModelArguments
from train.data import load_file
from train.modeling import attention_kernel, load_model


def padded_batch(model_dir: Path, sample_dir: Path, max_length: int) -> dict[str, torch.Tensor]:
    """Eight real reviews of different lengths, padded to the longest: the mask matters."""
    reviews = load_file(sample_dir / "test.parquet")["text"][:8]
    reviews[0], reviews[1] = reviews[0][:60], reviews[1][:200]  # shorter than the rest: padded
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = tokenizer(reviews, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()
    return batch


def logits(model_dir: Path, kernel: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, attn_implementation=kernel, dtype=torch.float32
    ).eval()
    with torch.no_grad():
        return model(**batch).logits


# 8 reviews x 2 heads x 96^2 float32 scores: 0.5625 MiB, one review's 0.0703 MiB (chunks of 3 fit in half of 0.5 MiB).
@pytest.mark.parametrize(
    ("matmul_max_mib", "chunked_max_review_mib"),
    [(1024, 0.0), (1e-4, 0.0), (0.5, 1.0)],
    ids=["matmul-path", "sdpa-path", "chunked-path"],
)
def test_same_logits_as_sdpa_on_padded_reviews(
    tiny_model_dir: Path, sample_dir: Path, matmul_max_mib: float, chunked_max_review_mib: float
) -> None:
    batch = padded_batch(tiny_model_dir, sample_dir, max_length=96)
    expected = logits(tiny_model_dir, "sdpa", batch)
    got = logits(tiny_model_dir, attention.register(matmul_max_mib, chunked_max_review_mib), batch)
    assert expected[:, 1].std() > 0.05  # reviews score differently, so a mask or order slip would show
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_kernel_chosen_by_score_size(
    tiny_model_dir: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    matmul, sdpa = attention.matmul_attention, attention.sdpa_attention_forward
    monkeypatch.setattr(
        attention, "matmul_attention", lambda *a, **k: calls.append("matmul") or matmul(*a, **k)
    )
    monkeypatch.setattr(
        attention, "sdpa_attention_forward", lambda *a, **k: calls.append("sdpa") or sdpa(*a, **k)
    )
    layers = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).config.num_hidden_layers
    # 8 reviews x 2 heads x 32^2 float32 scores fit in 0.5 MiB; x 96^2 do not, but chunks of 3 reviews fit in half.
    for chunked_limit, length, expected in (
        (0.0, 32, ["matmul"]),
        (0.0, 96, ["sdpa"]),
        (1.0, 96, ["matmul"] * 3),  # 8 reviews in chunks of 3, 3, 2
        (0.05, 96, ["sdpa"]),  # one review's scores (0.07 MiB) over the chunking limit
    ):
        kernel = attention.register(0.5, chunked_limit)
        calls.clear()
        logits(tiny_model_dir, kernel, padded_batch(tiny_model_dir, sample_dir, max_length=length))
        assert calls == expected * layers, f"batch of {length} tokens, chunk limit {chunked_limit}, ran {calls}"


def test_cpu_default_is_the_per_size_kernel_and_a_flag_overrides_it(tiny_model_dir: Path) -> None:
    args = ModelArguments(model_name_or_path=str(tiny_model_dir), matmul_attention_max_mib=4)
    assert not torch.cuda.is_available()
    assert attention_kernel(args) == attention.NAME
    model = load_model(args)
    assert model.config._attn_implementation == attention.NAME
    assert attention_kernel(ModelArguments(model_name_or_path="x", attn_implementation="eager")) == "eager"


def test_saved_model_loads_without_the_kernel(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The kernel is a training-time choice: a saved model must not ask its users for it."""
    load_model(ModelArguments(model_name_or_path=str(tiny_model_dir))).save_pretrained(tmp_path)
    assert attention.NAME not in (tmp_path / "config.json").read_text()


def test_budget_defaults_to_the_last_level_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index, size in (("index0", "48K"), ("index2", "1024K"), ("index3", "32768K")):
        (tmp_path / index).mkdir()
        (tmp_path / index / "size").write_text(size + "\n")
    monkeypatch.setattr(attention, "LAST_LEVEL_CACHE", tmp_path)
    assert attention.last_level_cache_mib() == 32
    monkeypatch.setattr(attention, "LAST_LEVEL_CACHE", tmp_path / "absent")
    assert attention.last_level_cache_mib() == attention.FALLBACK_CACHE_MIB


def rows(winners: dict[int, str], batch: int = 16, heads: int = 12, item_bytes: int = 2) -> list[dict]:
    """Measurements where the named kernel is the faster one at each length (default: batch 16, 12 heads, bf16)."""
    return [{"length": n, "scores_mib": batch * heads * n * n * item_bytes / 2**20,
             "review_mib": heads * n * n * item_bytes / 2**20,
             "matmul_s": 1.0 if won == "matmul" else 2.0, "sdpa_s": 1.5} for n, won in winners.items()]  # fmt: skip


def test_budget_sits_between_the_last_win_and_the_first_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attention, "last_level_cache_mib", lambda: 1024.0)
    measured = rows({64: "matmul", 128: "matmul", 288: "matmul", 320: "sdpa", 384: "matmul"})
    mib = {row["length"]: row["scores_mib"] for row in measured}
    assert attention.budget_from_measurements(measured[::-1]) == pytest.approx((mib[288] + mib[320]) / 2)
    assert attention.budget_from_measurements(rows({64: "sdpa", 128: "matmul"})) == 0.0
    assert attention.budget_from_measurements(rows({64: "matmul", 128: "matmul"})) == pytest.approx(mib[128])


def test_chunk_limit_sits_between_the_last_chunked_win_and_the_first_loss() -> None:
    measured = rows({256: "matmul", 320: "sdpa", 384: "sdpa", 448: "sdpa", 512: "sdpa"})
    for row, chunked_s in zip(measured[1:], (1.0, 1.2, 1.4, 1.6)):  # SDPA takes 1.5: chunks win up to 448
        row["chunked_s"] = chunked_s
    review = {row["length"]: row["review_mib"] for row in measured}
    assert attention.chunked_limit_from_measurements(measured[::-1]) == pytest.approx((review[448] + review[512]) / 2)
    measured[1]["chunked_s"] = 2.0  # chunks lost at the first length over the budget: never chunk
    assert attention.chunked_limit_from_measurements(measured) == 0.0
    assert attention.chunked_limit_from_measurements(rows({64: "matmul"})) == 0.0  # nothing over the budget


def test_chunked_measurement_times_only_what_the_budget_leaves_out() -> None:
    measured = attention.measure_kernels(8, 2, 16, [32, 64], torch.float32, repeats=1)
    budget = measured[0]["scores_mib"]  # the whole batch fits at 32 tokens, not at 64
    attention.measure_chunked(measured, 2, 16, torch.float32, budget, repeats=1)
    assert "chunked_s" not in measured[0]
    # 64^2 is 4x 32^2: a quarter of the batch (2 reviews) fits in the budget, half of that (1) in a chunk
    assert measured[1]["chunk"] == 1 and measured[1]["chunked_s"] > 0


def test_start_up_measurement_times_both_kernels_and_sets_the_budget(
    tiny_model_dir: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = attention.measure_kernels(2, 2, 16, [64, 96], torch.float32, repeats=1)
    assert [row["length"] for row in real] == [64, 96]
    assert all(row["matmul_s"] > 0 and row["sdpa_s"] > 0 for row in real)
    # the tiny model's 8 x 2 heads x 32^2 float32 scores are 0.0625 MiB; 96^2 is 0.5625 MiB
    monkeypatch.setattr(attention, "measure_kernels", lambda *a, **k: rows({32: "matmul", 64: "matmul",
                        96: "sdpa", 128: "sdpa"}, batch=8, heads=2, item_bytes=4))  # fmt: skip
    chunk_wins = {96: 1.0, 128: 2.0}  # chunks beat SDPA (1.5 s) at 96 tokens, not at 128
    monkeypatch.setattr(attention, "measure_chunked", lambda measured, *a, **k: [
        {**row, "chunked_s": chunk_wins[row["length"]]} if row["length"] in chunk_wins else row for row in measured])
    config = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).config
    rule = attention.choose_by_measurement(config, 8, 128, torch.float32)
    assert rule["decided_by"] == "measured at start-up" and len(rule["measurements"]) == 4
    assert 0 < rule["chunked_max_review_mib"] < 2 * 128 * 128 * 4 / 2**20
    calls: list[str] = []
    matmul = attention.matmul_attention
    monkeypatch.setattr(attention, "matmul_attention", lambda *a, **k: calls.append("matmul") or matmul(*a, **k))
    layers = config.num_hidden_layers
    # budget (0.25 + 0.5625) / 2 MiB: the whole batch at 32 tokens; at 96 chunks of 2 reviews (of 8); SDPA at 128
    for length, matmul_calls in ((32, 1), (96, 4), (128, 0)):
        calls.clear()
        logits(tiny_model_dir, attention.NAME, padded_batch(tiny_model_dir, sample_dir, max_length=length))
        assert len(calls) == matmul_calls * layers, f"batch of {length} tokens ran {len(calls)} matmul attentions"


def test_budget_never_exceeds_the_cache_sysfs_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """A start-up measurement that catches the host quiet must not run whole batches past the cache."""
    monkeypatch.setattr(attention, "last_level_cache_mib", lambda: 32.0)
    wins_everywhere = rows({256: "matmul", 384: "matmul", 512: "matmul"})  # 24, 54 and 96 MiB of scores
    assert attention.budget_from_measurements(wins_everywhere) == 32.0
