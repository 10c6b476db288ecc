"""Load the encoder with a two-class head, and make only the parts each method trains trainable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from train import attention
from train.calibration import output_layers
from train.config import LoraArguments, ModelArguments
from train.errors import UserError
from train.task import SENTIMENT, Task

# Query/value projections by architecture family, in order of preference (Hu et al. 2021 adapt q and v).
LORA_TARGET_CANDIDATES = (("q_lin", "v_lin"), ("query", "value"), ("q_proj", "v_proj"), ("Wqkv",))


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise UserError(
            f"could not load a tokenizer from {name} ({str(err).splitlines()[0]}): "
            "give a Hub model id or a folder with tokenizer files"
        ) from err


# Dropout settings by the names architectures give them (BERT/RoBERTa/ELECTRA, DistilBERT, others).
HIDDEN_DROPOUT_KEYS = (
    "hidden_dropout_prob",
    "dropout",
    "hidden_dropout",
    "classifier_dropout",
    "seq_classif_dropout",
)
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def dropout_overrides(config: Any, args: ModelArguments) -> dict[str, float]:
    """The config attributes that --dropout and --attention_dropout set, for the names this config has."""
    overrides = {}
    for value, keys in (
        (args.dropout, HIDDEN_DROPOUT_KEYS),
        (args.attention_dropout, ATTENTION_DROPOUT_KEYS),
    ):
        if value is not None:
            overrides.update({key: value for key in keys if hasattr(config, key)})
    return overrides


def attention_kernel(args: ModelArguments) -> str | None:
    """The kernel to load with: the flag's, else the per-size CPU kernel where no GPU runs the step."""
    if args.attn_implementation == attention.NAME or (
        args.attn_implementation is None and not torch.cuda.is_available()
    ):
        return attention.register(args.matmul_attention_max_mib)
    return args.attn_implementation


def load_model(args: ModelArguments, task: Task = SENTIMENT) -> PreTrainedModel:
    """Load in float32 for training: transformers 5 would otherwise keep a float16 checkpoint's dtype.

    The head is sized and named for the task; a rating head starts at the training ratings' mean, so the
    first steps fit how ratings differ rather than where they lie.
    """
    kernel = attention_kernel(args)
    kwargs = {"attn_implementation": kernel} if kernel else {}
    try:
        config = AutoConfig.from_pretrained(args.model_name_or_path, **task.config_kwargs())
        config.update({**dropout_overrides(config, args), **task.config_extras()})
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model_name_or_path, config=config, dtype=torch.float32, ignore_mismatched_sizes=True, **kwargs
        )
    except (OSError, ValueError) as err:
        raise UserError(
            f"could not load a model from {args.model_name_or_path} ({str(err).splitlines()[0]}): "
            "give a Hub model id or a folder with config.json and weights"
        ) from None
    if task.regression:
        with torch.no_grad():
            for layer in output_layers(model):
                layer.bias.fill_(task.mean)
    return model


def head_module_names(model: PreTrainedModel) -> list[str]:
    """Modules outside the pretrained encoder (classifier, pre_classifier) plus a pooler: the task head."""
    encoder = getattr(model, model.base_model_prefix)
    names = [n for n, m in model.named_children() if m is not encoder and any(True for _ in m.parameters())]
    if getattr(encoder, "pooler", None) is not None:
        names.append("pooler")
    return names


def find_lora_targets(model: PreTrainedModel) -> list[str]:
    linear_names = {
        name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)
    }
    for candidates in LORA_TARGET_CANDIDATES:
        if set(candidates) <= linear_names:
            return list(candidates)
    raise UserError(
        f"no known attention projections in {type(model).__name__}: name the layers with --lora_target_modules "
        f"(its linear layers are {', '.join(sorted(linear_names))})"
    )


def apply_method(model: PreTrainedModel, method: str, lora: LoraArguments) -> PreTrainedModel:
    if method == "full":
        return model
    head = head_module_names(model)
    if method == "head":
        for name, param in model.named_parameters():
            param.requires_grad = any(name == h or name.startswith(f"{h}.") or f".{h}." in name for h in head)
        return model
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=lora.lora_r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=lora.lora_target_modules or find_lora_targets(model),
        modules_to_save=head,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:
        raise UserError(f"LoRA could not be applied: {str(err).splitlines()[0]}") from None


def parameter_counts(model: torch.nn.Module) -> dict[str, float]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"num_parameters": total, "trainable_parameters": trainable, "trainable_share": trainable / total}


def save_for_pipeline(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, out_dir: Path, base_model: str | None = None
) -> None:
    """Save a plain transformers model that pipeline() loads without peft; a LoRA adapter goes in adapter/.

    `base_model` is the base as a user of the published adapter knows it (the Hub id from
    --hub_base_model): peft would otherwise write the folder the run loaded, a path of this machine,
    into adapter_config.json, and loading the adapter anywhere else would fail.
    """
    if isinstance(model, PeftModel):
        if base_model:
            for config in model.peft_config.values():
                config.base_model_name_or_path = base_model
        model.save_pretrained(out_dir / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
