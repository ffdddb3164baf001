"""`aesformer-hf attention`: where the fusion layers' attention looks, as a heatmap over the image.

The library is `aesformer_hf.visualization.attention_maps`; it is imported only when the command runs.
"""

from __future__ import annotations

import argparse

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
    """Run `attention` (see `aesformer_hf.visualization.attention_maps.run_attention_command`)."""
    from ..visualization.attention_maps import run_attention_command as run

    return run(args)
