"""AesFormer model: outputs, equivalences with independent references, saving, Auto classes, bad input."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from aesformer_hf import AesformerConfig, AesformerForAesthetic, AesformerModel
from aesformer_hf.models.aesformer.modeling_aesformer import AesformerFusionLayer
from aesformer_hf.testing_utils import tiny_config

from ...conftest import IMAGE_SIZE


def text_inputs(batch=3, length=9, pad_last=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 100, (batch, length), generator=generator)
    input_ids[:, 0] = 2  # [CLS]
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    if batch > 1 and pad_last:
        attention_mask[-1, -pad_last:] = 0
        input_ids[-1, -pad_last:] = 0
    return input_ids, attention_mask


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------
def test_viaa_outputs_shapes_and_ranges(model, pixel_values):
    out = model(pixel_values)
    cfg = model.config
    assert out.logits.shape == (3, cfg.num_bins)
    assert out.image_logits is None and out.text_logits is None
    torch.testing.assert_close(out.distribution.sum(-1), torch.ones(3))
    assert ((out.score >= cfg.score_min) & (out.score <= cfg.score_max)).all()
    # Independent float64 expected value and label.
    dist64 = torch.softmax(out.logits.double(), -1)
    expected = (dist64 * torch.linspace(1, 10, 10, dtype=torch.float64)).sum(-1)
    torch.testing.assert_close(out.score.double(), expected, atol=1e-5, rtol=0)
    assert torch.equal(out.label, (expected > 5.0).long())


def test_miaa_mixes_the_two_heads(model, pixel_values):
    input_ids, attention_mask = text_inputs()
    out = model(pixel_values, input_ids=input_ids, attention_mask=attention_mask)
    assert out.image_logits.shape == out.text_logits.shape == (3, 10)
    mixed = 0.5 * torch.softmax(out.image_logits.double(), -1) + 0.5 * torch.softmax(
        out.text_logits.double(), -1
    )
    torch.testing.assert_close(out.distribution.double(), mixed, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.softmax(out.logits, -1), out.distribution, atol=1e-6, rtol=0)
    assert out.image_embeds.shape == out.text_embeds.shape == (3, model.config.fusion_hidden_size)
    torch.testing.assert_close(out.image_embeds.norm(dim=-1), torch.ones(3))


def test_miaa_text_weight_is_a_config_field(pixel_values):
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(miaa_text_weight=1.0)).eval()
    input_ids, attention_mask = text_inputs()
    out = model(pixel_values, input_ids=input_ids, attention_mask=attention_mask)
    torch.testing.assert_close(out.distribution, torch.softmax(out.text_logits, -1), atol=1e-6, rtol=0)


def test_score_range_follows_config(pixel_values):
    model = AesformerForAesthetic(tiny_config(num_bins=7, score_min=1.0, score_max=7.0, label_threshold=5.0))
    out = model.eval()(pixel_values)
    assert out.logits.shape == (3, 7)
    expected = (out.distribution * torch.arange(1, 8, dtype=torch.float32)).sum(-1)
    torch.testing.assert_close(out.score, expected)


def test_swin_levels_follow_the_released_stage_arithmetic(model, pixel_values):
    """The released Swin runs each stage's blocks, then its patch merging, and the levels are read after the
    merging. Rebuilt here block by block in that order (timm's merging modules sit at the start of the next stage,
    so `layers[i + 1].downsample` is the released stage i's merging)."""
    levels = model.model.get_swin_levels(pixel_values)
    swin = model.model.vision_model.timm_model
    with torch.no_grad():
        hidden = swin.patch_embed(pixel_values)
        released_levels = []
        for stage_index in range(4):
            for block in swin.layers[stage_index].blocks:
                hidden = block(hidden)
            if stage_index < 3:
                hidden = swin.layers[stage_index + 1].downsample(hidden)
            released_levels.append(hidden)
    for ours, released in zip((levels.level1, levels.level2, levels.level3, levels.level4), released_levels):
        torch.testing.assert_close(ours, released, rtol=0, atol=1e-6)
    # Not timm's stage outputs: those have already run the next stage's blocks.
    intermediates = swin.forward_intermediates(pixel_values, indices=4, norm=False, intermediates_only=True)
    assert not torch.allclose(levels.level1.permute(0, 3, 1, 2), intermediates[1], atol=1e-3)
    torch.testing.assert_close(levels.level4.permute(0, 3, 1, 2), intermediates[3])


def test_level_adapter_is_a_residual_bottleneck_in_float64():
    """x + W_up GELU(W_down x + b_down) + b_up, computed in numpy float64 from the adapter's weights."""
    from aesformer_hf.models.aesformer.modeling_aesformer import AesformerLevelAdapter

    torch.manual_seed(0)
    adapter = AesformerLevelAdapter(16, 4)
    for linear in (adapter.down, adapter.up):
        torch.nn.init.normal_(linear.weight, std=0.5)
        torch.nn.init.normal_(linear.bias, std=0.5)
    x = torch.randn(2, 5, 16)
    w1, b1 = adapter.down.weight.double().detach().numpy(), adapter.down.bias.double().detach().numpy()
    w2, b2 = adapter.up.weight.double().detach().numpy(), adapter.up.bias.double().detach().numpy()
    h = x.double().numpy() @ w1.T + b1
    gelu = 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
    expected = x.double().numpy() + gelu @ w2.T + b2
    np.testing.assert_allclose(adapter(x).detach().double().numpy(), expected, atol=1e-5)


def test_adapters_start_near_identity(model, pixel_values):
    levels = model.model.get_swin_levels(pixel_values)
    tokens = model.model.project_image_tokens(levels.level4.flatten(1, 2))
    adapted = model.model.neck.adapters[3](tokens)
    assert (adapted - tokens).abs().max() < 0.05 * tokens.abs().max()


def test_neck_pools_levels_to_the_last_grid_like_fixed_windows(model, pixel_values):
    levels = model.model.get_swin_levels(pixel_values)
    neck = model.model.neck
    tokens = neck(levels, model.model.project_image_tokens)
    grid = levels.level4.shape[1]
    assert tokens.shape == (3, 4 * grid * grid, model.config.fusion_hidden_size)
    # Reference: fixed-size average pooling (4x4 for L1, 2x2 for L2 at this geometry), then Linear.
    level1 = F.avg_pool2d(levels.level1.permute(0, 3, 1, 2), 4).flatten(2).transpose(1, 2)
    expected = neck.adapters[0](model.model.project_image_tokens(neck.level1_linear(level1)))
    torch.testing.assert_close(tokens[:, : grid * grid], expected)


def test_fusion_layer_equals_a_bert_layer_with_the_same_weights():
    config = tiny_config()
    bert_config = BertConfig(**config.text_config.to_dict())
    bert_config._attn_implementation = "eager"
    torch.manual_seed(0)
    bert_layer = BertLayer(bert_config).eval()
    fusion = AesformerFusionLayer(config).eval()
    fusion.self_attention.query.load_state_dict(bert_layer.attention.self.query.state_dict())
    fusion.self_attention.key.load_state_dict(bert_layer.attention.self.key.state_dict())
    fusion.self_attention.value.load_state_dict(bert_layer.attention.self.value.state_dict())
    fusion.self_attention.output_dense.load_state_dict(bert_layer.attention.output.dense.state_dict())
    fusion.self_attention.output_layer_norm.load_state_dict(
        bert_layer.attention.output.LayerNorm.state_dict()
    )
    expert = fusion.vision_language_expert
    expert.intermediate_dense.load_state_dict(bert_layer.intermediate.dense.state_dict())
    expert.output_dense.load_state_dict(bert_layer.output.dense.state_dict())
    expert.output_layer_norm.load_state_dict(bert_layer.output.LayerNorm.state_dict())
    hidden = torch.randn(2, 6, config.fusion_hidden_size)
    mask = torch.zeros(2, 1, 1, 6)
    mask[1, ..., 4:] = torch.finfo(torch.float32).min
    reference = bert_layer(hidden, attention_mask=mask)
    reference = reference[0] if isinstance(reference, tuple) else reference
    ours, _ = fusion(hidden, mask, mode="multimodal")
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    # The vision expert is a different set of weights: the modes really route differently.
    vision, _ = fusion(hidden, mask, mode="vision")
    assert not torch.allclose(vision, ours)


def test_hidden_states_and_attentions(model, pixel_values):
    input_ids, attention_mask = text_inputs()
    out = model(pixel_values, input_ids, attention_mask, output_attentions=True, output_hidden_states=True)
    tokens = 4 + input_ids.shape[1]  # 2x2 image grid at 64 px
    assert len(out.hidden_states) == model.config.fusion_layers + 1
    assert len(out.attentions) == model.config.fusion_layers
    assert out.attentions[0].shape == (3, model.config.fusion_num_attention_heads, tokens, tokens)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(3, 2, tokens))
    # Padded comment tokens get no attention.
    assert out.attentions[0][-1, :, :, -3:].abs().max() == 0


