"""Fast decode (JPEG draft mode): how much faster load + resize gets, and how much the model's input and score move.

Real photos (scikit-image's sample photos) are upscaled to camera sizes (6, 12 and 24 MP) and saved as JPEG
(quality 92, 4:2:0), once as upscaled and once with film grain added back (an upscaled photo is smoother than a
camera's, and fine detail is where DCT scaling differs most). For each file it times

* exact: `load_image(path)` then the processor's resize to 224 (the pipeline's default path);
* fast:  `load_image(path, draft_size=(2*224, 2*224))` (DCT-scaled decode to no less than twice the input side)
  then the same resize: the pipeline's `fast_decode=True`;
* fast x1: draft to no less than the input side itself (a more aggressive setting, for comparison);

median of `--repeats` runs, one thread, interleaved. Quality: the largest difference, in 8-bit levels, between
the 224 x 224 model inputs of fast and exact, and the largest score change of a tiny random AesFormer (224 px).
Same-run reference for both: re-saving the full-size photo as JPEG quality 90 (an everyday change nobody would
call a different photo), put through the exact path.

With `--trained-model FOLDER` (e.g. the demo's output) it also reports how far fast decode and the q90 re-save move
that trained model's scores, at the model's own input size (the draft then goes to twice that side, as in the
pipeline): a random model's scores are nearly constant, a trained one's are not.

    python benchmarks/bench_decode.py                 # 4 photos x 3 sizes x 2 textures
    python benchmarks/bench_decode.py --sizes 6 --repeats 1   # quick look
    python benchmarks/bench_decode.py --trained-model ./aesformer-demo
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timing import median_seconds  # the benchmarks' shared timing rule

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor
from aesformer_hf.models.aesformer.image_utils_aesformer import load_image
from aesformer_hf.testing_utils import tiny_config

SIZE = 224
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def _photos() -> dict[str, np.ndarray]:
    import skimage.data

    return {name: getattr(skimage.data, name)() for name in PHOTOS}


def _camera_jpeg(photo: np.ndarray, megapixels: float, grain: bool, seed: int) -> bytes:
    height, width = photo.shape[:2]
    scale = (megapixels * 1e6 / (width * height)) ** 0.5
    size = (round(width * scale), round(height * scale))
    image = Image.fromarray(photo).resize(size, Image.BICUBIC)
    if grain:
        array = np.asarray(image, dtype=np.int16)
        noise = np.random.default_rng(seed).normal(0, 6, size=array.shape[:2] + (1,)).astype(np.int16)
        image = Image.fromarray(np.clip(array + noise, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, subsampling=2)
    return buffer.getvalue()


def _model_input(processor: AesformerImageProcessor, image: Image.Image) -> tuple[np.ndarray, torch.Tensor]:
    """The 224 x 224 8-bit image the model sees (for the pixel comparison) and the processor's pixel_values."""
    resized = image.resize((SIZE, SIZE), resample=processor.resample)
    return np.asarray(resized, dtype=np.int16), processor(resized, return_tensors="pt")["pixel_values"]


def trained_score_changes(folder: str):
    """`changes(path, q90_bytes) -> (exact score, |fast - exact|, |q90 - exact|)` for the trained model in `folder`
    (vision-only), at its own input size."""
    model = AesformerForAesthetic.from_pretrained(folder, vision_only=True).eval()
    processor = AesformerImageProcessor.from_pretrained(folder)
    height, width = model.model.image_size

    def score(source, draft_size=None) -> float:
        with torch.inference_mode():
            inputs = processor(load_image(source, draft_size=draft_size), return_tensors="pt")
            return float(model(pixel_values=inputs["pixel_values"]).score[0])

    def changes(path, q90_bytes) -> tuple[float, float, float]:
        exact = score(path)
        return exact, abs(score(path, (2 * width, 2 * height)) - exact), abs(score(q90_bytes) - exact)

    return changes


