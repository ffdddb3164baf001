"""`aesformer-hf train` and `aesformer-hf demo`: the training subcommands of the command line."""

from __future__ import annotations

import argparse

from .demo import add_demo_parser


def add_parsers(subparsers) -> None:
    """Register `train` (one stage with the Trainer) and `demo` (the whole workflow on the CPU)."""
    train = subparsers.add_parser(
        "train",
        help="Train one AesFormer stage with the Trainer (all TrainingArguments options work).",
        description="Train one AesFormer stage ('multimodal' or 'adaptation'). Arguments are those of "
        "examples/train.py: --stage, --dataset, --model or --config_preset, --processor and every "
        "TrainingArguments option (e.g. --output_dir, --bf16, --gradient_accumulation_steps). Run it under "
        "`accelerate launch` for several GPUs.",
        add_help=False,
        # Every argument goes to the training program's own HfArgumentParser: with no "-" prefix here, argparse
        # hands options such as --stage to the REMAINDER positional instead of rejecting them.
        prefix_chars="+",
    )
    train.add_argument("train_arguments", nargs=argparse.REMAINDER, help="arguments of examples/train.py")
    train.set_defaults(func=run_train)
    add_demo_parser(subparsers)


def run_train(args: argparse.Namespace) -> int:
    from .run_training import main

    return main(args.train_arguments or ["--help"], prog="aesformer-hf train")


__all__ = ["add_parsers", "run_train"]
