import pytest
import torch

from aesformer_hf.training.losses import ScoreMSELoss


def test_hand_computed_value():
    bins = [1.0, 2.0, 3.0]
    pred = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.2, 0.3, 0.5]])
    # Mean scores: 2.0, 2.0, 0.2 + 0.6 + 1.5 = 2.3.
    target = torch.tensor([2.0, 3.0, 2.0])
    expected = (0.0**2 + 1.0**2 + 0.3**2) / 3
    assert ScoreMSELoss()(pred, target, bins).item() == pytest.approx(expected, abs=1e-6)
    assert ScoreMSELoss(bin_values=bins)(pred, target).item() == pytest.approx(expected, abs=1e-6)
    assert ScoreMSELoss(bin_values=bins)(pred, target.unsqueeze(1)).item() == pytest.approx(
        expected, abs=1e-6
    )


def test_unit_interval_bins_for_jas():
    bins = torch.linspace(0.05, 0.95, 10)
    pred = torch.full((1, 10), 0.1)
    # A uniform distribution over those bins has mean 0.5.
    assert ScoreMSELoss(bins)(pred, torch.tensor([0.7])).item() == pytest.approx(0.04, abs=1e-6)


def test_errors_name_what_is_missing_or_mismatched():
    with pytest.raises(ValueError, match="needs bin_values"):
        ScoreMSELoss()(torch.rand(2, 3), torch.rand(2))
    with pytest.raises(ValueError, match=r"bin_values must have shape \(3,\)"):
        ScoreMSELoss()(torch.rand(2, 3), torch.rand(2), [1.0, 2.0])
    with pytest.raises(ValueError, match="one score per sample"):
        ScoreMSELoss([1.0, 2.0, 3.0])(torch.rand(2, 3), torch.rand(3))
