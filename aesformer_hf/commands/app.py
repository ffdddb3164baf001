"""`aesformer-hf app`: a local web app (Gradio) to rate photos, rank them and see where the model looks.

The library is `aesformer_hf.app`; it and gradio (the `[app]` extra) are imported only when the command runs.
Exit codes: 0 the server stopped (Ctrl-C), 2 a usage or model error, or the extra is missing (one line).
"""

from __future__ import annotations

import argparse
import sys

from .loading import add_model_loading_options

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "app",
        help="Start a local web app: drop photos, add comments, see them ranked with attention heatmaps.",
        description="Start a local web app (Gradio; pip install 'aesformer-hf[app]') where you drop one or many "
        "photos, optionally type comments for them (MIAA), and see them ranked with scores and distributions and, "
        "for a chosen photo, the attention heatmap of `aesformer-hf attention`. Rated by the image-aesthetics "
        "pipeline, so the scores are those of `aesformer-hf score`. Nothing is downloaded and no usage data is "
        "sent; the server listens on 127.0.0.1 unless --host says otherwise.",
    )
    parser.add_argument(
        "photos", nargs="*", metavar="PHOTO", help="photos or folders to rate when the page opens (optional)"
    )
    parser.add_argument("--model", required=True, help="a saved AesFormer folder or Hub id")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    parser.add_argument("--device", default="cpu", help="torch device to run the model on (default cpu)")
    add_model_loading_options(parser, "rate")
    parser.set_defaults(func=run_app)
    return parser


def run_app(args: argparse.Namespace) -> int:
    from ..utils.optional import require
    from .loading import CommandError

    # Before the model loads: without gradio there is no app (one line naming the extra, exit code 2).
    require("gradio", "matplotlib", purpose="aesformer-hf app")
    if not 0 <= args.port <= 65535:
        print(f"app: --port must be within 0..65535, got {args.port}.", file=sys.stderr)
        return 2
    from ..app import launch_app

    try:
        launch_app(
            args.model,
            photos=args.photos,
            host=args.host,
            port=args.port,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
            allow_partial_weights=args.allow_partial_weights,
        )
    except CommandError as error:
        print(f"app: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
