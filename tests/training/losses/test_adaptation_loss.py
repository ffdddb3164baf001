import numpy as np
import pytest
import torch

from aesformer_hf.training.losses import AdaptationLoss


def test_equals_emd_plus_ten_mse_computed_independently():
    generator = torch.Generator().manual_seed(0)
    pred = torch.softmax(torch.randn(5, 10, generator=generator), dim=-1)
    target = torch.softmax(torch.randn(5, 10, generator=generator), dim=-1)

    p, q = pred.double().numpy(), target.double().numpy()
    cdf_gap = np.cumsum(p, axis=1) - np.cumsum(q, axis=1)
    emd = np.mean(np.sqrt(np.mean(cdf_gap**2, axis=1)))
    mse = np.mean((p - q) ** 2)  # over every element of the (batch, bins) matrix

    assert AdaptationLoss()(pred, target).item() == pytest.approx(emd + 10 * mse, abs=3e-6)
    assert AdaptationLoss(emd_weight=0.0, mse_weight=1.0)(pred, target).item() == pytest.approx(mse, abs=1e-7)
    assert AdaptationLoss(emd_weight=2.0, mse_weight=0.0)(pred, target).item() == pytest.approx(
        2 * emd, abs=3e-6
    )


def test_zero_and_finite_gradient_at_the_target():
    logits = torch.randn(3, 10, requires_grad=True)
    pred = torch.softmax(logits, dim=-1)
    loss = AdaptationLoss()(pred, pred.detach().clone())
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert torch.isfinite(logits.grad).all()


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        AdaptationLoss()(torch.rand(2, 10), torch.rand(3, 10))
