"""`python -m train`: fine-tune, select the best checkpoint on validation, evaluate on the test split.

Read top to bottom: parse options, load and tokenize data, load the model and apply the method,
evaluate the untouched model (the "before" row), train with the Trainer, evaluate the best model
on validation and test, then write the model, predictions and results.json (last, atomically).
Runs unchanged under `torchrun` and `accelerate launch`; only the main process writes files.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from train import attention, calibration, results
from train.behaviour import run_suite
from train.config import Config, RunArguments, hyperparameters, load_presets, parse_config
from train.data import prepare_splits, read_task, stratified_subset
from train.encoding import encode_splits
from train.errors import UserError, cli
from train.evaluation import OrderedEvalTrainer, evaluate, evaluate_test, predict_logits, score_texts
from train.extra_eval import ExtraSet, evaluate_extra_sets, load_extra_sets
from train.metrics import metrics_fn, scores, task_metrics
from train.modeling import (
    apply_method,
    dropout_overrides,
    load_model,
    load_tokenizer,
    parameter_counts,
    save_for_pipeline,
)
from train.spans import add_spans
from train.sweep import run_sweep
from train.task import Task
from train.training_args import resolve_precision, to_training_arguments

logger = logging.getLogger("train")
# The test figures logged at the end of a run, by kind of task.
HEADLINE = {"classification": ("accuracy", "f1", "f1_macro"), "regression": ("mae", "rmse", "within_one",
            "spearman", "sign_accuracy")}  # fmt: skip


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


def build_trainer(
    config: Config,
    args: TrainingArguments,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    encoded: DatasetDict,
    task: Task,
) -> OrderedEvalTrainer:
    """The Trainer with length-aware padding, the task's metrics and early stopping when there is validation."""
    run = config.run
    patience = run.early_stopping_patience if run.eval_strategy != "no" else None
    args.metric_for_best_model, args.greater_is_better = task.best_metric(run.metric_for_best_model)
    return OrderedEvalTrainer(
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
        compute_metrics=metrics_fn(task),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=patience)] if patience else [],
    )


def fit(trainer: Trainer, run: RunArguments, out: Path) -> dict[str, float]:
    """Train, from the newest complete checkpoint with --resume; returns the Trainer's train metrics."""
    checkpoint = last_complete_checkpoint(out) if run.resume and out.is_dir() else None
    if run.resume and checkpoint:
        logger.info("resuming from %s", checkpoint)
    elif run.resume:
        logger.warning("--resume: no checkpoint in %s, starting from the beginning", out)
    return trainer.train(resume_from_checkpoint=checkpoint).metrics


def choose_attention_budget(config: Config, model: PreTrainedModel, precision: str) -> dict[str, Any] | None:
    """With the CPU kernel and no --matmul_attention_max_mib: measure where matmul attention stops paying."""
    if model.config._attn_implementation != attention.NAME:
        return None
    if config.model.matmul_attention_max_mib is not None:
        return {"kernel": attention.NAME, "matmul_max_mib": config.model.matmul_attention_max_mib,
                "decided_by": "--matmul_attention_max_mib"}  # fmt: skip
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32  # what autocast gives the kernel
    rule = attention.choose_by_measurement(
        model.config, config.run.per_device_train_batch_size, config.model.max_length, dtype
    )
    logger.info("attention: matmul while a batch's scores fit in %.1f MiB, in chunks of half that while a review's "
                "fit in %.2f MiB (measured in %.1f s; sysfs cache %.0f MiB)", rule["matmul_max_mib"],
                rule["chunked_max_review_mib"], rule["measure_seconds"], rule["sysfs_last_level_cache_mib"])  # fmt: skip
    return rule


def calibrate(
    trainer: Trainer, encoded: DatasetDict, run: RunArguments, task: Task
) -> tuple[dict[str, Any], float, dict[str, Any] | None]:
    """Validation metrics, the temperature to fold into the model (1.0 unless kept) and the calibration record.

    The temperature is fitted only on reviews that chose nothing: a --calibration_size split held out of
    training, or the validation split when it chose no checkpoint (--eval_strategy no). It is kept only
    when it lowers the NLL on reviews it was not fitted on (calibration.choose_temperature).
    """
    metrics, logits, _ = evaluate(trainer, encoded["validation"], "validation", task)
    if not run.calibrate:
        return metrics, 1.0, None
    if task.regression:
        return metrics, 1.0, {
            "method": None, "applied": False, "temperature": 1.0, "fitted_temperature": None, "fitted_on": None,
            "num_examples": 0, "bins": None, "check": None,
            "reason": "not calibrated: a rating model returns a value, not probabilities, so temperature scaling "
                      "does not apply",
        }  # fmt: skip
    if "calibration" in encoded:
        fit_logits, _ = predict_logits(trainer, encoded["calibration"], "calibration")
        fit_labels, where = np.asarray(encoded["calibration"]["label"]), "calibration reviews held out of training"
    elif run.eval_strategy == "no":
        fit_logits, fit_labels = logits, np.asarray(encoded["validation"]["label"])
        where = "validation reviews (which chose no checkpoint)"
    else:
        return metrics, 1.0, {
            "method": "temperature", "applied": False, "temperature": 1.0, "fitted_temperature": None,
            "fitted_on": None, "num_examples": 0, "bins": calibration.ECE_BINS, "check": None,
            "reason": "not calibrated: the validation reviews chose the checkpoint, so a temperature fitted on "
                      "them would not be fair; hold reviews out for it with --calibration_size",
        }  # fmt: skip
    decision = calibration.choose_temperature(fit_logits, fit_labels, where, run.seed)
    labels, temperature = np.asarray(encoded["validation"]["label"]), decision["temperature"]
    after = scores(task, logits, temperature)
    report = calibration.report(labels, scores(task, logits), after, logits, temperature)
    decision["validation"] = {k: v for k, v in report.items() if not k.startswith("reliability")}
    return {**task_metrics(task, labels, after), "loss": metrics["loss"]}, temperature, decision