# --------------------------------------------------------------------------------------------------
# Equivalences
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("multimodal", [False, True])
def test_eager_and_sdpa_agree(pixel_values, multimodal):
    torch.manual_seed(0)
    eager = AesformerForAesthetic(tiny_config()).eval()
    sdpa = copy.deepcopy(eager)
    eager.set_attn_implementation("eager")
    sdpa.set_attn_implementation("sdpa")
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    kwargs = {}
    if multimodal:
        kwargs = dict(zip(("input_ids", "attention_mask"), text_inputs()))
    torch.testing.assert_close(
        eager(pixel_values, **kwargs).logits, sdpa(pixel_values, **kwargs).logits, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("multimodal", [False, True])
def test_batch_equals_single(model, pixel_values, multimodal):
    kwargs = {}
    if multimodal:
        input_ids, attention_mask = text_inputs()
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    batched = model(pixel_values, **kwargs).distribution
    for i in range(3):
        single_kwargs = {}
        if multimodal:
            length = int(kwargs["attention_mask"][i].sum())
            single_kwargs = {
                "input_ids": kwargs["input_ids"][i : i + 1, :length],
                "attention_mask": kwargs["attention_mask"][i : i + 1, :length],
            }
        single = model(pixel_values[i : i + 1], **single_kwargs).distribution
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(pixel_values):
    torch.manual_seed(0)
    config = tiny_config(fusion_hidden_dropout_prob=0.0, fusion_attention_dropout_prob=0.0)
    config.vision_config.model_args["drop_path_rate"] = 0.0  # stochastic depth would differ between runs
    plain = AesformerForAesthetic(config)
    for module in plain.modules():  # no dropout anywhere, so both runs compute the same function
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    checkpointed = copy.deepcopy(plain)
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.model.vision_model.timm_model.layers[0].grad_checkpointing
    assert checkpointed.model.fusion_layers[0].gradient_checkpointing
    plain.train()
    checkpointed.train()
    labels = torch.softmax(torch.randn(3, 10), -1)
    input_ids, attention_mask = text_inputs()
    for kwargs in ({}, {"input_ids": input_ids, "attention_mask": attention_mask}):
        plain.zero_grad()
        checkpointed.zero_grad()
        loss_a = plain(pixel_values, labels=labels, **kwargs).loss
        loss_b = checkpointed(pixel_values, labels=labels, **kwargs).loss
        loss_a.backward()
        loss_b.backward()
        torch.testing.assert_close(loss_a, loss_b)
        grad_a = plain.model.vision_model.timm_model.layers[0].blocks[0].attn.qkv.weight.grad
        grad_b = checkpointed.model.vision_model.timm_model.layers[0].blocks[0].attn.qkv.weight.grad
        torch.testing.assert_close(grad_a, grad_b, atol=1e-6, rtol=1e-4)


def test_training_step_changes_only_trainable_weights(pixel_values):
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config()).train()
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith(("viaa_", "model.neck."))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(pixel_values, labels=torch.softmax(torch.randn(3, 10), -1)).loss
    loss.backward()
    optimizer.step()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and name.endswith("weight"):
            assert not torch.equal(parameter, before[name]), f"{name} should have changed"
        elif not parameter.requires_grad:
            assert torch.equal(parameter, before[name]), f"{name} is frozen but changed"


