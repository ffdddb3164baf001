"""End-to-end rating throughput (`aesformer-hf score`, the pipeline) beside the model alone, in one run.

A folder of real JPEGs of mixed sizes: scikit-image's sample photos re-encoded at 0.3 to 24 MP (quality 90). The
model is vision-only AesFormer-T in shape (random weights: speed does not depend on their values). Measured,
each after a warm-up:

* model only: the model on already-decoded, already-resized tensors, at `--batch-size` (the ceiling);
* pipeline: `pipeline("image-aesthetics")` over the file paths (decode + resize + model), with and without
  `fast_decode`, with `--num-workers` DataLoader workers;
* score: `aesformer-hf score FOLDER --output x.jsonl` in this process, same settings, with `--backend` (auto: onnxruntime
  on the CPU in float32 when the `[onnx]` extra is installed; then the model alone in onnxruntime is measured too,
  and the score rows are compared with it). The ONNX export is cached in the benchmark's temporary folder and made
  during the warm-up run.

Each end-to-end route gives two rows: the whole run over the folder, and its steady state, count / (time over every
photo twice - time over every photo once): what is left once the start-up (loading the model, opening the
onnxruntime session, starting workers) is paid, the rate that rating a large folder approaches.

Goal of the scoring issue: end to end >= 0.8 x model only. On a CPU the decoder and the model share the same
cores, so large JPEGs bound it. On the CPU the run therefore also measures that bound: decoding and resizing every
photo on one core (D per image, with and without fast decode) and the model on one thread (M1 per image; the
reference rows ran it on all `--threads` T cores in Mt per image). Spreading all that work perfectly over the T
cores takes at least (D + M1) / T per image, so end to end can reach at most T * Mt / (D + M1) of the model alone,
whatever the scheduling. `--device cuda --dtype bfloat16 [--compile]` measures the GPU case; there the bound is
what `--num-workers` processes decoding side by side can feed: at most `num_workers * Mt / D`.

    python benchmarks/bench_scoring.py --threads 2 --batch-size 8
    python benchmarks/bench_scoring.py --device cuda --dtype bfloat16 --batch-size 64 --compile
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timing import median_seconds  # the benchmarks' shared timing rule

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
MEGAPIXELS = (0.3, 1.0, 3.0, 6.0, 12.0, 24.0)


def make_folder(folder: Path, per_size: int) -> list[Path]:
    """`per_size` photos at each size in MEGAPIXELS, as JPEG quality 90."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for size_index, megapixels in enumerate(MEGAPIXELS):
        for k in range(per_size):
            name = PHOTOS[(size_index + k) % len(PHOTOS)]
            photo = Image.fromarray(getattr(data, name)()).convert("RGB")
            scale = (megapixels * 1e6 / (photo.width * photo.height)) ** 0.5
            resized = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC)
            path = folder / f"{megapixels:g}MP-{k}-{name}.jpg"
            buffer = io.BytesIO()
            resized.save(buffer, format="JPEG", quality=90)
            path.write_bytes(buffer.getvalue())
            paths.append(path)
    return paths


