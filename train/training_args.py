"""From the command's options to what the Trainer runs: the precision this machine computes fastest,
and the TrainingArguments both training commands (fine-tuning and the masked-LM stage) build.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from typing import Any

import torch
from transformers import TrainingArguments

from train.config import RunArguments, TrainingOptions
from train.errors import UserError

logger = logging.getLogger("train")


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bf16 matmuls in hardware (AVX512-BF16 or AMX).

    There bf16 autocast trains faster than float32 (measured in bench/results/cpu_step.md); on other
    CPUs bf16 is emulated and slower than float32. torch has no public query for this, so its CPU-capability
    helpers are used, and a torch without them counts as no.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return torch.backends.mkldnn.is_available() and any(
        getattr(torch.cpu, c, lambda: False)() for c in checks
    )


def resolve_precision(requested: str) -> str:
    """The precision a run uses: what was asked for, or for auto what this machine computes fastest."""
    cuda = torch.cuda.is_available()
    if requested == "fp16" and not cuda:
        raise UserError("--precision fp16 needs a CUDA GPU: use --precision bf16, fp32 or auto on CPU")
    if requested == "bf16" and not cuda and not cpu_has_native_bf16():
        logger.warning(
            "this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 is emulated and slower than fp32"
        )
    if requested != "auto":
        return requested
    if not cuda:
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


# The shared options that TrainingArguments takes under the same name (the rest are mapped below).
PASSED_AS_IS = tuple(
    f.name
    for f in dataclasses.fields(TrainingOptions)
    if f.name in TrainingArguments.__dataclass_fields__
    and f.name not in ("report_to", "overwrite_output_dir")
)


def shared_training_kwargs(run: TrainingOptions, precision: str) -> dict[str, Any]:
    """TrainingArguments both commands set alike: the shared options, precision, logging and the device."""
    report_to = run.report_to
    if report_to == "auto":
        report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    return {
        **{name: getattr(run, name) for name in PASSED_AS_IS},
        "report_to": report_to,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "dataloader_pin_memory": torch.cuda.is_available(),
        # accelerate treats torchrun on CPU as distributed (gloo) only when told the run is CPU-only.
        "use_cpu": not torch.cuda.is_available(),
        "logging_first_step": True,
    }


def to_training_arguments(run: RunArguments, precision: str) -> TrainingArguments:
    """Map the fine-tuning options onto TrainingArguments, with checkpoints and logs in output_dir."""
    kwargs: dict[str, Any] = dict(
        **shared_training_kwargs(run, precision),
        gradient_accumulation_steps=run.gradient_accumulation_steps,
        max_grad_norm=run.max_grad_norm,
        ddp_find_unused_parameters=False,
        dataloader_persistent_workers=run.dataloader_persistent_workers and run.dataloader_num_workers > 0,
        eval_strategy=run.eval_strategy,
        eval_steps=run.eval_steps,
        save_strategy=run.eval_strategy,
        save_steps=run.eval_steps,
        save_total_limit=run.save_total_limit,
        save_only_model=run.save_only_model,
        load_best_model_at_end=run.eval_strategy != "no",
        metric_for_best_model=run.metric_for_best_model,
    )
    # Newer transformers 5 releases renamed two options; accept the older names too (the GPU image has 5.17).
    fields = TrainingArguments.__dataclass_fields__
    if run.gradient_checkpointing:
        kwargs[
            "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
        ] = True
    if run.group_by_length:
        if "train_sampling_strategy" in fields:
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
    return TrainingArguments(**kwargs)