def test_score_labels_train_the_mean_score(model, pixel_values):
    scores = torch.tensor([2.0, 5.5, 9.0])
    out = model(pixel_values, labels=scores)
    torch.testing.assert_close(out.loss, F.mse_loss(out.score, scores))


def test_vision_loss_is_the_adaptation_objective_in_float64(model, pixel_values):
    """VIAA `outputs.loss` = EMD_2 + 10 * MSE over the bin probabilities, computed here in numpy float64."""
    labels = torch.softmax(torch.randn(3, 10), -1)
    out = model(pixel_values, labels=labels)
    p = out.distribution.detach().double().numpy()
    t = labels.double().numpy()
    emd = np.mean(np.sqrt(np.mean((np.cumsum(p, 1) - np.cumsum(t, 1)) ** 2, axis=1)))
    mse = np.mean((p - t) ** 2)
    assert abs(out.loss.item() - (emd + 10 * mse)) < 3e-6


def test_multimodal_loss_is_both_heads_emd_in_float64(pixel_values):
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config()).eval()
    input_ids, attention_mask = text_inputs()
    labels = torch.softmax(torch.randn(3, 10), -1)
    out = model(pixel_values, input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    t = np.cumsum(labels.double().numpy(), 1)
    reference = 0.0
    for logits in (out.image_logits, out.text_logits):
        p = np.cumsum(torch.softmax(logits.detach().double(), -1).numpy(), 1)
        reference += np.mean(np.sqrt(np.mean((p - t) ** 2, axis=1)))
    assert abs(out.loss.item() - reference) < 5e-6  # each EMD is within eps^(1/2) = 1e-6 of exact


def test_bad_labels_name_the_rows(model, pixel_values):
    with pytest.raises(ValueError, match=r"rows \[1\] contain NaN"):
        model(pixel_values, labels=torch.tensor([5.0, float("nan"), 3.0]))
    bad = torch.softmax(torch.randn(3, 10), -1)
    bad[2] *= 2
    with pytest.raises(ValueError, match=r"rows \[2\] sum to"):
        model(pixel_values, labels=bad)
    with pytest.raises(ValueError, match="labels have 7 bins"):
        model(pixel_values, labels=torch.softmax(torch.randn(3, 7), -1))


# --------------------------------------------------------------------------------------------------
# Saving, Auto classes, vision-only
# --------------------------------------------------------------------------------------------------
def test_save_and_reload_gives_identical_outputs_with_safetensors(model, pixel_values, tmp_path):
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith(".bin") for f in files)
    reloaded = AesformerForAesthetic.from_pretrained(tmp_path).eval()
    input_ids, attention_mask = text_inputs()
    for kwargs in ({}, {"input_ids": input_ids, "attention_mask": attention_mask}):
        torch.testing.assert_close(
            model(pixel_values, **kwargs).logits, reloaded(pixel_values, **kwargs).logits, atol=0, rtol=0
        )
    torch.testing.assert_close(reloaded.bin_values, torch.linspace(1, 10, 10))


