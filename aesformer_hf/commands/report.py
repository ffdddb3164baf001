"""`aesformer-hf report`: one self-contained HTML page over a `score` output (thumbnails, distributions, histogram).

The library is `aesformer_hf.report`; it is imported only when the command runs. Exit codes: 0 written, 2 a usage
error (one line: the scores file is missing or not a score output, the output's folder does not exist).
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_THUMBNAIL_SIZE = 96  # = aesformer_hf.report.DEFAULT_THUMBNAIL_SIZE (tested)
DEFAULT_TOP = 12  # = aesformer_hf.report.DEFAULT_TOP


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="Write an HTML page of a score output: thumbnails sorted by score, distributions, histogram.",
        description="Write one self-contained HTML file (no network: thumbnails embedded as small JPEGs) over the "
        "output of `aesformer-hf score`: every image sorted by score with its label, mode and distribution, a "
        "histogram of the scores, the best and worst images, filters by label, mode and name, and the inputs that "
        "could not be rated.",
    )
    parser.add_argument("scores", metavar="SCORES", help="a score output: .jsonl, .csv or .parquet")
    parser.add_argument("--output", required=True, metavar="HTML", help="the page to write (.html)")
    add_report_options(parser)
    parser.set_defaults(func=run_report)
    return parser


def add_report_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the page")
    group.add_argument("--model-name", help="the model to name on the page (default: none)")
    group.add_argument("--title", help="the page's title (default: AesFormer ratings)")
    group.add_argument(
        "--top",
        type=int,
        default=DEFAULT_TOP,
        help=f"images in the best and worst sections (default {DEFAULT_TOP})",
    )
    group.add_argument(
        "--thumbnail-size",
        type=int,
        default=DEFAULT_THUMBNAIL_SIZE,
        help=f"longest side of the embedded thumbnails in pixels (default {DEFAULT_THUMBNAIL_SIZE}; 0: none)",
    )
    group.add_argument(
        "--image-root",
        metavar="DIR",
        help="folder the relative paths of SCORES are under (default: the current folder, then SCORES' folder)",
    )


def check_html_path(path: str, option: str = "--output") -> None:
    """CommandError unless `path` ends in .html/.htm and its folder exists."""
    from .loading import CommandError

    if not path.lower().endswith((".html", ".htm")):
        raise CommandError(f"{option} {path}: the report is HTML; give a name ending with .html.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: the folder {folder} does not exist.")
    if os.path.isdir(path):
        raise CommandError(f"{option} {path} is a folder; give a file name ending with .html.")


def report_options(args: argparse.Namespace) -> dict:
    """`render_report`'s keyword arguments from the parsed options (CommandError for impossible values)."""
    from .loading import CommandError

    if args.top < 0:
        raise CommandError(f"--top must be at least 0, got {args.top}.")
    size = args.thumbnail_size
    if size < 0 or 0 < size < 16:
        raise CommandError(f"--thumbnail-size must be 0 (none) or at least 16, got {size}.")
    if args.image_root is not None and not os.path.isdir(args.image_root):
        raise CommandError(f"--image-root {args.image_root}: no such folder.")
    return {
        "title": args.title,
        "model_name": args.model_name,
        "top": args.top,
        "thumbnail_size": size or DEFAULT_THUMBNAIL_SIZE,
        "thumbnails": size > 0,
        "image_root": args.image_root,
    }


def print_summary(summary, output: str) -> None:
    missing = (
        f"; {summary.missing_thumbnails} without a thumbnail (file not found or unreadable)"
        if summary.missing_thumbnails
        else ""
    )
    print(
        f"Wrote {output} ({summary.bytes / 1e6:.1f} MB): {summary.rated} image(s) rated, {summary.errors} not "
        f"rated{missing}.",
        file=sys.stderr,
    )


def run_report(args: argparse.Namespace) -> int:
    from .loading import CommandError

    try:
        if not os.path.isfile(args.scores):
            raise CommandError(f"SCORES {args.scores}: no such file.")
        check_html_path(args.output)
        options = report_options(args)
        from ..report import write_report_from_scores

        try:
            summary = write_report_from_scores(args.scores, args.output, **options)
        except (ValueError, OSError) as error:
            raise CommandError(f"SCORES {args.scores}: {error}") from None
    except CommandError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    print_summary(summary, args.output)
    return 0
