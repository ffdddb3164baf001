"""Export AesFormer as one graph: a `torch.export` program (`.pt2`) or an ONNX file, with a dynamic batch.

The model's forward holds no host synchronisation and no Python branch on tensor values (its value checks run
in eager mode only), so both paths trace whole:

* VIAA (`mode="vision"`): `pixel_values (batch, 3, H, W)` -> outputs; the model is loaded vision-only, so the
  comment tower is not in the file.
* MIAA (`mode="multimodal"`): `pixel_values`, `input_ids (batch, text_tokens)`, `attention_mask (batch,
  text_tokens)` -> outputs; batch and text length are dynamic. `token_type_ids` are zeros (one segment), as the
  processor makes them.

Outputs, in this order: `logits (batch, bins)`, `distribution (batch, bins)`, `score (batch,)` on the model's
scale, `label (batch,)` int64 (1 = high). Beside the program the folder holds the preprocessing config
(`preprocessor_config.json`, and the tokenizer in multimodal mode) and `export_config.json`, which states the
inputs, outputs, bins and the image transform so that a runtime without this package can prepare inputs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .models.aesformer.configuration_aesformer import MULTIMODAL_MODE, PAPER_MODE_NAMES, VISION_MODE

FORMATS = ("onnx", "pt2")
MODES = (VISION_MODE, MULTIMODAL_MODE)
OUTPUT_NAMES = ("logits", "distribution", "score", "label")
EXPORT_CONFIG_NAME = "export_config.json"
# The outputs of an exported file and of the eager model agree to this (float32, the same arithmetic).
EXPORT_TOLERANCE = 1e-4


class AestheticsExportModule(nn.Module):
    """`AesformerForAesthetic` with plain tensor inputs and a tuple of outputs, as exporters need.

    Args:
        model: the model (in eval mode for export).
        mode: `"vision"` (VIAA) or `"multimodal"` (MIAA).
    """

    def __init__(self, model: nn.Module, mode: str):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        self.model = model
        self.mode = mode

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.mode == VISION_MODE:
            out = self.model(pixel_values=pixel_values)
        else:
            out = self.model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask)
        return out.logits, out.distribution, out.score, out.label

    def input_names(self) -> list[str]:
        return (
            ["pixel_values"] if self.mode == VISION_MODE else ["pixel_values", "input_ids", "attention_mask"]
        )


def example_inputs(
    model: nn.Module, mode: str, batch: int = 2, text_tokens: int = 16
) -> tuple[torch.Tensor, ...]:
    """Inputs to trace with: random pixels and, for MIAA, token ids with the second row padded."""
    height, width = model.model.image_size
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(batch, 3, height, width, generator=generator)
    if mode == VISION_MODE:
        return (pixel_values,)
    vocab = model.config.text_config.vocab_size
    input_ids = torch.randint(5, vocab, (batch, text_tokens), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1:, text_tokens // 2 :] = 0
    return pixel_values, input_ids, attention_mask


def dynamic_shapes(model: nn.Module, mode: str) -> dict[str, dict[int, torch.export.Dim]]:
    """A dynamic batch for every input and, in MIAA, a dynamic text length up to BERT's positions."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    shapes = {"pixel_values": {0: batch}}
    if mode == MULTIMODAL_MODE:
        positions = model.config.text_config.max_position_embeddings
        tokens = torch.export.Dim("text_tokens", min=3, max=positions)
        shapes["input_ids"] = shapes["attention_mask"] = {0: batch, 1: tokens}
    return shapes


@dataclass
class ExportReport:
    """What `export_model` wrote and how closely the file reproduces the eager model."""

    path: str
    format: str
    mode: str
    max_difference: float
    checked_batches: tuple[int, ...]

    def summary(self) -> str:
        return (
            f"Exported {self.mode} ({PAPER_MODE_NAMES[self.mode]}) to {self.path} ({self.format}, "
            f"dynamic batch{'' if self.mode == VISION_MODE else ' and text length'}); checked against eager PyTorch at "
            f"batch {', '.join(map(str, self.checked_batches))}: max |difference| {self.max_difference:.2e}"
        )


def export_program(
    module: AestheticsExportModule, inputs: tuple[torch.Tensor, ...]
) -> torch.export.ExportedProgram:
    """`torch.export.export` of `module` with the dynamic shapes of its mode."""
    shapes = dynamic_shapes(module.model, module.mode)
    names = module.input_names()
    return torch.export.export(module, inputs, dynamic_shapes={name: shapes[name] for name in names})


def export_onnx(
    module: AestheticsExportModule, inputs: tuple[torch.Tensor, ...], path: str | os.PathLike
) -> None:
    """ONNX through torch's dynamo exporter (needs the `[onnx]` extra: onnx, onnxscript)."""
    require_onnx(runtime=False)
    shapes = dynamic_shapes(module.model, module.mode)
    names = module.input_names()
    program = torch.onnx.export(
        module,
        inputs,
        dynamo=True,
        dynamic_shapes={name: shapes[name] for name in names},
        input_names=names,
        output_names=list(OUTPUT_NAMES),
        verbose=False,
    )
    program.save(os.fspath(path))


