"""Convert the authors' released AesFormer checkpoint into an [`AesformerForAesthetic`] folder.

The released `.pth` files hold the state dict of the original training class
(`Swin_Bert_vlmo_clip_mean_score_multi_features`): a Swin in the Microsoft layout (`feature_vit.img_model.*`), a
full BERT (`feature.bert_model.*`), the fusion layers (`vlmo_neck.layers.{i}.*`) saved a second time as
`cross_encoder.{i}.*`, the multi-level neck, adapters and heads, plus the training-only momentum towers and
queues. This module

* reads the file safely (`torch.load(weights_only=True)`), unwrapping `{"model": ...}` / `{"state_dict": ...}`
  and `module.` (DataParallel) prefixes;
* infers the shape (Swin variant, BERT size, fusion layers, bins) from the tensor shapes alone;
* maps every key by one table, from each key of the package's model to its released name (the Swin's patch
  merging moves from the end of stage i-1 to the start of timm's stage i), checks that the duplicated tensors
  are equal before dropping them, and drops the training-only state;
* refuses, listing the key names, a checkpoint with unknown, missing or misshapen keys or unequal duplicates;
* writes a `save_pretrained` folder (safetensors + config, and the processor when a tokenizer is given),
  reloads it with `AesformerForAesthetic.from_pretrained` and checks every weight against its source;
* writes nothing into a non-empty output folder unless `overwrite`: the folder is then built complete beside
  the output (`.<name>.converting-*`) and swapped in, so no file of the earlier model (an old tokenizer)
  survives, and a conversion that fails leaves the output as it was.

Command line (`aesformer_hf/commands/convert_original.py`, outside this Hub-shipped folder)::

    aesformer-hf convert-original aesformer_t.pth --output aesformer-t --tokenizer bert-base-cased/
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .configuration_aesformer import SWIN_VARIANTS, VARIANTS, AesformerConfig
from .modeling_aesformer import AesformerForAesthetic

SWIN_PREFIX = "feature_vit.img_model."
BERT_PREFIX = "feature.bert_model."
TIMM_PREFIX = "model.vision_model.timm_model."
TEXT_PREFIX = "model.text_model."

# The three released Swin shapes (the configuration's `VARIANTS`), all patch 4, window 7, 224 px, MLP ratio 4.
RELEASED_SWINS: dict[str, dict[str, Any]] = {name: variant.swin_shape for name, variant in VARIANTS.items()}
RELEASED_SWIN_DEFAULTS = {"patch_size": 4, "window_size": 7, "img_size": 224, "mlp_ratio": 4.0, "in_chans": 3}

# BERT's attention heads are 64 wide in every BERT size (base: 768 = 12 x 64). Head counts leave no trace in
# the weight shapes, so this is the one assumption the converter makes; pass `text_num_attention_heads` to
# override it.
BERT_HEAD_WIDTH = 64

# State that only the released training loop used (momentum distillation and the contrastive queues).
TRAINING_ONLY = {
    "visual_encoder_m.": "momentum vision tower (training only)",
    "text_encoder_m.": "momentum text tower (training only)",
    "norm_cl_m.": "momentum contrastive LayerNorm (training only)",
    "proj_m.": "momentum projection (training only)",
    "image_queue": "contrastive image queue (training only)",
    "text_queue": "contrastive text queue (training only)",
    "queue_ptr": "contrastive queue pointer (training only)",
}

# Package module -> released module, for everything outside the two towers. One table: the converter inverts it to
# map released keys, and reads it as it is to name a missing key in the released layout.
_FUSION_MODULES = {  # inside `model.fusion_layers.{i}.` -> inside `vlmo_neck.layers.{i}.`
    "self_attention.query": "sa.self.query",
    "self_attention.key": "sa.self.key",
    "self_attention.value": "sa.self.value",
    "self_attention.output_dense": "sa.output.dense",
    "self_attention.output_layer_norm": "sa.output.LayerNorm",
    "vision_language_expert.intermediate_dense": "intermediate_vl.dense",
    "vision_language_expert.output_dense": "output_vl.dense",
    "vision_language_expert.output_layer_norm": "output_vl.LayerNorm",
    "vision_expert.intermediate_dense": "intermediate_v.dense",
    "vision_expert.output_dense": "output_v.dense",
    "vision_expert.output_layer_norm": "output_v.LayerNorm",
}
_MODULES = {
    # The B class names its neck Linears `stages*_linear`, the T class `stage*_linear` (see `_NECK_T_SPELLING`).
    "model.neck.level1_linear": "feature_neck.stages1_linear",
    "model.neck.level2_linear": "feature_neck.stages2_linear",
    "model.image_projection": "proj",
    "miaa_image_norm": "norm",
    "viaa_norm": "norm_v",
    "contrastive_norm": "norm_cl",
    # The released heads are Sequential(Linear, ReLU, Linear, Softmax); the package's return logits.
    "miaa_image_head.dense": "heads_vl_v.0",
    "miaa_image_head.out_proj": "heads_vl_v.2",
    "miaa_text_head.dense": "heads_vl_l.0",
    "miaa_text_head.out_proj": "heads_vl_l.2",
    "viaa_head.dense": "head_v.0",
    "viaa_head.out_proj": "head_v.2",
    **{f"model.neck.adapters.{n - 1}.down": f"adapter_{n}.0" for n in range(1, 5)},
    **{f"model.neck.adapters.{n - 1}.up": f"adapter_{n}.2" for n in range(1, 5)},
}
_NECK_T_SPELLING = {
    "feature_neck.stage1_linear": "feature_neck.stages1_linear",
    "feature_neck.stage2_linear": "feature_neck.stages2_linear",
}
# `cross_encoder.{i}` is the BertLayer whose attention *is* `vlmo_neck.layers.{i}.sa` and whose feed-forward *is*
# the VL expert: the same tensors saved under two names.
_CROSS_ENCODER_PARTS = {"sa": "attention", "intermediate_vl": "intermediate", "output_vl": "output"}


def released_name(key: str) -> str:
    """The released checkpoint's name of a key of [`AesformerForAesthetic`]'s state dict."""
    if key.startswith(TIMM_PREFIX):
        # timm merges patches at the start of stage i, the released Swin at the end of stage i-1.
        rest = re.sub(
            r"^layers\.(\d+)\.downsample",
            lambda m: f"layers.{int(m.group(1)) - 1}.downsample",
            key[len(TIMM_PREFIX) :],
        )
        return SWIN_PREFIX + rest
    if key.startswith(TEXT_PREFIX):
        return BERT_PREFIX + key[len(TEXT_PREFIX) :]
    if key == "contrastive_temperature":
        return "temp"
    module, _, param = key.rpartition(".")
    if fusion := re.fullmatch(r"model\.fusion_layers\.(\d+)\.(.+)", module):
        layer, part = fusion.groups()
        return f"vlmo_neck.layers.{layer}.{_FUSION_MODULES[part]}.{param}"
    return f"{_MODULES[module]}.{param}"


def _cross_encoder_name(released: str) -> str | None:
    """`vlmo_neck.layers.{i}.sa.*` / `*_vl.*` -> its `cross_encoder.{i}.*` copy; None for the vision expert."""
    match = re.fullmatch(r"vlmo_neck\.layers\.(\d+)\.(sa|intermediate_vl|output_vl)\.(.+)", released)
    if match is None:
        return None
    layer, part, rest = match.groups()
    return f"cross_encoder.{layer}.{_CROSS_ENCODER_PARTS[part]}.{rest}"


def _dropped_reason(key: str) -> str | None:
    """Why a released key that the package does not keep is dropped; None for a key that is not one of them."""
    if key.startswith(SWIN_PREFIX):
        rest = key[len(SWIN_PREFIX) :]
        if rest.startswith("head."):
            return "Swin ImageNet classifier (unused)"
        if rest.endswith(("relative_position_index", "attn_mask")):
            return "Swin buffer (timm rebuilds it)"
    elif key.startswith(BERT_PREFIX):
        rest = key[len(BERT_PREFIX) :]
        if rest.startswith("pooler."):
            return "BERT pooler (unused: the text head reads the fused [CLS])"
        if rest in ("embeddings.position_ids", "embeddings.token_type_ids"):
            return "BERT buffer (rebuilt by BertModel)"
    return next(
        (
            reason
            for prefix, reason in TRAINING_ONLY.items()
            if key == prefix.rstrip(".") or key.startswith(prefix)
        ),
        None,
    )


# --------------------------------------------------------------------------------------------------
# Errors and report
# --------------------------------------------------------------------------------------------------
class OriginalCheckpointError(ValueError):
    """The checkpoint does not have the released layout. Every offending key is in one of the lists.

    Attributes:
        unknown: source keys the converter does not recognise.
        missing: source keys the model needs but the checkpoint lacks.
        misshapen: `(source key, shape found, shape expected)`.
        unequal_duplicates: `(duplicate key, key it should equal)` pairs whose tensors differ.
    """

    def __init__(
        self, source: str, unknown=(), missing=(), misshapen=(), unequal_duplicates=(), hint: str = ""
    ):
        self.source = source
        self.unknown = sorted(unknown)
        self.missing = sorted(missing)
        self.misshapen = sorted(misshapen)
        self.unequal_duplicates = sorted(unequal_duplicates)
        sections = [
            ("unknown keys (not part of the released AesFormer layout)", self.unknown),
            ("missing keys", self.missing),
            (
                "misshapen keys (found -> expected)",
                [f"{k}: {tuple(a)} -> {tuple(b)}" for k, a, b in self.misshapen],
            ),
            ("duplicated tensors that differ", [f"{a} != {b}" for a, b in self.unequal_duplicates]),
        ]
        lines = [f"{source} is not a released AesFormer checkpoint this converter can map:"]
        for title, items in sections:
            if items:
                lines.append(f"  {len(items)} {title}:")
                lines += [f"    {item}" for item in items[:50]]
                if len(items) > 50:
                    lines.append(f"    ... and {len(items) - 50} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


@dataclass
class ConversionReport:
    """What a conversion did. `mapped` is package key -> released key; `dropped` is released key -> reason."""

    source: str
    variant: str
    config: AesformerConfig
    mapped: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    duplicates_verified: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output_dir: str | None = None
    round_trip_verified: int = 0
    saved_processor: str | None = None
    pushed_to: str | None = None

    def summary(self) -> str:
        """A human-readable account of the conversion (printed by the command line)."""
        cfg = self.config
        args = cfg.vision_config.model_args or {}
        swin = RELEASED_SWINS.get(self.variant, args)
        swin_line = (
            f"{cfg.vision_config.architecture} (embed {swin['embed_dim']}, depths {swin['depths']}, "
            f"heads {swin['num_heads']}, window {args.get('window_size', 7)}, {args.get('img_size', 224)} px)"
        )
        text = cfg.text_config
        lines = [
            f"Converted {self.source}",
            f"  variant       : {self.variant}",
            f"  vision tower  : {swin_line}",
            f"  text tower    : BERT, {text.num_hidden_layers} layers, {text.hidden_size} wide, "
            f"{text.num_attention_heads} heads, vocabulary {text.vocab_size}, {text.max_position_embeddings} positions",
            f"  fusion layers : {cfg.fusion_layers}; bins {cfg.num_bins} (scores {cfg.score_min:g}..{cfg.score_max:g}, "
            f"high above {cfg.label_threshold:g})",
            f"  mapped        : {len(self.mapped)} tensors ({_count_groups(self.mapped)})",
            f"  duplicates    : {len(self.duplicates_verified)} cross_encoder tensors checked equal to the fusion "
            "layers and dropped",
        ]
        others = Counter(v for k, v in self.dropped.items() if k not in self.duplicates_verified)
        lines.append(f"  dropped       : {sum(others.values())} other tensors")
        lines += [f"                  {n:5d} {reason}" for reason, n in others.most_common()]
        lines += [f"  note          : {note}" for note in self.notes]
        if self.output_dir:
            lines.append(f"  written to    : {self.output_dir}")
            lines.append(
                f"  verified      : reloaded with AesformerForAesthetic.from_pretrained; {self.round_trip_verified} "
                "tensors equal their source"
            )
        if self.saved_processor:
            lines.append(f"  processor     : {self.saved_processor}")
        if self.pushed_to:
            lines.append(f"  pushed to     : https://huggingface.co/{self.pushed_to}")
        return "\n".join(lines)


def _count_groups(mapped: Mapping[str, str]) -> str:
    def group(key: str) -> str:
        if key.startswith(TIMM_PREFIX):
            return "vision tower"
        if key.startswith(TEXT_PREFIX):
            return "text tower"
        if key.startswith("model.fusion_layers."):
            return "fusion layers"
        if key.startswith(("model.neck.", "model.image_projection")):
            return "neck"
        return "heads and norms"

    return ", ".join(f"{name} {n}" for name, n in Counter(group(k) for k in mapped).items())


# --------------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------------
def load_original_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a released checkpoint without running pickled code and return its flat state dict.

    `.pth`/`.pt`/`.bin` files are read with `torch.load(weights_only=True)` (argparse Namespaces, which
    training scripts often store next to the weights, are allowed); `.safetensors` files with safetensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path!r}; expected the released AesFormer .pth file.")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return unwrap_state_dict(load_file(path), source=path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError/RuntimeError with long advice; keep ours short
        raise OriginalCheckpointError(
            path,
            hint=(
                f"It could not be read safely with torch.load(weights_only=True): {type(error).__name__}: "
                f"{str(error).splitlines()[0]}\nThe converter never unpickles arbitrary objects. If you trust the "
                "file, re-save only its state dict: torch.save(torch.load(path, weights_only=False)['model'], 'clean.pth')."
            ),
        ) from error
    return unwrap_state_dict(obj, source=path)


def unwrap_state_dict(obj: Any, source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """`{"model": sd}`, `{"state_dict": sd}` (nested too) or a plain `sd` -> `sd`, without `module.` prefixes."""
    # A state dict maps names to tensors, so a mapping under "model"/"state_dict" can only be a wrapper (training
    # scripts put the epoch, optimizer and arguments beside it).
    for _ in range(3):
        wrapper = next(
            (
                k
                for k in ("model", "state_dict")
                if isinstance(obj, Mapping) and isinstance(obj.get(k), Mapping)
            ),
            None,
        )
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not obj:
        raise OriginalCheckpointError(
            source,
            hint=(
                f"Expected a state dict (a mapping of names to tensors), optionally under 'model' or 'state_dict'; "
                f"found {type(obj).__name__} with keys {list(obj)[:10] if isinstance(obj, Mapping) else '-'}."
            ),
        )
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise OriginalCheckpointError(
            source,
            unknown=not_tensors,
            hint="These entries are not tensors, so this is not a model state dict.",
        )
    state_dict: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        # nn.DataParallel / DistributedDataParallel save every key under `module.`.
        name = key[len("module.") :] if key.startswith("module.") else key
        if name in state_dict:
            raise OriginalCheckpointError(source, unknown=[key], hint=f"{key!r} collides with {name!r}.")
        state_dict[name] = value
    return state_dict


# --------------------------------------------------------------------------------------------------
# Shape inference
# --------------------------------------------------------------------------------------------------
def _indices(shapes: Mapping[str, Any], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in shapes if (m := regex.match(k))})


def _window_from_bias_table(rows: int) -> int:
    # A w x w window has (2w-1)^2 relative positions.
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise ValueError(f"{rows} rows is not a (2w-1)^2 relative-position table")
    return (side + 1) // 2


def infer_original_config(
    shapes: Mapping[str, tuple[int, ...]],
    text_num_attention_heads: int | None = None,
    source: str = "the checkpoint",
    **config_overrides,
) -> tuple[AesformerConfig, str, list[str]]:
    """Read the AesFormer shape from the released key shapes.

    Returns `(config, variant, notes)`: `variant` is "tiny", "small", "base" for the released Swins, else "custom".
    Score range and label threshold cannot be read from weights: 10 bins give AVA's 1..10 (high above 5);
    other bin counts give 1..num_bins. Override them (and anything else not shape-bound) with `config_overrides`.
    """
    missing: list[str] = []
    notes: list[str] = []

    def need(key: str) -> tuple[int, ...] | None:
        if key not in shapes:
            missing.append(key)
            return None
        return tuple(shapes[key])

    # -- Swin ----------------------------------------------------------------------------------------
    stages = _indices(shapes, re.escape(SWIN_PREFIX) + r"layers\.(\d+)\.blocks\.")
    if stages != [0, 1, 2, 3]:
        missing += [f"{SWIN_PREFIX}layers.{s}.blocks.0.attn.qkv.weight" for s in range(4) if s not in stages]
    proj = need(f"{SWIN_PREFIX}patch_embed.proj.weight")
    tables = [need(f"{SWIN_PREFIX}layers.{s}.blocks.0.attn.relative_position_bias_table") for s in range(4)]
    fc1 = need(f"{SWIN_PREFIX}layers.0.blocks.0.mlp.fc1.weight")
    # -- BERT ----------------------------------------------------------------------------------------
    words = need(f"{BERT_PREFIX}embeddings.word_embeddings.weight")
    positions = need(f"{BERT_PREFIX}embeddings.position_embeddings.weight")
    token_types = need(f"{BERT_PREFIX}embeddings.token_type_embeddings.weight")
    intermediate = need(f"{BERT_PREFIX}encoder.layer.0.intermediate.dense.weight")
    text_layers = _indices(shapes, re.escape(BERT_PREFIX) + r"encoder\.layer\.(\d+)\.")
    # -- fusion, neck, heads -------------------------------------------------------------------------
    fusion = _indices(shapes, r"vlmo_neck\.layers\.(\d+)\.")
    if not fusion:
        missing.append("vlmo_neck.layers.0.sa.self.query.weight")
    head_hidden = need("head_v.0.weight")
    head_out = need("head_v.2.weight")
    adapter = need("adapter_1.0.weight")
    if missing:
        raise OriginalCheckpointError(
            source, missing=missing, hint="These keys are needed to read the model's shape."
        )

    windows = []
    for stage, table in enumerate(tables):
        try:
            windows.append(_window_from_bias_table(table[0]))
        except ValueError as error:
            key = f"{SWIN_PREFIX}layers.{stage}.blocks.0.attn.relative_position_bias_table"
            raise OriginalCheckpointError(source, hint=f"{key} has shape {table}: {error}.") from None
    embed_dim, in_chans, patch_size = proj[0], proj[1], proj[-1]
    depths = [
        len(_indices(shapes, re.escape(f"{SWIN_PREFIX}layers.{s}.blocks.") + r"(\d+)\.")) for s in range(4)
    ]
    swin = {
        "embed_dim": embed_dim,
        "depths": depths,
        "num_heads": [t[1] for t in tables],
        "window_size": max(windows),
        "img_size": _infer_image_size(shapes, windows, patch_size),
        "patch_size": patch_size,
        "mlp_ratio": fc1[0] / embed_dim,
        "in_chans": in_chans,
    }
    variant = next(
        (name for name, spec in RELEASED_SWINS.items() if {**RELEASED_SWIN_DEFAULTS, **spec} == swin),
        "custom",
    )
    if variant != "custom":
        vision_config = dict(SWIN_VARIANTS[variant])
    else:
        base = "base" if embed_dim >= 128 else ("small" if sum(depths) > 12 else "tiny")
        model_args = {
            k: v
            for k, v in swin.items()
            if k in ("embed_dim", "depths", "num_heads", "window_size", "img_size")
        }
        model_args.update(
            {
                k: v
                for k, v in swin.items()
                if k in ("patch_size", "mlp_ratio", "in_chans") and v != RELEASED_SWIN_DEFAULTS[k]
            }
        )
        vision_config = {"architecture": SWIN_VARIANTS[base]["architecture"], "model_args": model_args}
        notes.append(f"the Swin is not one of the released T/S/B shapes: built as {vision_config}")

    hidden = words[1]
    if text_num_attention_heads is None:
        if hidden % BERT_HEAD_WIDTH:
            raise OriginalCheckpointError(
                source,
                hint=(
                    f"The BERT tower is {hidden} wide, which does not split into BERT's {BERT_HEAD_WIDTH}-wide heads, "
                    "and head counts cannot be read from weights: pass text_num_attention_heads "
                    "(--text-num-heads on the command line)."
                ),
            )
        text_num_attention_heads = hidden // BERT_HEAD_WIDTH
        notes.append(
            f"BERT attention heads are not stored in the weights: assumed {text_num_attention_heads} "
            f"({hidden} / {BERT_HEAD_WIDTH}, as in every BERT size); override with --text-num-heads"
        )
    text_config = {
        "vocab_size": words[0],
        "hidden_size": hidden,
        "num_hidden_layers": len(text_layers),
        "num_attention_heads": text_num_attention_heads,
        "intermediate_size": intermediate[0],
        "max_position_embeddings": positions[0],
        "type_vocab_size": token_types[0],
    }

    num_bins = head_out[0]
    if num_bins == 10:
        scale = {"score_min": 1.0, "score_max": 10.0, "label_threshold": 5.0}
    else:
        top = float(num_bins)
        scale = {
            "score_min": 1.0,
            "score_max": top,
            "label_threshold": 5.0 if top >= 5.0 else (1.0 + top) / 2,
        }
        notes.append(
            f"{num_bins} bins: assumed scores 1..{num_bins} with 'high' above {scale['label_threshold']:g}; "
            "set --score-min/--score-max/--label-threshold if your scale differs"
        )
    shape_bound = {
        "vision_config",
        "text_config",
        "fusion_layers",
        "num_bins",
        "head_hidden_size",
        "adapter_reduction",
    }
    shape_bound |= {k for k in AesformerConfig.__dataclass_fields__ if k.startswith("fusion_")}
    fixed = sorted(shape_bound & set(config_overrides))
    if fixed:
        raise ValueError(f"{fixed} are read from the checkpoint's tensor shapes and cannot be overridden.")
    params = {
        "vision_config": vision_config,
        "text_config": text_config,
        "fusion_layers": len(fusion),
        "num_bins": num_bins,
        "head_hidden_size": head_hidden[0],
        "adapter_reduction": max(1, hidden // adapter[0]),
        **scale,
        **config_overrides,
    }
    return AesformerConfig(**params), variant, notes


def _infer_image_size(shapes: Mapping[str, tuple[int, ...]], windows: list[int], patch_size: int) -> int:
    """Input size in pixels (square), from the saved shifted-window masks or the windows' sizes.

    A shifted block stores `attn_mask` `(windows, w*w, w*w)`, so stage s is `w * sqrt(windows)` tokens wide.
    Without masks: Swin shrinks a stage's window to the stage's size, so a stage with a smaller window than
    the others is exactly that many tokens wide; if none shrank, the last stage is one window wide (224 px
    for patch 4 and window 7).
    """
    for stage in range(4):
        masks = [
            tuple(v)
            for k, v in shapes.items()
            if k.startswith(f"{SWIN_PREFIX}layers.{stage}.blocks.") and k.endswith(".attn_mask")
        ]
        if masks:
            num_windows = masks[0][0]
            side = math.isqrt(num_windows)
            return windows[stage] * side * patch_size * 2**stage
    largest = max(windows)
    for stage, window in enumerate(windows):
        if window < largest:
            return window * patch_size * 2**stage
    return largest * patch_size * 2**3


# --------------------------------------------------------------------------------------------------
# Key mapping
# --------------------------------------------------------------------------------------------------
@dataclass
class _Plan:
    mapped: dict[str, str]  # package key -> released key
    dropped: dict[str, str]  # released key -> reason
    duplicates: dict[str, str]  # duplicate released key -> released key it must equal
    notes: list[str]


def map_original_keys(
    state_dict: Mapping[str, torch.Tensor], config: AesformerConfig, source: str = "the checkpoint"
) -> _Plan:
    """Decide the fate of every released key: mapped to a package key, dropped (with a reason) or a duplicate.

    Works on shapes only (tensors may live on the meta device). Raises [`OriginalCheckpointError`] listing every
    unknown, missing and misshapen key by its released name. Duplicates are checked for equality by the caller.
    """
    with torch.device("meta"):
        reference = AesformerForAesthetic(config)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    target_of = {released_name(key): key for key in expected}
    copy_of = {copy: original for original in target_of if (copy := _cross_encoder_name(original))}

    mapped: dict[str, str] = {}
    dropped: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    notes: list[str] = []
    unknown: list[str] = []
    for key in state_dict:
        module, _, param = key.rpartition(".")
        if key in target_of:
            mapped[target_of[key]] = key
        elif key in copy_of:
            duplicates[key] = copy_of[key]
            dropped[key] = "duplicate of the fusion layers (checked equal)"
        elif reason := _dropped_reason(key):
            dropped[key] = reason
        elif module in _NECK_T_SPELLING and param in ("weight", "bias"):
            # The T class names its neck Linears `stage*_linear`; the released forward reads `stages*_linear`.
            b_key = f"{_NECK_T_SPELLING[module]}.{param}"
            if b_key in state_dict:
                dropped[key] = "superseded neck spelling (stages*_linear is what the released forward reads)"
                same = tuple(state_dict[key].shape) == tuple(state_dict[b_key].shape)
                notes.append(
                    f"both {key} and {b_key} present: used {b_key}" + ("" if same else " (shapes differ)")
                )
            else:
                mapped[target_of[b_key]] = key
        else:
            unknown.append(key)

    misshapen = [
        (key, tuple(state_dict[key].shape), expected[target])
        for target, key in mapped.items()
        if tuple(state_dict[key].shape) != expected[target]
    ]
    t_spelling = {b: t for t, b in _NECK_T_SPELLING.items()}
    missing = []
    for target in expected:
        if target not in mapped:
            name = released_name(target)
            module, _, param = name.rpartition(".")
            missing.append(name + (f" (or {t_spelling[module]}.{param})" if module in t_spelling else ""))
    # Duplicates are optional as a group, but a partial set means a damaged file.
    if duplicates:
        missing += [copy for copy in copy_of if copy not in state_dict]
        misshapen += [
            (copy, tuple(state_dict[copy].shape), tuple(state_dict[original].shape))
            for copy, original in duplicates.items()
            # A duplicate of a missing key needs no message of its own: the key is listed as missing.
            if original in state_dict and tuple(state_dict[copy].shape) != tuple(state_dict[original].shape)
        ]
    else:
        notes.append("no cross_encoder.* duplicates in the checkpoint: nothing to cross-check")

    if unknown or missing or misshapen:
        raise OriginalCheckpointError(source, unknown=unknown, missing=missing, misshapen=misshapen)
    return _Plan(mapped=mapped, dropped=dropped, duplicates=duplicates, notes=notes)


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------
def convert_original_state_dict(
    state_dict: Mapping[str, Any],
    *,
    text_num_attention_heads: int | None = None,
    source: str = "the checkpoint",
    **config_overrides,
) -> tuple[AesformerConfig, dict[str, torch.Tensor], ConversionReport]:
    """Convert a released AesFormer state dict (any wrapper, `module.` prefixes allowed).

    Args:
        state_dict: the released state dict, or `{"model": ...}` / `{"state_dict": ...}` around it.
        text_num_attention_heads: BERT's head count; not stored in weights, so by default width / 64 (12 for 768).
        source: a name for the input in messages.
        config_overrides: [`AesformerConfig`] fields that shapes do not determine (`score_min`, `score_max`,
            `label_threshold`, `miaa_text_weight`, ...).

    Returns:
        `(config, converted, report)`: `converted` maps every key of `AesformerForAesthetic(config).state_dict()` to
        the released tensor itself (not a copy), so `converted[k] is original[report.mapped[k]]`.

    Raises:
        OriginalCheckpointError: unknown, missing or misshapen keys, or duplicated tensors that differ.
    """
    state_dict = unwrap_state_dict(state_dict, source=source)
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    config, variant, notes = infer_original_config(
        shapes, text_num_attention_heads=text_num_attention_heads, source=source, **config_overrides
    )
    plan = map_original_keys(state_dict, config, source=source)
    unequal = [
        (duplicate, original)
        for duplicate, original in plan.duplicates.items()
        if not torch.equal(state_dict[duplicate], state_dict[original])
    ]
    if unequal:
        raise OriginalCheckpointError(
            source,
            unequal_duplicates=unequal,
            hint="cross_encoder.* should be the fusion layers saved a second time; differing copies mean the file "
            "was edited or comes from another model, so the converter cannot tell which copy is right.",
        )
    converted = {target: state_dict[key] for target, key in plan.mapped.items()}
    report = ConversionReport(
        source=source,
        variant=variant,
        config=config,
        mapped=dict(sorted(plan.mapped.items())),
        dropped=plan.dropped,
        duplicates_verified=dict(plan.duplicates),
        notes=notes + plan.notes,
    )
    return config, converted, report


def convert_original_checkpoint(
    path: str | os.PathLike,
    output_dir: str | os.PathLike,
    tokenizer_path: str | os.PathLike | None = None,
    *,
    text_num_attention_heads: int | None = None,
    overwrite: bool = False,
    **config_overrides,
) -> ConversionReport:
    """Convert the released checkpoint at `path` into a `save_pretrained` folder and verify it.

    Args:
        path: the released `.pth` (or a `.safetensors` export of the same state dict).
        output_dir: folder to write (`model.safetensors`, `config.json`, and the processor files with a tokenizer).
        tokenizer_path: a tokenizer folder or Hub id (read with `AutoTokenizer`) or a BERT `vocab.txt` file.
            Its vocabulary must have the checkpoint's size; an [`AesformerProcessor`] is then saved too.
        text_num_attention_heads, config_overrides: see [`convert_original_state_dict`].
        overwrite: replace `output_dir` when it is a non-empty model folder (else [`OutputExistsError`]). The
            new folder is written and verified beside it, then swapped in whole: no earlier file survives.
    """
    source = os.fspath(path)
    output_dir = os.fspath(output_dir)
    check_output_folder(output_dir, overwrite)
    state_dict = load_original_checkpoint(source)
    config, converted, report = convert_original_state_dict(
        state_dict, text_num_attention_heads=text_num_attention_heads, source=source, **config_overrides
    )
    tokenizer = _load_tokenizer(tokenizer_path, config.text_config.vocab_size) if tokenizer_path else None

    from transformers.initialization import no_init_weights

    # Every tensor is overwritten by the strict load below, so skip the random initialisation (seconds for B).
    with no_init_weights():
        model = AesformerForAesthetic(config)
    model.load_state_dict(converted, strict=True)
    staging = _new_staging_folder(output_dir)
    try:
        model.save_pretrained(staging)
        del model
        report.round_trip_verified = verify_converted_folder(staging, converted)
        if tokenizer is not None:
            report.saved_processor = _save_processor(tokenizer, config, staging)
        _publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.output_dir = output_dir
    return report


def verify_converted_folder(output_dir: str | os.PathLike, converted: Mapping[str, torch.Tensor]) -> int:
    """Reload `output_dir` with `AesformerForAesthetic.from_pretrained` and check every weight equals its source.

    Returns the number of tensors compared; raises RuntimeError naming any key that is missing, unexpected or
    different after the round trip.
    """
    model, info = AesformerForAesthetic.from_pretrained(output_dir, output_loading_info=True)
    problems = [f"{kind}: {sorted(keys)}" for kind, keys in info.items() if keys and kind != "error_msgs"]
    problems += [str(m) for m in info.get("error_msgs", [])]
    loaded = model.state_dict()
    differ = [k for k, v in converted.items() if k not in loaded or not torch.equal(loaded[k].cpu(), v)]
    if differ:
        problems.append(f"tensors that differ from the checkpoint after saving: {differ[:20]}")
    if problems:
        raise RuntimeError(
            f"The converted folder {output_dir} does not reload faithfully: " + "; ".join(problems)
        )
    return len(converted)


class OutputExistsError(FileExistsError):
    """The output folder holds files, and `overwrite` was not given (or cannot apply to it)."""


def check_output_folder(output_dir: str, overwrite: bool) -> None:
    """Refuse an output that is a file, or a non-empty folder without `overwrite`.

    `overwrite` replaces only a model folder: files (no subfolders, so not a git clone or a training run) with a
    `config.json`. Anything else is refused, naming what is there, rather than deleted.
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputExistsError(
            f"--output {output_dir} is a file; expected a folder to write the model into."
        )
    entries = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
    if not entries:
        return
    shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
    if not overwrite:
        raise OutputExistsError(
            f"--output {output_dir} is not empty ({len(entries)} entries: {shown}); pass --overwrite to replace "
            "that folder with the converted model (no earlier file is kept), or choose an empty one."
        )
    folders = [name for name in entries if os.path.isdir(os.path.join(output_dir, name))]
    if folders or "config.json" not in entries:
        reason = f"it holds folders ({', '.join(folders[:5])})" if folders else "it holds no config.json"
        raise OutputExistsError(
            f"--output {output_dir} is not a model folder ({reason}), so --overwrite does not replace it; "
            "choose an empty or new folder."
        )


