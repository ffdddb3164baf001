"""VIAA on CPU in every execution mode worth trying, side by side in one run: speed and score change vs fp32.

Modes (vision-only model, batch `--batch-size`):

* `fp32`: eager float32 (the reference for scores);
* `fp32-compile`, `fp32-compile-cl`: `torch.compile` (inductor), without / with channels-last pixels;
* `bf16-autocast`: eager under `torch.autocast("cpu", torch.bfloat16)` (the issue's reference for speed);
* `bf16-compile`, `bf16-compile-cl`: the same, compiled, without / with channels-last pixels;
* `fp32-compile-freeze`, `bf16-compile-freeze`: compiled with inductor's `freezing` (weights folded in as
  constants and pre-packed for oneDNN, the inductor setting meant for CPU inference);
* `int8-dynamic`: `torch.ao.quantization.quantize_dynamic` of every `nn.Linear` (int8 weights, fp32 activations);
* `onnxruntime`: the `aesformer-hf export` ONNX file in onnxruntime (fp32), when the `[onnx]` extra is installed;
* `onnxruntime-int8`: that file with onnxruntime's dynamic int8 quantization of its MatMul/Gemm weights.

After the table, a ceiling measured in the same run: the model's matrix-multiplication work per batch (counted by
`torch.utils.flop_counter`) against this machine's own bf16 and int8 matrix-multiplication rate (large square
products), which bounds what any execution mode can gain over bf16 autocast.

Speed: images/s on the AesFormer-T shape (random weights: speed does not depend on their values), median of
`--repeats` timed calls after warm-up, and the ratio to `bf16-autocast`. Score change: the largest |score - fp32
score| (scores on 1..10) over `--check-images` inputs, on the random T-shape weights and, with `--trained-model`
(e.g. the demo's output folder), on trained weights and real images (the demo's held-out photos): random weights
give nearly constant scores and hide how much a reduced precision moves a trained model's score.

    python benchmarks/bench_cpu_modes.py --threads 2 --batch-size 8 --trained-model ./aesformer-demo

`aesformer-hf score` rates on the CPU in the fastest of these modes whose scores stay within 0.01 of fp32:
onnxruntime (`--backend auto`, `aesformer_hf/onnx_backend.py`; results in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import tempfile

import torch
from timing import median_seconds  # the benchmarks' shared timing rule

from aesformer_hf import AesformerConfig, AesformerForAesthetic

MODES = (
    "fp32",
    "fp32-compile",
    "fp32-compile-cl",
    "bf16-autocast",
    "bf16-compile",
    "bf16-compile-cl",
    "fp32-compile-freeze",
    "bf16-compile-freeze",
    "int8-dynamic",
    "onnxruntime",
    "onnxruntime-int8",
)


def copy_of(model: AesformerForAesthetic) -> AesformerForAesthetic:
    twin = AesformerForAesthetic(model.config).eval()
    twin.load_state_dict(model.state_dict())
    return twin


def build_mode(name: str, model: AesformerForAesthetic):
    """`fn(pixel_values) -> scores (batch,)` running `model` in mode `name`, or None when unavailable."""
    bf16 = name.startswith("bf16")
    precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    if name in ("fp32", "bf16-autocast"):
        target = model
    elif "compile" in name:
        # Inductor reads `freezing` when it compiles, at the first call: passed as a compile option it stays
        # with this one compiled model instead of changing the global setting for the modes after it.
        target = torch.compile(copy_of(model), options={"freezing": name.endswith("-freeze")})
    elif name == "int8-dynamic":
        target = torch.ao.quantization.quantize_dynamic(copy_of(model), {torch.nn.Linear}, dtype=torch.qint8)
    elif name.startswith("onnxruntime"):
        try:
            import onnxruntime
            from onnxruntime.quantization import QuantType, quantize_dynamic

            from aesformer_hf.exporting import export_model
        except ImportError:
            return None
        folder = tempfile.mkdtemp(prefix="bench-onnx-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        export_model(copy_of(model), folder, format="onnx", mode="vision")
        path = os.path.join(folder, "model.onnx")
        if name == "onnxruntime-int8":
            quantized = os.path.join(folder, "model-int8.onnx")
            quantize_dynamic(path, quantized, weight_type=QuantType.QInt8)
            path = quantized
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(["score"], {"pixel_values": x.numpy()})[0])
    else:
        raise ValueError(name)
    channels_last = name.endswith("-cl")

    def run(x):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with precision():
            return target(pixel_values=x).score.float()

    return run


def matmul_rate(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """This machine's matrix-multiplication rate on `size`-square operands, in GFLOP/s (GOP/s for int8)."""
    if dtype == torch.int8:
        a = torch.randint(-128, 128, (size, size), dtype=torch.int8)
        b = torch.randint(-128, 128, (size, size), dtype=torch.int8)
        product = lambda: torch._int_mm(a, b)  # noqa: E731
    else:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        product = lambda: a @ b  # noqa: E731
    return 2 * size**3 / median_seconds(product, repeats, warmup=2) / 1e9


