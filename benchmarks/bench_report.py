"""The HTML report (`aesformer-hf report`) of a large score output: file size, time to write, time to open.

Makes `--images` small photo-like JPEGs (smooth gradients and shapes, `--size` px on the long side) and a score
output of `--rows` rows whose paths are distinct symlinks onto them (so every row makes its own thumbnail, as in a
real folder of that many photos), with random distributions, 1% error rows and both modes. Then it times
`write_report_from_scores` (reading the rows, decoding and encoding every thumbnail, writing the page) and prints
the page's size; with chromium on PATH also how long headless chromium takes to load the page and take a
screenshot (`--dump-dom` of the whole page, which lays everything out, is timed too).

    python benchmarks/bench_report.py                     # 10,000 rows over 300 photos
    python benchmarks/bench_report.py --rows 2000 --no-browser
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from aesformer_hf.report import write_report_from_scores

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def photo(seed: int, long_side: int) -> Image.Image:
    """A smooth photo-like picture: a two-colour gradient sky, a ground, a sun and a few shapes."""
    rng = np.random.default_rng(seed)
    w, h = long_side, long_side * 3 // 4
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    sky = (top * (1 - t) + bottom * t).astype(np.uint8).repeat(w, axis=1)
    image = Image.fromarray(sky)
    draw = ImageDraw.Draw(image)
    horizon = int(h * rng.uniform(0.5, 0.8))
    draw.rectangle((0, horizon, w, h), fill=tuple(int(v) for v in rng.integers(0, 200, 3)))
    r = int(h * rng.uniform(0.06, 0.15))
    cx, cy = int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.1, 0.5) * h)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 220, 120))
    for _ in range(3):
        x, y = int(rng.uniform(0, w)), int(rng.uniform(horizon, h))
        s = int(h * rng.uniform(0.05, 0.2))
        draw.polygon(
            [(x, y - s), (x - s, y + s // 2), (x + s, y + s // 2)],
            fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
        )
    return image


def make_scores(folder: Path, images: int, rows: int, long_side: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    sources = folder / "photos"
    sources.mkdir()
    for i in range(images):
        photo(seed + i, long_side).save(sources / f"photo-{i:04d}.jpg", quality=90)
    linked = folder / "folder"
    linked.mkdir()
    records = []
    for i in range(rows):
        path = linked / f"img-{i:05d}.jpg"
        os.symlink(sources / f"photo-{i % images:04d}.jpg", path)
        if i % 100 == 99:
            records.append(
                {
                    "path": str(path),
                    "score": None,
                    "label": None,
                    "mode": None,
                    "distribution": None,
                    "error": f"{path}: unreadable image: truncated",
                }
            )
            continue
        distribution = rng.dirichlet(
            np.exp(-0.5 * ((np.arange(10) - rng.uniform(2, 7)) / 1.5) ** 2) * 20 + 0.1
        )
        score = float(np.dot(np.arange(1, 11), distribution))
        records.append(
            {
                "path": str(path),
                "score": score,
                "label": "high" if score > 5 else "low",
                "mode": "multimodal" if i % 3 == 0 else "vision",
                "distribution": distribution.tolist(),
                "error": None,
            }
        )
    scores = folder / "scores.jsonl"
    scores.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return scores


def time_browser(page: Path, folder: Path) -> dict:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {}
    timings = {}
    profile = folder / "profile"
    for what, extra in (
        ("screenshot", [f"--screenshot={folder / 'shot.png'}", "--window-size=1280,900"]),
        ("dump_dom", ["--dump-dom"]),
    ):
        start = time.perf_counter()
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True,
            timeout=300,
        )
        timings[what] = time.perf_counter() - start
        if result.returncode != 0:
            timings[what] = float("nan")
        elif what == "dump_dom":
            timings["cards_in_dom"] = result.stdout.count(b'class="card"')
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=320, help="long side of the generated photos (px)")
    parser.add_argument("--thumbnail-size", type=int, default=96)
    parser.add_argument("--workers", type=int, default=None, help="thumbnail threads (default: up to 4)")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        scores = make_scores(folder, args.images, args.rows, args.size)
        print(
            f"made {args.images} photos ({args.size} px) and {args.rows} rows in {time.perf_counter() - start:.1f} s"
        )
        page = folder / "report.html"
        start = time.perf_counter()
        summary = write_report_from_scores(
            scores, page, model_name="bench", thumbnail_size=args.thumbnail_size, workers=args.workers
        )
        seconds = time.perf_counter() - start
        size = page.stat().st_size
        print(
            f"report: {summary.rated} rated + {summary.errors} errors, {size / 1e6:.1f} MB "
            f"({size / max(summary.rated, 1) / 1e3:.1f} KB per image), written in {seconds:.1f} s "
            f"({summary.rated / seconds:.0f} images/s), thumbnails missing: {summary.missing_thumbnails}"
        )
        if not args.no_browser:
            timings = time_browser(page, folder)
            if timings:
                print(
                    f"chromium (headless): load + screenshot {timings['screenshot']:.1f} s, load + dump the whole DOM "
                    f"{timings['dump_dom']:.1f} s ({timings.get('cards_in_dom', 0)} cards)"
                )
            else:
                print("chromium: not found, browser timing skipped", file=sys.stderr)


if __name__ == "__main__":
    main()