def _new_staging_folder(output_dir: str) -> str:
    """An empty folder beside `output_dir` (same filesystem, so publishing it is a rename)."""
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(os.path.abspath(output_dir))
    staging = os.path.join(parent, f".{name}.converting-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(staging)
    return staging


def _publish(staging: str, output_dir: str) -> None:
    """Rename the complete `staging` folder to `output_dir`, replacing the folder there (if any) whole."""
    if not os.path.lexists(output_dir):
        os.rename(staging, output_dir)
        return
    parent, name = os.path.split(os.path.abspath(output_dir))
    earlier = os.path.join(parent, f".{name}.replaced-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(output_dir, earlier)
    try:
        os.rename(staging, output_dir)
    except BaseException:
        if not os.path.lexists(output_dir):
            os.rename(earlier, output_dir)
        raise
    shutil.rmtree(earlier, ignore_errors=True)


def _load_tokenizer(path: str | os.PathLike, vocab_size: int):
    """A tokenizer folder / Hub id (AutoTokenizer) or a `vocab.txt` file (BertTokenizer), checked against the vocab size."""
    path = os.fspath(path)
    if os.path.isfile(path):
        from transformers import BertTokenizer

        # A bare vocabulary says nothing about casing; the released models use bert-base-cased.
        tokenizer = BertTokenizer(vocab=path, do_lower_case=False)
    else:
        from transformers import AutoTokenizer

        try:
            # A BERT tokenizer is what the checkpoint needs: code shipped with the folder is never run (and
            # transformers never asks on stdin whether to run it).
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        except (OSError, ValueError) as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"--tokenizer {path!r} is neither a vocab.txt file nor a tokenizer folder / Hub id: {detail}"
            ) from error
    if len(tokenizer) != vocab_size:
        raise ValueError(
            f"The tokenizer at {path!r} has {len(tokenizer)} tokens but the checkpoint's BERT embeds {vocab_size}: "
            "it is not the tokenizer the model was trained with (the released models use bert-base-cased, 28,996)."
        )
    return tokenizer


def _save_processor(tokenizer, config: AesformerConfig, output_dir: str) -> str:
    image_size = (config.vision_config.model_args or {}).get("img_size", RELEASED_SWIN_DEFAULTS["img_size"])
    image_size = image_size[0] if isinstance(image_size, (list, tuple)) else int(image_size)
    from .image_processing_aesformer import AesformerImageProcessor
    from .processing_aesformer import AesformerProcessor

    AesformerProcessor(AesformerImageProcessor(size=image_size), tokenizer).save_pretrained(output_dir)
    return f"AesformerProcessor ({image_size} px images, {len(tokenizer)}-token {type(tokenizer).__name__})"


__all__ = [
    "ConversionReport",
    "OriginalCheckpointError",
    "OutputExistsError",
    "check_output_folder",
    "convert_original_checkpoint",
    "convert_original_state_dict",
    "infer_original_config",
    "load_original_checkpoint",
    "map_original_keys",
    "released_name",
    "unwrap_state_dict",
    "verify_converted_folder",
]
