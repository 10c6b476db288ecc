"""Every option of the training command, in one place.

Dataclasses parsed by `HfArgumentParser`, in the transformers examples' flag convention.
Defaults come, lowest first, from the dataclasses below, a preset (`presets.yaml`), a
`--config` file (YAML or JSON, the same keys as the flags), and the command line.

The training options are a curated set rather than all of `transformers.TrainingArguments`:
they are the ones this task needs, with defaults chosen for it (best model by F1, early
stopping, precision picked from the hardware), and `to_training_arguments` maps them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from transformers import HfArgumentParser

from train.errors import UserError

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
LABELS = ("NEGATIVE", "POSITIVE")


# --precision of the fine-tuning and masked-LM commands alike (train.training_args.resolve_precision reads it).
PRECISION_OPTION = {
    "help": "auto: bf16 on a GPU that has it, else fp16 on GPU; on CPU bf16 where the processor computes it "
    "natively (AVX512-BF16 or AMX), else fp32. bf16 on CPU runs under autocast with float32 weights.",
    "choices": ["auto", "fp32", "bf16", "fp16"],
}


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="distilbert-base-uncased",
        metadata={
            "help": "Hub id or local folder of any encoder that AutoModelForSequenceClassification loads."
        },
    )
    method: str = field(
        default="full",
        metadata={
            "help": "full: train every weight; lora: low-rank adapters (peft) plus the classifier head, "
            "saved merged; head: frozen encoder, classifier head only (the cheap baseline).",
            "choices": ["full", "lora", "head"],
        },
    )
    max_length: int = field(
        default=512, metadata={"help": "Longest input in tokens, special tokens included."}
    )
    truncation: str = field(
        default="head",
        metadata={
            "help": "How a review longer than max_length is cut: keep its start (head), its end (tail), "
            "or both (head_tail: the first --head_tokens and the rest from the end).",
            "choices": ["head", "tail", "head_tail"],
        },
    )
    head_tokens: int = field(
        default=128,
        metadata={"help": "With --truncation head_tail: tokens kept from the start of the review."},
    )
    eval_windows: bool = field(
        default=False,
        metadata={
            "help": "Test-time: classify a review longer than max_length as overlapping windows and average "
            "their probabilities (the truncated result is kept beside it in results.json)."
        },
    )
    window_stride: int = field(
        default=128, metadata={"help": "With --eval_windows: tokens shared by neighbours."}
    )
    pad_to_max_length: bool = field(
        default=False,
        metadata={
            "help": "Pad every batch to max_length (the reference recipe) instead of to its longest review."
        },
    )
    attn_implementation: Optional[str] = field(
        default=None,
        metadata={
            "help": "Attention kernel passed to from_pretrained, e.g. sdpa or eager (none: sdpa_or_matmul on CPU, "
            "transformers' default on a GPU). sdpa_or_matmul is train/attention.py: plain matmul attention in the "
            "autocast dtype while a batch's scores fit in a budget measured at start-up, in chunks of the batch "
            "that fit it where that was measured faster, SDPA beyond."
        },
    )
    matmul_attention_max_mib: Optional[float] = field(
        default=None,
        metadata={
            "help": "Largest score tensor (batch x heads x length^2, MiB) that sdpa_or_matmul runs as plain matmul "
            "attention; larger ones run SDPA (none: measured at start-up, the kernels on this run's shapes, where "
            "they cross, together with how long chunks of a larger batch still beat SDPA: "
            "bench/results/attention_budget_*.md). Given here, larger batches always run SDPA."
        },
    )
    dropout: Optional[float] = field(
        default=None,
        metadata={
            "help": "Dropout on hidden states and the classifier during fine-tuning (none: the checkpoint's own)."
        },
    )
    attention_dropout: Optional[float] = field(
        default=0.0,
        metadata={
            "help": "Dropout on attention probabilities during fine-tuning (none: the checkpoint's own). 0 lets "
            "PyTorch's fused attention kernel run; see bench/NOTES.md for speed and accuracy."
        },
    )
    eval_max_length: Optional[int] = field(
        default=None,
        metadata={
            "help": "With --eval_windows: window length in tokens at test time (default --max_length). A model "
            "fine-tuned on short inputs can read longer windows, up to its position embeddings."
        },
    )

    @property
    def window_length(self) -> int:
        return self.eval_max_length or self.max_length

    def __post_init__(self) -> None:
        for value, flag in ((self.dropout, "--dropout"), (self.attention_dropout, "--attention_dropout")):
            if value is not None and not 0 <= value < 1:
                raise UserError(f"{flag} {value} must be in [0, 1)")
        if self.eval_windows and not 0 <= self.window_stride < self.window_length // 2:
            raise UserError(
                f"--window_stride {self.window_stride} must be below half of the window length "
                f"({self.window_length}, from --eval_max_length or --max_length): windows overlap by that many tokens"
            )


@dataclass
class LoraArguments:
    """LoRA settings, used with --method lora (the shape of TRL's reusable peft config)."""

    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Linear layers to adapt. Default: found from the architecture "
            "(q_lin/v_lin for DistilBERT, query/value for BERT and RoBERTa, q_proj/v_proj elsewhere)."
        },
    )


