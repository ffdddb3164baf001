"""Training-step throughput and peak memory of AesFormer's two stages, beside a bare timm Swin step.

One optimiser step of each stage, exactly as `AesformerTrainer` computes it (stage 1: both heads' EMD plus the
momentum-contrast loss, with the momentum update, the momentum forward and the enqueue; stage 2: the adaptation
loss with the frozen parts frozen), followed by `backward` and an AdamW step over the trainable parameters. The
reference, measured in the same run on the same batch, is a full training step of the bare timm Swin
(`forward_features`, mean, backward, AdamW): the ratio says what BERT, the fusion layers, the momentum encoders
and the heads cost on top of training the backbone alone. Data loading is not included.

    python benchmarks/bench_train.py                      # AesFormer-T, batch 16, CPU fp32 (+ CUDA fp32/bf16)
    python benchmarks/bench_train.py --batch-size 64 --devices cuda
    python benchmarks/bench_train.py --variant test       # tiny config, seconds (smoke test)

Weights and inputs are random (no download). On CPU each case runs in a fresh process so that one case's
cached memory cannot hide the next one's peak; peak memory is the resident-memory growth during the steps
(CPU) or the allocator's peak above the model's own memory (CUDA).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile

import torch
import torch.nn.functional as F
from bench_inference import measure, measure_isolated  # the same timing and memory sampling

from aesformer_hf import AesformerConfig, AesformerForAesthetic
from aesformer_hf.testing_utils import tiny_config
from aesformer_hf.training import AesformerTrainer, AesformerTrainingArguments


def build_model(variant: str) -> AesformerForAesthetic:
    config = tiny_config(image_size=64) if variant == "test" else AesformerConfig.from_variant(variant)
    return AesformerForAesthetic(config)


def _batch(model, batch: int, text_tokens: int, device) -> dict:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, *model.model.image_size, generator=generator)
    input_ids = torch.randint(
        5, model.config.text_config.vocab_size, (batch, text_tokens), generator=generator
    )
    input_ids[:, 0] = 2  # [CLS]
    labels = F.softmax(torch.randn(batch, model.config.num_bins, generator=generator), dim=-1)
    return {
        "pixel_values": pixels.to(device),
        "input_ids": input_ids.to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
        "labels": labels.to(device),
    }


def _autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _stage_step(model, stage: str, batch: dict, device: torch.device, dtype: torch.dtype, output_dir: str):
    """A closure running one training step of `stage` as AesformerTrainer computes it."""
    args = AesformerTrainingArguments(
        output_dir=output_dir, stage=stage, report_to=[], use_cpu=device.type == "cpu", disable_tqdm=True
    )
    trainer = AesformerTrainer(model=model, args=args, data_collator=lambda rows: rows)
    model.to(device).train()
    if trainer.momentum_contrast is not None:
        trainer.momentum_contrast.to(device)
    if stage == "adaptation":
        batch = {k: v for k, v in batch.items() if k in ("pixel_values", "labels")}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step():
        with _autocast(device, dtype):
            loss = trainer.compute_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _swin_step(model, batch: dict, device: torch.device, dtype: torch.dtype):
    swin = model.model.vision_model.timm_model.to(device).train()
    optimizer = torch.optim.AdamW(swin.parameters(), lr=1e-5)
    pixels = batch["pixel_values"]

    def step():
        with _autocast(device, dtype):
            loss = swin.forward_features(pixels).float().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure_case(
    variant: str, device_name: str, dtype_name: str, mode: str, batch: int, text_tokens: int, repeats: int
) -> tuple[float, float]:
    """Seconds per step and peak MiB of one case: mode "swin" (reference), "multimodal" or "adaptation"."""
    torch.manual_seed(0)
    device, dtype = torch.device(device_name), getattr(torch, dtype_name)
    model = build_model(variant)
    inputs = _batch(model, batch, text_tokens, device)
    with tempfile.TemporaryDirectory() as output_dir:
        if mode == "swin":
            step = _swin_step(model, inputs, device, dtype)
        else:
            step = _stage_step(model, mode, inputs, device, dtype, output_dir)
        return measure(step, device, repeats, inference=False)


HEADER = (
    f"| {'device':<6} | {'dtype':<8} | {'stage':<10} | {'batch':>5} | {'samples/s':>9} | {'peak MiB':>8} "
    f"| {'Swin samples/s':>14} | {'Swin MiB':>8} | {'time / Swin':>11} |"
)


def format_row(row: dict) -> str:
    return (
        f"| {row['device']:<6} | {row['dtype']:<8} | {row['stage']:<10} | {row['batch']:>5} | "
        f"{row['samples_per_s']:>9.2f} | {row['peak_mib']:>8.0f} | {row['swin_samples_per_s']:>14.2f} | "
        f"{row['swin_peak_mib']:>8.0f} | {row['time_ratio']:>10.2f}x |"
    )


def run(variant: str, batch: int, text_tokens: int, repeats: int, devices: list[str]) -> list[dict]:
    rows = []
    for device_name in devices:
        dtypes = ["float32"] + (["bfloat16"] if device_name.startswith("cuda") else [])
        for dtype in dtypes:
            case = (variant, device_name, dtype)
            swin_s, swin_mem = measure_isolated(measure_case, *case, "swin", batch, text_tokens, repeats)
            for stage in ("multimodal", "adaptation"):
                seconds, memory = measure_isolated(measure_case, *case, stage, batch, text_tokens, repeats)
                rows.append(
                    {
                        "device": device_name,
                        "dtype": dtype,
                        "stage": stage,
                        "batch": batch,
                        "samples_per_s": batch / seconds,
                        "peak_mib": memory,
                        "swin_samples_per_s": batch / swin_s,
                        "swin_peak_mib": swin_mem,
                        "time_ratio": seconds / swin_s,
                    }
                )
                print(format_row(rows[-1]), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="tiny", choices=["tiny", "small", "base", "test"])
    parser.add_argument(
        "--batch-size", type=int, default=16, help="images per step (the paper's stage 1: 16)"
    )
    parser.add_argument("--text-tokens", type=int, default=128, help="comment tokens per image (stage 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    args = parser.parse_args()
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"AesFormer-{args.variant} training steps, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{'GPU ' + torch.cuda.get_device_name() if any(d.startswith('cuda') for d in devices) else 'CPU only'}"
    )
    print(HEADER)
    print("|" + "|".join("-" * len(c) for c in HEADER.split("|")[1:-1]) + "|")
    run(args.variant, args.batch_size, args.text_tokens, args.repeats, devices)


if __name__ == "__main__":
    main()
