"""`aesformer-hf train` and `aesformer-hf demo`: the training subcommands.

The libraries are `aesformer_hf.training.run_training` and `aesformer_hf.training.demo`; they are imported only
when a command runs.
"""

from __future__ import annotations

import argparse

DEFAULT_DEMO_OUTPUT = "./aesformer-demo"  # = aesformer_hf.training.demo.DEFAULT_OUTPUT (tested)


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


def add_demo_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="Train a small AesFormer on synthetic data (stage 1 + 2) on the CPU and rate unseen photos.",
        description="`aesformer-hf demo`: the whole AesFormer workflow on one CPU in a few minutes, with nothing "
        "downloaded.",
    )
    parser.add_argument(
        "--output", default=DEFAULT_DEMO_OUTPUT, help=f"folder for the model (default {DEFAULT_DEMO_OUTPUT})"
    )
    parser.add_argument("--quick", action="store_true", help="a much shorter run (seconds; for tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the weights and the training")
    parser.set_defaults(func=run_demo)


def run_train(args: argparse.Namespace) -> int:
    from ..training.run_training import main

    return main(args.train_arguments or ["--help"], prog="aesformer-hf train")


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo (`aesformer_hf.training.demo.run_demo`) and print its report and how to use the model."""
    from ..training.demo import format_report, run_demo

    result = run_demo(args.output, quick=args.quick, seed=args.seed)
    print()
    print(format_report(result))
    print()
    print(
        f"Done in {result.seconds['total']:.0f} s. Rate your own photos with:\n"
        f"  from transformers import pipeline; import aesformer_hf\n"
        f"  rater = pipeline('image-aesthetics', model={result.output_dir!r})\n"
        f"  rater('photo.jpg')  # or rater('photo.jpg', comments=['great light'])"
    )
    return 0
