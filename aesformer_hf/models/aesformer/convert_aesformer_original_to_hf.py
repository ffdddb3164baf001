"""Convert the authors' released AesFormer checkpoint into an [`AesformerForAesthetic`] folder.

The released `.pth` files hold the state dict of the original training class (DESIGN §4): a Swin in the
Microsoft layout (`feature_vit.img_model.*`), a full BERT (`feature.bert_model.*`), the fusion layers
(`vlmo_neck.layers.{i}.*`) saved a second time as `cross_encoder.{i}.*`, the multi-level neck, adapters and
heads, plus the training-only momentum towers and queues. This module

* reads the file safely (`torch.load(weights_only=True)`), unwrapping `{"model": ...}` / `{"state_dict": ...}`
  and `module.` (DataParallel) prefixes;
* infers the shape (Swin variant, BERT size, fusion layers, bins) from the tensor shapes alone;
* maps every key, remapping the Swin with timm's own `checkpoint_filter_fn`, checks that the duplicated
  tensors are equal before dropping them, and drops the training-only state;
* refuses, listing the key names, a checkpoint with unknown, missing or misshapen keys or unequal duplicates;
* writes a `save_pretrained` folder (safetensors + config, and the processor when a tokenizer is given),
  reloads it with `AesformerForAesthetic.from_pretrained` and checks every weight against its source;
* writes nothing into a non-empty output folder unless `overwrite`: the folder is then built complete beside
  the output (`.<name>.converting-*`) and swapped in, so no file of the earlier model (an old tokenizer)
  survives, and a conversion that fails leaves the output as it was.

Command line (wired into `aesformer-hf` by `aesformer_hf.cli`)::

    aesformer-hf convert-original aesformer_t.pth --output aesformer-t --tokenizer bert-base-cased/
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import shutil
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from timm.models.swin_transformer import checkpoint_filter_fn

from .configuration_aesformer import SWIN_VARIANTS, AesformerConfig
from .modeling_aesformer import AesformerForAesthetic

SWIN_PREFIX = "feature_vit.img_model."
BERT_PREFIX = "feature.bert_model."
TIMM_PREFIX = "model.vision_model.timm_model."
TEXT_PREFIX = "model.text_model."

# The three released Swin shapes (DESIGN §2), all patch 4, window 7, 224 px, MLP ratio 4.
RELEASED_SWINS: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24]},
    "small": {"embed_dim": 96, "depths": [2, 2, 18, 2], "num_heads": [3, 6, 12, 24]},
    "base": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32]},
}
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

# Released (non-tower) names -> package names. `{i}` is a fusion layer index, `{p}` weight|bias.
_FUSION_RULES = [
    ("vlmo_neck.layers.{i}.sa.self.{qkv}.{p}", "model.fusion_layers.{i}.self_attention.{qkv}.{p}"),
    ("vlmo_neck.layers.{i}.sa.output.dense.{p}", "model.fusion_layers.{i}.self_attention.output_dense.{p}"),
    (
        "vlmo_neck.layers.{i}.sa.output.LayerNorm.{p}",
        "model.fusion_layers.{i}.self_attention.output_layer_norm.{p}",
    ),
]
for _released, _expert in (("vl", "vision_language_expert"), ("v", "vision_expert")):
    _FUSION_RULES += [
        (
            f"vlmo_neck.layers.{{i}}.intermediate_{_released}.dense.{{p}}",
            f"model.fusion_layers.{{i}}.{_expert}.intermediate_dense.{{p}}",
        ),
        (
            f"vlmo_neck.layers.{{i}}.output_{_released}.dense.{{p}}",
            f"model.fusion_layers.{{i}}.{_expert}.output_dense.{{p}}",
        ),
        (
            f"vlmo_neck.layers.{{i}}.output_{_released}.LayerNorm.{{p}}",
            f"model.fusion_layers.{{i}}.{_expert}.output_layer_norm.{{p}}",
        ),
    ]

_MODULE_RULES = {
    # The T class names its neck Linears `stage*_linear`, the B class `stages*_linear` (see `_neck_sources`).
    "feature_neck.stages1_linear": "model.neck.level1_linear",
    "feature_neck.stages2_linear": "model.neck.level2_linear",
    "proj": "model.image_projection",
    "norm": "miaa_image_norm",
    "norm_v": "viaa_norm",
    "norm_cl": "contrastive_norm",
    # The released heads are Sequential(Linear, ReLU, Linear, Softmax); the package's return logits.
    "heads_vl_v.0": "miaa_image_head.dense",
    "heads_vl_v.2": "miaa_image_head.out_proj",
    "heads_vl_l.0": "miaa_text_head.dense",
    "heads_vl_l.2": "miaa_text_head.out_proj",
    "head_v.0": "viaa_head.dense",
    "head_v.2": "viaa_head.out_proj",
    **{f"adapter_{n}.0": f"model.neck.adapters.{n - 1}.down" for n in range(1, 5)},
    **{f"adapter_{n}.2": f"model.neck.adapters.{n - 1}.up" for n in range(1, 5)},
}
_NECK_T_SPELLING = {
    "feature_neck.stage1_linear": "feature_neck.stages1_linear",
    "feature_neck.stage2_linear": "feature_neck.stages2_linear",
}

# `cross_encoder.{i}` is the BertLayer whose attention *is* `vlmo_neck.layers.{i}.sa` and whose feed-forward
# *is* the VL expert: the same tensors saved under two names.
_DUPLICATE_RULES = [
    ("cross_encoder.{i}.attention.{rest}", "vlmo_neck.layers.{i}.sa.{rest}"),
    ("cross_encoder.{i}.intermediate.{rest}", "vlmo_neck.layers.{i}.intermediate_vl.{rest}"),
    ("cross_encoder.{i}.output.{rest}", "vlmo_neck.layers.{i}.output_vl.{rest}"),
]

_PLACEHOLDERS = {
    "i": r"(?P<i>\d+)",
    "p": r"(?P<p>weight|bias)",
    "qkv": r"(?P<qkv>query|key|value)",
    "rest": r"(?P<rest>.+)",
}


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, group in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), group)
    return re.compile(pattern + r"\Z")


def _apply_rules(rules: list[tuple[re.Pattern, str]], key: str) -> str | None:
    """The first rule whose pattern matches `key`, filled in with the matched parts; None if none matches."""
    for pattern, template in rules:
        if match := pattern.match(key):
            return template.format(**match.groupdict())
    return None


_FUSION_FORWARD = [(_compile(src), dst) for src, dst in _FUSION_RULES]
_FUSION_BACKWARD = [(_compile(dst), src) for src, dst in _FUSION_RULES]
_DUPLICATE_FORWARD = [(_compile(src), dst) for src, dst in _DUPLICATE_RULES]


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


def _expected_source(target: str) -> str:
    """The released name of a package key (for 'missing' messages)."""
    if target.startswith(TIMM_PREFIX):
        rest = target[len(TIMM_PREFIX) :]
        # timm merges patches at the start of stage i, the released Swin at the end of stage i-1.
        rest = re.sub(
            r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", rest
        )
        return SWIN_PREFIX + rest
    if target.startswith(TEXT_PREFIX):
        return BERT_PREFIX + target[len(TEXT_PREFIX) :]
    if source := _apply_rules(_FUSION_BACKWARD, target):
        return source
    if target == "contrastive_temperature":
        return "temp"
    module, _, param = target.rpartition(".")
    for released, package in _MODULE_RULES.items():
        if package == module:
            t_spelling = next((t for t, b in _NECK_T_SPELLING.items() if b == released), None)
            return f"{released}.{param}" + (f" (or {t_spelling}.{param})" if t_spelling else "")
    return target


def _swin_mapping(swin: dict[str, Any], reference_swin: torch.nn.Module) -> tuple[dict[str, str], list[str]]:
    """Map the released Swin (keys without prefix) to timm's keys with timm's own `checkpoint_filter_fn`.

    The filter returns the tensors it does not resample as the very same objects, so identity tells which
    released key each timm key came from. A tensor the filter resampled had the wrong shape: it is returned
    in the second list.
    """
    origin = {id(value): key for key, value in swin.items()}
    to_filter = dict(swin)
    # The filter recognises the Microsoft layout by this key alone. The released Swin always has that layout,
    # so a checkpoint lacking the key must still be remapped as one (the key is then reported missing).
    placeholder = torch.empty(0, device="meta")
    to_filter.setdefault("layers.0.downsample.reduction.weight", placeholder)
    filtered = checkpoint_filter_fn(to_filter, reference_swin)
    mapped, resampled = {}, []
    for key, value in filtered.items():
        if value is placeholder:
            continue
        if id(value) in origin:
            mapped[TIMM_PREFIX + key] = SWIN_PREFIX + origin[id(value)]
        else:
            resampled.append(key)
    return mapped, resampled


def map_original_keys(
    state_dict: Mapping[str, torch.Tensor], config: AesformerConfig, source: str = "the checkpoint"
) -> _Plan:
    """Decide the fate of every released key: mapped to a package key, dropped (with a reason) or a duplicate.

    Works on shapes only (tensors may live on the meta device). Raises [`OriginalCheckpointError`] listing every
    unknown, missing and misshapen key. Duplicates are checked for equality by the caller.
    """
    with torch.device("meta"):
        reference = AesformerForAesthetic(config)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}

    mapped: dict[str, str] = {}
    dropped: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    notes: list[str] = []
    unknown: list[str] = []
    swin: dict[str, torch.Tensor] = {}
    neck_t_spelling: dict[str, tuple[str, str]] = {}  # T-spelled key -> (B-spelled module, param)

    for key in state_dict:
        if key.startswith(SWIN_PREFIX):
            rest = key[len(SWIN_PREFIX) :]
            if rest.startswith("head."):
                dropped[key] = "Swin ImageNet classifier (unused)"
            elif rest.endswith(("relative_position_index", "attn_mask")):
                dropped[key] = "Swin buffer (timm rebuilds it)"
            else:
                swin[rest] = state_dict[key]
            continue
        if key.startswith(BERT_PREFIX):
            rest = key[len(BERT_PREFIX) :]
            if rest.startswith("pooler."):
                dropped[key] = "BERT pooler (unused: the text head reads the fused [CLS])"
            elif rest in ("embeddings.position_ids", "embeddings.token_type_ids"):
                dropped[key] = "BERT buffer (rebuilt by BertModel)"
            else:
                mapped[TEXT_PREFIX + rest] = key
            continue
        if reason := next(
            (r for prefix, r in TRAINING_ONLY.items() if key == prefix.rstrip(".") or key.startswith(prefix)),
            None,
        ):
            dropped[key] = reason
            continue
        if key == "temp":
            mapped["contrastive_temperature"] = key
            continue
        if original := _apply_rules(_DUPLICATE_FORWARD, key):
            duplicates[key] = original
            dropped[key] = "duplicate of the fusion layers (checked equal)"
            continue
        if target := _apply_rules(_FUSION_FORWARD, key):
            mapped[target] = key
            continue
        module, _, param = key.rpartition(".")
        if module in _NECK_T_SPELLING and param in ("weight", "bias"):
            neck_t_spelling[key] = (_NECK_T_SPELLING[module], param)
            continue
        if module in _MODULE_RULES and param in ("weight", "bias"):
            mapped[f"{_MODULE_RULES[module]}.{param}"] = key
            continue
        unknown.append(key)

    # The T class names its neck Linears `stage*_linear`; the released forward reads `stages*_linear`.
    for t_key, (b_module, param) in neck_t_spelling.items():
        b_key = f"{b_module}.{param}"
        if b_key in state_dict:
            dropped[t_key] = "superseded neck spelling (stages*_linear is what the released forward reads)"
            same = tuple(state_dict[t_key].shape) == tuple(state_dict[b_key].shape)
            notes.append(
                f"both {t_key} and {b_key} present: used {b_key}" + ("" if same else " (shapes differ)")
            )
        else:
            mapped[f"{_MODULE_RULES[b_module]}.{param}"] = t_key

    swin_mapped, resampled = _swin_mapping(swin, reference.model.vision_model.timm_model)
    mapped.update(swin_mapped)

    misshapen = []
    for timm_key in resampled:
        released = _expected_source(TIMM_PREFIX + timm_key)
        misshapen.append(
            (released, tuple(state_dict[released].shape), expected.get(TIMM_PREFIX + timm_key, ()))
        )
    for target, key in list(mapped.items()):
        if target not in expected:
            unknown.append(key)
            del mapped[target]
        elif tuple(state_dict[key].shape) != expected[target]:
            misshapen.append((key, tuple(state_dict[key].shape), expected[target]))
    missing = [_expected_source(t) for t in expected if t not in mapped]

    # Duplicates are optional as a group, but a partial set means a damaged file.
    if duplicates:
        for layer in range(config.fusion_layers):
            for suffix in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            ):
                for param in ("weight", "bias"):
                    name = f"cross_encoder.{layer}.{suffix}.{param}"
                    if name not in state_dict:
                        missing.append(name)
        for duplicate, original in duplicates.items():
            # A duplicate of a missing key needs no message of its own: the key is listed as missing.
            if original in state_dict and tuple(state_dict[duplicate].shape) != tuple(
                state_dict[original].shape
            ):
                misshapen.append(
                    (duplicate, tuple(state_dict[duplicate].shape), tuple(state_dict[original].shape))
                )
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
    push_to_hub: str | None = None,
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
        push_to_hub: `org/name` to upload the verified folder to.
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
    if push_to_hub:
        _upload_folder(output_dir, push_to_hub)
        report.pushed_to = push_to_hub
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
    try:
        from .image_processing_aesformer import AesformerImageProcessor
        from .processing_aesformer import AesformerProcessor
    except ImportError:  # the processor arrived after the converter; keep the tokenizer usable on its own
        tokenizer.save_pretrained(output_dir)
        return f"tokenizer only (AesformerProcessor unavailable), {len(tokenizer)} tokens"
    AesformerProcessor(AesformerImageProcessor(size=image_size), tokenizer).save_pretrained(output_dir)
    return f"AesformerProcessor ({image_size} px images, {len(tokenizer)}-token {type(tokenizer).__name__})"


def _upload_folder(folder: str, repo_id: str) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, folder_path=folder, commit_message="Convert the released AesFormer checkpoint"
    )


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `convert-original` on an `argparse` subparsers object."""
    parser = subparsers.add_parser(
        "convert-original",
        help="convert the authors' released AesFormer checkpoint to a transformers folder",
        description=(
            "Convert the released AesFormer .pth (read with weights_only=True) into a save_pretrained folder, "
            "verify the round trip, and optionally save the processor and push to the Hub."
        ),
    )
    parser.add_argument("checkpoint", help="the released .pth file")
    parser.add_argument("--output", required=True, help="folder to write")
    parser.add_argument(
        "--tokenizer", help="tokenizer folder, Hub id or BERT vocab.txt (saves an AesformerProcessor)"
    )
    parser.add_argument(
        "--push-to-hub", metavar="ORG/NAME", help="upload the verified folder to this Hub repository"
    )
    parser.add_argument(
        "--text-num-heads",
        type=int,
        help="BERT attention heads (not stored in weights; default width/64, 12 for 768)",
    )
    parser.add_argument("--score-min", type=float, help="value of the first bin (default 1)")
    parser.add_argument(
        "--score-max", type=float, help="value of the last bin (default: 10 for 10 bins, else the bin count)"
    )
    parser.add_argument(
        "--label-threshold", type=float, help="mean score above which an image is 'high' (default 5)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --output model folder whole (written beside it, then swapped in)",
    )
    parser.set_defaults(func=run_convert_original)
    return parser


