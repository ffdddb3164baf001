"""Training losses of AesFormer, one per file (named after the class).

* the stage losses, which [`AesformerTrainer`] delegates `compute_loss` to (`AesformerTrainer(loss=...)`):
  [`MultimodalStageLoss`] (stage 1, owns the momentum-contrast state) and [`AdaptationStageLoss`] (stage 2), on
  [`StageLoss`], returning a [`StageLossOutput`]; `STAGE_LOSSES` names the default loss of each stage;
* the terms they are made of: [`EarthMoversDistanceLoss`], [`AdaptationLoss`], [`ScoreMSELoss`] and
  [`ImageTextContrastiveLoss`], all computed by `aesformer_hf.models.aesformer.losses_aesformer`.
"""

from .adaptation_loss import AdaptationLoss
from .adaptation_stage_loss import AdaptationStageLoss
from .contrastive_loss import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    ImageTextContrastiveLoss,
    clamp_temperature_,
)
from .emd_loss import EarthMoversDistanceLoss
from .multimodal_stage_loss import MultimodalStageLoss
from .score_mse_loss import ScoreMSELoss
from .stage_loss import LOSS_STATE_FILENAME, StageLoss, StageLossOutput, unwrap_model

# The loss AesformerTrainer builds for each stage when it is given none (`from_training_args(model, args)`).
STAGE_LOSSES = {loss.stage: loss for loss in (MultimodalStageLoss, AdaptationStageLoss)}

__all__ = [
    "LOSS_STATE_FILENAME",
    "STAGE_LOSSES",
    "AdaptationLoss",
    "AdaptationStageLoss",
    "EarthMoversDistanceLoss",
    "ImageTextContrastiveLoss",
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "MultimodalStageLoss",
    "ScoreMSELoss",
    "StageLoss",
    "StageLossOutput",
    "clamp_temperature_",
    "unwrap_model",
]