def test_auto_classes_resolve(saved_model_dir):
    assert isinstance(AutoConfig.from_pretrained(saved_model_dir), AesformerConfig)
    assert isinstance(AutoModelForImageClassification.from_pretrained(saved_model_dir), AesformerForAesthetic)
    assert isinstance(AutoModel.from_config(AutoConfig.from_pretrained(saved_model_dir)), AesformerModel)


def test_vision_only_matches_full_viaa_and_is_smaller(model, pixel_values, tmp_path):
    model.save_pretrained(tmp_path)
    vision_only = AesformerForAesthetic.from_pretrained(tmp_path, vision_only=True).eval()
    assert vision_only.config.is_vision_only and vision_only.model.text_model is None
    torch.testing.assert_close(vision_only(pixel_values).logits, model(pixel_values).logits, atol=0, rtol=0)
    assert vision_only.num_parameters() < 0.8 * model.num_parameters()
    with pytest.raises(ValueError, match="vision-only"):
        vision_only(pixel_values, input_ids=torch.ones(3, 4, dtype=torch.long))
    # Built directly from a config without text tower.
    direct = AesformerForAesthetic(tiny_config(vision_only=True))
    assert direct.miaa_text_head is None and direct.model.fusion_layers[0].vision_language_expert is None


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, message",
    [
        ((3, 1, IMAGE_SIZE, IMAGE_SIZE), r"expected \(batch, 3"),
        ((3, IMAGE_SIZE, IMAGE_SIZE), r"expected \(batch, 3"),
        ((3, 3, 32, 32), "expects"),
    ],
)
def test_wrong_image_shape(model, shape, message):
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_nan_pixels(model, pixel_values):
    pixel_values[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        model(pixel_values)


def test_images_and_comments_of_different_lengths(model, pixel_values):
    input_ids, attention_mask = text_inputs(batch=2)
    with pytest.raises(ValueError, match="3 images but 2 comment"):
        model(pixel_values, input_ids=input_ids, attention_mask=attention_mask)


def test_empty_comment_in_miaa_batch(model, pixel_values):
    input_ids, attention_mask = text_inputs()
    attention_mask[1, 2:] = 0
    with pytest.raises(ValueError, match=r"Images \[1\].*no comment tokens"):
        model(pixel_values, input_ids=input_ids, attention_mask=attention_mask)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.full((3, 7), 1 / 7), "7 bins; this model predicts 10"),
        (torch.full((3, 10), 0.2), "summing to 1"),
        (torch.tensor([1.0, float("nan"), 3.0]), r"rows \[1\] contain NaN"),
        (torch.ones(2, 10) / 10, "2 rows for a batch of 3"),
    ],
)
def test_bad_labels(model, pixel_values, labels, message):
    with pytest.raises(ValueError, match=message):
        model(pixel_values, labels=labels)


