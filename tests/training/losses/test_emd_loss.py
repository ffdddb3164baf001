import numpy as np
import pytest
import torch

from aesformer_hf.training.losses import EarthMoversDistanceLoss


def reference_emd(pred: np.ndarray, target: np.ndarray, r: float) -> float:
    """Float64 EMD written as the formula reads: per-sample loop over bins, then the batch mean."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    per_sample = []
    for p, q in zip(pred, target):
        cdf_p = cdf_q = 0.0
        total = 0.0
        for k in range(len(p)):
            cdf_p += p[k]
            cdf_q += q[k]
            total += abs(cdf_p - cdf_q) ** r
        per_sample.append((total / len(p)) ** (1.0 / r))
    return float(np.mean(per_sample))


def random_distributions(batch: int, bins: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(batch, bins, generator=generator) * 2, dim=-1)


@pytest.mark.parametrize("r", [1.0, 2.0])
def test_matches_float64_reference(r):
    pred, target = random_distributions(8, 10, seed=0), random_distributions(8, 10, seed=1)
    loss = EarthMoversDistanceLoss(r=r)(pred, target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference_emd(pred.numpy(), target.numpy(), r), abs=2e-6)


def test_hand_computed_three_bins():
    # CDFs [0.2, 0.7, 1.0] and [0.5, 0.8, 1.0]: gaps 0.3, 0.1, 0.
    pred = torch.tensor([[0.2, 0.5, 0.3]])
    target = torch.tensor([[0.5, 0.3, 0.2]])
    assert EarthMoversDistanceLoss(r=1)(pred, target).item() == pytest.approx(0.4 / 3, abs=1e-6)
    assert EarthMoversDistanceLoss(r=2)(pred, target).item() == pytest.approx(np.sqrt(0.1 / 3), abs=2e-6)


def test_reduction_none_gives_one_value_per_sample():
    pred = torch.tensor([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    target = torch.tensor([[0.5, 0.3, 0.2], [0.0, 0.0, 1.0]])
    per_sample = EarthMoversDistanceLoss(r=1, reduction="none")(pred, target)
    assert per_sample.shape == (2,)
    # Second row: all mass moved two bins, CDF gaps 1, 1, 0.
    assert per_sample.tolist() == pytest.approx([0.4 / 3, 2 / 3], abs=1e-6)


@pytest.mark.parametrize("r", [1.0, 2.0])
def test_zero_when_equal(r):
    distribution = random_distributions(4, 10, seed=2)
    assert EarthMoversDistanceLoss(r=r)(distribution, distribution.clone()).item() == pytest.approx(
        0.0, abs=1e-7
    )


def test_gradient_is_finite_when_prediction_equals_target():
    logits = torch.randn(4, 10, requires_grad=True)
    pred = torch.softmax(logits, dim=-1)
    loss = EarthMoversDistanceLoss(r=2)(pred, pred.detach().clone())
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_gradient_points_towards_the_target():
    logits = torch.zeros(1, 5, requires_grad=True)
    target = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]])
    EarthMoversDistanceLoss(r=2)(torch.softmax(logits, dim=-1), target).backward()
    # Descending the gradient must raise the logit of the target bin the most.
    assert torch.argmin(logits.grad).item() == 4


def test_bfloat16_inputs_are_computed_in_float32():
    pred = random_distributions(6, 10, seed=3).to(torch.bfloat16)
    target = random_distributions(6, 10, seed=4).to(torch.bfloat16)
    loss = EarthMoversDistanceLoss(r=2)(pred, target)
    assert loss.dtype == torch.float32
    # Reference on exactly the bf16 values, widened: only float32 accumulation error remains.
    expected = reference_emd(pred.double().numpy(), target.double().numpy(), 2.0)
    assert loss.item() == pytest.approx(expected, abs=2e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_loss = EarthMoversDistanceLoss(r=2)(pred, target)
    assert autocast_loss.dtype == torch.float32
    assert autocast_loss.item() == pytest.approx(expected, abs=2e-6)


def test_rejects_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match=r"\(4, 10\) and \(4, 9\)"):
        EarthMoversDistanceLoss()(torch.rand(4, 10), torch.rand(4, 9))
    with pytest.raises(ValueError, match="batch, bins"):
        EarthMoversDistanceLoss()(torch.rand(10), torch.rand(10))
    with pytest.raises(ValueError, match="r must be >= 1"):
        EarthMoversDistanceLoss(r=0.5)
