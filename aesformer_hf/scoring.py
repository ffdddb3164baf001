"""`aesformer-hf score`: rate a set of image files (and folders of them) with a saved AesFormer.

Unreadable or non-image files are reported and skipped; the run goes on, results keep the input order,
and the exit code is non-zero when anything was skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class ScoringReport:
    """Per-input results in input order; `skipped` holds `(path, reason)` of inputs that could not be rated."""

    results: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders walked recursively (sorted, image suffixes only); missing paths are kept so that
    they are reported as skipped rather than silently dropped."""
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            expanded.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            )
        else:
            expanded.append(path)
    return expanded


def load_comments(path: str | Path | None) -> dict[str, list[str]]:
    """Comments per image from a JSON object `{name: [comments] | "text"}` or a CSV with `image` and `comment`
    columns (one row per comment). Keys are matched against the file name, its stem, and the full path."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--comments file {path} does not exist.")
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object mapping image names to comments.")
        return {str(k): [v] if isinstance(v, str) else list(v) for k, v in data.items()}
    comments: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"image", "comment"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path} must be a CSV with columns 'image' and 'comment' (got {reader.fieldnames})."
            )
        for row in reader:
            comments.setdefault(row["image"], []).append(row["comment"])
    return comments


def _comments_for(path: Path, comments: dict[str, list[str]]):
    for key in (str(path), path.name, path.stem):
        if key in comments:
            return comments[key]
    return None


def _open_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def score_files(
    scorer,
    paths: Sequence[Path],
    comments: dict[str, list[str]] | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> ScoringReport:
    """Rate `paths` with `scorer` (an `image-aesthetics` pipeline), `batch_size` images per forward pass."""
    comments = comments or {}
    report = ScoringReport()
    chunk = max(batch_size * 4, 1)
    with tqdm(total=len(paths), desc="Scoring", unit="img", disable=not progress or len(paths) < 2) as bar:
        for start in range(0, len(paths), chunk):
            images, names, texts = [], [], []
            for path in paths[start : start + chunk]:
                try:
                    images.append(_open_image(path))
                except FileNotFoundError:
                    report.skipped.append((str(path), "file not found"))
                    continue
                except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
                    report.skipped.append((str(path), f"unreadable image: {error}"))
                    continue
                names.append(str(path))
                texts.append(_comments_for(path, comments))
            if images:
                try:
                    outputs = scorer(images, comments=texts, batch_size=batch_size)
                except Exception:  # noqa: BLE001 - isolate the bad file instead of losing the chunk
                    outputs = []
                    for image, name, text in zip(images, names, texts):
                        try:
                            outputs.append(scorer(image, comments=text))
                        except Exception as error:  # noqa: BLE001
                            report.skipped.append((name, f"could not be rated: {error}"))
                            outputs.append(None)
                for name, output in zip(names, outputs):
                    if output is not None:
                        report.results.append({"path": name, **output})
            bar.update(len(paths[start : start + chunk]))
    return report


def format_results(results: list[dict], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(results, indent=2)
    if output_format == "csv":
        lines = ["path,score,label,mode"]
        lines += [f"{r['path']},{r['score']:.4f},{r['label']},{r['mode']}" for r in results]
        return "\n".join(lines)
    width = max([len(r["path"]) for r in results] + [4])
    lines = [f"{'path':<{width}}  {'score':>6}  {'label':<5}  mode", "-" * (width + 26)]
    lines += [f"{r['path']:<{width}}  {r['score']:>6.3f}  {r['label']:<5}  {r['mode']}" for r in results]
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="Rate image files or folders with a saved AesFormer.",
        description="Rate images (files or folders, walked recursively). Images with comments are rated "
        "multimodally (MIAA), the others from pixels only (VIAA).",
    )
    parser.add_argument("paths", nargs="+", help="image files and/or folders")
    parser.add_argument("--model", required=True, help="a saved AesFormer folder or Hub id")
    parser.add_argument("--comments", help="JSON {image: [comments]} or CSV with columns image,comment")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: cpu)")
    parser.add_argument("--dtype", default=None, choices=[None, "float32", "bfloat16", "float16"])
    parser.add_argument("--format", default="table", choices=["table", "json", "csv"])
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    import torch
    from transformers import pipeline

    from . import PIPELINE_TASK

    if args.batch_size < 1:
        raise SystemExit(f"--batch-size must be at least 1, got {args.batch_size}.")
    comments = load_comments(args.comments)
    paths = expand_paths(args.paths)
    if not paths:
        print(f"No images found under {', '.join(args.paths)}.", file=sys.stderr)
        return 2
    scorer = pipeline(
        PIPELINE_TASK,
        model=args.model,
        device=args.device,
        dtype=getattr(torch, args.dtype) if args.dtype else None,
        # None (not False) lets the locally registered classes serve folders whose config carries `auto_map`.
        trust_remote_code=True if args.trust_remote_code else None,
    )
    report = score_files(scorer, paths, comments=comments, batch_size=args.batch_size)
    if report.results:
        print(format_results(report.results, args.format))
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"Rated {len(report.results)} image(s), skipped {len(report.skipped)}.", file=sys.stderr)
    return 1 if report.skipped else 0
