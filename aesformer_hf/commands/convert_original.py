"""`aesformer-hf convert-original`: the authors' released checkpoint -> a transformers folder.

The library is `aesformer_hf.models.aesformer.convert_aesformer_original_to_hf`, imported only when the command
runs. The command itself lives here, outside the model folder that ships to the Hub as remote code.
"""

from __future__ import annotations

import argparse
import sys


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
    """`aesformer-hf convert-original`: 0 on success, 1 when the checkpoint or a setting is refused, 2 for a
    missing checkpoint file or an output folder that may not be written (one line each)."""
    from ..models.aesformer import convert_aesformer_original_to_hf as converter

    overrides = {
        name: getattr(args, name)
        for name in ("score_min", "score_max", "label_threshold")
        if getattr(args, name, None) is not None
    }
    try:
        report = converter.convert_original_checkpoint(
            args.checkpoint,
            args.output,
            tokenizer_path=args.tokenizer,
            text_num_attention_heads=args.text_num_heads,
            overwrite=getattr(args, "overwrite", False),
            **overrides,
        )
    except (FileNotFoundError, FileExistsError, PermissionError) as error:
        print(f"convert-original: {error}", file=sys.stderr)
        return 2
    except (converter.OriginalCheckpointError, ValueError, RuntimeError) as error:
        print(f"convert-original: {error}", file=sys.stderr)
        return 1
    if args.push_to_hub:
        from ..hub.remote_code import complete_for_hub

        # The Hub repo gets the pipeline and the base model's AutoModel entry too, so that it loads with
        # `trust_remote_code=True` where aesformer_hf is not installed.
        complete_for_hub(args.output)
        _upload_folder(args.output, args.push_to_hub)
        report.pushed_to = args.push_to_hub
    print(report.summary())
    return 0


def _upload_folder(folder: str, repo_id: str) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, folder_path=folder, commit_message="Convert the released AesFormer checkpoint"
    )
