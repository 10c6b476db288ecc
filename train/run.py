"""`python -m train`: fine-tune, select the best checkpoint on validation, evaluate on the test split.

Read top to bottom: parse options, load and tokenize data, load the model and apply the method,
evaluate the untouched model (the "before" row), train with the Trainer, evaluate the best model
on validation and test, then write the model, predictions and results.json (last, atomically).
Runs unchanged under `torchrun` and `accelerate launch`; only the main process writes files.
"""

from __future__ import annotations

import importlib.util
import logging
import shlex
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import Sampler, SequentialSampler
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from train import results
from train.config import Config, RunArguments, load_presets, parse_config
from train.data import prepare_splits
from train.encoding import encode_splits, encode_windows
from train.errors import UserError, cli
from train.metrics import compute_metrics, full_metrics, positive_probabilities
from train.modeling import apply_method, load_model, load_tokenizer, parameter_counts, save_for_pipeline

logger = logging.getLogger("train")


class OrderedEvalTrainer(Trainer):
    """A Trainer whose predictions come back in the dataset's row order.

    With length grouping on, transformers 5 also groups *evaluation* batches by length, so
    `predict` returns rows in another order than the dataset's and the test metrics and
    prediction table would pair a review with another review's score. Training keeps the
    grouping; evaluation reads rows in order (under DDP, accelerate's gather keeps order).
    """

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def resolve_precision(requested: str) -> str:
    if requested != "auto":
        if requested != "fp32" and not torch.cuda.is_available():
            raise UserError(f"--precision {requested} needs a CUDA GPU: use --precision fp32 or auto on CPU")
        return requested
    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


# Options that the fine-tuning and the masked-LM commands both take, under TrainingArguments' own names.
SHARED_OPTIONS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "weight_decay", "warmup_steps", "seed", "optim", "torch_compile", "dataloader_num_workers", "logging_steps",
)  # fmt: skip


def shared_training_kwargs(run: Any, precision: str) -> dict[str, Any]:
    """TrainingArguments both commands set alike: the shared options, precision, and the device."""
    return {
        **{name: getattr(run, name) for name in SHARED_OPTIONS},
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "dataloader_pin_memory": torch.cuda.is_available(),
        # accelerate treats torchrun on CPU as distributed (gloo) only when told the run is CPU-only.
        "use_cpu": not torch.cuda.is_available(),
        "logging_first_step": True,
    }


