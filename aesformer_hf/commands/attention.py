"""`aesformer-hf attention`: where the fusion layers' attention looks, as a heatmap over the image.

The library is `aesformer_hf.visualization.attention_maps` (`render_attention`); it is imported only when the command
runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .loading import add_model_loading_options

ROLLOUT, LAST_LAYER = "rollout", "last"  # = attention_maps.METHODS (tested)
METHODS = (ROLLOUT, LAST_LAYER)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `attention` on the `aesformer-hf` command's subparsers; sets `func=run_attention_command`."""
    parser = subparsers.add_parser(
        "attention",
        help="draw where the fusion layers' attention looks, as a heatmap over the image",
        description=(
            "Render the attention of AesFormer's pooled prediction (fusion layers, attention rollout) onto the "
            "image as a heatmap overlay of the image's size. With --comments (MIAA) the most attended comment "
            "words are printed and written on the image; without (VIAA) the image is rated alone."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="the photo to explain")
    parser.add_argument("--model", required=True, help="a saved AesFormer folder or Hub repo id")
    parser.add_argument(
        "--comments",
        action="append",
        metavar="TEXT",
        help="a comment on the image (repeat for several); given -> MIAA, left out -> VIAA",
    )
    parser.add_argument("--output", required=True, metavar="PNG", help="where to write the overlay (.png)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=ROLLOUT,
        help="rollout over all fusion layers (default) or the last",
    )
    parser.add_argument(
        "--top-k", type=int, default=5, help="comment words to report in MIAA (default 5; 0: none)"
    )
    parser.add_argument("--colormap", default="jet", help="matplotlib colormap of the heatmap (default jet)")
    parser.add_argument("--alpha", type=float, default=0.45, help="heatmap opacity in [0, 1] (default 0.45)")
    parser.add_argument("--device", default="cpu", help="torch device to run the model on (default cpu)")
    add_model_loading_options(parser, "load")
    parser.set_defaults(func=run_attention_command)
    return parser


def run_attention_command(args: argparse.Namespace) -> int:
    """`aesformer-hf attention`: write the overlay PNG, print the mode, score and (MIAA) the top words.

    The drawing is `aesformer_hf.visualization.attention_maps.render_attention`; this checks the paths, loads the
    model and reports. Exit code 0 written, 2 for a bad image, output path, model or option.
    """
    image_path, output = Path(args.image), Path(args.output)
    if not image_path.is_file():
        print(f"error: IMAGE {str(image_path)!r} is not a file; give the path of a photo.", file=sys.stderr)
        return 2
    if output.suffix.lower() != ".png":
        print(
            f"error: --output {str(output)!r} must end in .png (the overlay is written as PNG).",
            file=sys.stderr,
        )
        return 2
    from ..models.aesformer.image_utils_aesformer import ImageLoadError, load_image
    from ..utils.optional import require
    from ..visualization.attention_maps import render_attention
    from .loading import CommandError, load_model_and_processor

    try:
        image = load_image(image_path)
    except ImageLoadError as error:
        print(f"error: cannot read IMAGE {str(image_path)!r} as an image: {error.reason}", file=sys.stderr)
        return 2
    # Before the model loads: without matplotlib the heatmap cannot be drawn (one line, exit code 2, from the CLI).
    require("matplotlib", purpose="aesformer-hf attention (the heatmap's colormaps)")
    try:
        model, processor = load_model_and_processor(
            args.model,
            args.device,
            trust_remote_code=getattr(args, "trust_remote_code", False),
            allow_partial_weights=getattr(args, "allow_partial_weights", False),
        )
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        overlay, attention = render_attention(
            image,
            model,
            processor,
            args.comments or None,
            method=args.method,
            top_k=args.top_k,
            colormap=args.colormap,
            alpha=args.alpha,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output.parent.mkdir(parents=True, exist_ok=True)
    overlay.save(output, format="PNG")
    print(f"mode: {attention.mode}  score: {attention.score:.3f} ({attention.label})")
    if attention.top_words:
        print("most attended comment words: " + ", ".join(f"{w} ({s:.2f})" for w, s in attention.top_words))
    print(f"wrote {output} ({overlay.width}x{overlay.height})")
    return 0
