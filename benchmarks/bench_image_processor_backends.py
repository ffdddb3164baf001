"""The image processor's two backends: how far torchvision's pixels and scores are from PIL's, and how fast each is.

`AesformerImageProcessor` (PIL backend) gives the released pixels exactly; `AesformerImageProcessorFast` (torchvision
backend) resizes with torchvision's antialiased bicubic, which is not PIL's. For each image set this reports

* the largest difference between the two backends' model inputs in 8-bit levels (before normalisation) and in
  normalised units, and the share of values that differ;
* the largest score difference of a tiny random AesFormer at the same size (`--model-size`);
* the time per image of each backend on a batch (median of `--repeats`, one thread unless `--threads`);
* the largest difference in levels of the resize the torchvision backend does off the CPU (two float passes rounded
  to 8 bits in between), run here on the CPU with the same float kernel.

Image sets: scikit-image's sample photos (as stored, 300-800 px), the same photos upscaled to about 6 MP (the resize to
224 then reduces ~15x), and uniform noise (the worst case: bicubic overshoots are clipped in PIL's intermediate pass,
and PIL and torchvision do their two passes in different orders, so noise differs by many levels).

    python benchmarks/bench_image_processor_backends.py
    python benchmarks/bench_image_processor_backends.py --device cuda   # the torchvision backend on a GPU
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image
from timing import median_seconds  # the benchmarks' shared timing rule

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor
from aesformer_hf.data.synthetic import SOURCE_PHOTOS
from aesformer_hf.models.aesformer.image_processing_aesformer import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AesformerImageProcessorFast,
)
from aesformer_hf.testing_utils import tiny_config


def image_sets(seed: int = 0) -> dict[str, list[Image.Image]]:
    photos = [Image.fromarray(load()) for load in SOURCE_PHOTOS.values()]
    upscaled = []
    for photo in photos:
        scale = (6e6 / (photo.width * photo.height)) ** 0.5
        upscaled.append(
            photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC)
        )
    rng = np.random.default_rng(seed)
    noise = [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for h, w in [(90, 70), (97, 131), (300, 20), (480, 640), (1000, 1500), (5, 3)]
    ]
    return {"photos": photos, "photos at 6 MP": upscaled, "uniform noise": noise}


def levels(pixel_values: torch.Tensor) -> torch.Tensor:
    """Normalised model input -> the 8-bit levels it was computed from (rounded)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((pixel_values.double() * std + mean) * 255).round()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224, help="model input side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="device of the torchvision backend")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pil = AesformerImageProcessor(size=args.size)
    fast = AesformerImageProcessorFast(size=args.size)
    off_cpu = AesformerImageProcessorFast(size=args.size)
    off_cpu.resize = lambda image, size, resample=None, **kwargs: off_cpu.resize_in_rounded_passes(
        image, size, resample=resample
    )
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=args.size)).eval()

    print(f"size {args.size}, torch threads {args.threads}, torchvision backend on {args.device}")
    print(
        "| images | n | max levels | values differing | max normalised | max score diff | PIL ms/img | tv ms/img "
        "| max levels, off-CPU resize |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, images in image_sets().items():
        a = pil(images)["pixel_values"]
        b = fast(images, device=args.device)["pixel_values"].cpu()
        level_diff = (levels(a) - levels(b)).abs()
        off_cpu_diff = (levels(a) - levels(off_cpu(images)["pixel_values"])).abs().max().item()
        with torch.no_grad():
            score_diff = (model(pixel_values=a).score - model(pixel_values=b).score).abs().max().item()
        pil_s = median_seconds(lambda images=images: pil(images), args.repeats) / len(images)
        fast_s = median_seconds(lambda images=images: fast(images, device=args.device), args.repeats) / len(
            images
        )
        print(
            f"| {name} | {len(images)} | {level_diff.max().item():.0f} | {(level_diff > 0).double().mean().item():.2%} "
            f"| {(a - b).abs().max().item():.4f} | {score_diff:.2e} | {pil_s * 1e3:.1f} | {fast_s * 1e3:.1f} "
            f"| {off_cpu_diff:.0f} |"
        )


if __name__ == "__main__":
    main()