@dataclass
class DataArguments:
    dataset_name: str = field(
        default="stanfordnlp/imdb",
        metadata={
            "help": "Hub dataset id, or a local folder: train/test files (parquet, csv, tsv, jsonl) "
            "or the original aclImdb layout (train/pos, train/neg, test/pos, test/neg)."
        },
    )
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset configuration."})
    train_file: Optional[str] = field(
        default=None, metadata={"help": "A train file (parquet, csv, tsv, jsonl)."}
    )
    test_file: Optional[str] = field(
        default=None, metadata={"help": "A test file (parquet, csv, tsv, jsonl)."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the review text."})
    label_column: str = field(
        default="label",
        metadata={
            "help": "Column holding the label: a class (any names or whole numbers; 0/1, neg/pos and negative/positive "
            "become NEGATIVE/POSITIVE) or, with --task regression, a number."
        },
    )
    task: str = field(
        default="classification",
        metadata={
            "help": "classification: one class per text, the classes read from the training labels; regression: a "
            "numeric rating or score per text (one output, mean squared error; pipeline returns the value).",
            "choices": ["classification", "regression"],
        },
    )
    label_names: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Class names in id order (default: from the data, sorted). With whole-number labels, label i is "
            "named by the i-th name; with named labels, this fixes the classes' order.",
        },
    )
    rating_midpoint: Optional[float] = field(
        default=None,
        metadata={
            "help": "With --task regression: the value between negative and positive ratings (5.5 for IMDb's 1-4 and "
            "7-10 stars); the run then also reports the two-class accuracy its ratings imply."
        },
    )
    validation_size: float = field(
        default=0.1,
        metadata={
            "help": "Held out of train for model selection (stratified): a fraction, or a count if >= 1."
        },
    )
    calibration_size: float = field(
        default=0,
        metadata={
            "help": "Held out of train for fitting the temperature (stratified): a fraction, or a count if >= 1. "
            "0: fit it on the validation split when that chose no checkpoint (--eval_strategy no), else do not "
            "calibrate. Either way the temperature is kept only if it lowers the NLL on reviews it was not fitted on."
        },
    )
    extra_eval: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "NAME=PATH (repeatable): after training, also evaluate on this file (csv, tsv, jsonl or parquet "
            "with text and label columns; rows labelled -1 skipped), with the test split's windows and temperature. "
            "Measured only: never trained on, never used to choose a checkpoint or fit the temperature.",
            "action": "extend",
        },
    )
    train_spans: int = field(
        default=0,
        metadata={
            "help": "Short spans (one to three sentences) cut from each training review and added to training, "
            "labelled by their review (train/spans.py): up to this many per review; 0: none."
        },
    )
    span_position: str = field(
        default="random",
        metadata={"help": "Where spans are cut: anywhere, or a review's last sentences (its verdict).",
                  "choices": ["random", "last"]},
    )
    span_teacher: Optional[str] = field(
        default=None,
        metadata={
            "help": "A model trained on full reviews (folder or Hub id): keep only the spans it gives their "
            "review's label with at least --span_teacher_min probability."
        },
    )
    span_teacher_min: float = field(default=0.9, metadata={"help": "The teacher's probability a span must reach."})
    span_unlabelled_file: Optional[str] = field(
        default=None,
        metadata={
            "help": "Unlabelled reviews (a file with the text column): their spans are added too, labelled by "
            "--span_teacher where it is at least --span_teacher_min sure (self-training)."
        },
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Stratified train subset size."})
    max_eval_samples: Optional[int] = field(
        default=None, metadata={"help": "Stratified validation subset size."}
    )
    max_test_samples: Optional[int] = field(
        default=None,
        metadata={"help": "Stratified test subset size (default: the whole official test split)."},
    )
    clean_html: bool = field(default=True, metadata={"help": "Replace the reviews' <br /> tags with spaces."})


@dataclass
class TrainingOptions:
    """Options every training command takes (fine-tuning and the masked-LM stage), declared once.

    Each command's parser includes this class; `python -m train.mlm` sets its own defaults on top
    (MLM_DEFAULTS in train/mlm.py). HYPERPARAMETERS names those that results.json and the card list.
    """

    output_dir: str = field(
        default="runs/imdb-sentiment", metadata={"help": "Where the model and results go."}
    )
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate (AdamW, linear decay)."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Passes over the training data."})
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimizer steps (overrides epochs)."}
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(
        default=64, metadata={"help": "Evaluation batch size per device."}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_steps: float = field(
        default=500,
        metadata={"help": "Linear warm-up: a number of steps, or a fraction of all steps if < 1."},
    )
    seed: int = field(
        default=42, metadata={"help": "Seed for splits, subsets, initialisation and shuffling."}
    )
    precision: str = field(default="auto", metadata=PRECISION_OPTION)
    optim: str = field(
        default="adamw_torch_fused",
        metadata={
            "help": "Optimizer name as TrainingArguments knows it. The fused AdamW updates all weights in one "
            "kernel, on GPU and CPU alike (on CPU the Trainer's adamw_torch loops over them: bench/NOTES.md)."
        },
    )
    torch_compile: bool = field(default=False, metadata={"help": "Compile the model with torch.compile."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Data loading worker processes."})
    logging_steps: int = field(default=50, metadata={"help": "Log the training loss every N steps."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a finished run that is already in output_dir."}
    )
    report_to: str = field(
        default="auto",
        metadata={"help": "Logging integrations: auto (tensorboard if installed), none, or a list."},
    )


@dataclass
class RunArguments(TrainingOptions):
    """The fine-tuning command's own options, beside those it shares with the masked-LM stage."""

    preset: Optional[str] = field(
        default=None, metadata={"help": "Named hyperparameters from train/presets.yaml (see --list_presets)."}
    )
    sweep: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated presets to train one after another and compare (e.g. standard,high-lr)."
        },
    )
    config: Optional[str] = field(default=None, metadata={"help": "YAML or JSON file of flag values."})
    list_presets: bool = field(default=False, metadata={"help": "Print the presets and exit."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for activation memory."}
    )
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch training reviews of similar length together: on IMDb padding falls from about half of "
            "the tokens to a few percent (--no_group_by_length: random batches)."
        },
    )
    dataloader_persistent_workers: bool = field(
        default=False, metadata={"help": "Keep data loading workers alive between epochs and evaluations."}
    )
    pad_to_multiple_of: Optional[int] = field(
        default=None, metadata={"help": "Pad batch lengths to a multiple of N (8 suits tensor cores)."}
    )
    save_only_model: bool = field(
        default=False,
        metadata={"help": "Checkpoints without optimizer state: faster, but --resume cannot use them."},
    )
    eval_strategy: str = field(
        default="steps",
        metadata={
            "help": "When to evaluate on validation and checkpoint: steps, epoch, or no (then the last model is "
            "kept and there is no early stopping).",
            "choices": ["steps", "epoch", "no"],
        },
    )
    eval_steps: int = field(default=500, metadata={"help": "Evaluate (and checkpoint) every N steps."})
    metric_for_best_model: str = field(
        default="f1",
        metadata={
            "help": "Validation metric that picks the best checkpoint: f1, accuracy, roc_auc, loss, ..."
        },
    )
    early_stopping_patience: Optional[int] = field(
        default=3, metadata={"help": "Stop after N evaluations without improvement (0 or none: off)."}
    )
    baseline: bool = field(
        default=True, metadata={"help": "Also evaluate the model before fine-tuning on the test split."}
    )
    baseline_samples: Optional[int] = field(
        default=None,
        metadata={
            "help": "Evaluate the model before fine-tuning on a stratified subset of this many test reviews "
            "(default: the whole test split)."
        },
    )
    calibrate: bool = field(
        default=True,
        metadata={
            "help": "After training, fit a temperature on the validation split and fold it into the classifier, "
            "so the saved model's scores are calibrated probabilities (--no_calibrate: keep the raw softmax)."
        },
    )
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})
    keep_checkpoints: bool = field(
        default=False,
        metadata={"help": "Keep output_dir/checkpoints after a finished run (default: removed)."},
    )
    push_to_hub: Optional[str] = field(
        default=None,
        metadata={"help": "After training, publish the model and its card to this Hub repo (USER/NAME)."},
    )
    hub_private: bool = field(
        default=False, metadata={"help": "With --push_to_hub: create the repo private."}
    )
    hub_base_model: Optional[str] = field(
        default=None,
        metadata={
            "help": "With a local --model_name_or_path: the base model's Hub id (e.g. "
            "sentence-transformers/all-MiniLM-L6-v2), recorded in results.json, the card and a LoRA adapter's "
            "adapter_config.json instead of the folder."
        },
    )
    hub_space_id: Optional[str] = field(
        default=None,
        metadata={
            "help": "With --push_to_hub: the demo Space (USER/NAME) the card links and calls in its gradio_client "
            "snippet (default: none; deploy one with python -m model_card deploy-space)."
        },
    )
    onnx: bool = field(
        default=True,
        metadata={
            "help": "With --push_to_hub: also publish onnx/model.onnx and onnx/model_quantized.onnx, for "
            "transformers.js and ONNX Runtime (--no_onnx: weights and card only)."
        },
    )
    save_total_limit: int = field(
        default=2,
        metadata={"help": "Checkpoints kept in output_dir while training (the best one is always kept)."},
    )

    def __post_init__(self) -> None:
        if self.baseline_samples is not None and self.baseline_samples < 2:
            raise UserError(f"--baseline_samples {self.baseline_samples} must be at least 2 (one per class)")
        if self.save_total_limit < 1:
            raise UserError(f"--save_total_limit {self.save_total_limit} must be at least 1")


