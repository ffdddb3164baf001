import numpy as np
import pytest
import torch
from torch.nn import functional as F

from aesformer_hf.training.losses import ImageTextContrastiveLoss, clamp_temperature_


def normalised(rows: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(rows, dim, generator=generator), dim=-1)


def make_inputs(batch: int, queue_size: int, dim: int = 16, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "image_features": normalised(batch, dim, generator),
        "text_features": normalised(batch, dim, generator),
        "image_features_m": normalised(batch, dim, generator),
        "text_features_m": normalised(batch, dim, generator),
        "image_queue": normalised(queue_size, dim, generator),
        "text_queue": normalised(queue_size, dim, generator),
    }


def reference_loss(inputs: dict, temperature: float) -> float:
    """Float64 numpy: build both logits matrices explicitly, log-softmax by hand, read the diagonal."""

    def cross_entropy_on_diagonal(queries, candidates):
        logits = queries @ candidates.T / temperature
        log_probs = logits - logits.max(axis=1, keepdims=True)
        log_probs = log_probs - np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
        return -np.mean([log_probs[i, i] for i in range(len(queries))])

    arrays = {name: tensor.double().numpy() for name, tensor in inputs.items() if tensor is not None}
    image_queue = arrays.get("image_queue", np.zeros((0, arrays["image_features"].shape[1])))
    text_queue = arrays.get("text_queue", np.zeros((0, arrays["text_features"].shape[1])))
    i2t = cross_entropy_on_diagonal(
        arrays["image_features"], np.vstack([arrays["text_features_m"], text_queue])
    )
    t2i = cross_entropy_on_diagonal(
        arrays["text_features"], np.vstack([arrays["image_features_m"], image_queue])
    )
    return (i2t + t2i) / 2


@pytest.mark.parametrize("batch,queue_size", [(4, 8), (3, 5), (1, 7), (5, 0)])
def test_matches_explicit_float64_computation(batch, queue_size):
    # (3, 5) and (1, 7): queue sizes that the batch size does not divide.
    inputs = make_inputs(batch, queue_size)
    loss = ImageTextContrastiveLoss()(**inputs, temperature=torch.tensor(0.07))
    assert loss.item() == pytest.approx(reference_loss(inputs, 0.07), rel=1e-5)


def test_missing_and_empty_queues_are_the_same():
    inputs = make_inputs(4, 0)
    loss_fn = ImageTextContrastiveLoss()
    with_empty = loss_fn(**inputs, temperature=0.1)
    inputs.update(image_queue=None, text_queue=None)
    without = loss_fn(**inputs, temperature=0.1)
    assert with_empty.item() == pytest.approx(without.item(), rel=1e-6)
    assert with_empty.item() == pytest.approx(reference_loss(inputs, 0.1), rel=1e-5)


def test_symmetric_in_image_and_text():
    inputs = make_inputs(4, 6)
    swapped = {
        "image_features": inputs["text_features"],
        "text_features": inputs["image_features"],
        "image_features_m": inputs["text_features_m"],
        "text_features_m": inputs["image_features_m"],
        "image_queue": inputs["text_queue"],
        "text_queue": inputs["image_queue"],
    }
    loss_fn = ImageTextContrastiveLoss()
    assert loss_fn(**inputs, temperature=0.07).item() == pytest.approx(
        loss_fn(**swapped, temperature=0.07).item(), rel=1e-6
    )


def test_aligned_pairs_give_a_lower_loss_than_shuffled_ones():
    inputs = make_inputs(6, 12)
    aligned = dict(inputs, text_features=inputs["image_features"], text_features_m=inputs["image_features"])
    aligned["image_features_m"] = inputs["image_features"]
    loss_fn = ImageTextContrastiveLoss()
    assert loss_fn(**aligned, temperature=0.07) < loss_fn(**inputs, temperature=0.07)


def test_temperature_is_clamped_to_the_documented_range():
    inputs = make_inputs(4, 4)
    loss_fn = ImageTextContrastiveLoss()
    assert loss_fn(**inputs, temperature=10.0).item() == pytest.approx(reference_loss(inputs, 0.5), rel=1e-5)
    assert loss_fn(**inputs, temperature=1e-6).item() == pytest.approx(
        reference_loss(inputs, 0.001), rel=1e-5
    )

    parameter = torch.nn.Parameter(torch.tensor(0.9))
    clamp_temperature_(parameter)
    assert parameter.item() == pytest.approx(0.5)
    assert parameter.requires_grad
    parameter.data.fill_(1e-5)
    clamp_temperature_(parameter)
    assert parameter.item() == pytest.approx(0.001)


def test_gradients_reach_online_features_and_temperature_only():
    inputs = make_inputs(4, 4)
    for tensor in inputs.values():
        tensor.requires_grad_(True)
    temperature = torch.nn.Parameter(torch.tensor(0.07))
    ImageTextContrastiveLoss()(**inputs, temperature=temperature).backward()
    assert inputs["image_features"].grad is not None and inputs["text_features"].grad is not None
    assert temperature.grad is not None and torch.isfinite(temperature.grad)
    for constant in ("image_features_m", "text_features_m", "image_queue", "text_queue"):
        assert inputs[constant].grad is None, constant


def test_bfloat16_features_are_handled_in_float32():
    inputs = make_inputs(4, 8)
    low_precision = {name: tensor.to(torch.bfloat16) for name, tensor in inputs.items()}
    loss = ImageTextContrastiveLoss()(**low_precision, temperature=torch.tensor(0.07))
    assert loss.dtype == torch.float32
    widened = {name: tensor.float() for name, tensor in low_precision.items()}
    assert loss.item() == pytest.approx(reference_loss(widened, 0.07), rel=1e-5)


def test_rejects_mismatched_shapes():
    inputs = make_inputs(4, 4)
    with pytest.raises(ValueError, match="text_features_m must have shape"):
        ImageTextContrastiveLoss()(
            **dict(inputs, text_features_m=inputs["text_features_m"][:3]), temperature=0.07
        )
    with pytest.raises(ValueError, match="text_queue must have shape"):
        ImageTextContrastiveLoss()(**dict(inputs, text_queue=torch.zeros(4, 8)), temperature=0.07)
