"""The stage-2 (multi-level adaptation) loss: the VIAA prediction's EMD plus a weighted MSE, without comments."""

from __future__ import annotations

import torch
from torch import nn

from ...models.aesformer.losses_aesformer import ADAPTATION_MSE_WEIGHT
from ..stages import ADAPTATION
from .adaptation_loss import AdaptationLoss
from .score_mse_loss import ScoreMSELoss
from .stage_loss import StageLoss, StageLossOutput, unwrap_model

# Batch keys of the comments, which the vision-only (VIAA) path must not receive.
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class AdaptationStageLoss(StageLoss):
    r"""
    Loss of AesFormer's stage 2 (vision-only adaptation), on the VIAA prediction `p` (the model runs on the
    images alone; comments in the batch are left out):

        loss = emd_weight * EMD_2(p, y) + mse_weight * MSE(p, y)        ([`AdaptationLoss`])

    or, for score labels `(batch,)`, the MSE of the mean score ([`ScoreMSELoss`]). At the default weights (1 and
    10, the paper's "EMD + 10 x MSE") it equals the model's VIAA `outputs.loss` for the same labels. Holds no
    training state.

    Args:
        model ([`AesformerForAesthetic`], optional): unused; accepted so that every stage loss is built as
            `Loss(model, ...)`.
        emd_weight (`float`, default 1.0), mse_weight (`float`, default 10.0): the weights of the two terms.
    """

    stage = ADAPTATION

    def __init__(
        self,
        model: nn.Module | None = None,
        emd_weight: float = 1.0,
        mse_weight: float = ADAPTATION_MSE_WEIGHT,
    ):
        super().__init__()
        for name, value in (("emd_weight", emd_weight), ("mse_weight", mse_weight)):
            if not value >= 0:
                raise ValueError(f"{name}={value!r} must be a non-negative number.")
        self.adaptation_loss = AdaptationLoss(emd_weight, mse_weight)
        self.score_loss = ScoreMSELoss()

    @classmethod
    def from_training_args(cls, model: nn.Module | None, args, **kwargs) -> AdaptationStageLoss:
        """The loss that [`AesformerTrainingArguments`] `args` describe (`adaptation_*_weight`)."""
        settings = dict(emd_weight=args.adaptation_emd_weight, mse_weight=args.adaptation_mse_weight)
        return cls(model, **{**settings, **kwargs})

    def forward(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> StageLossOutput:
        labels = inputs["labels"]
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels" and k not in TEXT_INPUTS})
        distribution = outputs.distribution
        if labels.ndim == 1:
            loss = self.score_loss(distribution, labels, unwrap_model(model).bin_values)
        else:
            loss = self.adaptation_loss(distribution, labels)
        return StageLossOutput(loss=loss, predictions={"distribution": distribution})


__all__ = ["AdaptationStageLoss", "TEXT_INPUTS"]