# The options results.json and the card list as a run's hyperparameters (argparse would reject a marker
# in the fields' metadata, which HfArgumentParser hands to it).
HYPERPARAMETERS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "weight_decay", "warmup_steps", "max_grad_norm", "seed", "gradient_checkpointing",
    "group_by_length", "torch_compile", "optim", "early_stopping_patience", "metric_for_best_model", "eval_strategy",
    "eval_steps", "baseline_samples",
)  # fmt: skip


def hyperparameters(run: RunArguments, precision: str) -> dict[str, Any]:
    """The HYPERPARAMETERS, with the precision the run resolved `--precision auto` to."""
    return {"precision": precision, **{name: getattr(run, name) for name in HYPERPARAMETERS}}


ARGUMENT_CLASSES = (ModelArguments, LoraArguments, DataArguments, RunArguments)


@dataclass
class Config:
    model: ModelArguments
    lora: LoraArguments
    data: DataArguments
    run: RunArguments
    argv: list[str] = field(default_factory=list)  # the command line it was parsed from, for results.json

    def to_dict(self) -> dict[str, Any]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in ("model", "lora", "data", "run")}


def load_presets() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(PRESETS_FILE.read_text())


def _read_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"config file {path} does not exist: check the path given to --config")
    try:
        values = json.loads(file.read_text()) if file.suffix == ".json" else yaml.safe_load(file.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise UserError(
            f"config file {path} is not valid {'JSON' if file.suffix == '.json' else 'YAML'}: {err}"
        )
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must hold a mapping of option names to values")
    return values


def _known_options() -> set[str]:
    return {f.name for cls in ARGUMENT_CLASSES for f in dataclasses.fields(cls)}


def _check_options(values: dict[str, Any], where: str) -> None:
    unknown = sorted(set(values) - _known_options())
    if unknown:
        raise UserError(f"{where} sets unknown option(s) {', '.join(unknown)}: see python -m train --help")


def build_parser() -> HfArgumentParser:
    return HfArgumentParser(
        ARGUMENT_CLASSES,
        prog="python -m train",
        description="Fine-tune a transformer encoder for IMDb sentiment and evaluate it on the official test split.",
    )


def parse_config(argv: list[str] | None = None, preset: str | None = None) -> Config:
    """Parse flags on top of preset and config-file defaults. `preset` overrides --preset (used by sweeps)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--preset")
    known, _ = pre.parse_known_args(argv)

    file_values = _read_config_file(known.config) if known.config else {}
    _check_options(file_values, f"config file {known.config}")
    preset_name = preset or known.preset or file_values.get("preset")
    presets = load_presets()
    parser = build_parser()
    if preset_name:
        if preset_name not in presets:
            raise UserError(f"unknown preset {preset_name!r}: choose one of {', '.join(presets)}")
        _check_options(presets[preset_name], f"preset {preset_name}")
        parser.set_defaults(**presets[preset_name])
    parser.set_defaults(**file_values)
    model, lora, data, run = parser.parse_args_into_dataclasses(args=argv)
    if preset:
        run.preset = preset
    elif preset_name:
        run.preset = preset_name
    return Config(
        model=model, lora=lora, data=data, run=run, argv=list(sys.argv[1:] if argv is None else argv)
    )
