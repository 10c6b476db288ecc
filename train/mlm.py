"""`python -m train.mlm`: within-task masked-language-model pre-training, an optional stage before fine-tuning.

Sun et al. 2019 ("How to Fine-Tune BERT for Text Classification?", section 5.4) pre-train the
encoder further with its own masked-LM objective on the task's unlabelled text before fine-tuning,
and report lower IMDb test error than fine-tuning alone. IMDb ships 50,000 unlabelled reviews for
exactly this (the `unsupervised` split). The stage:

    python -m train.mlm --model_name_or_path BASE --dataset_name unsupervised.parquet --output_dir mlm/
    python -m train --model_name_or_path mlm/ ...

Reviews are tokenized with their special tokens, concatenated and cut into blocks of
--block_size tokens (no padding: every token is work), 15% of tokens masked as in BERT. The
output folder holds a plain encoder (AutoModel) and the tokenizer, which the training command
loads like any base model. Weights the masked-LM model lacks are kept from the base checkpoint
(BERT's pooler, which AutoModelForSequenceClassification uses), so the classifier starts from the
same pooler it would have without this stage. mlm_results.json, written last, records the held-out
masked-LM loss before and after, and the speed.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch
from datasets import Dataset
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    HfArgumentParser,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)

from train import results
from train.config import TrainingOptions
from train.data import BR_TAG, find_split_file, load_file, load_hub_dataset, validation_count
from train.errors import UserError, cli
from train.modeling import load_tokenizer
from train.training_args import resolve_precision, shared_training_kwargs

logger = logging.getLogger("train.mlm")
RESULTS_FILE = "mlm_results.json"


@dataclass
class MlmDataArguments:
    model_name_or_path: str = field(
        metadata={"help": "Base encoder: Hub id or local folder (e.g. all-MiniLM-L6-v2)."}
    )
    dataset_name: str = field(
        metadata={
            "help": "Unlabelled reviews: a parquet/csv/tsv/jsonl file, a folder holding <dataset_split>.<ext>, "
            "or a Hub dataset id (e.g. stanfordnlp/imdb with --dataset_split unsupervised)."
        }
    )
    dataset_split: str = field(
        default="unsupervised", metadata={"help": "Split to read from a folder or the Hub."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the text."})
    max_samples: Optional[int] = field(
        default=None, metadata={"help": "Use this many texts (seeded shuffle)."}
    )
    validation_size: float = field(
        default=0.02,
        metadata={"help": "Texts held out to measure the masked-LM loss: a fraction, or a count if >= 1."},
    )
    block_size: int = field(
        default=512, metadata={"help": "Tokens per training block (at most the model's positions)."}
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens masked (BERT: 0.15)."})
    clean_html: bool = field(default=True, metadata={"help": "Replace the reviews' <br /> tags with spaces."})


# The stage's own defaults for the options it shares with fine-tuning (train/config.py TrainingOptions).
MLM_DEFAULTS = {
    "output_dir": "runs/mlm",
    "learning_rate": 5e-5,
    "num_train_epochs": 1.0,
    "per_device_train_batch_size": 32,
    "warmup_steps": 0.06,
    "report_to": "none",
}


def load_texts(args: MlmDataArguments) -> Dataset:
    """A one-column `text` dataset from a file, a folder or the Hub, cleaned like the training data."""
    path = Path(args.dataset_name)
    if path.is_file():
        ds = load_file(path)
    elif path.is_dir():
        file = find_split_file(path, args.dataset_split)
        if file is None:
            raise UserError(
                f"{path} has no {args.dataset_split}.<ext> file: name the file itself with --dataset_name"
            )
        ds = load_file(file)
    else:
        ds = load_hub_dataset(args.dataset_name, split=args.dataset_split, what="a file or a folder")
    if args.text_column not in ds.column_names:
        raise UserError(
            f"{args.dataset_name} has no column {args.text_column!r} (it has {', '.join(ds.column_names)}): "
            "name it with --text_column"
        )
    texts = [t for t in ds[args.text_column] if t and t.strip()]
    if args.clean_html:
        texts = [BR_TAG.sub(" ", t) for t in texts]
    if len(texts) < 2:
        raise UserError(f"{args.dataset_name} holds {len(texts)} non-empty text(s): at least 2 are needed")
    return Dataset.from_dict({"text": texts})


def split_texts(texts: Dataset, args: MlmDataArguments, seed: int) -> tuple[Dataset, Dataset]:
    texts = texts.shuffle(seed=seed)
    if args.max_samples is not None:
        texts = texts.select(range(min(args.max_samples, len(texts))))
    parts = texts.train_test_split(test_size=validation_count(args.validation_size, len(texts)), seed=seed)
    return parts["train"], parts["test"]


def to_blocks(texts: Dataset, tokenizer: PreTrainedTokenizerBase, block_size: int, name: str) -> Dataset:
    """Tokenize with special tokens, concatenate, cut into full blocks (the rest of the last one is dropped)."""

    def encode(batch: dict) -> dict:
        ids = tokenizer(batch["text"], add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        flat = [token for review in ids for token in review]
        usable = len(flat) - len(flat) % block_size
        return {"input_ids": [flat[i : i + block_size] for i in range(0, usable, block_size)]}

    blocks = texts.map(
        encode, batched=True, batch_size=1000, remove_columns=texts.column_names, desc=f"Blocks {name}"
    )
    if len(blocks) == 0:
        raise UserError(
            f"the {name} texts hold fewer than --block_size {block_size} tokens: lower it or add texts"
        )
    return blocks


def load_mlm_model(name: str, block_size: int) -> PreTrainedModel:
    try:
        model = AutoModelForMaskedLM.from_pretrained(name, dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise UserError(
            f"could not load a masked-LM model from {name} ({str(err).splitlines()[0]})"
        ) from None
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and block_size > positions:
        raise UserError(f"--block_size {block_size} exceeds the model's {positions} positions: lower it")
    return model


def save_encoder(
    model: PreTrainedModel, base: str, tokenizer: PreTrainedTokenizerBase, out: Path
) -> list[str]:
    """Save the adapted encoder as a plain AutoModel; weights it lacks (BERT's pooler) come from `base`."""
    encoder = AutoModel.from_pretrained(base, dtype=torch.float32)
    loaded = encoder.load_state_dict(model.base_model.state_dict(), strict=False)
    if loaded.unexpected_keys:
        raise UserError(
            f"the masked-LM encoder does not match {base}'s: {', '.join(loaded.unexpected_keys[:5])}"
        )
    encoder.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return list(loaded.missing_keys)


def training_arguments(run: TrainingOptions, precision: str) -> TrainingArguments:
    return TrainingArguments(**shared_training_kwargs(run, precision), eval_strategy="no", save_strategy="no")


def evaluate_loss(trainer: Trainer, seed: int) -> float:
    """Held-out masked-LM loss; reseeded so that before and after see the same masks."""
    set_seed(seed)
    return float(trainer.evaluate()["eval_loss"])


def pretrain(data: MlmDataArguments, run: TrainingOptions) -> Path:
    """Run the stage; returns the output folder."""
    started = time.time()
    out = results.claim_output_dir(Path(run.output_dir), RESULTS_FILE, run.overwrite_output_dir, what="stage")
    shutil.rmtree(out, ignore_errors=True)  # the stage always starts afresh
    precision = resolve_precision(run.precision)
    args = training_arguments(run, precision)
    set_seed(run.seed)
    tokenizer = load_tokenizer(data.model_name_or_path)
    train_texts, val_texts = split_texts(load_texts(data), data, run.seed)
    train_blocks = to_blocks(train_texts, tokenizer, data.block_size, "train")
    val_blocks = to_blocks(val_texts, tokenizer, data.block_size, "validation")
    model = load_mlm_model(data.model_name_or_path, data.block_size)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_blocks,
        eval_dataset=val_blocks,
        processing_class=tokenizer,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=data.mlm_probability),
    )
    loss_before = evaluate_loss(trainer, run.seed)
    train_out = trainer.train()
    loss_after = evaluate_loss(trainer, run.seed)
    logger.info("held-out masked-LM loss %.4f -> %.4f", loss_before, loss_after)
    if trainer.is_world_process_zero():
        kept = save_encoder(trainer.model, data.model_name_or_path, tokenizer, out)
        runtime = train_out.metrics["train_runtime"]
        blocks_seen = trainer.state.epoch * len(train_blocks)
        record: dict[str, Any] = {
            "command": results.portable_command("train.mlm", sys.argv[1:]),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "base_model": results.portable_name(data.model_name_or_path),
            "dataset": {
                "name": data.dataset_name,
                "texts": {"train": len(train_texts), "validation": len(val_texts)},
                "blocks": {"train": len(train_blocks), "validation": len(val_blocks)},
                "block_size": data.block_size,
            },
            "eval_loss_before": loss_before,
            "eval_loss_after": loss_after,
            "perplexity_before": math.exp(loss_before),
            "perplexity_after": math.exp(loss_after),
            "kept_from_base": kept,
            "timings": {
                "train_runtime_s": runtime,
                "train_blocks_per_second": blocks_seen / runtime,
                "train_tokens_per_second": blocks_seen * data.block_size / runtime,
                "total_runtime_s": time.time() - started,
            },
            "environment": results.environment(args.world_size, precision),
            "config": {"data": asdict(data), "run": asdict(run)},
        }
        results.write_json_atomic(record, out / RESULTS_FILE)
        logger.info("finished: encoder for `python -m train --model_name_or_path %s`", out)
    return out


@cli
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    parser = HfArgumentParser(
        (MlmDataArguments, TrainingOptions),
        prog="python -m train.mlm",
        description="Masked-LM pre-training on the task's unlabelled text, before `python -m train`.",
    )
    parser.set_defaults(**MLM_DEFAULTS)
    data, run = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    pretrain(data, run)


if __name__ == "__main__":
    main()
