"""VIAA on CPU in every execution mode worth trying, side by side in one run: speed and score change vs fp32.

Modes (AesFormer-T shape, vision-only, random weights, batch `--batch-size`):

* `fp32`: eager float32 (the reference for scores);
* `bf16-autocast`: eager under `torch.autocast("cpu", torch.bfloat16)` (the reference for speed);
* `bf16-compile`: the same, `torch.compile` (inductor);
* `bf16-compile-cl`: the same with channels-last pixels;
* `int8-dynamic`: `torch.ao.quantization.quantize_dynamic` of every `nn.Linear` (int8 weights, fp32 activations);
* `onnxruntime`: the `aesformer-hf export` ONNX file in onnxruntime (fp32), when the `[onnx]` extra is installed.

For each: images/s (median of `--repeats` timed calls after warm-up), the speed ratio to `bf16-autocast`, and the
largest |score difference| to fp32 over `--check-images` random images (scores on 1..10). Each mode runs in the
same process, one after the other, with the same thread count.

    python benchmarks/bench_cpu_modes.py --threads 2 --batch-size 8
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time

import torch

from aesformer_hf import AesformerConfig, AesformerForAesthetic


def timed(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_modes(model: AesformerForAesthetic):
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731

    def run_eager(x, ctx=contextlib.nullcontext):
        with ctx():
            return model(pixel_values=x).score.float()

    modes = {
        "fp32": lambda x: run_eager(x),
        "bf16-autocast": lambda x: run_eager(x, autocast),
    }
    compiled = torch.compile(model)

    def run_compiled(x, channels_last=False):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            return compiled(pixel_values=x).score.float()

    modes["bf16-compile"] = run_compiled
    modes["bf16-compile-cl"] = lambda x: run_compiled(x, channels_last=True)

    quantized = torch.ao.quantization.quantize_dynamic(
        model_copy(model),
        {torch.nn.Linear},
        dtype=torch.qint8,
    )
    modes["int8-dynamic"] = lambda x: quantized(pixel_values=x).score.float()

    try:
        import onnxruntime

        from aesformer_hf.exporting import export_model

        folder = tempfile.mkdtemp(prefix="bench-onnx-")
        export_model(model, folder, format="onnx", mode="vision")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(
            os.path.join(folder, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        modes["onnxruntime"] = lambda x: torch.from_numpy(
            session.run(["score"], {"pixel_values": x.numpy()})[0]
        )
    except ImportError:
        print("(onnxruntime not installed: pip install -e '.[onnx]' to include it)")
    return modes


def model_copy(model: AesformerForAesthetic) -> AesformerForAesthetic:
    copy = AesformerForAesthetic(model.config).eval()
    copy.load_state_dict(model.state_dict())
    return copy


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="tiny", help="tiny | small | base")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check-images", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = AesformerConfig.from_variant(args.variant).to_vision_only()
    model = AesformerForAesthetic(config).eval()
    batch = torch.randn(args.batch_size, 3, 224, 224)
    check = torch.randn(args.check_images, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        modes = make_modes(model)
        reference_scores = torch.cat([modes["fp32"](c) for c in check.split(args.batch_size)])
        rows = []
        for name, fn in modes.items():
            seconds = timed(lambda fn=fn: fn(batch), args.repeats)
            scores = torch.cat([fn(c) for c in check.split(args.batch_size)])
            rows.append((name, args.batch_size / seconds, (scores - reference_scores).abs().max().item()))
    speed = {name: ips for name, ips, _ in rows}
    print(
        f"\nVIAA, AesFormer-{args.variant[0].upper()} shape, batch {args.batch_size}, {args.threads} threads, "
        f"torch {torch.__version__}"
    )
    print("| mode | img/s | vs bf16-autocast | max abs score diff vs fp32 |")
    print("|---|---|---|---|")
    for name, ips, diff in rows:
        print(f"| {name} | {ips:.2f} | {ips / speed['bf16-autocast']:.2f}x | {diff:.4f} |")


if __name__ == "__main__":
    main()
