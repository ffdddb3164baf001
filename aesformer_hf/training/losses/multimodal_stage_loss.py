"""The stage-1 (multimodal) loss: both MIAA heads' EMD plus the momentum image-text contrastive loss.

The loss owns the contrastive objective's training state, a [`MomentumContrast`] (momentum encoders and feature
queues): it moves the momentum encoders, clamps the temperature, gathers the momentum features of every process
into the queues, and saves and restores that state with each Trainer checkpoint
(`momentum_contrast.safetensors`, see [`MultimodalStageLoss.save_checkpoint`]).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..momentum import MomentumContrast
from ..stages import MULTIMODAL
from .contrastive_loss import ImageTextContrastiveLoss, clamp_temperature_
from .emd_loss import EarthMoversDistanceLoss
from .score_mse_loss import ScoreMSELoss
from .stage_loss import StageLoss, StageLossOutput, unwrap_model


class MultimodalStageLoss(StageLoss):
    r"""
    Loss of AesFormer's stage 1 (images + comments), with `p` the softmax of a head's logits and `y` the labels:

        loss = image_head_weight * EMD_2(p_image, y) + text_head_weight * EMD_2(p_text, y)
               + contrastive_weight * ITC

    The ITC ([`ImageTextContrastiveLoss`]) compares the online embeddings with the momentum features of the batch
    and the queues. It is computed in training mode only: evaluation returns the supervised part, since it must
    not move the momentum state. Score labels `(batch,)` (no distributions) replace each EMD by the MSE of the
    head's mean score. At the default weights, without the contrastive term, the loss equals the model's
    `outputs.loss` for the same labels.

    In training mode, one call: clamps the model's temperature to [0.001, 0.5] (in place), runs the model, moves
    the momentum encoders one step towards the model, computes the batch's momentum features, the ITC against
    them and the queues, then enqueues the batch's features gathered from every process.

    Args:
        model ([`AesformerForAesthetic`]): the multimodal model to train; its towers are copied as the momentum
            encoders (unless `momentum_contrast` is given or `contrastive_weight` is 0).
        image_head_weight, text_head_weight (`float`, default 1.0): weights of the two heads' terms.
        contrastive_weight (`float`, default 0.5): weight of the ITC; 0 turns it off (no momentum state).
        queue_size (`int`, optional): momentum features kept per modality (default: the model config's).
        momentum (`float`, optional): EMA factor of the momentum encoders (default: the model config's).
        momentum_contrast ([`MomentumContrast`], optional): an existing momentum state to use.
        autocast (callable, optional): returns the context manager the momentum encoders run in; `None` runs
            them as they are. [`AesformerTrainer`] sets it to its accelerator's `autocast` (the mixed precision of
            the model's forward pass) when it is `None`.

    Attributes:
        momentum_contrast ([`MomentumContrast`] or `None`): the training state, saved in every checkpoint.
    """

    stage = MULTIMODAL

    def __init__(
        self,
        model: nn.Module,
        image_head_weight: float = 1.0,
        text_head_weight: float = 1.0,
        contrastive_weight: float = 0.5,
        queue_size: int | None = None,
        momentum: float | None = None,
        momentum_contrast: MomentumContrast | None = None,
        autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    ):
        super().__init__()
        for name, value in (
            ("image_head_weight", image_head_weight),
            ("text_head_weight", text_head_weight),
            ("contrastive_weight", contrastive_weight),
        ):
            if not value >= 0:
                raise ValueError(f"{name}={value!r} must be a non-negative number.")
        self.image_head_weight = float(image_head_weight)
        self.text_head_weight = float(text_head_weight)
        self.contrastive_weight = float(contrastive_weight)
        if momentum_contrast is None and self.contrastive_weight > 0:
            momentum_contrast = MomentumContrast(
                unwrap_model(model), queue_size=queue_size, momentum=momentum
            )
        self.momentum_contrast = momentum_contrast
        self.autocast = autocast
        self.emd_loss = EarthMoversDistanceLoss(r=2.0)
        self.score_loss = ScoreMSELoss()
        self.contrastive_loss = ImageTextContrastiveLoss()

    @classmethod
    def from_training_args(cls, model: nn.Module, args, **kwargs) -> MultimodalStageLoss:
        """The loss that [`AesformerTrainingArguments`] `args` describe (weights, queue size, momentum)."""
        settings = dict(
            image_head_weight=args.image_head_weight,
            text_head_weight=args.text_head_weight,
            contrastive_weight=args.contrastive_weight,
            queue_size=args.contrastive_queue_size,
            momentum=args.contrastive_momentum,
        )
        return cls(model, **{**settings, **kwargs})

    def _head_loss(self, distribution: torch.Tensor, labels: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """EMD (r=2) to true distributions `(batch, bins)`, or the mean-score MSE to scores `(batch,)`."""
        if labels.ndim == 1:
            return self.score_loss(distribution, labels, model.bin_values)
        return self.emd_loss(distribution, labels)

    def forward(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> StageLossOutput:
        if "input_ids" not in inputs:
            raise ValueError(
                "Stage 'multimodal' needs tokenised comments (input_ids) in every batch; use an "
                "AesformerDataCollator with multimodal=True."
            )
        labels = inputs["labels"]
        unwrapped = unwrap_model(model)
        if model.training:
            clamp_temperature_(unwrapped.contrastive_temperature)
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        image_distribution = F.softmax(outputs.image_logits.float(), dim=-1)
        text_distribution = F.softmax(outputs.text_logits.float(), dim=-1)
        image_loss = self._head_loss(image_distribution, labels, unwrapped)
        text_loss = self._head_loss(text_distribution, labels, unwrapped)
        loss = self.image_head_weight * image_loss + self.text_head_weight * text_loss
        parts = {"image_head_loss": image_loss, "text_head_loss": text_loss}
        if model.training and self.momentum_contrast is not None and self.contrastive_weight > 0:
            contrastive = self.momentum_contrastive_loss(unwrapped, inputs, outputs)
            loss = loss + self.contrastive_weight * contrastive
            parts.update(contrastive_loss=contrastive, temperature=unwrapped.contrastive_temperature)
        predictions = {
            "distribution": outputs.distribution,
            "image_distribution": image_distribution,
            "text_distribution": text_distribution,
        }
        return StageLossOutput(loss=loss, predictions=predictions, parts=parts)

    def momentum_contrastive_loss(self, model: nn.Module, inputs: dict, outputs) -> torch.Tensor:
        """ITC of the online embeddings in `outputs` against this batch's momentum features plus the queues.

        Moves the momentum encoders one step towards `model` (unwrapped) first and enqueues the batch's momentum
        features (gathered from every process) after.
        """
        state = self.momentum_contrast
        state.update(model)
        with self.autocast() if self.autocast is not None else contextlib.nullcontext():
            image_m, text_m = state.encode(
                inputs["pixel_values"], inputs["input_ids"], inputs.get("attention_mask")
            )
        image_queue, text_queue = state.queued_features()
        loss = self.contrastive_loss(
            outputs.image_embeds,
            outputs.text_embeds,
            image_m,
            text_m,
            model.contrastive_temperature,
            image_queue,
            text_queue,
        )
        state.enqueue(image_m, text_m)
        return loss

    # -- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self, folder: str | os.PathLike) -> str | None:
        """Write the momentum state to `folder/momentum_contrast.safetensors` ([`MomentumContrast.save`], the
        file earlier versions wrote); nothing without a contrastive term. Returns the file's path or `None`."""
        return None if self.momentum_contrast is None else self.momentum_contrast.save(folder)

    def load_checkpoint(self, folder: str | os.PathLike) -> None:
        """Restore the momentum state from `folder` (a Trainer checkpoint written with a contrastive term)."""
        if self.momentum_contrast is not None:
            self.momentum_contrast.load(folder)

    def extra_repr(self) -> str:
        return (
            f"image_head_weight={self.image_head_weight:g}, text_head_weight={self.text_head_weight:g}, "
            f"contrastive_weight={self.contrastive_weight:g}"
        )


__all__ = ["MultimodalStageLoss"]
