"""Earth mover's distance between two vote distributions over ordered score bins."""

import torch
from torch import nn

from ...models.aesformer.losses_aesformer import earth_movers_distance


class EarthMoversDistanceLoss(nn.Module):
    r"""Earth mover's distance (EMD) between predicted and true vote distributions.

    For one image with K ordered score bins (1..10 on AVA), with cumulative distributions
    CDF_p[k] = p_1 + ... + p_k:

        EMD_r(p, q) = ( (1/K) * sum_{k=1..K} |CDF_p[k] - CDF_q[k]|^r )^(1/r)

    and the loss is the mean of EMD_r over the batch. r=2 is the training loss of AesFormer and
    NIMA; r=1 is the "EMD" column reported in the papers. The value is unitless, between 0
    (identical distributions) and 1.

    The arithmetic is `aesformer_hf.models.aesformer.losses_aesformer.earth_movers_distance`, the one the
    model's own `outputs.loss` uses. The r-th root has an infinite derivative at 0, so a perfectly fitted sample would produce
    NaN gradients. The implementation computes
    ``(mean_k |dCDF_k|^r + eps)^(1/r) - eps^(1/r)``: exactly 0 when the distributions are equal,
    a finite (zero) gradient there, and within ``eps^(1/r)`` (1e-6 for the default eps and r=2)
    of the exact value elsewhere.

    Inputs are *probability distributions*, not logits: apply ``softmax`` to the head's logits
    first. The CDFs are computed in float32 whatever the input dtype, because cumulative sums of
    bf16/fp16 probabilities lose the small differences the loss is made of; the loss is float32.

    Args:
        r: the norm's exponent, >= 1 (2 to train, 1 to report).
        eps: a small positive constant inside the root (see above).
        reduction: ``"mean"`` (a scalar: the batch mean) or ``"none"`` (one value per sample).

    Shapes:
        pred_distribution: (batch, bins), non-negative, each row summing to 1.
        target_distribution: (batch, bins), same.
        output: () for ``reduction="mean"``, (batch,) for ``"none"``.
    """

    def __init__(self, r: float = 2.0, eps: float = 1e-12, reduction: str = "mean"):
        super().__init__()
        if r < 1:
            raise ValueError(f"r must be >= 1 for the EMD to be a distance, got r={r}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0 to keep the gradient finite at zero distance, got eps={eps}")
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.r = float(r)
        self.eps = float(eps)
        self.reduction = reduction

    def forward(self, pred_distribution: torch.Tensor, target_distribution: torch.Tensor) -> torch.Tensor:
        return earth_movers_distance(
            pred_distribution, target_distribution, r=self.r, eps=self.eps, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"r={self.r:g}, eps={self.eps:g}, reduction={self.reduction!r}"
