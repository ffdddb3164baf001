"""The `aesformer-hf` command line: score | demo | train | prepare-dataset | convert-original | attention | export."""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, function that registers its subcommands). Each module owns its own arguments.
SUBCOMMANDS = (
    ("aesformer_hf.scoring", "add_parser"),
    ("aesformer_hf.training.cli", "add_parsers"),
    ("aesformer_hf.data.prepare", "add_parser"),
    ("aesformer_hf.models.aesformer.convert_aesformer_original_to_hf", "add_parser"),
    ("aesformer_hf.visualization.attention_maps", "add_parser"),
    ("aesformer_hf.commands.export", "add_parser"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aesformer-hf", description="AesFormer image aesthetic assessment on transformers."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, function_name in SUBCOMMANDS:
        getattr(importlib.import_module(module_name), function_name)(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
