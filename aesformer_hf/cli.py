"""The `aesformer-hf` command line: score | report | app | demo | train | prepare-dataset | convert-original | attention |
export."""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, function that registers its subcommands). Each module owns its own arguments and imports its library
# (torch, transformers, datasets) only when its command runs, so that `aesformer-hf --help` starts at once.
SUBCOMMANDS = (
    ("aesformer_hf.commands.score", "add_parser"),
    ("aesformer_hf.commands.report", "add_parser"),
    ("aesformer_hf.commands.app", "add_parser"),
    ("aesformer_hf.commands.train", "add_parsers"),
    ("aesformer_hf.commands.prepare_dataset", "add_parser"),
    ("aesformer_hf.commands.convert_original", "add_parser"),
    ("aesformer_hf.commands.attention", "add_parser"),
    ("aesformer_hf.commands.export", "add_parser"),
)


def _version() -> str:
    # The installed distribution's metadata: no import of the package's heavy modules.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aesformer-hf")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aesformer-hf", description="AesFormer image aesthetic assessment on transformers."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    from .utils.optional import MissingOptionalDependency

    # The console script imports this module without registering AesFormer with transformers (see
    # aesformer_hf/__init__.py); every command runs with the package as `import aesformer_hf` gives it.
    importlib.import_module("aesformer_hf")._register()
    try:
        return int(args.func(args) or 0)
    except MissingOptionalDependency as error:  # a package of an extra: one line naming the pip install
        print(f"aesformer-hf {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
