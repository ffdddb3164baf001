"""Momentum contrast: the moving average, the queues, the contrastive loss against them, and their checkpoint."""

import pytest
import torch
import torch.nn.functional as F

from aesformer_hf.training import (
    MOMENTUM_STATE_FILENAME,
    AesformerDataCollator,
    AesformerTrainer,
    MomentumContrast,
)
from aesformer_hf.training.momentum import gather_from_all_processes

from .conftest import make_args, make_model


def test_twin_holds_only_what_the_embeddings_need():
    model = make_model()
    twin_names = {name for name, _ in MomentumContrast(model, queue_size=4).encoder.named_parameters()}
    assert twin_names, "the twin has no parameters"
    assert any(name.startswith("model.vision_model.") for name in twin_names)
    assert any(name.startswith("model.text_model.") for name in twin_names)
    assert {"model.image_projection.weight", "contrastive_norm.weight"} <= twin_names
    for unused in ("fusion_layers", "neck", "viaa_", "miaa_", "contrastive_temperature"):
        assert not any(unused in name for name in twin_names), unused
    assert all(not p.requires_grad for p in MomentumContrast(model, queue_size=4).parameters())


def test_momentum_update_is_the_exponential_moving_average():
    model = make_model()
    state = MomentumContrast(model, queue_size=4, momentum=0.9)
    old_twin = {name: p.detach().clone() for name, p in state.encoder.named_parameters()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    online = dict(model.named_parameters())
    state.update(model)
    for name, twin in state.encoder.named_parameters():
        expected = 0.9 * old_twin[name] + 0.1 * online[name].detach()
        torch.testing.assert_close(twin, expected, rtol=1e-6, atol=1e-6)


def test_momentum_features_match_the_model_before_any_update():
    model = make_model().eval()
    state = MomentumContrast(model, queue_size=4)
    pixels = torch.randn(2, 3, 64, 64)
    ids = torch.randint(5, 100, (2, 7))
    expected = model.get_contrastive_embeddings(pixels, ids)
    for got, want in zip(state.encode(pixels, ids), expected):
        torch.testing.assert_close(got, want)


def test_queue_wraps_for_any_batch_size():
    state = MomentumContrast(make_model(), queue_size=5)
    dim = state.image_queue.shape[1]
    features = [F.normalize(torch.randn(3, dim), dim=-1) for _ in range(3)]
    state.enqueue(features[0], -features[0])
    assert int(state.queue_length) == 3 and int(state.queue_pointer) == 3
    image, text = state.queued_features()
    torch.testing.assert_close(image, features[0])
    torch.testing.assert_close(text, -features[0])
    state.enqueue(features[1], -features[1])  # rows 3, 4, then wraps to 0
    assert int(state.queue_length) == 5 and int(state.queue_pointer) == 1
    torch.testing.assert_close(state.image_queue[[3, 4, 0]], features[1])
    torch.testing.assert_close(state.image_queue[[1, 2]], features[0][1:])
    big = F.normalize(torch.randn(7, dim), dim=-1)  # more than the queue holds: its last 5 rows stay
    state.enqueue(big, big)
    assert int(state.queue_pointer) == (1 + 7) % 5
    assert sorted(map(tuple, state.image_queue.tolist())) == sorted(map(tuple, big[2:].tolist()))


def test_gather_is_the_identity_in_one_process():
    features = torch.randn(3, 4)
    assert gather_from_all_processes(features) is features


def test_contrastive_loss_with_the_queue_equals_explicit_tensors(tmp_path, aesthetics, training_processor):
    model = make_model()
    collator = AesformerDataCollator(training_processor, num_bins=10, training=False)
    trainer = AesformerTrainer(
        model=model,
        args=make_args(tmp_path, contrastive_queue_size=6, contrastive_momentum=0.5),
        data_collator=collator,
        processing_class=training_processor,
    )
    state = trainer.momentum_contrast
    dim = state.image_queue.shape[1]
    queued_image, queued_text = (
        F.normalize(torch.randn(4, dim), dim=-1),
        F.normalize(torch.randn(4, dim), dim=-1),
    )
    state.enqueue(queued_image, queued_text)
    batch = collator([aesthetics["train"][i] for i in range(3)])
    model.eval()  # no dropout, so the online embeddings can be recomputed
    outputs = model(**{k: v for k, v in batch.items() if k != "labels"})
    twin_before = {n: p.clone() for n, p in state.encoder.named_parameters()}
    loss = trainer.loss.momentum_contrastive_loss(model, batch, outputs)

    # By hand: the twin after one EMA step, its features, and a two-way cross-entropy over [batch ; queue].
    online = dict(model.named_parameters())
    for name, parameter in state.encoder.named_parameters():
        torch.testing.assert_close(parameter, 0.5 * twin_before[name] + 0.5 * online[name].detach())
    image_m, text_m = state.encode(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    temperature = model.contrastive_temperature.detach()
    logits_i2t = outputs.image_embeds @ torch.cat([text_m, queued_text]).T / temperature
    logits_t2i = outputs.text_embeds @ torch.cat([image_m, queued_image]).T / temperature
    targets = torch.arange(3)
    expected = (F.cross_entropy(logits_i2t, targets) + F.cross_entropy(logits_t2i, targets)) / 2
    torch.testing.assert_close(loss, expected)
    # ...and the batch's momentum features were enqueued after the queued ones.
    assert int(state.queue_length) == 6 and int(state.queue_pointer) == 1
    torch.testing.assert_close(state.image_queue[4:6], image_m[:2])
    torch.testing.assert_close(state.image_queue[0], image_m[2])


def test_save_and_load_round_trip(tmp_path):
    state = MomentumContrast(make_model(), queue_size=4)
    state.enqueue(torch.ones(3, state.image_queue.shape[1]), torch.zeros(3, state.image_queue.shape[1]))
    state.save(tmp_path)
    assert (tmp_path / MOMENTUM_STATE_FILENAME).is_file()
    other = MomentumContrast(make_model(seed=1), queue_size=4)
    other.load(tmp_path)
    for (name, a), (_, b) in zip(state.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="contrastive_queue_size"):
        MomentumContrast(make_model(), queue_size=8).load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no momentum-contrast state"):
        state.load(tmp_path / "missing")


def test_vision_only_models_have_no_momentum_contrast():
    with pytest.raises(ValueError, match="multimodal"):
        MomentumContrast(make_model(vision_only=True))
