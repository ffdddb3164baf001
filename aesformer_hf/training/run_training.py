"""The training program of `examples/train.py` and `aesformer-hf train`: one AesFormer stage with `Trainer`.

Run it on one CPU, on one GPU (`--bf16` / `--fp16`) or on many through `accelerate launch`:

    # stage 1: multimodal, from ImageNet Swin + BERT (Hub ids, or local folders)
    accelerate launch examples/train.py --stage multimodal --dataset ./ava-parquet \\
        --config_preset tiny --output_dir runs/stage1 --learning_rate 1e-5 ...
    # stage 2: vision-only adaptation from the stage-1 folder
    accelerate launch examples/train.py --stage adaptation --dataset ./ava-parquet \\
        --model runs/stage1 --output_dir runs/stage2 --learning_rate 1e-4 ...

`--dataset` is a local Parquet folder written by `aesformer-hf prepare-dataset` (or any folder
`datasets.load_dataset` reads) or a Hub dataset id. Every `TrainingArguments` option works as usual.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser
from transformers.utils import logging

from ..commands.loading import (
    REMOTE_CODE_REFUSAL,
    CommandError,
    first_line,
    is_remote_code_refusal,
    load_aesthetics_model,
)
from ..models.aesformer.configuration_aesformer import VARIANTS, variant_name
from .collator import keep_rows_with_comments
from .stages import MULTIMODAL
from .trainer import AesformerTrainer
from .training_args import AesformerTrainingArguments

logger = logging.get_logger(__name__)

TEST_PRESET = "test"


@dataclass
class ModelArguments:
    """Which AesFormer to train, and its processor."""

    model: str | None = field(
        default=None,
        metadata={
            "help": "A saved AesFormer to train (folder or Hub id); for stage 2, the stage-1 output folder."
        },
    )
    config_preset: str | None = field(
        default=None,
        metadata={
            "help": "Build a new AesFormer instead: 'tiny', 'small' or 'base' (the released shapes; towers start "
            "from --vision_model and --text_model) or 'test' (a tiny random model for smoke tests)."
        },
    )
    vision_model: str | None = field(
        default=None,
        metadata={
            "help": "Pretrained timm Swin for a preset (default: the preset's ImageNet Swin on the Hub)."
        },
    )
    text_model: str = field(
        default="bert-base-cased", metadata={"help": "Pretrained BERT (and its tokenizer) for a preset."}
    )
    from_scratch: bool = field(
        default=False, metadata={"help": "With a preset: random tower weights instead of pretrained ones."}
    )
    processor: str | None = field(
        default=None,
        metadata={
            "help": "AesformerProcessor folder or Hub id (default: --model's, or built for the preset)."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Let tokenizer or processor code shipped with --model, --processor or --text_model run. Without "
            "it such a folder is refused (never a prompt). Models always load with aesformer_hf's own classes."
        },
    )
    allow_partial_weights: bool = field(
        default=False,
        metadata={
            "help": "Train from --model even when its weights leave parameters missing or hold unexpected ones "
            "(they are named in a warning); without it that is an error naming them."
        },
    )


@dataclass
class DataArguments:
    """Where the data comes from (the columns of `aesformer_hf.data.schema`)."""

    dataset: str = field(
        metadata={"help": "A local Parquet folder (load_dataset reads it) or a Hub dataset id."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name, if any."})
    train_split: str = field(default="train")
    eval_split: str | None = field(
        default=None,
        metadata={"help": "Split to evaluate on (default: 'validation', else 'test', if present)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N evaluation rows."})


def load_splits(data_args: DataArguments):
    """`(train, eval or None, spec or None)` from a Parquet folder or a Hub id."""
    import re

    from datasets import load_dataset

    try:
        dataset = load_dataset(data_args.dataset, data_args.dataset_config)
    except ValueError as error:
        empty = re.search(r'Instruction "([^"]+)" corresponds to no data', str(error))
        if not empty:
            raise CommandError(f"--dataset {data_args.dataset}: {first_line(error)}") from None
        raise CommandError(
            f"--dataset {data_args.dataset}: its split {empty.group(1)!r} has no rows, and datasets cannot load a "
            "split of 0 rows; remove that split's files (aesformer-hf prepare-dataset leaves empty splits out)."
        ) from None
    except Exception as error:  # missing folder, offline Hub id (datasets raises its own types)
        raise CommandError(
            f"--dataset {data_args.dataset}: cannot load it ({type(error).__name__}: {first_line(error)}); "
            "expected a Parquet folder from aesformer-hf prepare-dataset or a Hub dataset id (offline: one in the "
            "cache)."
        ) from None
    if data_args.train_split not in dataset:
        raise CommandError(
            f"{data_args.dataset} has no split {data_args.train_split!r} (splits: {list(dataset)})."
        )
    eval_split = data_args.eval_split or next((s for s in ("validation", "test") if s in dataset), None)
    if eval_split is not None and eval_split not in dataset:
        raise CommandError(f"{data_args.dataset} has no split {eval_split!r} (splits: {list(dataset)}).")
    train = dataset[data_args.train_split]
    evaluation = dataset[eval_split] if eval_split else None
    if data_args.max_train_samples:
        train = train.select(range(min(data_args.max_train_samples, train.num_rows)))
    if evaluation is not None and data_args.max_eval_samples:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, evaluation.num_rows)))
    return train, evaluation, _dataset_spec(dataset)


def _dataset_spec(dataset):
    try:
        from ..data.schema import get_dataset_spec
    except ImportError:  # the dataset builders are optional for training
        return None
    try:
        return get_dataset_spec(dataset)
    except ValueError as error:
        logger.warning(f"No aesthetic spec found for the dataset ({error}); using the model's scale.")
        return None


def _scale_of(spec) -> dict:
    if spec is None:
        return {}
    return {
        "num_bins": spec.num_bins,
        "score_min": spec.score_min,
        "score_max": spec.score_max,
        "label_threshold": spec.label_threshold,
    }


def build_model_and_processor(model_args: ModelArguments, spec, train_dataset):
    """The model to train and its processor, from `--model` or `--config_preset`."""
    from .. import AesformerConfig, AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor

    if (model_args.model is None) == (model_args.config_preset is None):
        raise CommandError("Pass exactly one of --model (a saved AesFormer) and --config_preset (a new one).")
    trust = model_args.trust_remote_code
    if model_args.model is not None:
        model = load_aesthetics_model(
            model_args.model, trust_remote_code=trust, allow_partial=model_args.allow_partial_weights
        )
        if spec is not None and model.config.num_bins != spec.num_bins:
            raise CommandError(
                f"{model_args.model} predicts {model.config.num_bins} bins but the dataset has {spec.num_bins} "
                f"({spec.name}): start from a model trained on this scale, or from a --config_preset."
            )
        if spec is not None:
            scale = (spec.score_min, spec.score_max, spec.label_threshold)
            if scale != (model.config.score_min, model.config.score_max, model.config.label_threshold):
                # Same bins, another scale (e.g. an AVA model fine-tuned on JAS's 0..1 scores).
                logger.warning(f"Reading the model's {spec.num_bins} bins on {spec.name}'s scale {scale}.")
                model.set_score_scale(*scale)
        return model, _load_processor(model_args.processor or model_args.model, trust)

    preset = model_args.config_preset.lower()
    if preset == TEST_PRESET:
        from ..testing_utils import tiny_config, tiny_tokenizer

        corpus = (
            [comment for comments in train_dataset["comments"] for comment in comments]
            if ("comments" in train_dataset.column_names)
            else []
        )
        tokenizer = tiny_tokenizer(corpus, max_vocab=512)
        config = tiny_config(vocab_size=len(tokenizer), **_scale_of(spec))
        processor = AesformerProcessor(AesformerImageProcessor(size=64), tokenizer)
        return AesformerForAesthetic(config), processor

    from transformers import AutoTokenizer

    variant = variant_name(preset)
    # The processor first: it is quick, and a tokenizer that cannot be had stops the run before the towers load.
    if model_args.processor:
        processor = _load_processor(model_args.processor, trust)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_args.text_model, trust_remote_code=trust)
        except (OSError, ValueError) as error:
            raise CommandError(_loading_refusal("--text_model", model_args.text_model, error)) from None
        processor = AesformerProcessor(AesformerImageProcessor(size=224), tokenizer)
    if model_args.from_scratch:
        model = AesformerForAesthetic(AesformerConfig.from_variant(variant, **_scale_of(spec)))
    else:
        if model_args.vision_model is None and variant not in VARIANTS:
            raise CommandError(
                f"Unknown --config_preset {preset!r}; expected one of {sorted(VARIANTS)} or 'test'."
            )
        vision = model_args.vision_model or VARIANTS[variant].pretrained_swin
        try:
            model = AesformerForAesthetic.from_vision_text_pretrained(
                vision, model_args.text_model, **_scale_of(spec)
            )
        except (OSError, ValueError) as error:
            raise CommandError(
                f"--vision_model {vision} / --text_model {model_args.text_model}: {first_line(error)}"
            ) from None
    return model, processor


def _loading_refusal(option: str, name: str, error: BaseException) -> str:
    """One line for a tokenizer or processor that cannot be loaded (or would run shipped code)."""
    if is_remote_code_refusal(error):
        return f"{option} {name}: its tokenizer or processor ships code of its own; {REMOTE_CODE_REFUSAL}."
    return f"{option} {name}: {first_line(error)}"


def _load_processor(name_or_path: str, trust_remote_code: bool):
    from .. import AesformerProcessor

    try:
        return AesformerProcessor.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise CommandError(_loading_refusal("--processor", name_or_path, error)) from None


def resolve_resume_checkpoint(value: str | bool | None, output_dir: str) -> str | None:
    """`--resume_from_checkpoint` as a checkpoint folder, or None.

    `True` (the string, from the command line) means the latest `checkpoint-*` folder of `--output_dir`, as
    `Trainer.train(resume_from_checkpoint=True)` does (`get_last_checkpoint`); `False` means no resumption.
    """
    from transformers.trainer_utils import get_last_checkpoint

    if value is None or value is False:
        return None
    text = str(value)
    if not os.path.isdir(text) and text.lower() in ("true", "false"):
        if text.lower() == "false":
            return None
        latest = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if latest is None:
            raise CommandError(
                f"--resume_from_checkpoint True: --output_dir {output_dir} holds no checkpoint-* folder to resume "
                "from."
            )
        return latest
    if not os.path.isdir(text):
        raise CommandError(
            f"--resume_from_checkpoint {text}: no such checkpoint folder; expected a checkpoint-* folder, or True "
            "for the latest one in --output_dir."
        )
    return text


def prepare_run(
    model_args: ModelArguments, data_args: DataArguments, training_args: AesformerTrainingArguments
):
    """`(train, evaluation, model, processor, checkpoint to resume or None)`; `CommandError` for a user's mistake.

    The seed is set (`transformers.set_seed`, or `enable_full_determinism`) before the model is built, so that
    two runs with the same `--seed` start from the same weights.
    """
    from transformers import enable_full_determinism, set_seed

    for option in (
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
    ):
        if getattr(training_args, option) < 1:
            raise CommandError(f"--{option} {getattr(training_args, option)}: must be at least 1.")
    resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    train, evaluation, spec = load_splits(data_args)
    if training_args.stage == MULTIMODAL:
        # Images without comments cannot take the multimodal path (the collator would stop on them).
        before = train.num_rows
        train = keep_rows_with_comments(train)
        evaluation = keep_rows_with_comments(evaluation) if evaluation is not None else None
        if train.num_rows == 0:
            raise CommandError(
                f"--stage multimodal trains on images with comments, and none of the {before} rows of --dataset "
                f"{data_args.dataset} split {data_args.train_split!r} has any; train --stage adaptation (no "
                "comments needed) or use a dataset with comments."
            )
        if evaluation is not None and evaluation.num_rows == 0:
            raise CommandError(
                f"--stage multimodal evaluates on images with comments, and no row of --dataset "
                f"{data_args.dataset}'s evaluation split has any; pass --eval_split of a split with comments."
            )
        if train.num_rows < before and training_args.process_index == 0:
            print(f"Stage 1 keeps the {train.num_rows} of {before} training rows that have comments.")
    if training_args.full_determinism:
        enable_full_determinism(training_args.seed)
    else:
        set_seed(training_args.seed)
    model, processor = build_model_and_processor(model_args, spec, train)
    return train, evaluation, model, processor, resume


class _DashStyleHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option once, in the dash style of the other commands (`--output-dir`); HfArgumentParser also
    accepts, and lists, the underscore spelling (`--output_dir`), which keeps working."""

    def _format_action_invocation(self, action):
        strings = action.option_strings
        dashed = [o for o in strings if not ("_" in o and o.replace("_", "-") in strings)]
        if dashed != strings:
            action = copy.copy(action)
            action.option_strings = dashed
        return super()._format_action_invocation(action)


