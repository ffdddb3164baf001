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

import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser
from transformers.utils import logging

from .collator import keep_rows_with_comments
from .stages import MULTIMODAL
from .trainer import AesformerTrainer
from .training_args import AesformerTrainingArguments

logger = logging.get_logger(__name__)

# ImageNet-pretrained timm Swins of the released variants (DESIGN §2).
PRETRAINED_SWIN = {
    "tiny": "timm/swin_tiny_patch4_window7_224.ms_in1k",
    "small": "timm/swin_small_patch4_window7_224.ms_in1k",
    "base": "timm/swin_base_patch4_window7_224.ms_in1k",
}
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
    from datasets import load_dataset

    dataset = load_dataset(data_args.dataset, data_args.dataset_config)
    if data_args.train_split not in dataset:
        raise ValueError(
            f"{data_args.dataset} has no split {data_args.train_split!r} (splits: {list(dataset)})."
        )
    eval_split = data_args.eval_split or next((s for s in ("validation", "test") if s in dataset), None)
    if eval_split is not None and eval_split not in dataset:
        raise ValueError(f"{data_args.dataset} has no split {eval_split!r} (splits: {list(dataset)}).")
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
        raise ValueError("Pass exactly one of --model (a saved AesFormer) and --config_preset (a new one).")
    if model_args.model is not None:
        model = AesformerForAesthetic.from_pretrained(model_args.model)
        if spec is not None and model.config.num_bins != spec.num_bins:
            raise ValueError(
                f"{model_args.model} predicts {model.config.num_bins} bins but the dataset has {spec.num_bins} "
                f"({spec.name}): start from a model trained on this scale, or from a --config_preset."
            )
        if spec is not None:
            scale = (spec.score_min, spec.score_max, spec.label_threshold)
            if scale != (model.config.score_min, model.config.score_max, model.config.label_threshold):
                # Same bins, another scale (e.g. an AVA model fine-tuned on JAS's 0..1 scores).
                logger.warning(f"Reading the model's {spec.num_bins} bins on {spec.name}'s scale {scale}.")
                model.set_score_scale(*scale)
        return model, AesformerProcessor.from_pretrained(model_args.processor or model_args.model)

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

    from ..models.aesformer.configuration_aesformer import VARIANT_ALIASES

    variant = VARIANT_ALIASES.get(preset, preset)
    if model_args.from_scratch:
        model = AesformerForAesthetic(AesformerConfig.from_variant(variant, **_scale_of(spec)))
    else:
        vision = model_args.vision_model or PRETRAINED_SWIN.get(variant)
        if vision is None:
            raise ValueError(
                f"Unknown --config_preset {preset!r}; expected one of {sorted(PRETRAINED_SWIN)} or 'test'."
            )
        model = AesformerForAesthetic.from_vision_text_pretrained(
            vision, model_args.text_model, **_scale_of(spec)
        )
    if model_args.processor:
        processor = AesformerProcessor.from_pretrained(model_args.processor)
    else:
        processor = AesformerProcessor(
            AesformerImageProcessor(size=224), AutoTokenizer.from_pretrained(model_args.text_model)
        )
    return model, processor


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse the arguments (`argv`, default `sys.argv[1:]`, or one .json/.yaml file), train, save, evaluate."""
    parser = HfArgumentParser((ModelArguments, DataArguments, AesformerTrainingArguments), prog=prog)
    if argv is None and len(sys.argv) == 2 and sys.argv[1].endswith((".json", ".yaml", ".yml")):
        path = os.path.abspath(sys.argv[1])
        model_args, data_args, training_args = (
            parser.parse_json_file(path) if path.endswith(".json") else parser.parse_yaml_file(path)
        )
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)

    train, evaluation, spec = load_splits(data_args)
    if training_args.stage == MULTIMODAL:
        # Images without comments cannot take the multimodal path (the collator would stop on them).
        before = train.num_rows
        train = keep_rows_with_comments(train)
        evaluation = keep_rows_with_comments(evaluation) if evaluation is not None else None
        if train.num_rows < before and training_args.process_index == 0:
            print(f"Stage 1 keeps the {train.num_rows} of {before} training rows that have comments.")
    model, processor = build_model_and_processor(model_args, spec, train)

    trainer = AesformerTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=processor,
    )
    if trainer.is_world_process_zero():
        print(f"AesFormer stage {training_args.stage!r}: {trainer.parameter_counts}.")
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
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
            dataset_name=os.path.basename(os.path.normpath(data_args.dataset)), metrics=metrics
        )
    return 0


__all__ = ["DataArguments", "ModelArguments", "build_model_and_processor", "load_splits", "main"]
