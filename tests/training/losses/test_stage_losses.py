"""The stage losses: the model's `outputs.loss` (+ the weighted contrastive term), predictions, state checkpoints."""

import copy

import pytest
import torch

from aesformer_hf import AesformerForAesthetic
from aesformer_hf.testing_utils import tiny_config
from aesformer_hf.training import MOMENTUM_STATE_FILENAME, AesformerDataCollator
from aesformer_hf.training.losses import (
    LOSS_STATE_FILENAME,
    STAGE_LOSSES,
    AdaptationStageLoss,
    EarthMoversDistanceLoss,
    ImageTextContrastiveLoss,
    MultimodalStageLoss,
    StageLoss,
    unwrap_model,
)


def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    return AesformerForAesthetic(tiny_config(image_size=64, **overrides))


def _batch(aesthetics, processor, rows=4, scores=False):
    collator = AesformerDataCollator(processor, num_bins=10, training=False)
    batch = collator([aesthetics["train"][i] for i in range(rows)])
    if scores:  # mean scores on a 0..1 scale instead of distributions
        batch["labels"] = torch.linspace(0.2, 0.8, rows)
    return batch


def _seeded(function):
    torch.manual_seed(1234)  # the same dropout masks for both computations compared
    return function()


def test_each_stage_has_its_loss():
    assert STAGE_LOSSES == {"multimodal": MultimodalStageLoss, "adaptation": AdaptationStageLoss}


def test_multimodal_loss_is_the_models_loss_plus_the_weighted_contrastive_term(
    aesthetics, training_processor
):
    model = _model().train()
    batch = _batch(aesthetics, training_processor)
    loss = MultimodalStageLoss(model, contrastive_weight=0.25, queue_size=6)
    momentum_before = copy.deepcopy(loss.momentum_contrast)

    result = _seeded(lambda: loss(model, batch))
    expected = _seeded(lambda: model(**batch))

    # The contrastive term, by hand: one EMA step of the momentum copy, its features, no queue yet.
    momentum_before.update(model)
    image_m, text_m = momentum_before.encode(
        batch["pixel_values"], batch["input_ids"], batch["attention_mask"]
    )
    itc = ImageTextContrastiveLoss()(
        expected.image_embeds, expected.text_embeds, image_m, text_m, model.contrastive_temperature
    )
    torch.testing.assert_close(result.parts["contrastive_loss"], itc)
    torch.testing.assert_close(result.loss, expected.loss + 0.25 * itc)
    assert result.loss.requires_grad
    torch.testing.assert_close(result.predictions["distribution"], expected.distribution)
    for head in ("image", "text"):
        distribution = torch.softmax(getattr(expected, f"{head}_logits"), dim=-1)
        torch.testing.assert_close(result.predictions[f"{head}_distribution"], distribution)
        torch.testing.assert_close(
            result.parts[f"{head}_head_loss"], EarthMoversDistanceLoss()(distribution, batch["labels"])
        )
    assert list(result.predictions) == ["distribution", "image_distribution", "text_distribution"]
    assert result.parts["temperature"] is model.contrastive_temperature
    assert int(loss.momentum_contrast.queue_length) == 4  # the batch's features were enqueued


def test_multimodal_loss_weights_and_evaluation(aesthetics, training_processor):
    """In evaluation the contrastive term is left out and the momentum state does not move."""
    model = _model().eval()
    batch = _batch(aesthetics, training_processor)
    loss = MultimodalStageLoss(model, image_head_weight=0.3, text_head_weight=2.0, queue_size=6)
    twin = {name: p.clone() for name, p in loss.momentum_contrast.named_parameters()}
    with torch.no_grad():
        result = loss(model, batch)
        expected = model(**batch)
        default = MultimodalStageLoss(model, contrastive_weight=0.0)(model, batch)
    assert set(result.parts) == {"image_head_loss", "text_head_loss"}
    torch.testing.assert_close(default.loss, expected.loss)
    torch.testing.assert_close(
        result.loss, 0.3 * result.parts["image_head_loss"] + 2.0 * result.parts["text_head_loss"]
    )
    assert not torch.allclose(result.loss, expected.loss)
    assert int(loss.momentum_contrast.queue_length) == 0
    for name, p in loss.momentum_contrast.named_parameters():
        assert torch.equal(p, twin[name]), name