def measure_beyond_test(
    trainer: Trainer, tokenizer: PreTrainedTokenizerBase, config: Config, extra_sets: list[ExtraSet],
    temperature: float,
) -> dict[str, Any]:  # fmt: skip
    """What the IMDb test split does not show: the --extra_eval sets and the behaviour suite (results.json keys)."""
    extra = evaluate_extra_sets(extra_sets, trainer, tokenizer, config.model, temperature)
    for name, m in extra.items():
        logger.info("extra eval %s: accuracy %.4f, ECE %.4f on %d texts", name, m["accuracy"], m["ece"], m["n"])
    behaviour = run_suite(lambda texts: score_texts(trainer, tokenizer, config.model, list(texts), temperature))
    logger.info("behaviour suite failure rates: %s", ", ".join(
        f"{name} {c['failure_rate']:.0%}" for name, c in behaviour["capabilities"].items()))  # fmt: skip
    return {"extra_eval": extra or None, "behaviour": behaviour}


def train_one(config: Config) -> Path:
    """Train, evaluate and save one run; returns its output folder."""
    run, started = config.run, time.time()
    extra_sets = load_extra_sets(config.data)  # a bad file stops the run here, before any work
    out = results.claim_output_dir(
        Path(run.output_dir), results.RESULTS_FILE, run.overwrite_output_dir, keep=run.resume
    )
    precision = resolve_precision(run.precision)
    # Before any model loading: TrainingArguments sets up the process group under torchrun/accelerate.
    args = to_training_arguments(run, precision)
    set_seed(run.seed)

    data_started = time.time()
    splits = prepare_splits(config.data, seed=run.seed)  # before the tokenizer: a wrong data path is said first
    task = read_task(splits["train"], config.data)
    splits["train"] = add_spans(splits["train"], config.data, task, run.seed)
    tokenizer = load_tokenizer(config.model.model_name_or_path)
    if extra_sets and not task.sentiment:
        raise UserError(f"--extra_eval measures two-class sentiment models (NEGATIVE/POSITIVE), and this run is a "
                        f"{task.describe()}: drop --extra_eval")  # fmt: skip
    encoded = encode_splits(
        splits, tokenizer, config.model.max_length, config.model.truncation, config.model.head_tokens
    )
    # Loading and tokenizing; `datasets` caches both for local files, so a repeated run pays less.
    data_seconds = time.time() - data_started
    model = apply_method(load_model(config.model, task), config.model.method, config.lora)
    kernel_rule = choose_attention_budget(config, model, precision)
    counts = parameter_counts(model)
    logger.info("%s: %d of %d parameters trainable (%.2f%%)", config.model.method,
                counts["trainable_parameters"], counts["num_parameters"], 100 * counts["trainable_share"])  # fmt: skip
    trainer = build_trainer(config, args, model, tokenizer, encoded, task)

    baseline = None
    if run.baseline:
        baseline_test = stratified_subset(encoded["test"], run.baseline_samples, run.seed)
        baseline = evaluate(trainer, baseline_test, "baseline", task)[0]
    train_metrics = fit(trainer, run, out)
    validation, temperature, calibrated = calibrate(trainer, encoded, run, task)
    test, truncated, test_scores, test_timings, reports = evaluate_test(
        trainer, encoded["test"], splits["test"], tokenizer, config.model, task, temperature
    )
    if calibrated is not None and reports:
        calibrated.update(reports)
        logger.info("%s; test ECE %.4f -> %.4f", calibrated["reason"],
                    reports["test"]["ece_before"], reports["test"]["ece_after"])  # fmt: skip
    beyond = (measure_beyond_test(trainer, tokenizer, config, extra_sets, temperature) if task.sentiment
              else {"extra_eval": None, "behaviour": None})  # the suite and the sets speak two-class sentiment
    if calibrated is not None and calibrated["applied"]:
        calibration.fold_temperature(trainer.model, temperature)
    headline = "mae" if task.regression else "accuracy"
    if truncated:
        logger.info("windowed test %s %.4f (truncated %.4f)", headline, test[headline], truncated[headline])
    logger.info("test %s", ", ".join(f"{k} {test[k]:.4f}" for k in HEADLINE[task.kind] if test.get(k) is not None))

    if trainer.is_world_process_zero():
        timings = {
            "train_runtime_s": train_metrics["train_runtime"],
            "train_samples_per_second": train_metrics["train_samples_per_second"],
            "train_steps_per_second": train_metrics["train_steps_per_second"],
            **test_timings,
            "data_prepare_s": data_seconds,
            "total_runtime_s": time.time() - started,
            **_throughput(encoded["train"], trainer, train_metrics["train_runtime"]),
        }
        metrics = {"baseline": baseline, "validation": validation, "test": test, "test_truncated": truncated}
        record = build_record(config, trainer, encoded, precision, counts, timings, metrics, task)
        record["model"]["attention"] = kernel_rule
        record["calibration"] = calibrated
        record.update(beyond)
        save_outputs(trainer, tokenizer, encoded["test"], test_scores, task, record, out, run.keep_checkpoints)
        logger.info("finished: model and results in %s", out)
    return out


