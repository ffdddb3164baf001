"""`aesformer-hf convert-original`: the authors' released checkpoint -> a transformers folder.

The library is `aesformer_hf.models.aesformer.convert_aesformer_original_to_hf`, imported only when the command
runs. Its own `add_parser` (for `python -m` use of that file) defines the same options; a test keeps them equal.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `convert-original` on an `argparse` subparsers object."""
    parser = subparsers.add_parser(
        "convert-original",
        help="convert the authors' released AesFormer checkpoint to a transformers folder",
        description=(
            "Convert the released AesFormer .pth (read with weights_only=True) into a save_pretrained folder, "
            "verify the round trip, and optionally save the processor and push to the Hub."
        ),
    )
    parser.add_argument("checkpoint", help="the released .pth file")
    parser.add_argument("--output", required=True, help="folder to write")
    parser.add_argument(
        "--tokenizer", help="tokenizer folder, Hub id or BERT vocab.txt (saves an AesformerProcessor)"
    )
    parser.add_argument(
        "--push-to-hub", metavar="ORG/NAME", help="upload the verified folder to this Hub repository"
    )
    parser.add_argument(
        "--text-num-heads",
        type=int,
        help="BERT attention heads (not stored in weights; default width/64, 12 for 768)",
    )
    parser.add_argument("--score-min", type=float, help="value of the first bin (default 1)")
    parser.add_argument(
        "--score-max", type=float, help="value of the last bin (default: 10 for 10 bins, else the bin count)"
    )
    parser.add_argument(
        "--label-threshold", type=float, help="mean score above which an image is 'high' (default 5)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --output model folder whole (written beside it, then swapped in)",
    )
    parser.set_defaults(func=run_convert_original)
    return parser


def run_convert_original(args: argparse.Namespace) -> int:
    """Run `convert-original` (see `convert_aesformer_original_to_hf.run_convert_original`)."""
    from ..models.aesformer.convert_aesformer_original_to_hf import run_convert_original as run

    return run(args)