def _dash_style_first(parser: argparse.ArgumentParser) -> None:
    # The usage line names an option by its first spelling: put the dash spelling first.
    for action in parser._actions:
        action.option_strings.sort(key=lambda option: "_" in option)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse the arguments (`argv`, default `sys.argv[1:]`, or one .json/.yaml file), train, save, evaluate.

    Returns 0, or 2 after printing one line when the arguments, the dataset or a model to load are refused (see
    `prepare_run`).
    """
    parser = HfArgumentParser(
        (ModelArguments, DataArguments, AesformerTrainingArguments),
        prog=prog,
        formatter_class=_DashStyleHelpFormatter,
    )
    _dash_style_first(parser)
    if argv is None and len(sys.argv) == 2 and sys.argv[1].endswith((".json", ".yaml", ".yml")):
        path = os.path.abspath(sys.argv[1])
        model_args, data_args, training_args = (
            parser.parse_json_file(path) if path.endswith(".json") else parser.parse_yaml_file(path)
        )
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    try:
        train, evaluation, model, processor, resume = prepare_run(model_args, data_args, training_args)
    except CommandError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    trainer = AesformerTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=processor,
    )
    if trainer.is_world_process_zero():
        print(f"AesFormer stage {training_args.stage!r}: {trainer.parameter_counts}.")
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()  # the model and the processor, into --output_dir
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    if evaluation is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        # The card holds what this run measured, as model-index metadata (push_to_hub uploads it).
        trainer.create_model_card(
            dataset=os.path.basename(os.path.normpath(data_args.dataset)), metrics=metrics
        )
    return 0


__all__ = [
    "DataArguments",
    "ModelArguments",
    "build_model_and_processor",
    "load_splits",
    "main",
    "prepare_run",
    "resolve_resume_checkpoint",
]
