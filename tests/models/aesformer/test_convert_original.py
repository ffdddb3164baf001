"""Converter of the released AesFormer checkpoint.

The released layout is rebuilt here, independently of the converter, by `released_layout_state_dict`: a timm
Swin turned back into the Microsoft layout (patch merging at the end of a stage, persistent `attn_mask` and
`relative_position_index` buffers, a `head.0` classifier), a BertModel with pooler, the fusion layers under
both of their released names, the neck, adapters, heads and the training-only state. At full size (on the
meta device) it must reproduce the reference listings key for key, shape for shape; at tiny size it feeds
the conversion tests.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pickle
import re
from pathlib import Path

import pytest
import timm
import torch
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertLayer

from aesformer_hf import AesformerConfig, AesformerForAesthetic, AesformerProcessor
from aesformer_hf.models.aesformer import convert_aesformer_original_to_hf as conv
from aesformer_hf.models.aesformer.convert_aesformer_original_to_hf import (
    OriginalCheckpointError,
    convert_original_checkpoint,
    convert_original_state_dict,
    infer_original_config,
    map_original_keys,
    unwrap_state_dict,
)
from aesformer_hf.testing_utils import tiny_tokenizer

# ../shared/reference beside the repository root (or AESFORMER_REFERENCE_DIR).
REFERENCE_DIR = Path(
    os.environ.get(
        "AESFORMER_REFERENCE_DIR", Path(__file__).resolve().parents[3].parent / "shared" / "reference"
    )
)
HEADS = 2  # BERT heads of the tiny towers (not stored in weights: passed to the converter)


def tiny_released_config(like: str) -> AesformerConfig:
    """T-like: Swin last width 32 == fusion width (no `proj`), 2-block stages (so shifted windows save
    `attn_mask`). B-like: last width 64 -> `proj`, one block per stage (no masks)."""
    embed_dim, depths = (4, [2, 1, 2, 2]) if like == "T" else (8, [1, 1, 1, 1])
    vision = {
        "architecture": "swin_tiny_patch4_window7_224",
        "model_args": {
            "embed_dim": embed_dim,
            "depths": depths,
            "num_heads": [1, 1, 2, 2],
            "img_size": 64,
            "window_size": 4,
        },
    }
    text = {
        "vocab_size": 100,
        "hidden_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": HEADS,
        "intermediate_size": 48,
    }
    return AesformerConfig(
        vision_config=vision, text_config=text, fusion_layers=2, head_hidden_size=16, contrastive_queue_size=8
    )


# --------------------------------------------------------------------------------------------------
# The released layout, rebuilt independently
# --------------------------------------------------------------------------------------------------
class _Tensors:
    """Random tensors (or shape-only meta tensors for full-size listings)."""

    def __init__(self, meta: bool, seed: int = 0):
        self.meta = meta
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, *shape, dtype=torch.float32):
        if self.meta:
            return torch.empty(shape, dtype=dtype, device="meta")
        if dtype == torch.int64:
            return torch.randint(0, 8, shape, generator=self.generator)
        return torch.randn(shape, generator=self.generator, dtype=dtype)

    def module_state(self, module: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The module's state dict with every float parameter redrawn (so equal tensors mean shared origin)."""
        return {
            k: (self(*v.shape) if v.is_floating_point() and not self.meta else v)
            for k, v in module.state_dict().items()
        }


def released_swin(config: AesformerConfig, tensors: _Tensors, num_classes: int = 10):
    """The vision tower in the Microsoft layout, and the timm model whose weights it holds."""
    args = config.vision_config.model_args or {}
    with torch.device("meta" if tensors.meta else "cpu"):
        swin = timm.create_model(config.vision_config.architecture, pretrained=False, num_classes=0, **args)
    weights = tensors.module_state(swin)
    if not tensors.meta:
        swin.load_state_dict(weights)
    layout = {}
    for key, value in weights.items():
        # timm merges patches at the start of stage i; the released Swin at the end of stage i-1.
        key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        layout[key] = value
    for name, buffer in swin.named_buffers():
        if name.endswith(("relative_position_index", "attn_mask")):  # persistent in the Microsoft code
            layout[name] = buffer
    layout["head.0.weight"] = tensors(num_classes, swin.num_features)
    layout["head.0.bias"] = tensors(num_classes)
    return layout, swin