def whole_and_steady(label: str, run, count: int, repeats: int) -> list[tuple[str, float]]:
    """Two rows for an end-to-end route `run(copies=1|2)` over the `count` photos: the whole run (start-up
    included: loading the model, opening the onnxruntime session, starting the workers) and the steady state,
    count / (time with every photo twice - time with every photo once), the rate that rating a large folder
    approaches."""
    once = median_seconds(run, repeats)
    twice = median_seconds(lambda: run(copies=2), repeats)
    # Less than a tenth more time for twice the photos: timing noise swamped the difference (a tiny folder, one
    # repeat); no steady-state figure rather than a wild one.
    steady = count / (twice - once) if twice > 1.1 * once else float("nan")
    return [(f"{label}, whole run", count / once), (f"{label}, steady state", steady)]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-size", type=int, default=4, help="photos per size (6 sizes)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--routes",
        nargs="+",
        default=["pipeline", "score"],
        choices=["pipeline", "score"],
        help="end-to-end routes to time beside the model alone (each `score` run compiles anew under --compile)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    try:
        run_benchmark(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_benchmark(args, work: Path):
    from transformers import pipeline

    from aesformer_hf import AesformerConfig, AesformerForAesthetic, AesformerImageProcessor
    from aesformer_hf.cli import main as cli_main
    from aesformer_hf.models.aesformer.image_utils_aesformer import load_image
    from aesformer_hf.models.aesformer.pipeline_aesformer import FAST_DECODE_FACTOR

    paths = make_folder(work / "photos", args.per_size)
    # Each photo twice under two names (hard links: no second copy on disk), for the steady-state rows.
    (work / "photos-twice").mkdir()
    for path in paths:
        for copy in ("a", "b"):
            os.link(path, work / "photos-twice" / f"{path.stem}-{copy}{path.suffix}")
    model_dir = work / "model"
    torch.manual_seed(0)
    AesformerForAesthetic(AesformerConfig.from_variant("tiny").to_vision_only()).save_pretrained(model_dir)
    AesformerImageProcessor().save_pretrained(model_dir)
    count = len(paths)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=dtype))
        if dtype != torch.float32
        else contextlib.nullcontext
    )
    rows = []

    # Model only: decoded and resized beforehand.
    model = AesformerForAesthetic.from_pretrained(model_dir).eval().to(device)
    forward = torch.compile(model) if args.compile else model
    processor = AesformerImageProcessor.from_pretrained(model_dir)
    pixels = processor([load_image(p) for p in paths], return_tensors="pt")["pixel_values"]
    batches = [pixels[i : i + args.batch_size].to(device) for i in range(0, count, args.batch_size)]

    def model_only():
        with torch.inference_mode(), autocast():
            for batch in batches:
                forward(pixel_values=batch).score.float().cpu()

    model_only()  # warm-up (and compilation)
    rows.append(("model only (decoded tensors)", count / median_seconds(model_only, args.repeats)))
    cache = work / "cache"
    from aesformer_hf.onnx_backend import OnnxRuntimeModel, onnxruntime_available

    uses_onnxruntime = args.backend == "onnxruntime" or (
        args.backend == "auto"
        and device.type == "cpu"
        and dtype == torch.float32
        and not args.compile
        and onnxruntime_available()
    )
    if uses_onnxruntime:
        runtime = OnnxRuntimeModel(
            model, threads=args.threads, cache_dir=cache / "aesformer-hf" / "onnx", log=print
        )

        def onnxruntime_only():
            for batch in batches:
                runtime(pixel_values=batch)

        onnxruntime_only()  # warm-up (and export)
        rows.append(
            (
                "model only, onnxruntime (decoded tensors)",
                count / median_seconds(onnxruntime_only, args.repeats),
            )
        )

    for fast in (False, True) if "pipeline" in args.routes else ():
        rater = pipeline("image-aesthetics", model=str(model_dir), device=device, dtype=dtype)
        if args.compile:
            rater.model = torch.compile(rater.model)

        def run_pipeline(rater=rater, fast=fast, copies=1):
            list(
                rater(
                    [str(p) for p in paths] * copies,
                    batch_size=args.batch_size,
                    num_workers=args.num_workers,
                    fast_decode=fast,
                )
            )

        run_pipeline()
        label = f"pipeline, {args.num_workers} workers{', fast decode' if fast else ''}"
        rows.extend(whole_and_steady(label, run_pipeline, count, args.repeats))

    for fast in (False, True) if "score" in args.routes else ():
        out = work / f"scores-{fast}.jsonl"

        def run_score(out=out, fast=fast, copies=1):
            argv = [
                "score", str(work / ("photos" if copies == 1 else "photos-twice")),
                "--model", str(model_dir), "--output", str(out), "--overwrite",
                "--batch-size", str(args.batch_size), "--num-workers", str(args.num_workers),
                "--threads", str(args.threads), "--device", args.device, "--dtype", args.dtype, "--no-progress",
                "--backend", args.backend, "--cache-dir", str(cache),
            ]  # fmt: skip
            argv += ["--fast-decode"] if fast else []
            argv += ["--compile"] if args.compile else []
            assert cli_main(argv) == 0

        run_score()
        backend = "onnxruntime" if uses_onnxruntime else "torch"
        label = (
            f"aesformer-hf score ({backend}), {args.num_workers} workers{', --fast-decode' if fast else ''}"
        )
        rows.extend(whole_and_steady(label, run_score, count, args.repeats))

    # The ceiling of end to end on this machine (see the module docstring): D, decoding on one core.
    torch.set_num_threads(1)
    side = processor.size
    draft = (FAST_DECODE_FACTOR * int(side["width"]), FAST_DECODE_FACTOR * int(side["height"]))
    decode = {
        fast: median_seconds(
            lambda fast=fast: [
                processor(load_image(p, draft_size=draft if fast else None), return_tensors="pt")
                for p in paths
            ],
            1,
        )
        / count
        for fast in (False, True)
    }
    for fast, seconds in decode.items():
        print(
            f"decode + resize on one core{', fast decode' if fast else ''}: {1000 * seconds:.0f} ms per photo"
        )
    bounds = {}
    model_t = 1 / rows[0][1]  # seconds per photo, model alone on all threads (Mt)
    if device.type == "cpu":
        # Decoding and the model share the T cores: M1, the model on one thread, is its cheapest per core.
        model_only()  # warm-up on one thread (a compiled model compiles again for it)
        model_1 = median_seconds(model_only, 1) / count
        if uses_onnxruntime:
            one_thread = OnnxRuntimeModel(model, threads=1, cache_dir=cache / "aesformer-hf" / "onnx")
            one_thread(pixel_values=batches[0])  # session start
            runtime_1 = median_seconds(lambda: [one_thread(pixel_values=b) for b in batches], 1) / count
            runtime_t = 1 / rows[1][1]
        for fast, seconds in decode.items():
            bounds[("torch", fast)] = min(1.0, args.threads * model_t / (seconds + model_1))
            if uses_onnxruntime:
                bounds[("onnxruntime", fast)] = min(1.0, args.threads * runtime_t / (seconds + runtime_1))
        print(f"model on one thread: {1000 * model_1:.0f} ms per photo (torch)", end="")
        print(f", {1000 * runtime_1:.0f} ms (onnxruntime)" if uses_onnxruntime else "")
    else:
        # The accelerator runs the model; `--num-workers` processes decode side by side (none: the main process
        # decodes between batches).
        for fast, seconds in decode.items():
            if args.num_workers:
                bounds[("torch", fast)] = min(1.0, args.num_workers * model_t / seconds)
            else:
                bounds[("torch", fast)] = model_t / (seconds + model_t)
    torch.set_num_threads(args.threads)

    sizes = [Image.open(p).size for p in paths]
    megapixels = np.array([w * h / 1e6 for w, h in sizes])
    print(
        f"\n{count} JPEGs, {megapixels.min():.1f}-{megapixels.max():.1f} MP (mean {megapixels.mean():.1f}); "
        f"AesFormer-T shape VIAA, batch {args.batch_size}, {args.threads} threads, {args.device} {args.dtype}"
        f"{' compiled' if args.compile else ''}, score --backend {args.backend}, torch {torch.__version__}"
    )
    print("| route | img/s | vs model only (same backend) | most this machine allows |")
    print("|---|---|---|---|")
    for label, ips in rows:
        # Each row against the model alone in the backend it ran (the labels of onnxruntime's rows name it).
        backend = "onnxruntime" if uses_onnxruntime and "onnxruntime" in label else "torch"
        ceiling = rows[1][1] if backend == "onnxruntime" else rows[0][1]
        bound = bounds.get((backend, "fast" in label)) if "model only" not in label else None
        bound_text = "-" if bound is None else f"{bound:.2f}x"
        if math.isnan(ips):
            print(f"| {label} | n/a (too noisy: use more photos or repeats) | - | {bound_text} |")
        else:
            print(f"| {label} | {ips:.2f} | {ips / ceiling:.2f}x | {bound_text} |")


if __name__ == "__main__":
    main()
