"""The one torch definition of AesFormer's distribution arithmetic: EMD, the mean score, label checks, objectives.

The model's `outputs.loss`, the Trainer's per-stage losses (`aesformer_hf.training.losses`) and the command line
all compute through these functions, so they cannot drift apart. (The evaluation metric keeps an independent
numpy implementation on purpose: it cross-checks this one.)

Objectives, with p a predicted and q the true vote distribution `(batch, bins)`:

* MIAA (stage 1, supervised part): `EMD_2(p_image, q) + EMD_2(p_text, q)`, each head's own softmax;
* VIAA (stage 2, multi-level adaptation): `EMD_2(p, q) + 10 * MSE(p, q)`, the MSE over every bin probability;
* scalar scores instead of distributions (JAS): the MSE of the mean score, per head, summed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .configuration_aesformer import VISION_MODE

# Stage 2's weight of the distribution MSE next to the EMD (the paper's "EMD + 10 x MSE").
ADAPTATION_MSE_WEIGHT = 10.0
# Rows of a label distribution may be off 1 by this much (vote counts normalised in float32).
DISTRIBUTION_SUM_TOLERANCE = 1e-3


def earth_movers_distance(
    pred: torch.Tensor, target: torch.Tensor, r: float = 2.0, eps: float = 1e-12, reduction: str = "mean"
) -> torch.Tensor:
    r"""EMD between distributions over ordered bins: `(mean_k |CDF_p[k] - CDF_q[k]|^r)^(1/r)` per sample.

    Args:
        pred, target (`(batch, bins)`): probability distributions (softmax of logits, not logits).
        r: the norm's exponent (2 to train, 1 is the papers' "EMD" column).
        eps: the r-th root has an infinite slope at 0, so the value is `(mean + eps)^(1/r) - eps^(1/r)`: exactly 0
            for equal distributions with a finite gradient there, within `eps^(1/r)` of the exact value elsewhere.
        reduction: `"mean"` over the batch (`()`), or `"none"` (`(batch,)`).

    Unitless, in [0, 1]. CDFs are accumulated in float32 whatever the input dtype.
    """
    if pred.dim() != 2 or pred.shape != target.shape:
        raise ValueError(
            f"EMD needs two (batch, bins) distributions of the same shape; got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}."
        )
    cdf_gap = torch.cumsum(pred.float(), dim=-1) - torch.cumsum(target.float(), dim=-1)
    powered = cdf_gap.pow(2) if r == 2.0 else cdf_gap.abs().pow(r)
    per_sample = (powered.mean(dim=-1) + eps).pow(1.0 / r) - eps ** (1.0 / r)
    if reduction == "none":
        return per_sample
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    return per_sample.mean()


def expected_score(distribution: torch.Tensor, bin_values: torch.Tensor) -> torch.Tensor:
    """Mean score `(batch,)` of distributions `(batch, bins)` over the bins' values `(bins,)`, in float32."""
    return distribution.float() @ bin_values.float().to(distribution.device)


def distribution_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the bin probabilities over every element `()` (stage 2's MSE term)."""
    return F.mse_loss(pred.float(), target.float())


def adaptation_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    emd_weight: float = 1.0,
    mse_weight: float = ADAPTATION_MSE_WEIGHT,
) -> torch.Tensor:
    """Stage 2's objective `emd_weight * EMD_2 + mse_weight * MSE` between distributions `(batch, bins)`."""
    return emd_weight * earth_movers_distance(pred, target, r=2.0) + mse_weight * distribution_mse(
        pred, target
    )


def score_mse(pred: torch.Tensor, target_score: torch.Tensor, bin_values: torch.Tensor) -> torch.Tensor:
    """MSE `()` between the mean score of `pred` `(batch, bins)` and scores `(batch,)`, in squared score units."""
    return (expected_score(pred, bin_values) - target_score.float().reshape(-1)).pow(2).mean()


def distribution_faults(distributions: torch.Tensor) -> tuple[list[int], list[int], torch.Tensor]:
    """What keeps finite `(batch, bins)` rows from being probability distributions, the one check of it.

    Returns the rows with a negative entry, the rows whose sum is off 1 by more than `DISTRIBUTION_SUM_TOLERANCE`,
    and the sums `(batch,)`. The model's labels (`check_labels`) and the collator's rows are checked here.
    """
    negative = (distributions < 0).any(dim=1).nonzero().flatten().tolist()
    sums = distributions.sum(dim=1)
    off = ((sums - 1).abs() > DISTRIBUTION_SUM_TOLERANCE).nonzero().flatten().tolist()
    return negative, off, sums


def check_labels(labels: torch.Tensor, batch: int, num_bins: int, check_values: bool = True) -> torch.Tensor:
    """`labels` as float32 `(batch, num_bins)` distributions or `(batch,)` scores, or a ValueError naming the rows.

    `check_values=False` keeps only the shape checks: the value checks read the tensor on the host, which a
    compiled or exported graph must not do.
    """
    labels = labels.float()
    if labels.ndim not in (1, 2):
        raise ValueError(
            f"labels have shape {tuple(labels.shape)}; expected (batch, {num_bins}) distributions or (batch,) scores."
        )
    if labels.shape[0] != batch:
        raise ValueError(f"labels have {labels.shape[0]} rows for a batch of {batch} images.")
    if labels.ndim == 2 and labels.shape[1] != num_bins:
        raise ValueError(
            f"labels have {labels.shape[1]} bins; this model predicts {num_bins}. Pass a distribution with "
            f"{num_bins} bins, or a scalar score per image."
        )
    if not check_values:
        return labels
    rows = labels.reshape(batch, -1)
    not_finite = (~torch.isfinite(rows)).any(dim=1).nonzero().flatten().tolist()
    if not_finite:
        raise ValueError(f"labels of rows {not_finite} contain NaN or inf.")
    if labels.ndim == 2:
        negative, off, sums = distribution_faults(labels)
        if negative or off:
            raise ValueError(
                "labels must be probability distributions (non-negative, summing to 1): "
                + "; ".join(
                    part
                    for part in (
                        f"rows {off} sum to {[round(v, 4) for v in sums[off].tolist()]}" if off else "",
                        f"rows {negative} have negative entries" if negative else "",
                    )
                    if part
                )
                + "."
            )
    return labels


def supervised_loss(
    distributions: list[torch.Tensor], labels: torch.Tensor, bin_values: torch.Tensor, mode: str
) -> torch.Tensor:
    """The model's `outputs.loss`: summed over the heads' distributions `(batch, bins)` (two in MIAA, one in VIAA).

    `mode` is the path that produced them, `"multimodal"` or `"vision"`. Distribution labels: EMD_2 per head in MIAA; the adaptation objective `EMD_2 + 10 * MSE` in VIAA. Score labels
    `(batch,)`: the MSE of each head's mean score.
    """
    if labels.ndim == 1:
        return sum(score_mse(d, labels, bin_values) for d in distributions)
    if mode == VISION_MODE:
        return sum(adaptation_loss(d, labels) for d in distributions)
    return sum(earth_movers_distance(d, labels, r=2.0) for d in distributions)


__all__ = [
    "ADAPTATION_MSE_WEIGHT",
    "adaptation_loss",
    "check_labels",
    "distribution_faults",
    "distribution_mse",
    "earth_movers_distance",
    "expected_score",
    "score_mse",
    "supervised_loss",
]
