"""Which parameters each AesFormer training stage trains.

Stage 1, `"multimodal"`: everything the image+comments forward pass uses (Swin, projection, BERT, the shared
fusion attention, the vision-language experts, the MIAA heads, the contrastive LayerNorm and temperature).

Stage 2, `"adaptation"`: only the vision-only additions (the neck's Linears and adapters, the V experts, the
VIAA LayerNorm and head); the Swin tower, the shared attention and the projection stay frozen.

Each stage also freezes what its forward pass never reaches (stage 1: the VIAA-only parts and Swin's final
LayerNorm; stage 2: the comment tower, VL experts, MIAA heads and contrastive parts). Nothing is lost, since
those parameters would get no gradient anyway, and it lets DDP run with `find_unused_parameters=False`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from ..models.aesformer.configuration_aesformer import ADAPTATION_STAGE as ADAPTATION
from ..models.aesformer.configuration_aesformer import MULTIMODAL_STAGE as MULTIMODAL
from ..models.aesformer.configuration_aesformer import STAGES

# Swin's final LayerNorm (and a classifier, if one was configured): AesFormer reads L4 before them.
_SWIN_UNUSED = r"^model\.vision_model\.timm_model\.(norm|head)\."
# The parts only the vision-only (VIAA) path runs.
_VIAA_ONLY = (
    r"^model\.neck\.",
    r"^model\.fusion_layers\.\d+\.vision_expert\.",
    r"^viaa_norm\.",
    r"^viaa_head\.",
)

_FROZEN_IN_MULTIMODAL = re.compile("|".join((_SWIN_UNUSED, *_VIAA_ONLY)))
_TRAINED_IN_ADAPTATION = re.compile("|".join(_VIAA_ONLY))


@dataclass(frozen=True)
class ParameterCounts:
    """Numbers of scalar parameters (not tensors)."""

    trainable: int
    total: int

    def __str__(self) -> str:
        share = 100.0 * self.trainable / max(self.total, 1)
        return f"{self.trainable:,} trainable of {self.total:,} parameters ({share:.1f}%)"


def is_trained_in_stage(parameter_name: str, stage: str) -> bool:
    """Whether `parameter_name` (a name of `AesformerForAesthetic.named_parameters()`) is trained in `stage`."""
    if stage == MULTIMODAL:
        return _FROZEN_IN_MULTIMODAL.search(parameter_name) is None
    if stage == ADAPTATION:
        return _TRAINED_IN_ADAPTATION.search(parameter_name) is not None
    raise ValueError(f"stage={stage!r} is not an AesFormer stage; expected one of {list(STAGES)}.")


def prepare_model_for_stage(model: nn.Module, stage: str) -> ParameterCounts:
    """Set `requires_grad` of every parameter of an `AesformerForAesthetic` for `stage`; return the counts.

    Raises:
        ValueError: for stage 1 on a vision-only model (it has no comment tower to train with).
    """
    config = getattr(model, "config", None)
    if stage == MULTIMODAL and config is not None and config.is_vision_only:
        raise ValueError(
            "stage='multimodal' trains with the users' comments, but this AesFormer is vision-only "
            "(config.text_config is None). Train it with stage='adaptation', or start from a full model."
        )
    trainable = total = 0
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(is_trained_in_stage(name, stage))
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    if trainable == 0:
        raise ValueError(
            f"No parameter of {type(model).__name__} is trained in stage {stage!r}: is it an AesformerForAesthetic?"
        )
    return ParameterCounts(trainable=trainable, total=total)


__all__ = [
    "ADAPTATION",
    "MULTIMODAL",
    "STAGES",
    "ParameterCounts",
    "is_trained_in_stage",
    "prepare_model_for_stage",
]