def require_onnx(runtime: bool = True) -> None:
    """A one-line ImportError (`MissingOptionalDependency`) naming the extra when the ONNX packages are missing."""
    from aesformer_hf.utils.optional import require

    require("onnx", "onnxscript", *(["onnxruntime"] if runtime else []), purpose="ONNX export")


def run_exported(path: str | os.PathLike, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """Run an exported file (`.onnx` with onnxruntime on CPU, `.pt2` with torch) -> the four outputs."""
    path = os.fspath(path)
    if path.endswith(".onnx"):
        require_onnx(runtime=True)
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        feed = {meta.name: tensor.numpy() for meta, tensor in zip(session.get_inputs(), inputs)}
        return [torch.from_numpy(array) for array in session.run(list(OUTPUT_NAMES), feed)]
    program = torch.export.load(path)
    with torch.no_grad():
        return list(program.module()(*inputs))


def _max_difference(ours: list[torch.Tensor], reference: tuple[torch.Tensor, ...]) -> float:
    # logits, distribution, score are compared; the label follows the score.
    return max((a.double() - b.double()).abs().max().item() for a, b in zip(ours[:3], reference[:3]))


def export_model(
    model: nn.Module,
    output_dir: str | os.PathLike,
    format: str = "onnx",
    mode: str = VISION_MODE,
    processor=None,
) -> ExportReport:
    """Export `model` (an `AesformerForAesthetic`) to `output_dir` and check the file against eager PyTorch.

    Args:
        model: the model; exported in eval mode and float32.
        output_dir: folder to write `model.onnx` or `model.pt2`, `export_config.json` and the processor.
        format: `"onnx"` or `"pt2"`.
        mode: `"vision"` (VIAA, pixels only) or `"multimodal"` (MIAA, pixels and tokenised comments).
        processor: an `AesformerProcessor` or `AesformerImageProcessor` to save beside the file (how to prepare
            inputs); saved as the model's default image processor when `None`.

    Raises:
        ValueError: a bad format or mode, or a vision-only model asked for MIAA.
        RuntimeError: the exported file does not reproduce the eager model to `EXPORT_TOLERANCE`.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    if mode == MULTIMODAL_MODE and model.config.is_vision_only:
        raise ValueError("This model is vision-only (no comment tower): export it with mode='vision'.")
    if format == "onnx":
        require_onnx(runtime=True)
    model = model.float().eval()
    module = AestheticsExportModule(model, mode).eval()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"model.{format}"
    inputs = example_inputs(model, mode)
    with torch.no_grad():
        if format == "pt2":
            torch.export.save(export_program(module, inputs), os.fspath(path))
        else:
            export_onnx(module, inputs, path)

    # A batch and text length other than the traced ones proves the shapes are dynamic.
    checks = [inputs, example_inputs(model, mode, batch=3, text_tokens=11)]
    difference = 0.0
    for check in checks:
        with torch.no_grad():
            reference = module(*check)
        difference = max(difference, _max_difference(run_exported(path, check), reference))
    if difference > EXPORT_TOLERANCE:
        raise RuntimeError(
            f"The exported {path} differs from the eager model by {difference:.2e} (> {EXPORT_TOLERANCE:g})."
        )
    _save_preprocessing(model, mode, processor, output_dir)
    return ExportReport(
        path=os.fspath(path),
        format=format,
        mode=mode,
        max_difference=difference,
        checked_batches=tuple(len(c[0]) for c in checks),
    )


def _save_preprocessing(model: nn.Module, mode: str, processor, output_dir: Path) -> None:
    from .models.aesformer.image_processing_aesformer import AesformerImageProcessor

    height, width = model.model.image_size
    if processor is None:
        processor = AesformerImageProcessor(size=height)
    if mode == VISION_MODE and hasattr(processor, "image_processor"):
        processor = processor.image_processor  # no tokenizer needed without comments
    if mode == MULTIMODAL_MODE and not hasattr(processor, "tokenizer"):
        raise ValueError("MIAA export needs the processor with its tokenizer (an AesformerProcessor).")
    processor.save_pretrained(output_dir)
    image_processor = getattr(processor, "image_processor", processor)
    config = model.config
    spec = {
        "format": "aesformer-export",
        "mode": mode,
        "inputs": AestheticsExportModule(model, mode).input_names(),
        "outputs": list(OUTPUT_NAMES),
        "image": {
            "height": height,
            "width": width,
            "resample": "bicubic",
            "rescale_factor": 1 / 255,
            "image_mean": list(image_processor.image_mean),
            "image_std": list(image_processor.image_std),
            "channels": "RGB, channels first",
        },
        "bin_values": list(config.bin_values),
        "label_threshold": config.label_threshold,
    }
    (output_dir / EXPORT_CONFIG_NAME).write_text(json.dumps(spec, indent=2) + "\n")


__all__ = [
    "AestheticsExportModule",
    "EXPORT_TOLERANCE",
    "ExportReport",
    "export_model",
    "export_onnx",
    "export_program",
    "run_exported",
]