def build_record(
    config: Config,
    trainer: Trainer,
    encoded: DatasetDict,
    precision: str,
    counts: dict[str, float],
    timings: dict[str, Any],
    metrics: dict[str, Any],
    task: Task,
) -> dict[str, Any]:
    """results.json: everything the run measured, with models and data named portably."""
    run, model = config.run, trainer.model
    return {
        "schema_version": results.SCHEMA_VERSION,
        "task": task.to_record(),
        "command": results.portable_command("train", config.argv),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "preset": run.preset,
        "base_model": run.hub_base_model or results.portable_name(config.model.model_name_or_path),
        "dataset": results.dataset_statistics(
            encoded,
            results.portable_name(config.data.train_file or config.data.dataset_name),
            config.model.max_length,
            task,
        ),
        "method": config.model.method,
        "model": {
            **counts,
            "model_type": model.config.model_type,
            "max_length": config.model.max_length,
            "truncation": config.model.truncation,
            "eval_window_length": config.model.window_length if config.model.eval_windows else None,
            "dropout": dropout_overrides(model.config, config.model) or None,
            "lora": _lora_summary(config, model) if config.model.method == "lora" else None,
        },
        # The checkpoint metric as the task resolved it (f1 becomes macro F1 or RMSE): what chose the model.
        "hyperparameters": {
            **hyperparameters(run, precision), "metric_for_best_model": trainer.args.metric_for_best_model
        },
        "environment": results.environment(trainer.args.world_size, precision),
        "timings": timings,
        "metrics": metrics,
        "best_checkpoint_step": trainer.state.best_global_step,
        "global_step": trainer.state.global_step,
        "epochs_trained": trainer.state.epoch,
        "log_history": trainer.state.log_history,
        "config": results.portable_config(config.to_dict()),
    }


def save_outputs(
    trainer: Trainer,
    tokenizer,
    test: Dataset,
    test_scores: np.ndarray,
    task: Task,
    record: dict[str, Any],
    out: Path,
    keep_checkpoints: bool,
) -> None:
    """Model and tables first, results.json last: a folder without it is not a finished run."""
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    save_for_pipeline(trainer.model, tokenizer, staging, base_model=record["base_model"])
    for item in staging.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    staging.rmdir()
    results.write_predictions(results.predictions_table(test, test_scores, task), out)
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


def _lora_summary(config: Config, model: torch.nn.Module) -> dict[str, Any]:
    lora = config.lora
    targets = sorted(model.peft_config["default"].target_modules)
    return {
        "r": lora.lora_r,
        "alpha": lora.lora_alpha,
        "dropout": lora.lora_dropout,
        "target_modules": targets,
    }


@cli(resumable=True)
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    argv = sys.argv[1:] if argv is None else argv
    config = parse_config(argv)
    if config.run.list_presets:
        for name, values in load_presets().items():
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        return
    if config.run.sweep:
        run_sweep(argv, config, train_one)
        return
    out = train_one(config)
    if config.run.push_to_hub and _is_main_process():
        from model_card.push import publish

        repo_id = config.run.push_to_hub
        try:
            url = publish(
                out,
                repo_id,
                private=config.run.hub_private,
                base_model=config.run.hub_base_model,
                space_id=config.run.hub_space_id,
                onnx=config.run.onnx,
            )
        except UserError as err:
            raise UserError(
                f"{err} The trained run is kept in {out}; publish it later with "
                f"python -m model_card push {out} --repo_id {repo_id}"
                + "".join(f" {flag} {value}" for flag, value in (("--space_id", config.run.hub_space_id),
                          ("--base_model", config.run.hub_base_model)) if value)  # fmt: skip
            ) from err
        print(f"Published {repo_id}: {url}")


def _is_main_process() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