@pytest.mark.parametrize("scores", [False, True])
def test_adaptation_loss_is_the_models_viaa_loss(aesthetics, training_processor, scores):
    """EMD + 10 x MSE on distributions, the mean-score MSE on scores; comments in the batch are not used."""
    model = _model(score_min=0.0, score_max=1.0, label_threshold=0.5).eval()
    batch = _batch(aesthetics, training_processor, scores=scores)
    with torch.no_grad():
        result = AdaptationStageLoss(model)(model, batch)
        expected = model(pixel_values=batch["pixel_values"], labels=batch["labels"])
    torch.testing.assert_close(result.loss, expected.loss)
    torch.testing.assert_close(result.predictions["distribution"], expected.distribution)
    assert result.parts == {}
    if not scores:
        with torch.no_grad():
            emd_only = AdaptationStageLoss(emd_weight=2.0, mse_weight=0.0)(model, batch).loss
        torch.testing.assert_close(
            emd_only, 2 * EarthMoversDistanceLoss()(expected.distribution, batch["labels"])
        )


def test_multimodal_loss_on_scores_is_the_models_loss(aesthetics, training_processor):
    model = _model(score_min=0.0, score_max=1.0, label_threshold=0.5).eval()
    batch = _batch(aesthetics, training_processor, scores=True)
    with torch.no_grad():
        result = MultimodalStageLoss(model, contrastive_weight=0.0)(model, batch)
        expected = model(**batch)
    torch.testing.assert_close(result.loss, expected.loss)


def test_multimodal_loss_needs_comments(aesthetics, training_processor):
    model = _model()
    batch = _batch(aesthetics, training_processor)
    with pytest.raises(ValueError, match="input_ids"):
        MultimodalStageLoss(model, contrastive_weight=0.0)(model, {"pixel_values": batch["pixel_values"]})


def test_momentum_state_checkpoint_round_trip(tmp_path):
    loss = MultimodalStageLoss(_model(), queue_size=4)
    dim = loss.momentum_contrast.image_queue.shape[1]
    loss.momentum_contrast.enqueue(torch.ones(3, dim), torch.zeros(3, dim))
    assert loss.save_checkpoint(tmp_path) == str(tmp_path / MOMENTUM_STATE_FILENAME)
    other = MultimodalStageLoss(_model(seed=1), queue_size=4)
    other.load_checkpoint(tmp_path)
    assert loss.state_dict().keys() == other.state_dict().keys()
    for name, value in loss.state_dict().items():
        assert torch.equal(value, other.state_dict()[name]), name
    assert MultimodalStageLoss(_model(), contrastive_weight=0.0).save_checkpoint(tmp_path / "none") is None
    assert not (tmp_path / "none").exists()


class _CountingLoss(StageLoss):
    """A stateful custom loss: its state is a persistent buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))


def test_state_of_a_custom_loss_is_its_state_dict(tmp_path):
    loss = _CountingLoss()
    loss.calls.fill_(5)
    assert loss.save_checkpoint(tmp_path) == str(tmp_path / LOSS_STATE_FILENAME)
    restored = _CountingLoss()
    restored.load_checkpoint(tmp_path)
    assert int(restored.calls) == 5
    with pytest.raises(FileNotFoundError, match="_CountingLoss"):
        _CountingLoss().load_checkpoint(tmp_path / "missing")
    assert AdaptationStageLoss().save_checkpoint(tmp_path / "stateless") is None  # nothing to save
    AdaptationStageLoss().load_checkpoint(tmp_path / "stateless")  # and nothing to look for


def test_negative_weights_are_refused():
    with pytest.raises(ValueError, match="contrastive_weight"):
        MultimodalStageLoss(_model(), contrastive_weight=-1.0)
    with pytest.raises(ValueError, match="mse_weight"):
        AdaptationStageLoss(mse_weight=-1.0)


def test_unwrap_model_reaches_the_model_inside_torch_compile():
    """The momentum update matches parameters by name: a compiled wrapper's `_orig_mod.` prefix must not show."""
    model = _model()
    assert unwrap_model(torch.compile(model)) is model
    assert unwrap_model(model) is model
