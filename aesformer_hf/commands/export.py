"""`aesformer-hf export`: write the model as an ONNX file or a `torch.export` program with a dynamic batch."""

from __future__ import annotations

import argparse
import sys

from .loading import add_model_loading_options

# `aesformer_hf.exporting.MODES`, the configuration's mode names (a test keeps them equal): this parser is built
# for `--help` without importing torch.
EXPORT_MODES = ("vision", "multimodal")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="export the model to ONNX or a torch.export program (.pt2)",
        description=(
            "Export an AesFormer as one graph with a dynamic batch (and text length in multimodal mode), check it "
            "against eager PyTorch, and write the preprocessing config beside it."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--output", required=True, help="folder to write")
    parser.add_argument("--format", choices=("onnx", "pt2"), default="onnx", help="file format")
    parser.add_argument(
        "--mode",
        choices=EXPORT_MODES,
        default=EXPORT_MODES[0],
        help="vision: image only (VIAA); multimodal: image + comments (MIAA)",
    )
    add_model_loading_options(parser, "export")
    parser.set_defaults(func=run_export)
    return parser


def run_export(args: argparse.Namespace) -> int:
    """0 when the file was written and verified; 2 for a usage, model or missing-package error."""
    from .loading import CommandError, load_aesthetics_model, load_processor

    try:
        from ..exporting import export_model, require_onnx
        from ..models.aesformer.configuration_aesformer import VISION_MODE

        if args.format == "onnx":
            require_onnx(runtime=True)
        model = load_aesthetics_model(
            args.model, vision_only=args.mode == VISION_MODE, allow_partial=args.allow_partial_weights
        )
        processor = load_processor(args.model, trust_remote_code=args.trust_remote_code)
        report = export_model(model, args.output, format=args.format, mode=args.mode, processor=processor)
    except (CommandError, ImportError, ValueError) as error:
        print(f"export: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"export: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0