def run_convert_original(args: argparse.Namespace) -> int:
    """`aesformer-hf convert-original`: 0 on success, 1 when the checkpoint or a setting is refused, 2 for a
    missing checkpoint file or an output folder that may not be written (one line each)."""
    overrides = {
        name: getattr(args, name)
        for name in ("score_min", "score_max", "label_threshold")
        if getattr(args, name, None) is not None
    }
    try:
        report = convert_original_checkpoint(
            args.checkpoint,
            args.output,
            tokenizer_path=args.tokenizer,
            push_to_hub=args.push_to_hub,
            text_num_attention_heads=args.text_num_heads,
            overwrite=getattr(args, "overwrite", False),
            **overrides,
        )
    except (FileNotFoundError, FileExistsError, PermissionError) as error:
        print(f"convert-original: {error}", file=sys.stderr)
        return 2
    except (OriginalCheckpointError, ValueError, RuntimeError) as error:
        print(f"convert-original: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


__all__ = [
    "ConversionReport",
    "OriginalCheckpointError",
    "OutputExistsError",
    "add_parser",
    "check_output_folder",
    "convert_original_checkpoint",
    "convert_original_state_dict",
    "infer_original_config",
    "load_original_checkpoint",
    "map_original_keys",
    "unwrap_state_dict",
    "verify_converted_folder",
]
