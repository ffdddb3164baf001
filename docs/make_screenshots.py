"""Make the README's pictures: docs/report.png (`aesformer-hf report`) and docs/app.png (`aesformer-hf app`).

Runs the README's commands on photos of the synthetic aesthetics dataset (scikit-image's photos with graded flaws,
the `[demo]` extra) rated by a trained model (the demo's: `aesformer-hf demo --output ./aesformer-demo`), then takes
headless Chromium screenshots (Debian's `chromium`) and stores them as small palette PNGs. Offline; the app serves
on a free port of 127.0.0.1 and is stopped at the end.

    aesformer-hf demo --output ./aesformer-demo
    python docs/make_screenshots.py --model ./aesformer-demo
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.browser import DevTools, run_chromium  # noqa: E402  (the tests' headless Chromium, network closed)

APP_PHOTOS = 6


def make_photos(folder: Path) -> list[Path]:
    from aesformer_hf.data.synthetic import build_synthetic_aesthetics

    data = build_synthetic_aesthetics(
        strengths=(0, 1, 2, 3, 4), degradations=("blur", "underexposure", "noise", "tilt"), image_size=224
    )
    paths = []
    for split in ("train", "test"):
        for row in data[split]:
            path = folder / f"{row['image_id']}.jpg"
            row["image"].convert("RGB").save(path, quality=92)
            paths.append(path)
    return paths


def shrink(png: Path, colours: int = 256) -> int:
    """Store `png` as an optimised palette PNG; its size in bytes."""
    with Image.open(png) as image:
        small = image.convert("RGB").quantize(
            colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    small.save(png, optimize=True)
    return png.stat().st_size


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a trained AesFormer folder (e.g. the demo's)")
    parser.add_argument("--output-dir", default=str(REPO_ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "aesformer_hf.cli"]
    with tempfile.TemporaryDirectory(prefix="aesformer-screenshots-") as tmp:
        work = Path(tmp)
        photos = work / "photos"
        photos.mkdir()
        paths = make_photos(photos)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(work / "gradio")}
        # Named on the pages as the README names it.
        os.symlink(Path(args.model).resolve(), work / "aesformer-demo")
        model = "aesformer-demo"
        # The README's command: rate the folder, write the scores and the report.
        subprocess.run(
            [
                *cli,
                "score",
                "photos",
                "--model",
                args.model,
                "--output",
                "scores.jsonl",
                "--html",
                "report.html",
            ],
            cwd=work,
            env=env,
            check=True,
        )
        run_chromium((work / "report.html").as_uri(), f"--screenshot={out / 'report.png'}")
        print(f"docs/report.png: {shrink(out / 'report.png') / 1e3:.0f} KB")

        # The app, opened on a few photos of different quality.
        coffee = [p for p in paths if p.name.startswith("coffee")]
        chosen = [str(p.relative_to(work)) for p in coffee[:: max(1, len(coffee) // APP_PHOTOS)][:APP_PHOTOS]]
        port = free_port()
        server = subprocess.Popen(
            [*cli, "app", *chosen, "--model", model, "--port", str(port)], cwd=work, env=env
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=5):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the app did not start") from None
                    time.sleep(0.5)
            with DevTools(window="1280,1400") as chromium:
                chromium.open(url, until="!!document.querySelector('#heatmap img')", timeout=120, settle=2)
                chromium.screenshot(out / "app.png")
            print(f"docs/app.png: {shrink(out / 'app.png') / 1e3:.0f} KB")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
