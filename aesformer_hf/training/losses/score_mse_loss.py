"""MSE between the mean score implied by a predicted distribution and a scalar target score."""

from collections.abc import Sequence

import torch
from torch import nn

from ...models.aesformer.losses_aesformer import score_mse


class ScoreMSELoss(nn.Module):
    r"""Mean squared error on the mean score, for datasets that only give a score (JAS).

        mean_score_i = sum_k p_ik * v_k
        loss = (1 / batch) * sum_i (mean_score_i - s_i)^2

    where p_i is the predicted distribution over K bins, v the bins' score values and s_i the
    true score of image i, in the same units as v (e.g. bins 0.05, 0.15, ..., 0.95 and JAS
    quality / 100 on 0..1). The loss is in squared score units. Computed in float32.

    Args:
        bin_values: the score of each bin, shape (bins,). Optional here when every ``forward``
            call passes its own ``bin_values``.

    Shapes:
        pred_distribution: (batch, bins), probabilities (softmax of the logits, not logits).
        target_score: (batch,) or (batch, 1).
        bin_values: (bins,).
        output: ().
    """

    def __init__(self, bin_values: Sequence[float] | torch.Tensor | None = None):
        super().__init__()
        default = None if bin_values is None else torch.as_tensor(bin_values, dtype=torch.float32)
        if default is not None and default.dim() != 1:
            raise ValueError(f"bin_values must have shape (bins,), got shape {tuple(default.shape)}")
        # A non-persistent buffer follows the module across devices without entering state dicts.
        self.register_buffer("bin_values", default, persistent=False)

    def forward(
        self,
        pred_distribution: torch.Tensor,
        target_score: torch.Tensor,
        bin_values: Sequence[float] | torch.Tensor | None = None,
    ) -> torch.Tensor:
        if bin_values is None:
            bin_values = self.bin_values
        if bin_values is None:
            raise ValueError("ScoreMSELoss needs bin_values: pass them to the constructor or to forward")
        bin_values = torch.as_tensor(bin_values, dtype=torch.float32, device=pred_distribution.device)
        if pred_distribution.dim() != 2:
            raise ValueError(
                f"pred_distribution must have shape (batch, bins), got shape {tuple(pred_distribution.shape)}"
            )
        if bin_values.shape != pred_distribution.shape[-1:]:
            raise ValueError(
                f"bin_values must have shape ({pred_distribution.shape[-1]},) to match pred_distribution's "
                f"{pred_distribution.shape[-1]} bins, got shape {tuple(bin_values.shape)}"
            )
        target_score = target_score.float().reshape(-1)
        if target_score.shape[0] != pred_distribution.shape[0]:
            raise ValueError(
                f"target_score must hold one score per sample: {pred_distribution.shape[0]} expected "
                f"from pred_distribution, got {target_score.shape[0]}"
            )
        return score_mse(pred_distribution, target_score, bin_values)