def run(sizes: list[float], repeats: int, trained_model: str | None = None) -> None:
    trained = trained_score_changes(trained_model) if trained_model else None
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=SIZE, vision_only=True)).eval()
    processor = AesformerImageProcessor(size=SIZE)

    def score(pixel_values: torch.Tensor) -> float:
        with torch.inference_mode():
            return float(model(pixel_values=pixel_values).score[0])

    header = (
        "| photo | MP | grain | exact ms | fast ms | speed-up | fast x1 ms | speed-up x1 | max px diff fast | "
        "max px diff x1 | max px diff q90 | score diff fast | score diff x1 | score diff q90 |"
    )
    print(f"torch {torch.__version__}, PIL {Image.__version__}, 1 thread, median of {repeats}")
    print(header)
    print("|" + "|".join("---" for _ in header.split("|")[1:-1]) + "|")
    rows, scores = [], []
    with tempfile.TemporaryDirectory(prefix="bench_decode_") as folder:
        for photo_index, (name, photo) in enumerate(_photos().items()):
            for megapixels in sizes:
                for grain in (False, True):
                    path = Path(folder) / f"{name}_{megapixels}mp_{int(grain)}.jpg"
                    path.write_bytes(_camera_jpeg(photo, megapixels, grain, seed=photo_index))
                    exact_image = load_image(path)
                    buffer = io.BytesIO()
                    exact_image.save(buffer, format="JPEG", quality=90)
                    q90_bytes = buffer.getvalue()

                    # Timed: what the pipeline's preprocess does, load + the processor (resize, normalise).
                    def exact(path=path):
                        return processor(load_image(path), return_tensors="pt")

                    def fast(factor=2, path=path):
                        return processor(
                            load_image(path, draft_size=(factor * SIZE,) * 2), return_tensors="pt"
                        )

                    def fast_x1():
                        return fast(1)

                    exact()
                    fast()  # warm the page cache
                    timings = {"exact": [], "fast": [], "x1": []}
                    for _ in range(repeats):  # interleaved, so that drift hits all three alike
                        timings["exact"].append(median_seconds(exact, 1))
                        timings["fast"].append(median_seconds(fast, 1))
                        timings["x1"].append(median_seconds(fast_x1, 1))
                    ms = {k: 1000 * statistics.median(v) for k, v in timings.items()}
                    exact_px, exact_t = _model_input(processor, exact_image)
                    fast_px, fast_t = _model_input(processor, load_image(path, draft_size=(2 * SIZE,) * 2))
                    x1_px, x1_t = _model_input(processor, load_image(path, draft_size=(SIZE, SIZE)))
                    q90_px, q90_t = _model_input(processor, load_image(q90_bytes))
                    exact_score = score(exact_t)
                    scores.append(exact_score)
                    row = {
                        "exact": ms["exact"],
                        "fast": ms["fast"],
                        "x1": ms["x1"],
                        "px_fast": int(np.abs(fast_px - exact_px).max()),
                        "px_x1": int(np.abs(x1_px - exact_px).max()),
                        "px_q90": int(np.abs(q90_px - exact_px).max()),
                        "mean_fast": float(np.abs(fast_px - exact_px).mean()),
                        "mean_q90": float(np.abs(q90_px - exact_px).mean()),
                        "s_fast": abs(score(fast_t) - exact_score),
                        "s_x1": abs(score(x1_t) - exact_score),
                        "s_q90": abs(score(q90_t) - exact_score),
                    }
                    if trained:
                        row["t_exact"], row["t_fast"], row["t_q90"] = trained(path, q90_bytes)
                    rows.append(row)
                    print(
                        f"| {name} | {megapixels:g} | {'yes' if grain else 'no'} | {row['exact']:.0f} | "
                        f"{row['fast']:.0f} | {row['exact'] / row['fast']:.2f}x | {row['x1']:.0f} | "
                        f"{row['exact'] / row['x1']:.2f}x | {row['px_fast']} | {row['px_x1']} | {row['px_q90']} | "
                        f"{row['s_fast']:.1e} | {row['s_x1']:.1e} | {row['s_q90']:.1e} |",
                        flush=True,
                    )
    spread = max(scores) - min(scores)
    print()
    print(f"files: {len(rows)}; exact-path scores of the different photos span {spread:.1e}")
    for label, key, px, px_mean in (
        ("fast (draft >= 2x input)", "fast", "px_fast", "mean_fast"),
        ("fast x1 (draft >= input)", "x1", "px_x1", None),
    ):
        speedups = [row["exact"] / row[key] for row in rows]
        print(
            f"{label}: speed-up of load+resize min {min(speedups):.2f}x, median {statistics.median(speedups):.2f}x, "
            f"max {max(speedups):.2f}x; largest input change {max(row[px] for row in rows)} levels"
            + (f" (mean abs {max(row[px_mean] for row in rows):.2f})" if px_mean else "")
            + f"; largest score change {max(row['s_' + key] for row in rows):.1e}"
        )
    print(
        f"reference, JPEG q90 re-save: largest input change {max(row['px_q90'] for row in rows)} levels (mean abs "
        f"{max(row['mean_q90'] for row in rows):.2f}); largest score change {max(row['s_q90'] for row in rows):.1e}"
    )
    if trained:
        spread = max(row["t_exact"] for row in rows) - min(row["t_exact"] for row in rows)
        print(
            f"trained model {trained_model}: exact-path scores of the different photos span {spread:.3f}; fast decode "
            f"moves a score by at most {max(row['t_fast'] for row in rows):.4f} (median "
            f"{statistics.median(row['t_fast'] for row in rows):.4f}), the q90 re-save by at most "
            f"{max(row['t_q90'] for row in rows):.4f} (median {statistics.median(row['t_q90'] for row in rows):.4f})"
        )
    for megapixels in sizes:
        exact_ms = [row["exact"] for row, mp in zip(rows, _sizes_of(rows, sizes)) if mp == megapixels]
        fast_ms = [row["fast"] for row, mp in zip(rows, _sizes_of(rows, sizes)) if mp == megapixels]
        print(
            f"{megapixels:g} MP: exact {statistics.median(exact_ms):.0f} ms, fast {statistics.median(fast_ms):.0f} ms "
            "(median over photos)"
        )


def _sizes_of(rows: list[dict], sizes: list[float]) -> list[float]:
    # rows are in photo -> size -> grain order
    per_photo = [megapixels for megapixels in sizes for _ in (False, True)]
    return [per_photo[i % len(per_photo)] for i in range(len(rows))]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=float, nargs="+", default=[6, 12, 24], help="megapixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--trained-model", help="a trained AesFormer folder (the demo's) for its score changes"
    )
    args = parser.parse_args()
    run(args.sizes, args.repeats, args.trained_model)


if __name__ == "__main__":
    main()
