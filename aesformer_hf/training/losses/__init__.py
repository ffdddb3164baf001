"""Training losses of AesFormer, one per file (named after the class)."""

from .adaptation_loss import AdaptationLoss
from .contrastive_loss import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    ImageTextContrastiveLoss,
    clamp_temperature_,
)
from .emd_loss import EarthMoversDistanceLoss
from .score_mse_loss import ScoreMSELoss

__all__ = [
    "AdaptationLoss",
    "EarthMoversDistanceLoss",
    "ImageTextContrastiveLoss",
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "ScoreMSELoss",
    "clamp_temperature_",
]
