"""`aesformer-hf prepare-dataset`: a local AVA, Photo.net or JAS copy -> Parquet (and optionally the Hub).

The library is `aesformer_hf.data.prepare` (`prepare_dataset`); it is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# The readers of `aesformer_hf.data.prepare.DATASET_READERS` (a test keeps the two equal).
DATASET_NAMES = ("ava", "jas", "photonet")
DEFAULT_MAX_SHARD_BYTES = 500 * 2**20  # = aesformer_hf.data.parquet.DEFAULT_MAX_SHARD_BYTES (tested)
DESCRIPTION = (
    "Turn your local copy of AVA, Photo.net or JAS into a Parquet dataset that datasets.load_dataset reads with no "
    "script, plus a dataset card and a build report of every skipped or repaired row; optionally push it to a "
    "private Hub repo. The build is all or nothing: an interrupted build leaves --output as it was."
)


def parse_size(text: str) -> int:
    """``"500MB"`` -> 524288000; plain numbers are bytes; KB/MB/GB are powers of 1024."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (expected e.g. 500MB or 1GB)")
    unit = (match.group(2) or "").upper()[:1]
    return int(float(match.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit])


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``prepare-dataset`` on an ``argparse`` subparsers object; sets ``func``."""
    parser = subparsers.add_parser(
        "prepare-dataset",
        help="build a Parquet dataset (and optionally a private Hub repo) from a local AVA, Photo.net or JAS copy",
        description=DESCRIPTION,
    )
    parser.add_argument("dataset", choices=DATASET_NAMES, help="which dataset --data-dir holds")
    parser.add_argument(
        "--data-dir", required=True, type=Path, help="the local copy (layouts: see the README)"
    )
    parser.add_argument(
        "--output", required=True, type=Path, help="folder for data/*.parquet, README.md, report"
    )
    parser.add_argument(
        "--comments",
        action="append",
        type=Path,
        help="AVA comments: <id>.txt folder, '#' file or authors' CSV(s); repeatable",
    )
    parser.add_argument(
        "--split-file",
        type=Path,
        help="AVA/Photo.net: list of test ids (.jpgl); JAS: train/val/test.csv or their folder",
    )
    parser.add_argument("--images-dir", type=Path, help="where the images are, if not under --data-dir")
    parser.add_argument(
        "--test-fraction", type=float, help="seeded random test split when the dataset ships none"
    )
    parser.add_argument(
        "--validation-fraction", type=float, default=0.0, help="seeded validation split taken from train"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the random splits (default 42)")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="upload to this Hub dataset repo")
    parser.add_argument("--public", action="store_true", help="make the Hub repo public (default: private)")
    parser.add_argument("--token", help="Hub token (default: the logged-in one / HF_TOKEN)")
    parser.add_argument(
        "--num-proc", type=int, default=1, help="processes reading and checking images (default 1)"
    )
    parser.add_argument(
        "--max-shard-size",
        type=parse_size,
        default=DEFAULT_MAX_SHARD_BYTES,
        help="size of each Parquet file (default 500MB)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a dataset already built in --output"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_prepare_dataset)
    return parser


def run_prepare_dataset(args: argparse.Namespace) -> int:
    """Run ``prepare-dataset``; returns the exit code (0 done, 2 bad input, 1 push failed)."""
    from ..data.prepare import prepare_dataset
    from ..data.push import push_dataset_folder

    reader_kwargs = {
        "split_file": args.split_file,
        "images_dir": args.images_dir,
        "test_fraction": args.test_fraction,
        "validation_fraction": args.validation_fraction,
        "seed": args.seed,
    }
    if args.dataset == "ava":
        reader_kwargs["comments"] = args.comments
    elif args.comments:
        print(
            f"error: --comments applies to AVA only ({args.dataset} ships its own or none)", file=sys.stderr
        )
        return 2
    try:
        prepared = prepare_dataset(
            args.dataset,
            args.data_dir,
            args.output,
            num_proc=max(1, args.num_proc),
            max_shard_bytes=args.max_shard_size,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            **reader_kwargs,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(prepared.summary)
    if args.push_to_hub:
        # Pushed here rather than by prepare_dataset(push_to_hub=...): a failed upload keeps the local build
        # and exits 1, saying so.
        try:
            prepared.hub_url = push_dataset_folder(
                args.output, args.push_to_hub, private=not args.public, token=args.token
            )
        except Exception as error:  # noqa: BLE001 - the local build is done; say why the upload is not
            print(
                f"error: the dataset is built in {args.output} but the push failed: {error}", file=sys.stderr
            )
            return 1
        print(f"pushed to {prepared.hub_url} ({'public' if args.public else 'private'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m aesformer_hf.commands.prepare_dataset ava --data-dir ...`` (the same as the subcommand)."""
    parser = argparse.ArgumentParser(prog="aesformer-hf")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["prepare-dataset", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
