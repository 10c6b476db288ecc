"""The GPU benchmark's own checks, on CPU: its FLOP count against torch's, and its GPU script end to end.

A GPU session has 15 minutes of device time; these make sure that the benchmark it runs counts what it claims and
that `bench/gpu_run.sh` gets from a stage to the committed results/ without a GPU in the loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.flop_check import formula_and_counted
from bench.random_models import build_random_model
from bench.train_flops import flops_per_sample, model_shape

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("shape", "method", "tolerance"),
    [
        ("tiny-bert", "full", 0.03),
        ("tiny-distilbert", "full", 0.03),
        # LoRA at its real shape (adapters are r x d: a tiny d would make them dominate); the first
        # layer passes no gradient to the frozen embeddings, which the count leaves in (~2%).
        ("minilm", "lora", 0.03),
        ("tiny-bert", "head", 0.03),
    ],
)
def test_model_flops_match_torch_flop_counter(
    tmp_path: Path, shape: str, method: str, tolerance: float
) -> None:
    """The analytic count behind MFU equals what torch counts for one training step on one review."""
    model_dir = build_random_model(tmp_path / shape, shape)
    [(formula, counted)] = formula_and_counted(model_dir, method, (200,))
    assert abs(formula - counted) / counted < tolerance, (formula, counted)


def test_gpu_script_dry_run_from_stage_to_results(tmp_path: Path) -> None:
    """`DRY_RUN=1 bash bench/gpu_run.sh accuracy`, then `collect`: tables, cards and the comparison land.

    The stage's own steps only: the samples/s pair and the LoRA run that the stage goes on to while budget lasts
    are marked done (the script's DONE), as a second call on a warm machine finds them; they train the same way
    as the steps run here, and `make bench-gpu-dryrun` runs every stage whole. This keeps CI within its time.
    """
    env = {
        **os.environ,
        "DRY_RUN": "1",
        "DONE": "samples-per-s lora",
        "DRY_RUN_DIR": str(tmp_path / "gpu"),
        "OUT": str(tmp_path / "out"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    staged = subprocess.run(
        ["bash", "bench/gpu_run.sh", "accuracy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    log = staged.stdout + staged.stderr
    assert staged.returncode == 0, log[-3000:]
    assert "ALIGNED with their rows" in log
    assert "SKIPPED" not in log
    assert (tmp_path / "out" / "accuracy.tar.gz").is_file()

    collected = subprocess.run(
        ["bash", "bench/gpu_run.sh", "collect", str(tmp_path / "out")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collected.returncode == 0, (collected.stdout + collected.stderr)[-3000:]
    results = tmp_path / "gpu" / "results"

    table = json.loads((results / "benchmark" / "train_speed_minilm_accuracy.json").read_text())
    rows = {row["recipe"]: row for row in table["rows"]}
    assert set(rows) == {"project", "reference"}
    assert all(row["val_check"] == "ok" for row in rows.values())
    assert rows["project"]["test_windows_reviews_per_s"] > 0  # the h100 preset evaluates with windows
    assert set(table["ratios"]["accuracy"]) >= {"train_time_ratio", "samples_per_s_ratio_steady"}
    assert "CPU DRY-RUN" in (results / "benchmark" / "train_speed_minilm_accuracy.md").read_text()

    comparison = (results / "comparison.md").read_text()
    assert "accuracy-project-1" in comparison and "accuracy-reference-1" in comparison
    best = json.loads((results / "full" / "results.json").read_text())
    assert best["method"] == "full"
    card = (results / "full" / "README.md").read_text()
    assert "model-index" in card and "sentence-transformers/all-MiniLM-L6-v2" in card
    assert not list(results.rglob("*.safetensors"))  # small text and images only

    # The GPU-only columns (MFU, peak memory) from the same run, as the H100 would report it: the code
    # path a GPU session reaches only after minutes of training must not be its first run.
    from bench.train_speed import summarise_run

    run_dir = tmp_path / "gpu" / "accuracy" / "runs" / "accuracy-project-1"
    record = json.loads((run_dir / "results.json").read_text())
    record["environment"]["device_type"] = "cuda"
    record["timings"]["peak_gpu_memory_gib"] = 1.5
    lengths = np.full(record["dataset"]["splits"]["train"], 100)
    base_model = tmp_path / "gpu" / "tiny-bert"  # results.json names it "tiny-bert", not a loadable path
    row = summarise_run(record, run_dir, lengths, peak=1e12, model_path=base_model)
    shape = model_shape(str(base_model))
    expected = flops_per_sample(lengths, shape, "full").sum() * row["epochs"] / row["train_s"] / 1e12
    assert row["mfu"] == pytest.approx(expected)
    assert row["steady_mfu"] > 0 and row["trainer_estimate_mfu"] > 0 and row["peak_gib"] == 1.5


def test_attention_budget_benchmark_reports_every_length_and_a_budget_per_repeat() -> None:
    import torch

    from bench.attention_budget import markdown, measure

    result = measure(batch_size=2, max_length=96, dtype=torch.float32, repeats=2)
    assert [row["length"] for row in result["table"]] == [64, 96]
    assert len(result["budgets_mib"]) == 2 and all(b >= 0 for b in result["budgets_mib"])
    for row in result["table"]:
        assert 0 < row["matmul"]["min"] <= row["matmul"]["median"] <= row["matmul"]["max"]
    rows = [line.split(" | ")[0] for line in markdown(result).splitlines() if line[:3] in ("| 6", "| 9")]
    assert rows == ["| 64", "| 96"]  # one table row per measured length


def test_space_ceiling_adds_each_layers_int8_kernels_at_the_windows_length() -> None:
    from bench.space_ceiling import layer_seconds

    def rows(kernel: str, per_layer: int, seconds: tuple[float, float], flop: int = 1) -> list[dict]:
        return [{"kernel": kernel, "per_layer": per_layer, "length": n, "flop": flop, "seconds": s}
                for n, s in zip((100, 200), seconds)]  # fmt: skip

    kernels = [
        *rows("projection 4x4 int8", 4, (1.0, 2.0)),
        *rows("projection 4x4 float32", 4, (10.0, 20.0)),  # float projections are not the engine's
        *rows("projection 4x16 int8", 1, (3.0, 5.0)),
        *rows("attention float32", 1, (7.0, 9.0)),
    ]
    # at 150 tokens: 4 x 1.5 + 4.0 + 8.0, interpolated between the timed lengths
    assert layer_seconds(kernels, 150, hidden=4) == pytest.approx(18.0)
    # attention at a given FLOP rate instead: 4 x 150^2 x 4 FLOP at 3.6e5 FLOP/s = 1.0 s
    assert layer_seconds(kernels, 150, hidden=4, attention_rate=3.6e5) == pytest.approx(11.0)


def test_space_ceiling_benchmark_times_kernels_and_the_engine(tmp_path: Path) -> None:
    from bench.space_ceiling import LENGTHS, measure, to_markdown

    model_dir = build_random_model(tmp_path / "model", "tiny-bert", seed=0)
    result = measure(model_dir, n=3, seed=0, calls=1, repeats=1)
    assert result["windows"] >= 3 and result["engine_ms_per_window"]["median"] > 0
    assert len(result["kernels"]) == 7 * len(LENGTHS) and all(k["seconds"] > 0 for k in result["kernels"])
    assert result["engine_over_ceiling"] > 0 and result["ceiling_ms_per_window"] > 0
    table = [line for line in to_markdown(result, "cmd").splitlines() if line.startswith("| projection") or line.startswith("| attention")]
    assert len(table) == 7  # six projections (three shapes, int8 and float32) and attention