def to_training_arguments(run: RunArguments, precision: str) -> TrainingArguments:
    """Map the curated options onto TrainingArguments, with checkpoints and logs in output_dir."""
    report_to = run.report_to
    if report_to == "auto":
        report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    kwargs: dict[str, Any] = dict(
        **shared_training_kwargs(run, precision),
        output_dir=run.output_dir,
        gradient_accumulation_steps=run.gradient_accumulation_steps,
        max_grad_norm=run.max_grad_norm,
        ddp_find_unused_parameters=False,
        dataloader_persistent_workers=run.dataloader_persistent_workers and run.dataloader_num_workers > 0,
        eval_strategy=run.eval_strategy,
        eval_steps=run.eval_steps,
        save_strategy=run.eval_strategy,
        save_steps=run.eval_steps,
        save_total_limit=2,
        save_only_model=run.save_only_model,
        load_best_model_at_end=run.eval_strategy != "no",
        metric_for_best_model=run.metric_for_best_model,
        report_to=report_to,
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


def check_output_dir(run: RunArguments) -> Path:
    out = Path(run.output_dir)
    if results.is_finished(out):
        if not run.overwrite_output_dir:
            raise UserError(
                f"{out} already holds a finished run: choose another --output_dir or pass --overwrite_output_dir"
            )
        if not run.resume:
            shutil.rmtree(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file: --output_dir must name a folder")
    return out


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest checkpoint that finished saving, or None.

    transformers' `get_last_checkpoint` takes the highest-numbered folder even when the run was
    stopped while saving it (Ctrl-C, a time limit), and resuming from that half checkpoint fails.
    The Trainer writes trainer_state.json last, so a folder holding it is complete.
    """
    steps = {}
    for folder in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if folder.is_dir() and step.isdigit():
            steps[int(step)] = folder
    complete = [step for step, folder in steps.items() if (folder / "trainer_state.json").is_file()]
    for step in sorted(set(steps) - set(complete)):
        logger.warning("--resume: %s was not completely saved; skipping it", steps[step])
    return str(steps[max(complete)]) if complete else None


def predict_probabilities(trainer: Trainer, ds: Dataset, prefix: str) -> tuple[np.ndarray, dict[str, float]]:
    """Positive-class probabilities in row order, predicted shortest review first.

    Sorting by length puts reviews of similar length in one batch, about halving the padding
    that evaluation computes on IMDb's mixed lengths; the result is put back in row order.
    """
    order = np.argsort([len(ids) for ids in ds["input_ids"]], kind="stable")
    out = trainer.predict(ds.select(order), metric_key_prefix=prefix)
    prob_positive = np.empty(len(ds))
    prob_positive[order] = positive_probabilities(out.predictions)
    return prob_positive, out.metrics


def evaluate(
    trainer: Trainer, ds: Dataset, prefix: str
) -> tuple[dict[str, Any], np.ndarray, dict[str, float]]:
    """Full metrics, positive-class probabilities and the Trainer's speed figures for one split."""
    prob_positive, speed = predict_probabilities(trainer, ds, prefix)
    metrics = full_metrics(np.asarray(ds["label"]), prob_positive)
    metrics["loss"] = speed.get(f"{prefix}_loss")
    return metrics, prob_positive, speed


def evaluate_windows(trainer: Trainer, windows: Dataset, n_reviews: int) -> tuple[dict[str, Any], np.ndarray]:
    """Average each review's window probabilities into one prediction, then score the reviews."""
    window_prob, _ = predict_probabilities(trainer, windows.remove_columns("review"), "windows")
    review = np.asarray(windows["review"])
    prob_positive = np.bincount(review, weights=window_prob, minlength=n_reviews) / np.bincount(review)
    labels = np.zeros(n_reviews, dtype=int)
    labels[review] = np.asarray(windows["label"])
    metrics = full_metrics(labels, prob_positive)
    metrics["windows"] = len(windows)
    return metrics, prob_positive


def train_one(config: Config) -> Path:
    """Train, evaluate and save one run; returns its output folder."""
    run, started = config.run, time.time()
    out = check_output_dir(run)
    precision = resolve_precision(run.precision)
    if config.model.eval_windows and not 0 <= config.model.window_stride < config.model.max_length // 2:
        raise UserError(
            f"--window_stride {config.model.window_stride} must be below half of --max_length "
            f"({config.model.max_length}): windows overlap by that many tokens"
        )
    # Before any model loading: TrainingArguments sets up the process group under torchrun/accelerate.
    args = to_training_arguments(run, precision)
    set_seed(run.seed)

    tokenizer = load_tokenizer(config.model)
    data_started = time.time()
    splits = prepare_splits(config.data, seed=run.seed)
    encoded = encode_splits(
        splits, tokenizer, config.model.max_length, config.model.truncation, config.model.head_tokens
    )
    # Loading and tokenizing; `datasets` caches both for local files, so a repeated run pays less.
    data_seconds = time.time() - data_started
    model = apply_method(load_model(config.model), config.model.method, config.lora)
    counts = parameter_counts(model)
    logger.info(
        "%s: %s, %d of %d parameters trainable (%.2f%%)",
        config.model.method,
        config.model.model_name_or_path,
        counts["trainable_parameters"],
        counts["num_parameters"],
        100 * counts["trainable_share"],
    )

    patience = run.early_stopping_patience if run.eval_strategy != "no" else None
    trainer = OrderedEvalTrainer(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(
            tokenizer,
            padding="max_length" if config.model.pad_to_max_length else "longest",
            max_length=config.model.max_length if config.model.pad_to_max_length else None,
            pad_to_multiple_of=run.pad_to_multiple_of,
        ),
        compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=patience)] if patience else [],
    )

    baseline = evaluate(trainer, encoded["test"], "baseline")[0] if run.baseline else None
    checkpoint = last_complete_checkpoint(out) if run.resume and out.is_dir() else None
    if run.resume and checkpoint:
        logger.info("resuming from %s", checkpoint)
    elif run.resume:
        logger.warning("--resume: no checkpoint in %s, starting from the beginning", out)
    train_out = trainer.train(resume_from_checkpoint=checkpoint)

    validation = evaluate(trainer, encoded["validation"], "validation")[0]
    test, prob_positive, test_speed = evaluate(trainer, encoded["test"], "test")
    truncated, windows_speed = None, {}
    if config.model.eval_windows:
        truncated, windows_started = test, time.time()
        windows = encode_windows(
            splits["test"], tokenizer, config.model.max_length, config.model.window_stride
        )
        test, prob_positive = evaluate_windows(trainer, windows, len(splits["test"]))
        # The windowed score's own cost, windowing included: what serving it on the test split takes.
        seconds = time.time() - windows_started
        windows_speed = {
            "test_windows_runtime_s": seconds,
            "test_windows_reviews_per_second": len(splits["test"]) / seconds,
            "test_windows": len(windows),
        }
        logger.info("windowed test accuracy %.4f (truncated %.4f)", test["accuracy"], truncated["accuracy"])
    logger.info("test accuracy %.4f, F1 %.4f", test["accuracy"], test["f1"])

    if trainer.is_world_process_zero():
        record = {
            "schema_version": results.SCHEMA_VERSION,
            "command": shlex.join([Path(sys.executable).name, "-m", "train", *sys.argv[1:]]),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "preset": run.preset,
            "base_model": config.model.model_name_or_path,
            "dataset": results.dataset_statistics(encoded, _dataset_name(config), config.model.max_length),
            "method": config.model.method,
            "model": {
                **counts,
                "model_type": model.config.model_type,
                "max_length": config.model.max_length,
                "truncation": config.model.truncation,
                "lora": _lora_summary(config, model) if config.model.method == "lora" else None,
            },
            "hyperparameters": _hyperparameters(run, precision),
            "environment": results.environment(args.world_size, precision),
            "timings": {
                "train_runtime_s": train_out.metrics["train_runtime"],
                "train_samples_per_second": train_out.metrics["train_samples_per_second"],
                "train_steps_per_second": train_out.metrics["train_steps_per_second"],
                "test_runtime_s": test_speed["test_runtime"],
                "test_samples_per_second": test_speed["test_samples_per_second"],
                **windows_speed,
                "data_prepare_s": data_seconds,
                "total_runtime_s": time.time() - started,
                **_throughput(encoded["train"], trainer, train_out.metrics["train_runtime"]),
            },
            "metrics": {
                "baseline": baseline,
                "validation": validation,
                "test": test,
                "test_truncated": truncated,
            },
            "best_checkpoint_step": trainer.state.best_global_step,
            "global_step": trainer.state.global_step,
            "epochs_trained": trainer.state.epoch,
            "log_history": trainer.state.log_history,
            "config": config.to_dict(),
        }
        save_outputs(trainer, tokenizer, encoded["test"], prob_positive, record, out, run.keep_checkpoints)
        logger.info("finished: model and results in %s", out)
    return out


