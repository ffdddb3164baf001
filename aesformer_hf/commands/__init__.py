"""The `aesformer-hf` subcommands, one module each: argparse front ends over the library.

Each module defines `add_parser(subparsers)` and the function that runs the command: it turns the parsed
arguments into calls of the library's plain functions, prints, and returns the exit code. It imports the library
only inside that function, so that `aesformer-hf --help` starts fast. The library modules the commands front
import nothing from this package (tests/test_library_layers.py).
"""
