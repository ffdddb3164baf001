"""Training AesFormer with the `transformers.Trainer` API: the two stages (see the README, "Training").

* [`AesformerTrainingArguments`]: `TrainingArguments` plus `stage` (`"multimodal"` | `"adaptation"`) and the
  loss weights;
* [`AesformerTrainer`]: the `Trainer` subclass (stage freezing, the stage's loss, its state in checkpoints);
* [`MultimodalStageLoss`], [`AdaptationStageLoss`]: the stages' losses, which `AesformerTrainer.compute_loss`
  delegates to (`AesformerTrainer(loss=...)` takes another, a [`StageLoss`] returning a [`StageLossOutput`]);
* [`AesformerDataCollator`]: raw dataset rows -> batches (training / evaluation transforms, comment tokens);
* [`MomentumContrast`]: the momentum encoders and queues of the contrastive objective (training state);
* [`AestheticMetricsForTrainer`]: `compute_metrics` with the paper's metrics;
* [`pretrain_vision_tower`]: a Swin pre-trained as a classifier, for when no pretrained Swin can be had;
* [`flush_denormals`]: the CPU training speed guard the trainers apply themselves (`denormals`);
* `losses`: one loss per file (the stage losses and the terms they are made of).
"""

from .collator import AesformerDataCollator, default_train_resize_size, keep_rows_with_comments
from .denormals import flush_denormal_enabled, flush_denormals
from .evaluation import AestheticMetricsForTrainer
from .losses import AdaptationStageLoss, MultimodalStageLoss, StageLoss, StageLossOutput
from .momentum import MOMENTUM_STATE_FILENAME, MomentumContrast
from .stages import (
    ADAPTATION,
    MULTIMODAL,
    STAGES,
    ParameterCounts,
    is_trained_in_stage,
    prepare_model_for_stage,
)
from .trainer import AesformerTrainer
from .training_args import AesformerTrainingArguments
from .vision_pretraining import pretrain_vision_tower

__all__ = [
    "ADAPTATION",
    "MOMENTUM_STATE_FILENAME",
    "MULTIMODAL",
    "STAGES",
    "AdaptationStageLoss",
    "AesformerDataCollator",
    "AesformerTrainer",
    "AesformerTrainingArguments",
    "AestheticMetricsForTrainer",
    "MomentumContrast",
    "MultimodalStageLoss",
    "ParameterCounts",
    "StageLoss",
    "StageLossOutput",
    "default_train_resize_size",
    "flush_denormal_enabled",
    "flush_denormals",
    "is_trained_in_stage",
    "keep_rows_with_comments",
    "prepare_model_for_stage",
    "pretrain_vision_tower",
]
