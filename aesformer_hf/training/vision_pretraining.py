"""Pre-train AesFormer's Swin tower as an image classifier with `transformers.Trainer`.

AesFormer's recipe starts from an ImageNet-pretrained Swin: stage 1 fine-tunes it gently and
stage 2 freezes it, so everything the vision-only (VIAA) path can see comes from what the tower already
knows. Where no pretrained Swin can be had (a machine without the Hub, as in `aesformer-hf demo`), or to
adapt a tower to a domain first, [`pretrain_vision_tower`] trains a `TimmWrapperForImageClassification` of
the same architecture on a labelled column and saves it as a timm folder. `load_vision_tower` and
[`AesformerForAesthetic.from_vision_text_pretrained`] read that folder exactly like a Swin from the Hub.

The classifier reads the final-norm, average-pooled Swin features (timm's own head); AesFormer keeps the
tower's body and drops the classifier.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TimmWrapperConfig, TimmWrapperForImageClassification, Trainer, TrainingArguments

from .collator import AesformerDataCollator, describe_row
from .denormals import flush_denormals_on_cpu


@dataclass
class ImageClassificationCollator:
    """Rows with `image` and an integer `label_column` -> `pixel_values` (training transform) and `labels`.

    Args:
        image_collator ([`AesformerDataCollator`]): loads and transforms the images (its training transform:
            resize, flip, random crop, normalise), so the tower learns on the images stage 1 will show it.
        label_column (`str`): column of class ids in `[0, num_labels)`.

    Returns (from `__call__`): `pixel_values` `(batch, 3, size, size)` float32 and `labels` `(batch,)` int64.
    """

    image_collator: AesformerDataCollator
    label_column: str = "label"

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        labels = []
        for index, row in enumerate(rows):
            label = row.get(self.label_column)
            if label is None or isinstance(label, bool) or not isinstance(label, int) or label < 0:
                raise ValueError(
                    f"{describe_row(row, index)}: {self.label_column!r} must be a class id >= 0, got {label!r}."
                )
            labels.append(label)
        pixel_values = self.image_collator.pixel_values(rows)
        return {"pixel_values": pixel_values, "labels": torch.tensor(labels, dtype=torch.long)}


def _class_names(dataset, label_column: str) -> list[str]:
    feature = dataset.features.get(label_column) if getattr(dataset, "features", None) else None
    names = getattr(feature, "names", None)
    if names:
        return list(names)
    # Plain integer ids: as many classes as the largest id says; bad cells are named by the collator.
    ids = [value for value in dataset[label_column] if isinstance(value, int) and not isinstance(value, bool)]
    if not ids:
        raise ValueError(f"The {label_column!r} column holds no integer class ids.")
    return [str(i) for i in range(max(ids) + 1)]


def pretrain_vision_tower(
    vision_config: TimmWrapperConfig,
    train_dataset,
    label_column: str,
    image_processor,
    output_dir: str | os.PathLike,
    max_steps: int,
    learning_rate: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
    **training_arguments,
) -> TimmWrapperForImageClassification:
    """Train a Swin classifier of `vision_config`'s architecture on `train_dataset[label_column]` and save it.

    Args:
        vision_config: the Swin to build (an [`AesformerConfig`]'s `vision_config`); it is copied, not changed.
        train_dataset: a `datasets.Dataset` with an `image` column and integer class ids in `label_column`
            (a `ClassLabel` gives the saved config its `id2label`).
        label_column: name of the class-id column.
        image_processor: an [`AesformerImageProcessor`] (or a processor holding one): size and normalisation.
        output_dir: where the classifier is saved (a timm folder: `config.json` + `model.safetensors`);
            the Trainer's run files go to `output_dir/run`.
        max_steps, learning_rate, batch_size, seed: the schedule (AdamW, cosine with 5 % warm-up,
            weight decay 0.05 unless `training_arguments` say otherwise).
        training_arguments: any other `TrainingArguments` field (e.g. `use_cpu=True`, `bf16=True`).

    Returns:
        The trained classifier, in eval mode; `output_dir` holds it for `load_vision_tower`.
    """
    if label_column not in train_dataset.column_names:
        raise ValueError(
            f"The dataset has no {label_column!r} column (columns: {train_dataset.column_names}); "
            "pre-training the vision tower needs a column of class ids."
        )
    names = _class_names(train_dataset, label_column)
    config = copy.deepcopy(vision_config)
    config.num_labels = len(names)
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    torch.manual_seed(seed)
    classifier = TimmWrapperForImageClassification(config)

    defaults = {
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "weight_decay": 0.05,
        "logging_steps": max(1, max_steps // 10),
        "save_strategy": "no",
        "report_to": [],
        "dataloader_num_workers": 0,
        # A progress bar even when the caller quieted transformers' logging (TrainingArguments would hide it).
        "disable_tqdm": False,
    }
    args = TrainingArguments(
        output_dir=os.path.join(os.fspath(output_dir), "run"),
        max_steps=max_steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        seed=seed,
        # The collator needs the raw `image` column, which Trainer would drop as "unused by the model".
        remove_unused_columns=False,
        **{**defaults, **training_arguments},
    )
    collator = ImageClassificationCollator(
        AesformerDataCollator(image_processor, multimodal=False), label_column=label_column
    )
    trainer = Trainer(model=classifier, args=args, train_dataset=train_dataset, data_collator=collator)
    with flush_denormals_on_cpu(args.device):  # denormals slow CPU training down many times (see .denormals)
        trainer.train()
    classifier.eval()
    trainer.save_model(os.fspath(output_dir))
    return classifier


__all__ = ["ImageClassificationCollator", "pretrain_vision_tower"]
