"""Inference throughput and peak memory of AesFormer, beside a bare timm Swin pass measured in the same run.

For each device/dtype (CPU fp32; CUDA fp32 and bf16 when a GPU is present) and batch size, it times
VIAA (image only), MIAA (image + `--text-tokens` comment tokens) and the reference: the same timm Swin
doing `forward_features` on the same batch. The ratio AesFormer / Swin says what the neck, BERT and the
fusion layers cost on top of the backbone; absolute numbers depend on the machine.

    python benchmarks/bench_inference.py                       # AesFormer-T, batches 1 8 64
    python benchmarks/bench_inference.py --variant base --batch-sizes 64 256
    python benchmarks/bench_inference.py --devices cuda --batch-sizes 64 256 --compile   # torch.compile'd too
    python benchmarks/bench_inference.py --variant test        # tiny config, seconds (smoke test)

Weights are random (no download): speed does not depend on their values. With `--compile` every case runs twice,
eager and `torch.compile`d (the model's forward and the Swin reference's `forward_features` alike; compilation
happens in the warm-up calls and is not timed).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import statistics
import threading
import time

import torch

from aesformer_hf import AesformerConfig, AesformerForAesthetic
from aesformer_hf.testing_utils import tiny_config


class PeakRSS:
    """Samples this process's resident memory every few ms; `peak_mib` is the peak above the starting RSS."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self.page

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def build_model(variant: str) -> AesformerForAesthetic:
    config = tiny_config(image_size=64) if variant == "test" else AesformerConfig.from_variant(variant)
    return AesformerForAesthetic(config).eval()


def measure(fn, device: torch.device, repeats: int, inference: bool = True) -> tuple[float, float]:
    """Median seconds per call and peak memory (MiB) of `fn()` over `repeats` calls after two warm-up calls.

    `inference=False` keeps autograd on (training steps); the warm-up also builds optimiser state there.
    """
    with torch.inference_mode() if inference else contextlib.nullcontext():
        for _ in range(2):  # warm-up: allocator, kernels, lazy init, optimiser state
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        times = []
        with PeakRSS() as rss:
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" else rss.peak_mib
    return statistics.median(times), peak


def _inputs(model, batch: int, text_tokens: int, device, dtype):
    pixels = torch.randn(batch, 3, *model.model.image_size, device=device, dtype=dtype)
    input_ids = torch.randint(5, model.config.text_config.vocab_size, (batch, text_tokens), device=device)
    input_ids[:, 0] = 2  # [CLS]
    return pixels, input_ids, torch.ones_like(input_ids)


def measure_case(
    variant: str,
    device_name: str,
    dtype_name: str,
    mode: str,
    batch: int,
    text_tokens: int,
    repeats: int,
    compiled: bool = False,
) -> tuple[float, float]:
    """Seconds per batch and peak MiB of one (mode, batch) case: "swin" (reference), "VIAA" or "MIAA"; `compiled`
    runs the model (or the Swin's `forward_features`) through `torch.compile`."""
    torch.manual_seed(0)
    device, dtype = torch.device(device_name), getattr(torch, dtype_name)
    model = build_model(variant).to(device=device, dtype=dtype)
    pixels, input_ids, mask = _inputs(model, batch, text_tokens, device, dtype)
    swin_features = model.model.vision_model.timm_model.forward_features
    forward = model
    if compiled:
        swin_features, forward = torch.compile(swin_features), torch.compile(model)
    calls = {
        "swin": lambda: swin_features(pixels),
        "VIAA": lambda: forward(pixels),
        "MIAA": lambda: forward(pixels, input_ids=input_ids, attention_mask=mask),
    }
    return measure(calls[mode], device, repeats)


def _child(queue, case_function, args):
    queue.put(case_function(*args))


def measure_isolated(case_function, *args) -> tuple[float, float]:
    """`case_function(*args)` (whose second argument is the device name), on CPU in a fresh process so that
    one case's freed-but-cached memory cannot hide the next case's peak; on CUDA the allocator's own peak
    statistics are exact, so cases share the process."""
    if args[1].startswith("cuda"):
        return case_function(*args)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, case_function, args))
    process.start()
    result = queue.get()
    process.join()
    return result


def run(
    variant: str,
    batch_sizes: list[int],
    text_tokens: int,
    repeats: int,
    devices: list[str],
    compile_too: bool = False,
    modes: tuple[str, ...] = ("VIAA", "MIAA"),
    dtype_names: list[str] | None = None,
) -> list[dict]:
    rows = []
    for device_name in devices:
        dtypes = dtype_names or ["float32"] + (["bfloat16"] if device_name.startswith("cuda") else [])
        for dtype, compiled, batch in itertools.product(
            dtypes, (False, True) if compile_too else (False,), batch_sizes
        ):
            reps = repeats if batch < 64 or device_name.startswith("cuda") else max(1, repeats // 2)
            case = (variant, device_name, dtype)
            ref_s, ref_mem = measure_isolated(measure_case, *case, "swin", batch, text_tokens, reps, compiled)
            for mode in modes:
                seconds, memory = measure_isolated(
                    measure_case, *case, mode, batch, text_tokens, reps, compiled
                )
                rows.append(
                    {
                        "device": device_name,
                        "dtype": dtype,
                        "compiled": compiled,
                        "mode": mode,
                        "batch": batch,
                        "images_per_s": batch / seconds,
                        "peak_mib": memory,
                        "swin_images_per_s": batch / ref_s,
                        "swin_peak_mib": ref_mem,
                        "time_ratio": seconds / ref_s,
                    }
                )
                print(format_row(rows[-1]), flush=True)
    return rows


HEADER = (
    f"| {'device':<6} | {'dtype':<8} | {'compiled':<8} | {'mode':<4} | {'batch':>5} | {'img/s':>8} | {'peak MiB':>8} "
    f"| {'Swin img/s':>10} | {'Swin MiB':>8} | {'time / Swin':>11} |"
)


def format_row(row: dict) -> str:
    return (
        f"| {row['device']:<6} | {row['dtype']:<8} | {'yes' if row.get('compiled') else 'no':<8} | {row['mode']:<4} | {row['batch']:>5} | "
        f"{row['images_per_s']:>8.2f} | {row['peak_mib']:>8.0f} | {row['swin_images_per_s']:>10.2f} | "
        f"{row['swin_peak_mib']:>8.0f} | {row['time_ratio']:>10.2f}x |"
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="tiny", choices=["tiny", "small", "base", "test"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--text-tokens", type=int, default=128, help="comment tokens per image in MIAA")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--compile", action="store_true", help="also measure every case torch.compile'd")
    parser.add_argument("--modes", nargs="+", default=["VIAA", "MIAA"], choices=["VIAA", "MIAA"])
    parser.add_argument(
        "--dtypes", nargs="+", choices=["float32", "bfloat16"], help="default: float32, plus bfloat16 on CUDA"
    )
    args = parser.parse_args()
    devices = args.devices or (["cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"AesFormer-{args.variant}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{'GPU ' + torch.cuda.get_device_name() if 'cuda' in devices else 'CPU'}"
    )
    print(HEADER)
    print("|" + "|".join("-" * (len(c) + 0) for c in HEADER.split("|")[1:-1]) + "|")
    run(
        args.variant,
        args.batch_sizes,
        args.text_tokens,
        args.repeats,
        devices,
        compile_too=args.compile,
        modes=args.modes,
        dtype_names=args.dtypes,
    )


if __name__ == "__main__":
    main()
