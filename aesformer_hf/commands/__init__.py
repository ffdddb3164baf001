"""The `aesformer-hf` subcommands, one module each: thin argparse front ends over the library.

Each module defines `add_parser(subparsers)` and imports the library only inside the function that runs the
command, so that `aesformer-hf --help` starts fast.
"""
