"""Training arguments of AesFormer: `TrainingArguments` plus the stage and the loss weights."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..models.aesformer.losses_aesformer import ADAPTATION_MSE_WEIGHT
from .stages import MULTIMODAL, STAGES


@dataclass
class AesformerTrainingArguments(TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] with the two AesFormer stages and their loss weights.

    Everything else (learning rate, schedule, batch size, `bf16`/`fp16`, gradient accumulation, checkpoints,
    evaluation) is the usual `TrainingArguments` field. The paper's recipe:

    * stage 1 (`stage="multimodal"`): AdamW lr 1e-5, betas (0.9, 0.99), cosine to 1e-6, batch 16;
    * stage 2 (`stage="adaptation"`): lr 1e-4, batch 256, starting from the stage-1 weights.

    Args:
        stage (`str`, defaults to `"multimodal"`):
            `"multimodal"` trains image + comments with `image_head_weight * EMD(image head) + text_head_weight *
            EMD(text head) + contrastive_weight * ITC`; `"adaptation"` trains the vision-only path (neck, adapters,
            V experts, VIAA head) with `adaptation_emd_weight * EMD + adaptation_mse_weight * MSE(distribution)`.
            Score-only datasets (a `score` column, no `distribution`) use the MSE of the mean score instead of EMD.
            At the default weights and without the contrastive term, each stage's loss equals the model's own
            `outputs.loss` for the same labels (one definition, `losses_aesformer.py`).
        image_head_weight, text_head_weight (`float`, default 1.0): weights of the two MIAA heads' EMD (r=2).
        contrastive_weight (`float`, default 0.5): weight of the image-text contrastive loss; 0 turns the
            contrastive objective (and its momentum encoders and queues) off.
        adaptation_emd_weight, adaptation_mse_weight (`float`, defaults 1.0 and 10.0): stage-2 loss weights.
        contrastive_queue_size (`int`, optional): momentum features kept per modality; defaults to the model
            config's `contrastive_queue_size` (1024).
        contrastive_momentum (`float`, optional): EMA factor of the momentum encoders; defaults to the model
            config's `contrastive_momentum` (0.995).
        train_resize_size (`int`, optional): side in pixels that training images are resized to before the random
            crop; defaults to `round(size * 256 / 224)` of the processor's `size` (256 at 224).

    Two `TrainingArguments` defaults differ: `remove_unused_columns=False`, because the data collator reads the
    raw `image`, `distribution`/`score` and `comments` columns, and `ddp_find_unused_parameters=False`, because
    each stage freezes the parameters its forward pass does not use.
    """

    stage: str = field(
        default=MULTIMODAL,
        metadata={
            "help": "'multimodal' (stage 1: image + comments, contrastive) or 'adaptation' (stage 2: VIAA)."
        },
    )
    image_head_weight: float = field(
        default=1.0, metadata={"help": "Stage 1: weight of the image head's EMD."}
    )
    text_head_weight: float = field(default=1.0, metadata={"help": "Stage 1: weight of the text head's EMD."})
    contrastive_weight: float = field(
        default=0.5, metadata={"help": "Stage 1: weight of the image-text contrastive loss (0 turns it off)."}
    )
    adaptation_emd_weight: float = field(default=1.0, metadata={"help": "Stage 2: weight of the EMD."})
    adaptation_mse_weight: float = field(
        default=ADAPTATION_MSE_WEIGHT, metadata={"help": "Stage 2: weight of the MSE between distributions."}
    )
    contrastive_queue_size: int | None = field(
        default=None, metadata={"help": "Momentum features kept per modality (default: the model config's)."}
    )
    contrastive_momentum: float | None = field(
        default=None, metadata={"help": "EMA factor of the momentum encoders (default: the model config's)."}
    )
    train_resize_size: int | None = field(
        default=None,
        metadata={"help": "Resize side before the random crop (default: round(size * 256 / 224))."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "Kept False: the AesFormer collator reads raw dataset columns (image, comments, ...)."
        },
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={"help": "False: each stage freezes the parameters its forward pass leaves unused."},
    )

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(
                f"stage={self.stage!r} is not an AesFormer stage; expected one of {list(STAGES)}."
            )
        for name in (
            "image_head_weight",
            "text_head_weight",
            "contrastive_weight",
            "adaptation_emd_weight",
            "adaptation_mse_weight",
        ):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name}={value!r} must be a non-negative number.")
        if self.contrastive_queue_size is not None and self.contrastive_queue_size < 0:
            raise ValueError(f"contrastive_queue_size={self.contrastive_queue_size} must be >= 0.")
        if self.contrastive_momentum is not None and not 0.0 <= self.contrastive_momentum < 1.0:
            raise ValueError(f"contrastive_momentum={self.contrastive_momentum} must be within [0, 1).")
        if self.train_resize_size is not None and self.train_resize_size < 1:
            raise ValueError(
                f"train_resize_size={self.train_resize_size} must be a positive number of pixels."
            )
        super().__post_init__()


__all__ = ["AesformerTrainingArguments"]