def save_outputs(
    trainer: Trainer,
    tokenizer,
    test: Dataset,
    prob_positive: np.ndarray,
    record: dict[str, Any],
    out: Path,
    keep_checkpoints: bool,
) -> None:
    """Model and tables first, results.json last: a folder without it is not a finished run."""
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    save_for_pipeline(trainer.model, tokenizer, staging)
    for item in staging.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    staging.rmdir()
    results.write_predictions(results.predictions_table(test, prob_positive), out)
    if not keep_checkpoints:
        for ckpt in out.glob("checkpoint-*"):
            shutil.rmtree(ckpt)
    results.write_json_atomic(record, out / results.RESULTS_FILE)


def _throughput(train: Dataset, trainer: Trainer, runtime: float) -> dict[str, float | None]:
    """Real (non-padding) tokens per second, the Trainer's FLOP estimate, and peak GPU memory."""
    seen = sum(len(ids) for ids in train["input_ids"]) * trainer.state.epoch
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {
        "train_tokens_per_second": seen / runtime,
        "train_total_flos": float(trainer.state.total_flos),
        "peak_gpu_memory_gib": peak,
    }


def _dataset_name(config: Config) -> str:
    data = config.data
    return data.train_file or data.dataset_name


def _lora_summary(config: Config, model: torch.nn.Module) -> dict[str, Any]:
    lora = config.lora
    targets = sorted(model.peft_config["default"].target_modules)
    return {
        "r": lora.lora_r,
        "alpha": lora.lora_alpha,
        "dropout": lora.lora_dropout,
        "target_modules": targets,
    }


def _hyperparameters(run: RunArguments, precision: str) -> dict[str, Any]:
    keys = (
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "weight_decay",
        "warmup_steps",
        "max_grad_norm",
        "seed",
        "gradient_checkpointing",
        "group_by_length",
        "torch_compile",
        "optim",
        "early_stopping_patience",
        "metric_for_best_model",
        "eval_strategy",
        "eval_steps",
    )
    return {"precision": precision, **{k: getattr(run, k) for k in keys}}


@cli
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    argv = sys.argv[1:] if argv is None else argv
    config = parse_config(argv)
    if config.run.list_presets:
        for name, values in load_presets().items():
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        return
    if config.run.sweep:
        from train.sweep import run_sweep

        run_sweep(argv, config)
        return
    out = train_one(config)
    if config.run.push_to_hub and _is_main_process():
        from model_card.push import PublishError, publish

        repo_id = config.run.push_to_hub
        try:
            url = publish(out, repo_id, private=config.run.hub_private, base_model=config.run.hub_base_model)
        except PublishError as err:
            raise UserError(
                f"{err} The trained run is kept in {out}; publish it later with "
                f"python -m model_card push {out} --repo_id {repo_id}"
            ) from None
        print(f"Published {repo_id}: {url}")


def _is_main_process() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
