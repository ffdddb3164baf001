"""The stage-2 (multi-level adaptation) loss: EMD plus a weighted MSE between distributions."""

import torch
from torch import nn

from ...models.aesformer.losses_aesformer import ADAPTATION_MSE_WEIGHT, adaptation_loss


class AdaptationLoss(nn.Module):
    r"""Loss of AesFormer's stage 2 (vision-only adaptation).

        loss = emd_weight * EMD_2(p, q) + mse_weight * MSE(p, q)

    where EMD_2 is :class:`EarthMoversDistanceLoss` with r=2 (mean over the batch) and
    MSE(p, q) = (1 / (batch * bins)) * sum_{i,k} (p_ik - q_ik)^2 is the mean squared difference
    of the bin probabilities over every element (``torch.nn.MSELoss()`` on the distributions, as
    in the released training code). Defaults follow the paper: 1 x EMD + 10 x MSE.

    The MSE term pulls every bin's probability towards its target, which sharpens the predicted
    distribution beyond what the CDF-based EMD alone asks for. Computed in float32; unitless.

    Inputs are probability distributions (softmax of the logits), not logits.

    Shapes:
        pred_distribution: (batch, bins); target_distribution: (batch, bins); output: ().
    """

    def __init__(self, emd_weight: float = 1.0, mse_weight: float = ADAPTATION_MSE_WEIGHT):
        super().__init__()
        self.emd_weight = float(emd_weight)
        self.mse_weight = float(mse_weight)

    def forward(self, pred_distribution: torch.Tensor, target_distribution: torch.Tensor) -> torch.Tensor:
        # The same function as the model's VIAA `outputs.loss`, which it equals at the default weights.
        return adaptation_loss(pred_distribution, target_distribution, self.emd_weight, self.mse_weight)

    def extra_repr(self) -> str:
        return f"emd_weight={self.emd_weight:g}, mse_weight={self.mse_weight:g}"