def released_bert(config: AesformerConfig, tensors: _Tensors) -> dict[str, torch.Tensor]:
    with torch.device("meta" if tensors.meta else "cpu"):
        bert = BertModel(BertConfig(**config.text_config.to_dict()), add_pooling_layer=True)
    return {k: v for k, v in tensors.module_state(bert).items() if "position_ids" not in k}


def released_layout_state_dict(
    config: AesformerConfig,
    *,
    meta: bool = False,
    neck: str | None = None,
    training_state: bool = True,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The state dict of the released class for `config`. `neck`: "stage" (T spelling), "stages" (B), "both"."""
    t = _Tensors(meta, seed)
    hidden, bins, head = config.fusion_hidden_size, config.num_bins, config.head_hidden_size
    swin_layout, swin = released_swin(config, t)
    widths = [info["num_chs"] for info in swin.feature_info]
    last = widths[3]
    sd: dict[str, torch.Tensor] = {}
    for name in ("heads_vl_v", "heads_vl_l", "head_v"):
        sd.update(
            {
                f"{name}.0.weight": t(head, hidden),
                f"{name}.0.bias": t(head),
                f"{name}.2.weight": t(bins, head),
                f"{name}.2.bias": t(bins),
            }
        )
    if last != hidden:
        sd.update({"proj.weight": t(hidden, last), "proj.bias": t(hidden)})
        if training_state:
            sd.update({"proj_m.weight": t(hidden, last), "proj_m.bias": t(hidden)})
    neck = neck or ("stage" if last == hidden else "stages")
    for spelling in ("stage", "stages") if neck == "both" else (neck,):
        for level, width in ((1, widths[1]), (2, widths[2])):
            sd[f"feature_neck.{spelling}{level}_linear.weight"] = t(last, width)
            sd[f"feature_neck.{spelling}{level}_linear.bias"] = t(last)
    bottleneck = hidden // config.adapter_reduction
    for n in range(1, 5):
        sd.update({f"adapter_{n}.0.weight": t(bottleneck, hidden), f"adapter_{n}.0.bias": t(bottleneck)})
        sd.update({f"adapter_{n}.2.weight": t(hidden, bottleneck), f"adapter_{n}.2.bias": t(hidden)})
    sd.update({f"feature_vit.img_model.{k}": v for k, v in swin_layout.items()})
    for name in ("norm_v", "norm"):
        sd.update({f"{name}.weight": t(hidden), f"{name}.bias": t(hidden)})
    bert = released_bert(config, t)
    sd.update({f"feature.bert_model.{k}": v for k, v in bert.items()})
    text_config = BertConfig(**config.text_config.to_dict())
    fusion = {}
    for i in range(config.fusion_layers):
        with torch.device("meta" if meta else "cpu"):
            layer, v_layer = BertLayer(text_config), BertLayer(text_config)
        shared, v_expert = t.module_state(layer), t.module_state(v_layer)
        for key, value in shared.items():
            part, _, rest = key.partition(".")
            # The same module is reachable as cross_encoder.{i} and as vlmo_neck.layers.{i}.{sa,*_vl}.
            sd[f"cross_encoder.{i}.{key}"] = value.clone()
            fusion[
                f"vlmo_neck.layers.{i}.{ {'attention': 'sa', 'intermediate': 'intermediate_vl', 'output': 'output_vl'}[part] }.{rest}"
            ] = value
        for key, value in v_expert.items():
            part, _, rest = key.partition(".")
            if part in ("intermediate", "output"):
                fusion[f"vlmo_neck.layers.{i}.{part}_v.{rest}"] = value
    sd.update(fusion)
    sd.update({"norm_cl.weight": t(hidden), "norm_cl.bias": t(hidden)})
    if training_state:
        sd.update({"norm_cl_m.weight": t(hidden), "norm_cl_m.bias": t(hidden)})
        sd.update({f"visual_encoder_m.img_model.{k}": v.clone() for k, v in swin_layout.items()})
        sd.update({f"text_encoder_m.bert_model.{k}": v.clone() for k, v in bert.items()})
        queue = config.contrastive_queue_size
        sd.update(
            {
                "image_queue": t(hidden, queue),
                "text_queue": t(hidden, queue),
                "queue_ptr": t(1, dtype=torch.int64),
            }
        )
    sd["temp"] = torch.tensor(0.05, device="meta" if meta else "cpu")
    return sd


def read_listing(variant: str) -> dict[str, tuple[tuple[int, ...], str]]:
    path = REFERENCE_DIR / f"original_state_dict_{variant}.tsv"
    if not path.is_file():
        pytest.skip(f"reference listing {path} not present (set AESFORMER_REFERENCE_DIR)")
    listing = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape, dtype = line.split("\t")
            listing[key] = (tuple(ast.literal_eval(shape)), dtype)
    return listing


def released_config(variant: str) -> AesformerConfig:
    # The reference listings were made with a 128-token BERT vocabulary.
    return AesformerConfig.from_variant(variant, text_config={"vocab_size": 128})


# --------------------------------------------------------------------------------------------------
# Full-size layout against the reference listings
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["tiny", "base"])
def test_rebuilt_layout_matches_reference_listing(variant):
    listing = read_listing(variant)
    rebuilt = released_layout_state_dict(released_config(variant), meta=True)
    rebuilt = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in rebuilt.items()}
    assert sorted(set(listing) - set(rebuilt)) == [] and sorted(set(rebuilt) - set(listing)) == []
    assert {k: v for k, v in rebuilt.items() if listing[k] != v} == {}


@pytest.mark.parametrize("variant", ["tiny", "base"])
def test_every_reference_key_is_mapped_or_dropped(variant):
    listing = read_listing(variant)
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    state_dict = {
        k: torch.empty(shape, dtype=dtypes[dtype], device="meta") for k, (shape, dtype) in listing.items()
    }

    config, found_variant, notes = infer_original_config({k: v.shape for k, v in state_dict.items()})
    plan = map_original_keys(state_dict, config)

    assert found_variant == variant
    assert config.vision_config.architecture == f"swin_{variant}_patch4_window7_224"
    assert (config.fusion_layers, config.num_bins, config.head_hidden_size) == (2, 10, 256)
    text = config.text_config
    assert (text.vocab_size, text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (
        128,
        768,
        12,
        12,
    )
    assert any("assumed 12" in note for note in notes)
    sources = set(plan.mapped.values())
    assert sources.isdisjoint(plan.dropped)
    assert sources | set(plan.dropped) == set(listing)
    with torch.device("meta"):
        package_keys = set(AesformerForAesthetic(config).state_dict())
    assert set(plan.mapped) == package_keys
    assert len(plan.duplicates) == 2 * 16
    assert plan.mapped.get("model.image_projection.weight") == ("proj.weight" if variant == "base" else None)


# --------------------------------------------------------------------------------------------------
# Tiny conversions
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["T", "B"])
def released(request):
    config = tiny_released_config(request.param)
    return request.param, config, released_layout_state_dict(config, seed=1 if request.param == "T" else 2)


def test_converted_weights_are_their_sources_and_model_runs(released):
    like, source_config, sd = released
    config, converted, report = convert_original_state_dict(sd, text_num_attention_heads=HEADS)

    # Shape read back from the tensors.
    assert report.variant == "custom"
    assert (
        config.vision_config.model_args["img_size"] == 64
        and config.vision_config.model_args["window_size"] == 4
    )
    assert config.vision_config.model_args["depths"] == source_config.vision_config.model_args["depths"]
    assert config.text_config.vocab_size == 100 and config.text_config.num_hidden_layers == 3
    assert (config.fusion_layers, config.num_bins, config.head_hidden_size) == (2, 10, 16)
    # Every converted tensor is its source, and every source is accounted for.
    assert all(converted[target] is sd[source] for target, source in report.mapped.items())
    assert set(report.mapped.values()) | set(report.dropped) == set(sd)
    # Spot checks, written from DESIGN §4 rather than from the converter's tables.
    expect = {
        "model.vision_model.timm_model.layers.1.downsample.reduction.weight": "feature_vit.img_model.layers.0.downsample.reduction.weight",
        "model.vision_model.timm_model.layers.3.downsample.norm.bias": "feature_vit.img_model.layers.2.downsample.norm.bias",
        "model.vision_model.timm_model.norm.weight": "feature_vit.img_model.norm.weight",
        "model.text_model.encoder.layer.2.output.LayerNorm.weight": "feature.bert_model.encoder.layer.2.output.LayerNorm.weight",
        "model.fusion_layers.1.self_attention.value.bias": "vlmo_neck.layers.1.sa.self.value.bias",
        "model.fusion_layers.0.self_attention.output_layer_norm.weight": "vlmo_neck.layers.0.sa.output.LayerNorm.weight",
        "model.fusion_layers.1.vision_language_expert.intermediate_dense.weight": "vlmo_neck.layers.1.intermediate_vl.dense.weight",
        "model.fusion_layers.0.vision_expert.output_dense.weight": "vlmo_neck.layers.0.output_v.dense.weight",
        "model.neck.level2_linear.weight": f"feature_neck.{'stage' if like == 'T' else 'stages'}2_linear.weight",
        "model.neck.adapters.3.up.weight": "adapter_4.2.weight",
        "model.neck.adapters.0.down.bias": "adapter_1.0.bias",
        "miaa_image_norm.weight": "norm.weight",
        "viaa_norm.bias": "norm_v.bias",
        "contrastive_norm.weight": "norm_cl.weight",
        # Every head Linear, both layers (a swap of two heads' first layers must fail here).
        **{
            f"{package}.{layer}.{p}": f"{original}.{index}.{p}"
            for package, original in (
                ("miaa_image_head", "heads_vl_v"),
                ("miaa_text_head", "heads_vl_l"),
                ("viaa_head", "head_v"),
            )
            for layer, index in (("dense", 0), ("out_proj", 2))
            for p in ("weight", "bias")
        },
        "contrastive_temperature": "temp",
    }
    if like == "B":
        expect["model.image_projection.weight"] = "proj.weight"
    assert {k: report.mapped.get(k) for k in expect} == expect
    assert ("model.image_projection.weight" in converted) == (like == "B")
    for dropped in (
        "image_queue",
        "queue_ptr",
        "norm_cl_m.weight",
        "feature.bert_model.pooler.dense.weight",
        "feature_vit.img_model.head.0.weight",
        "cross_encoder.1.output.LayerNorm.bias",
    ):
        assert dropped in report.dropped
    assert len(report.duplicates_verified) == 2 * 16

    model = AesformerForAesthetic(config).eval()
    model.load_state_dict(converted, strict=True)
    # The Swin part really is the timm model the released layout was made from: same features.
    _, swin = released_swin(source_config, _Tensors(meta=False, seed=1 if like == "T" else 2))
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            model.model.vision_model.timm_model.forward_features(images),
            swin.eval().forward_features(images),
            rtol=0,
            atol=0,
        )
        viaa = model(images)
        input_ids = torch.randint(5, 100, (2, 7), generator=torch.Generator().manual_seed(1))
        miaa = model(images, input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    assert viaa.distribution.shape == miaa.distribution.shape == (2, 10)
    assert torch.isfinite(viaa.score).all() and torch.isfinite(miaa.score).all()
    assert miaa.image_logits is not None and viaa.image_logits is None
    assert "variant" in report.summary() and "duplicates" in report.summary()


def test_released_swin_is_remapped_by_shape_not_by_luck(released):
    """The downsample shift matters: without it timm's stage 1 would get stage 0's merging (wrong shapes)."""
    _, _, sd = released
    shifted = {k.replace("layers.0.downsample", "layers.9.downsample"): v for k, v in sd.items()}
    with pytest.raises(OriginalCheckpointError) as error:
        convert_original_state_dict(shifted, text_num_attention_heads=HEADS)
    assert "feature_vit.img_model.layers.9.downsample.reduction.weight" in error.value.unknown
    assert "feature_vit.img_model.layers.0.downsample.reduction.weight" in error.value.missing


@pytest.mark.parametrize("wrapper", ["plain", "model", "state_dict", "module", "model+module"])
def test_wrappers_and_dataparallel_prefixes(released, wrapper):
    _, _, sd = released
    wrapped = {f"module.{k}": v for k, v in sd.items()} if "module" in wrapper else dict(sd)
    if wrapper.startswith("model"):
        wrapped = {"model": wrapped}
    elif wrapper == "state_dict":
        wrapped = {"state_dict": wrapped}
    assert unwrap_state_dict(wrapped).keys() == sd.keys()
    _, converted, _ = convert_original_state_dict(wrapped, text_num_attention_heads=HEADS)
    assert converted["contrastive_temperature"] is sd["temp"]


def test_training_state_is_optional(released):
    _, _, sd = released
    kept = {
        k: v
        for k, v in sd.items()
        if not k.startswith(
            (
                "visual_encoder_m.",
                "text_encoder_m.",
                "image_queue",
                "text_queue",
                "queue_ptr",
                "norm_cl_m",
                "proj_m",
            )
        )
    }
    _, converted, report = convert_original_state_dict(kept, text_num_attention_heads=HEADS)
    _, converted_full, _ = convert_original_state_dict(sd, text_num_attention_heads=HEADS)
    assert converted.keys() == converted_full.keys()
    assert not any("training only" in reason for reason in report.dropped.values())


# --------------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------------
def _refusal(sd) -> OriginalCheckpointError:
    with pytest.raises(OriginalCheckpointError) as error:
        convert_original_state_dict(sd, text_num_attention_heads=HEADS, source="fake.pth")
    assert "fake.pth" in str(error.value)
    return error.value


def test_refuses_unknown_keys(released):
    _, _, sd = released
    sd = dict(
        sd,
        **{
            "extra_head.weight": torch.zeros(3),
            "feature_vit.img_model.layers.3.downsample.norm.weight": torch.zeros(4),
        },
    )
    error = _refusal(sd)
    assert error.unknown == ["extra_head.weight", "feature_vit.img_model.layers.3.downsample.norm.weight"]
    assert "extra_head.weight" in str(error) and "layers.3.downsample.norm.weight" in str(error)


def test_refuses_missing_keys(released):
    _, _, sd = released
    gone = [
        "head_v.2.bias",
        "feature.bert_model.encoder.layer.1.output.dense.weight",
        "adapter_3.0.bias",
        "feature_vit.img_model.layers.1.downsample.norm.weight",
        "vlmo_neck.layers.1.output_v.LayerNorm.weight",
        "cross_encoder.0.attention.self.key.bias",
    ]
    error = _refusal({k: v for k, v in sd.items() if k not in gone})
    assert error.missing == sorted(gone)
    assert all(key in str(error) for key in gone)


def test_missing_neck_linear_is_named_in_both_spellings(released):
    like, _, sd = released
    key = f"feature_neck.{'stage' if like == 'T' else 'stages'}1_linear.bias"
    error = _refusal({k: v for k, v in sd.items() if k != key})
    assert error.missing == ["feature_neck.stages1_linear.bias (or feature_neck.stage1_linear.bias)"]


def test_duplicates_are_optional_as_a_group_but_not_in_part(released):
    _, _, sd = released
    without = {k: v for k, v in sd.items() if not k.startswith("cross_encoder.")}
    _, converted, report = convert_original_state_dict(without, text_num_attention_heads=HEADS)
    assert len(converted) == len(convert_original_state_dict(sd, text_num_attention_heads=HEADS)[1])
    assert report.duplicates_verified == {} and any("cross_encoder" in note for note in report.notes)
    partial = {k: v for k, v in sd.items() if not k.startswith("cross_encoder.1.")}
    assert "cross_encoder.1.output.dense.weight" in _refusal(partial).missing


def test_refuses_missing_keys_needed_for_the_shape(released):
    _, _, sd = released
    error = _refusal(
        {k: v for k, v in sd.items() if k != "feature.bert_model.embeddings.word_embeddings.weight"}
    )
    assert error.missing == ["feature.bert_model.embeddings.word_embeddings.weight"]


def test_refuses_misshapen_keys(released):
    _, _, sd = released
    sd = dict(sd)
    sd["adapter_2.2.weight"] = torch.zeros(32, 5)
    sd["feature.bert_model.encoder.layer.0.attention.self.query.bias"] = torch.zeros(31)
    sd["feature_vit.img_model.layers.1.blocks.0.attn.qkv.weight"] = torch.zeros(7, 7)
    error = _refusal(sd)
    names = [name for name, _, _ in error.misshapen]
    assert (
        "adapter_2.2.weight" in names
        and "feature.bert_model.encoder.layer.0.attention.self.query.bias" in names
    )
    assert "feature_vit.img_model.layers.1.blocks.0.attn.qkv.weight" in names
    assert ("adapter_2.2.weight", (32, 5), (32, 8)) in error.misshapen


def test_refuses_unequal_duplicates(released):
    _, _, sd = released
    sd = dict(sd)
    sd["cross_encoder.1.attention.self.key.weight"] = sd["cross_encoder.1.attention.self.key.weight"] + 1e-3
    sd["cross_encoder.0.output.LayerNorm.bias"] = torch.zeros_like(
        sd["cross_encoder.0.output.LayerNorm.bias"]
    )
    error = _refusal(sd)
    assert error.unequal_duplicates == [
        ("cross_encoder.0.output.LayerNorm.bias", "vlmo_neck.layers.0.output_vl.LayerNorm.bias"),
        ("cross_encoder.1.attention.self.key.weight", "vlmo_neck.layers.1.sa.self.key.weight"),
    ]


def test_head_count_must_be_given_when_not_bert_shaped(released):
    _, _, sd = released
    with pytest.raises(OriginalCheckpointError, match="--text-num-heads"):
        convert_original_state_dict(sd)


def test_both_neck_spellings_prefer_the_one_the_released_forward_reads():
    config = tiny_released_config("T")
    sd = released_layout_state_dict(config, neck="both", seed=3)
    _, converted, report = convert_original_state_dict(sd, text_num_attention_heads=HEADS)
    assert converted["model.neck.level1_linear.weight"] is sd["feature_neck.stages1_linear.weight"]
    assert "feature_neck.stage1_linear.weight" in report.dropped
    assert any("stages1_linear" in note for note in report.notes)


# --------------------------------------------------------------------------------------------------
# Files, processor and command line
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def released_file(tmp_path_factory):
    config = tiny_released_config("B")
    sd = released_layout_state_dict(config, seed=4)
    path = tmp_path_factory.mktemp("released") / "aesformer_b.pth"
    # The way training scripts save: a wrapper, DataParallel prefixes and non-tensor bookkeeping.
    torch.save(
        {"model": {f"module.{k}": v for k, v in sd.items()}, "args": argparse.Namespace(lr=1e-5)}, path
    )
    return path, sd


def test_checkpoint_file_converts_with_processor_and_round_trips(released_file, tmp_path):
    path, sd = released_file
    tokenizer = tiny_tokenizer(max_vocab=100)
    assert len(tokenizer) == 100
    tokenizer.save_pretrained(tmp_path / "tok")
    out = tmp_path / "converted"
    report = convert_original_checkpoint(
        path, out, tokenizer_path=tmp_path / "tok", text_num_attention_heads=HEADS
    )

    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert report.round_trip_verified == len(report.mapped) > 0
    model = AesformerForAesthetic.from_pretrained(out).eval()
    state = model.state_dict()
    assert all(torch.equal(state[target], sd[source]) for target, source in report.mapped.items())

    processor = AesformerProcessor.from_pretrained(out)
    assert processor.image_processor.size in (64, {"height": 64, "width": 64}) or "64" in str(
        processor.image_processor.size
    )
    from PIL import Image

    image = Image.new("RGB", (90, 70), (120, 30, 200))
    with torch.no_grad():
        viaa = model(**processor(images=[image]))
        miaa = model(**processor(images=[image], text=[["lovely sharp colours", "the horizon is tilted"]]))
    assert viaa.score.shape == miaa.score.shape == (1,)
    assert "AesformerProcessor" in report.summary()


def _write_vocab(path: Path, tokens: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(tokens) + "\n")
    return path


def test_vocab_txt_tokenizer_and_vocabulary_size_check(released_file, tmp_path):
    path, _ = released_file
    vocab = tiny_tokenizer(max_vocab=90).get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    with pytest.raises(ValueError, match="90 tokens but the checkpoint's BERT embeds 100"):
        convert_original_checkpoint(
            path,
            tmp_path / "out",
            tokenizer_path=_write_vocab(tmp_path / "v90" / "vocab.txt", tokens),
            text_num_attention_heads=HEADS,
        )
    assert not (tmp_path / "out").exists()
    vocab_file = _write_vocab(tmp_path / "v100" / "vocab.txt", tokens + [f"w{i}" for i in range(10)])
    report = convert_original_checkpoint(
        path, tmp_path / "out", tokenizer_path=vocab_file, text_num_attention_heads=HEADS
    )
    assert "100-token BertTokenizer" in report.saved_processor
    assert len(AesformerProcessor.from_pretrained(tmp_path / "out").tokenizer) == 100


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_unsafe_pickles_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model": Evil()}, handle)
    with pytest.raises(OriginalCheckpointError, match="weights_only=True"):
        conv.load_original_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        conv.load_original_checkpoint(tmp_path / "no_such.pth")


def _cli(argv: list[str]) -> int:
    from aesformer_hf.commands import convert_original

    parser = argparse.ArgumentParser(prog="aesformer-hf")
    convert_original.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_command_line_converts_and_pushes(released_file, tmp_path, capsys, monkeypatch):
    path, _ = released_file
    from aesformer_hf.commands import convert_original

    pushed = []
    monkeypatch.setattr(
        convert_original, "_upload_folder", lambda folder, repo: pushed.append((folder, repo))
    )
    out = tmp_path / "cli"
    code = _cli(
        [
            "convert-original",
            str(path),
            "--output",
            str(out),
            "--text-num-heads",
            "2",
            "--push-to-hub",
            "me/aesformer-b",
            "--label-threshold",
            "6",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "mapped" in printed and "tensors equal their source" in printed and "me/aesformer-b" in printed
    assert pushed == [(str(out), "me/aesformer-b")]
    assert AesformerConfig.from_pretrained(out).label_threshold == 6.0
    # What is pushed loads as remote code: the pipeline and the base model's AutoModel entry are there.
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_aesformer.AesformerModel"
    assert "image-aesthetics" in config["custom_pipelines"] and (out / "pipeline_aesformer.py").is_file()


def test_command_line_refusal_lists_keys(released_file, tmp_path, capsys):
    _, sd = released_file
    broken = {k: v for k, v in sd.items() if k != "heads_vl_l.0.bias"}
    broken["surprise.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    code = _cli(["convert-original", str(path), "--output", str(tmp_path / "o"), "--text-num-heads", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "heads_vl_l.0.bias" in err and "surprise.weight" in err and "broken.pth" in err


# --------------------------------------------------------------------------------------------------
# An existing output folder: refused without --overwrite, replaced whole with it
# --------------------------------------------------------------------------------------------------
def _earlier_model_folder(folder: Path) -> Path:
    """A model folder as an earlier conversion or training run leaves it, with a 128-token tokenizer."""
    from aesformer_hf import AesformerImageProcessor
    from aesformer_hf.testing_utils import tiny_config

    AesformerForAesthetic(tiny_config(image_size=64)).save_pretrained(folder)
    AesformerProcessor(AesformerImageProcessor(size=64), tiny_tokenizer(max_vocab=128)).save_pretrained(
        folder
    )
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_non_empty_output_is_refused_without_overwrite(released_file, tmp_path, capsys):
    path, _ = released_file
    out = _earlier_model_folder(tmp_path / "model")
    before = _snapshot(out)
    capsys.readouterr()
    code = _cli(["convert-original", str(path), "--output", str(out), "--text-num-heads", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(out) in err and "--overwrite" in err
    assert _snapshot(out) == before and not _leftovers(out)


def test_overwrite_replaces_the_whole_folder(released_file, tmp_path, capsys):
    path, sd = released_file
    fresh = tmp_path / "fresh"
    convert_original_checkpoint(path, fresh, text_num_attention_heads=HEADS)
    out = _earlier_model_folder(tmp_path / "model")
    argv = ["convert-original", str(path), "--output", str(out), "--text-num-heads", "2", "--overwrite"]
    assert _cli(argv) == 0
    # No file of the earlier model survives: no tokenizer without --tokenizer, the files of a fresh conversion.
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in fresh.iterdir())
    assert not any(name.startswith(("tokenizer", "vocab", "processor")) for name in os.listdir(out))
    assert not _leftovers(out)

    # With --tokenizer, the folder's tokenizer is the checkpoint's (100 tokens) and comments rate.
    tokenizer = tiny_tokenizer(max_vocab=100)
    tokenizer.save_pretrained(tmp_path / "tok")
    assert _cli([*argv, "--tokenizer", str(tmp_path / "tok")]) == 0
    capsys.readouterr()
    model = AesformerForAesthetic.from_pretrained(out).eval()
    processor = AesformerProcessor.from_pretrained(out)
    assert len(processor.tokenizer) == model.config.text_config.vocab_size == 100
    from PIL import Image

    image = Image.new("RGB", (64, 64), (10, 200, 30))
    with torch.no_grad():
        rated = model(**processor(images=[image], text=[["lovely sharp colours", "the horizon is tilted"]]))
    assert rated.score.shape == (1,)
    assert not _leftovers(out)


def test_failed_overwrite_leaves_the_earlier_folder(released_file, tmp_path, monkeypatch):
    path, _ = released_file
    out = _earlier_model_folder(tmp_path / "model")
    before = _snapshot(out)

    def broken(folder, converted):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(conv, "verify_converted_folder", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        convert_original_checkpoint(path, out, text_num_attention_heads=HEADS, overwrite=True)
    assert _snapshot(out) == before and not _leftovers(out)


def test_overwrite_never_replaces_a_folder_that_is_not_a_model(released_file, tmp_path):
    path, _ = released_file
    out = tmp_path / "project"
    (out / "notes").mkdir(parents=True)
    (out / "config.json").write_text("{}")
    with pytest.raises(conv.OutputExistsError, match="holds folders \\(notes\\)"):
        convert_original_checkpoint(path, out, text_num_attention_heads=HEADS, overwrite=True)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.csv").write_text("a,b\n")
    with pytest.raises(conv.OutputExistsError, match="no config.json"):
        convert_original_checkpoint(path, tmp_path / "plain", text_num_attention_heads=HEADS, overwrite=True)
    assert (out / "notes").is_dir() and (tmp_path / "plain" / "data.csv").is_file()


def test_command_line_names_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    code = _cli(["convert-original", str(tmp_path / "no_such.pth"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no_such.pth" in err