def matmul_gflop(model: AesformerForAesthetic, batch: torch.Tensor) -> float:
    """GFLOP of the matrix products (linear, attention, convolution) in one VIAA forward pass on `batch`."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(pixel_values=batch)
    return counter.get_total_flops() / 1e9


def max_score_change(fn, reference, inputs: torch.Tensor, batch: int) -> float:
    scores = torch.cat([fn(chunk) for chunk in inputs.split(batch)])
    return (scores - reference).abs().max().item()


def trained_inputs(folder: str, count: int) -> tuple[AesformerForAesthetic, torch.Tensor]:
    """The trained model (vision-only) and `count` real images prepared by its processor (the demo's held-out
    photos, rebuilt from the synthetic dataset)."""
    from aesformer_hf import AesformerImageProcessor
    from aesformer_hf.data.synthetic import build_synthetic_aesthetics

    model = AesformerForAesthetic.from_pretrained(folder, vision_only=True).eval()
    processor = AesformerImageProcessor.from_pretrained(folder)
    height, _ = model.model.image_size
    images = [row["image"] for row in build_synthetic_aesthetics(image_size=height)["test"]][:count]
    return model, processor(images, return_tensors="pt")["pixel_values"]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="tiny", help="tiny | small | base")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check-images", type=int, default=32)
    parser.add_argument(
        "--trained-model", help="a trained AesFormer folder for the score changes (the demo's)"
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AesformerForAesthetic(AesformerConfig.from_variant(args.variant).to_vision_only()).eval()
    batch = torch.randn(args.batch_size, 3, 224, 224)
    check = torch.randn(args.check_images, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    trained = trained_inputs(args.trained_model, args.check_images) if args.trained_model else None
    rows = []
    with torch.inference_mode():
        reference = torch.cat([build_mode("fp32", model)(c) for c in check.split(args.batch_size)])
        if trained:
            trained_reference = torch.cat(
                [build_mode("fp32", trained[0])(c) for c in trained[1].split(args.batch_size)]
            )
        for name in args.modes:
            fn = build_mode(name, model)
            if fn is None:
                print(f"({name}: not available, skipped)")
                continue
            seconds = median_seconds(lambda fn=fn: fn(batch), args.repeats, warmup=2)
            change = max_score_change(fn, reference, check, args.batch_size)
            trained_change = None
            if trained:
                trained_fn = build_mode(name, trained[0])
                trained_change = max_score_change(trained_fn, trained_reference, trained[1], args.batch_size)
            rows.append((name, args.batch_size / seconds, change, trained_change))
            print(f"  {name}: {args.batch_size / seconds:.2f} img/s", flush=True)
        work = matmul_gflop(model, batch)
    rates = {"bf16": matmul_rate(torch.bfloat16), "int8": matmul_rate(torch.int8)}
    speed = {name: ips for name, ips, *_ in rows}
    base = speed.get("bf16-autocast") or speed.get("fp32")
    print(
        f"\nVIAA, AesFormer-{args.variant[0].upper()} shape, batch {args.batch_size}, {args.threads} threads, "
        f"torch {torch.__version__}"
    )
    print(
        "| mode | img/s | vs bf16-autocast | max abs score change vs fp32 (random T) | (trained demo model) |"
    )
    print("|---|---|---|---|---|")
    for name, ips, change, trained_change in rows:
        trained_text = "-" if trained_change is None else f"{trained_change:.4f}"
        print(f"| {name} | {ips:.2f} | {ips / base:.2f}x | {change:.4f} | {trained_text} |")

    print(
        f"\nCeiling: {work:.1f} GFLOP of matrix products per batch of {args.batch_size}; this machine multiplies "
        f"square matrices at {rates['bf16']:.0f} GFLOP/s in bf16 and {rates['int8']:.0f} GOP/s in int8."
    )
    for kind, rate in rates.items():
        bound = args.batch_size / (work / rate)
        print(
            f"  {kind}: even with every other operation free, at most {bound:.1f} img/s "
            f"({bound / base:.2f}x the reference {base:.1f} img/s)"
        )
    if "bf16-autocast" in speed:
        achieved = work * speed["bf16-autocast"] / args.batch_size
        print(
            f"  bf16 autocast runs the matrix products at {achieved:.0f} GFLOP/s on average, everything included"
        )


if __name__ == "__main__":
    main()
