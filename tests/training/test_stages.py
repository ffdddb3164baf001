"""Which parameters each stage trains, and that training leaves the frozen ones bit-identical."""

import pytest
import torch

from aesformer_hf.training import (
    ADAPTATION,
    MULTIMODAL,
    AesformerDataCollator,
    AesformerTrainer,
    is_trained_in_stage,
    prepare_model_for_stage,
)

from .conftest import make_args, make_model

ADAPTATION_TRAINED = ("model.neck.", ".vision_expert.", "viaa_norm.", "viaa_head.")


def test_adaptation_trains_only_the_vision_only_parts():
    model = make_model()
    counts = prepare_model_for_stage(model, ADAPTATION)
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == any(part in name for part in ADAPTATION_TRAINED), name
    assert 0 < counts.trainable < counts.total
    assert counts.total == sum(p.numel() for p in model.parameters())


def test_multimodal_trains_what_the_multimodal_path_uses():
    model = make_model()
    prepare_model_for_stage(model, MULTIMODAL)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert all(any(part in name for part in ADAPTATION_TRAINED + ("timm_model.norm.",)) for name in frozen)
    for name in (
        "contrastive_temperature",
        "model.image_projection.weight",
        "miaa_text_head.out_proj.weight",
    ):
        assert is_trained_in_stage(name, MULTIMODAL)
    assert is_trained_in_stage("model.fusion_layers.0.self_attention.query.weight", MULTIMODAL)
    assert not is_trained_in_stage("model.fusion_layers.0.self_attention.query.weight", ADAPTATION)


@pytest.mark.parametrize("stage", [MULTIMODAL, ADAPTATION])
def test_every_trainable_parameter_gets_a_gradient(stage, aesthetics, training_processor, tmp_path):
    """What DDP with find_unused_parameters=False needs: no trainable parameter is left out of the graph."""
    model = make_model()
    prepare_model_for_stage(model, stage)
    collator = AesformerDataCollator(training_processor, multimodal=stage == MULTIMODAL, num_bins=10)
    trainer = AesformerTrainer(
        model=model,
        args=make_args(tmp_path, stage=stage),
        data_collator=collator,
        processing_class=training_processor,
    )
    batch = collator([aesthetics["train"][i] for i in range(4)])
    model.train()
    trainer.compute_loss(model, batch).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_vision_only_model_cannot_train_multimodal():
    with pytest.raises(ValueError, match="vision-only"):
        prepare_model_for_stage(make_model(vision_only=True), MULTIMODAL)
    prepare_model_for_stage(make_model(vision_only=True), ADAPTATION)


def test_unknown_stage():
    with pytest.raises(ValueError, match="not an AesFormer stage"):
        is_trained_in_stage("viaa_head.dense.weight", "pretraining")


def test_adaptation_steps_leave_frozen_weights_bit_identical(tmp_path, aesthetics, training_processor):
    model = make_model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = AesformerTrainer(
        model=model,
        args=make_args(tmp_path, stage=ADAPTATION, max_steps=3, learning_rate=1e-2),
        train_dataset=aesthetics["train"],
        processing_class=training_processor,
    )
    optimised = {id(p) for group in trainer.create_optimizer().param_groups for p in group["params"]}
    trainer.train()
    for name, parameter in model.named_parameters():
        trained = is_trained_in_stage(name, ADAPTATION)
        assert (id(parameter) in optimised) == trained, name
        if trained:
            continue
        assert torch.equal(parameter.detach(), before[name]), f"frozen {name} changed"
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert any(".vision_expert." in n for n in changed) and any("adapters" in n for n in changed)
    assert "viaa_head.out_proj.weight" in changed
