"""The names and shapes the configuration module holds once, and the modules that read them agree with it."""

from __future__ import annotations

import pytest
import timm
import torch

from aesformer_hf.models.aesformer import configuration_aesformer as registry
from aesformer_hf.models.aesformer.configuration_aesformer import (
    MIAA,
    MULTIMODAL_MODE,
    PIPELINE_TASK,
    STAGES,
    VARIANTS,
    VIAA,
    VISION_MODE,
    AesformerConfig,
    variant_name,
)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_variant_is_its_timm_swin(name):
    """The registry's depths, heads and widths are those of the timm architecture it names (built on meta)."""
    variant = VARIANTS[name]
    with torch.device("meta"):
        swin = timm.create_model(variant.swin, pretrained=False)
    assert [len(stage.blocks) for stage in swin.layers] == list(variant.depths)
    assert [stage.blocks[0].attn.num_heads for stage in swin.layers] == list(variant.num_heads)
    assert [info["num_chs"] for info in swin.feature_info] == list(variant.stage_widths)
    assert variant.stage_widths[0] == variant.embed_dim
    assert variant.pretrained_swin.startswith(f"timm/{variant.swin}.")


def test_variant_names_and_views_come_from_the_registry():
    for name, variant in VARIANTS.items():
        for alias in (name, variant.title, *variant.aliases, f"  {variant.title.upper()} "):
            assert variant_name(alias) == name
        config = AesformerConfig.from_variant(variant.title)
        assert config.vision_config.architecture == variant.swin and config.released_variant == name
    assert variant_name("custom") == "custom"
    assert registry.SWIN_VARIANTS == {name: v.vision_config for name, v in VARIANTS.items()}
    assert registry.VARIANT_ALIASES == {"t": "tiny", "s": "small", "b": "base"} | {
        f"aesformer-{short}": name for short, name in (("t", "tiny"), ("s", "small"), ("b", "base"))
    }


def test_the_converter_reads_the_variant_registry():
    from aesformer_hf.models.aesformer import convert_aesformer_original_to_hf as converter

    assert converter.RELEASED_SWINS == {name: variant.swin_shape for name, variant in VARIANTS.items()}


def test_training_presets_and_model_cards_start_from_the_registry_weights():
    from aesformer_hf.hub.model_card import PRETRAINED_TOWERS, default_base_models

    for name, variant in VARIANTS.items():
        assert PRETRAINED_TOWERS[variant.swin] == variant.pretrained_swin
        assert default_base_models(AesformerConfig.from_variant(name).to_dict())[0] == variant.pretrained_swin


def test_mode_names_map_both_ways_and_every_consumer_uses_them():
    from aesformer_hf import exporting
    from aesformer_hf.commands import export as export_command
    from aesformer_hf.hub import model_card
    from aesformer_hf.visualization import attention_maps

    assert registry.PAPER_MODE_NAMES == {MULTIMODAL_MODE: MIAA, VISION_MODE: VIAA}
    assert registry.MODE_OF_PAPER_NAME == {MIAA: MULTIMODAL_MODE, VIAA: VISION_MODE}
    assert set(exporting.MODES) == set(export_command.EXPORT_MODES) == {MULTIMODAL_MODE, VISION_MODE}
    assert export_command.EXPORT_MODES[0] == VISION_MODE  # `export --mode` defaults to the vision path
    assert (attention_maps.MIAA, attention_maps.VIAA) == (MIAA, VIAA)
    assert set(model_card.MODES) == {MIAA, VIAA}


def test_stages_are_one_list_with_their_modes():
    from aesformer_hf.hub import model_card
    from aesformer_hf.training import stages
    from aesformer_hf.training.training_args import AesformerTrainingArguments

    assert stages.STAGES == model_card.STAGES == STAGES
    assert (stages.MULTIMODAL, stages.ADAPTATION) == STAGES
    assert registry.MODE_OF_STAGE == {stages.MULTIMODAL: MULTIMODAL_MODE, stages.ADAPTATION: VISION_MODE}
    assert model_card._MODE_OF_STAGE == {stages.MULTIMODAL: MIAA, stages.ADAPTATION: VIAA}
    default = AesformerTrainingArguments.__dataclass_fields__["stage"].default
    assert default == stages.MULTIMODAL


def test_the_pipeline_task_is_one_name():
    from transformers.pipelines import PIPELINE_REGISTRY

    import aesformer_hf
    from aesformer_hf.data import ava, jas, photonet
    from aesformer_hf.hub import model_card, remote_code

    assert PIPELINE_TASK in PIPELINE_REGISTRY.get_supported_tasks()
    assert aesformer_hf.PIPELINE_TASK == remote_code.PIPELINE_TASK == PIPELINE_TASK
    assert PIPELINE_TASK in model_card.TAGS
    for builder in (ava.AVA_BUILDER, photonet.PHOTONET_BUILDER, jas.JAS_BUILDER):
        assert PIPELINE_TASK in builder.description.tags  # the dataset cards' Hub tag
    assert AesformerConfig.pipeline_tasks_registered_locally == (PIPELINE_TASK,)


def test_bin_values_are_one_formula():
    from aesformer_hf.data.schema import DATASET_SPECS
    from aesformer_hf.metrics import resolve_bin_values

    for spec in DATASET_SPECS.values():
        config = AesformerConfig(
            num_bins=spec.num_bins,
            score_min=spec.score_min,
            score_max=spec.score_max,
            label_threshold=spec.label_threshold,
        )
        assert config.bin_values == spec.bin_values()
        # The metric keeps its own numpy arithmetic on purpose (an independent check); it must agree.
        expected = resolve_bin_values(spec.num_bins, score_min=spec.score_min, score_max=spec.score_max)
        assert config.bin_values == pytest.approx(expected.tolist(), abs=1e-12)


def test_the_collator_and_the_model_check_distributions_alike():
    """`distribution_faults` for both: a row off 1 by less than the tolerance passes both, more fails both."""
    from aesformer_hf import AesformerImageProcessor
    from aesformer_hf.models.aesformer.losses_aesformer import DISTRIBUTION_SUM_TOLERANCE, check_labels
    from aesformer_hf.training.collator import AesformerDataCollator

    inside, outside = 1 + DISTRIBUTION_SUM_TOLERANCE / 2, 1 + DISTRIBUTION_SUM_TOLERANCE * 2
    collator = AesformerDataCollator(AesformerImageProcessor(size=32), multimodal=False, num_bins=2)
    for total, ok in ((inside, True), (outside, False)):
        row = [total / 2, total / 2]
        if ok:
            check_labels(torch.tensor([row]), batch=1, num_bins=2)
            collator._distributions([{"distribution": row}])
            continue
        with pytest.raises(ValueError, match="sum to"):
            check_labels(torch.tensor([row]), batch=1, num_bins=2)
        with pytest.raises(ValueError, match="sums to"):
            collator._distributions([{"distribution": row}])