def test_unknown_vision_architecture():
    with pytest.raises(ValueError, match="resnet50.*not supported"):
        AesformerConfig(vision_config={"architecture": "resnet50"})


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_bins": 1}, "num_bins"),
        ({"score_min": 5.0, "score_max": 1.0}, "score_max"),
        ({"label_threshold": 11.0}, "label_threshold"),
        ({"contrastive_temperature": 1.0}, "contrastive_temperature"),
    ],
)
def test_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**kwargs)


def test_checkpoint_whose_shapes_do_not_fit_the_config(model, tmp_path):
    model.save_pretrained(tmp_path)
    with pytest.raises(Exception, match="(?i)size mismatch|mismatch|shape"):
        AesformerForAesthetic.from_pretrained(tmp_path, config=tiny_config(num_bins=7, score_max=7.0))


def test_presets():
    base = AesformerConfig.from_variant("aesformer-b")
    assert base.vision_config.architecture == "swin_base_patch4_window7_224"
    assert AesformerConfig().vision_config.architecture == "swin_tiny_patch4_window7_224"
    assert AesformerConfig().text_config.vocab_size == 28996 and AesformerConfig().fusion_layers == 2
    with pytest.raises(ValueError, match="Unknown AesFormer variant"):
        AesformerConfig.from_variant("huge")


def test_adapters_start_near_identity_with_their_own_std():
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(text_hidden_size=64, adapter_init_std=0.001))
    for adapter in model.model.neck.adapters:
        for linear in (adapter.down, adapter.up):
            assert linear.weight.std().item() < 0.002 and linear.bias.abs().max() == 0
    # Other Linears keep initializer_range (0.02).
    assert 0.015 < model.viaa_head.dense.weight.std().item() < 0.025


def test_automodel_loads_the_base_model_weights_from_a_task_checkpoint(model, tmp_path, pixel_values):
    model.save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, AesformerModel)
    torch.testing.assert_close(
        base(pixel_values).last_hidden_state, model.model(pixel_values).last_hidden_state
    )


def test_set_score_scale_reads_the_bins_on_another_scale(model, pixel_values, tmp_path):
    before = model(pixel_values)
    model.set_score_scale(0.0, 1.0, 0.5)
    after = model(pixel_values)
    torch.testing.assert_close(after.distribution, before.distribution)
    torch.testing.assert_close(after.score, (after.distribution * torch.linspace(0, 1, 10)).sum(-1))
    assert torch.equal(after.label, (after.score > 0.5).long())
    model.save_pretrained(tmp_path)
    reloaded = AesformerForAesthetic.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(pixel_values).score, after.score)
    with pytest.raises(ValueError, match="label_threshold"):
        model.set_score_scale(0.0, 1.0, 5.0)
    assert model.config.label_threshold == 0.5  # a refused change leaves the model as it was
