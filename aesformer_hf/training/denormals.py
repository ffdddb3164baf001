"""Flushing denormal floats to zero while training on the CPU, and putting the setting back afterwards.

Once a small model has trained for a few hundred steps, some activations, gradients and Adam moments fall below
float32's normal range (about 1e-38). x86 CPUs compute on such *denormal* numbers through a slow microcode path,
and CPU training then slows down many times over (measured on the demo: 272 s instead of 14 s for 300 steps).
`torch.set_flush_denormal(True)` makes the CPU treat them as zero (FTZ/DAZ), which changes results by less than
float32's smallest normal number.

`AesformerTrainer.train`, `pretrain_vision_tower` and the demo train under [`flush_denormals`] when they run on
the CPU, and restore the caller's setting when they return or raise. PyTorch has no getter for the setting, so
[`flush_denormal_enabled`] reads it off the arithmetic: with flushing on, a denormal float64 times one is zero.

The setting belongs to the calling thread (it is the CPU's floating-point control register): PyTorch's intra-op
threads that already exist keep their own. With one thread (`torch.set_num_threads(1)`, the fastest for small
models) it covers all the arithmetic.
"""

from __future__ import annotations

import contextlib

import torch

# Below float64's smallest normal number (2.2e-308): a denormal, read as zero when flushing is on.
_DENORMAL = 1e-310


def flush_denormal_enabled() -> bool:
    """Whether denormal floats are flushed to zero on this thread now (`torch.set_flush_denormal`)."""
    return bool((torch.tensor(_DENORMAL, dtype=torch.float64) * 1.0).item() == 0.0)


@contextlib.contextmanager
def flush_denormals(enabled: bool = True):
    """Run the block with denormal flushing `enabled` (where the CPU supports it), then restore the previous setting."""
    previous = flush_denormal_enabled()
    if previous != enabled:
        torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        if flush_denormal_enabled() != previous:
            torch.set_flush_denormal(previous)


def flush_denormals_on_cpu(device: torch.device | str | None):
    """[`flush_denormals`] when `device` is the CPU (or None), else a context that changes nothing."""
    if device is None or torch.device(device).type == "cpu":
        return flush_denormals(True)
    return contextlib.nullcontext()


__all__ = ["flush_denormal_enabled", "flush_denormals", "flush_denormals_on_cpu"]
