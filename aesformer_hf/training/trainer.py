"""`AesformerTrainer`: the `transformers.Trainer` that trains AesFormer's two stages.

It changes only what AesFormer needs:

* `__init__`: freezes the parameters the stage does not train (they never reach the optimiser), logs the
  trainable and total parameter counts, builds the data collator, `compute_metrics` and the stage's loss when
  they are not given;
* `compute_loss`: delegates to the loss object (`loss=`, as `SentenceTransformerTrainer(loss=...)` does), which
  runs the model and returns the loss, the predictions evaluation reads and the loss parts that are logged;
* `get_train_dataloader`: training rows carry the seed of their random crop and flip (below);
* `get_eval_dataloader` / `get_test_dataloader`: evaluation uses the collator's evaluation transform;
* `_save_checkpoint` / `train`: the loss's training state (stage 1: the momentum contrast) is saved in, and
  restored from, each checkpoint;
* `get_decay_parameter_names`: no weight decay on the contrastive temperature;
* `log`: adds the stage-1 loss terms (each head's loss, the contrastive loss, the temperature).

Losses (`p` = softmax of a head's logits, `y` = the true distribution), one module per stage in
`aesformer_hf.training.losses`, built from the arguments' weights unless `loss=` is given:

* stage 1, `"multimodal"` ([`MultimodalStageLoss`]): `image_head_weight * EMD_2(p_image, y) + text_head_weight
  * EMD_2(p_text, y) + contrastive_weight * ITC`, the ITC against momentum features of the batch and the queues
  (training only: evaluation reports the supervised part, since it must not move the momentum state). The loss
  owns the momentum encoders and queues;
* stage 2, `"adaptation"` ([`AdaptationStageLoss`]): `adaptation_emd_weight * EMD_2(p, y) + adaptation_mse_weight
  * MSE(p, y)`;
* score-only data (`labels` of shape `(batch,)`): the MSE of the predicted mean score replaces the EMD terms.

Exact resumption, mid-epoch included: `Trainer` restores the model, optimiser, scheduler and global RNG states
(dropout) and skips the batches already trained on; the momentum encoders and queues come from the checkpoint
too. The training transform's crops and flips cannot follow the global RNG: `Trainer` restores it only after
the resumed epoch's first batch is collated (and the loader collates one batch ahead; workers have RNGs of
their own). So each training row is seeded from (`data_seed` or `seed`, epoch, process index, row index) by
[`RowsWithAugmentationSeeds`] instead: no state to save, the same crops with any number of dataloader workers,
different crops on each process. The epoch reaches the rows through an `on_epoch_begin` callback. Map-style
datasets only: an iterable one has no row indices, and its crops come from the global RNG.

One case stays out of reach without changing `Trainer` itself: with `dataloader_persistent_workers=True`, the
crops still repeat exactly, but dropout does not after the first epoch boundary that follows a resumption.
PyTorch's `DataLoader` draws its workers' base seed from the global RNG when it creates its iterator, which
persistent workers do only once: the resumed run's loader does it at an epoch where the uninterrupted run's
loader did not, so the global RNG streams part there.

The momentum encoders move once per training forward pass (so once per micro-batch under gradient
accumulation, as in the released code), before the momentum features of the batch are computed; the batch's
momentum features are enqueued after the loss is computed.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
from torch import nn
from torch.utils.data import IterableDataset
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, has_length
from transformers.utils import logging

from .collator import AesformerDataCollator, RowsWithAugmentationSeeds
from .denormals import flush_denormals_on_cpu
from .evaluation import AestheticMetricsForTrainer
from .losses import STAGE_LOSSES, StageLossOutput
from .momentum import MomentumContrast
from .stages import ADAPTATION, MULTIMODAL, prepare_model_for_stage
from .training_args import AesformerTrainingArguments

logger = logging.get_logger(__name__)


class _AugmentationEpochCallback(TrainerCallback):
    """Keys the training rows' augmentation seeds to the epoch that is starting.

    `Trainer` runs `on_epoch_begin` before it builds the epoch's batch iterator, including the epoch that a
    resumed run re-enters mid-way (`state.epoch` then holds the checkpoint's fractional epoch, whose integer
    part is the epoch being resumed). Accelerate's `DataLoaderShard.set_epoch` cannot be relied upon for this:
    it skips the dataset when a sampler wrapped by `BatchSamplerShard` or `SkipBatchSampler` takes the epoch.
    """

    def __init__(self):
        self.rows: RowsWithAugmentationSeeds | None = None

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.rows is not None:
            self.rows.set_epoch(int(state.epoch))


class AesformerTrainer(Trainer):
    r"""
    [`~transformers.Trainer`] for [`AesformerForAesthetic`] with [`AesformerTrainingArguments`].

    Args:
        model ([`AesformerForAesthetic`]): stage 1 needs a multimodal model; stage 2 usually starts from a
            stage-1 folder (`AesformerForAesthetic.from_pretrained(folder)`).
        args ([`AesformerTrainingArguments`]): `stage`, the loss weights and the usual training arguments.
        data_collator ([`AesformerDataCollator`], optional): built from `processing_class` when left out
            (multimodal in stage 1, vision-only in stage 2). Evaluation uses its `for_evaluation()` copy.
        processing_class ([`AesformerProcessor`]): saved with the model; gives the collator its transforms and
            tokenizer.
        compute_metrics (optional): defaults to [`AestheticMetricsForTrainer`] (accuracy, PLCC, SRCC, RMSE, EMD).
        loss ([`StageLoss`] or callable, optional): what `compute_loss` delegates to: `loss(model, inputs)` runs
            the model on the batch and returns a [`StageLossOutput`] (or just the loss tensor, which leaves
            evaluation without predictions). Left out, the stage's loss is built from `args`' weights
            (`STAGE_LOSSES[args.stage].from_training_args(model, args)`). A loss with a `stage` attribute must be
            made for `args.stage`. An `nn.Module` loss is moved to `args.device`; its `save_checkpoint(folder)` /
            `load_checkpoint(folder)` methods, when it has them, save and restore its state with each checkpoint.
        momentum_contrast ([`MomentumContrast`], optional): the stage-1 contrastive state for the default loss;
            built from the model when left out (stage 1 with `contrastive_weight > 0`).

    Attributes:
        parameter_counts ([`ParameterCounts`]): trainable and total parameters in this stage.
        loss: the loss object `compute_loss` delegates to.
        momentum_contrast ([`MomentumContrast`] or `None`): the loss's momentum state (`loss.momentum_contrast`).

    Other keyword arguments go to `Trainer`. Datasets are `datasets.Dataset`s with an `image` column, a
    `distribution` (or `score`) column and, for stage 1, `comments` (rows without comments must be dropped
    first, see [`keep_rows_with_comments`]).
    """

    def __init__(
        self,
        model: nn.Module,
        args: AesformerTrainingArguments,
        data_collator: Any = None,
        processing_class: Any = None,
        compute_metrics: Any = None,
        momentum_contrast: MomentumContrast | None = None,
        loss: Any = None,
        **kwargs,
    ):
        if not isinstance(args, AesformerTrainingArguments):
            raise TypeError(
                f"args is a {type(args).__name__}; AesformerTrainer needs AesformerTrainingArguments (they add "
                "`stage` and the loss weights)."
            )
        if loss is not None and momentum_contrast is not None:
            raise ValueError(
                "Pass momentum_contrast to the loss (MultimodalStageLoss(model, momentum_contrast=...)), not to "
                "AesformerTrainer together with loss=."
            )
        loss_stage = getattr(loss, "stage", None)
        if loss_stage is not None and loss_stage != args.stage:
            raise ValueError(
                f"The loss {type(loss).__name__} is made for stage {loss_stage!r}, but args.stage is {args.stage!r}."
            )
        if args.remove_unused_columns:
            logger.warning(
                "remove_unused_columns=True would drop the raw columns (image, comments, ...) the collator reads; "
                "AesformerTrainer sets it to False."
            )
            args.remove_unused_columns = False
        self.parameter_counts = prepare_model_for_stage(model, args.stage)
        logger.info(f"AesFormer stage {args.stage!r}: {self.parameter_counts}.")
        config = model.config

        if data_collator is None:
            if processing_class is None:
                raise ValueError(
                    "AesformerTrainer needs a processing_class (an AesformerProcessor) to build its data "
                    "collator, or a data_collator."
                )
            data_collator = AesformerDataCollator(
                processing_class,
                multimodal=args.stage == MULTIMODAL,
                num_bins=config.num_bins,
                resize_size=args.train_resize_size,
            )
        self._check_collator(data_collator, args.stage, config)
        self.eval_data_collator = (
            data_collator.for_evaluation() if hasattr(data_collator, "for_evaluation") else data_collator
        )
        if compute_metrics is None:
            compute_metrics = AestheticMetricsForTrainer.from_config(config)

        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            processing_class=processing_class,
            compute_metrics=compute_metrics,
            **kwargs,
        )

        if loss is None:
            extra = {"momentum_contrast": momentum_contrast} if momentum_contrast is not None else {}
            loss = STAGE_LOSSES[args.stage].from_training_args(self.model, args, **extra)
        if getattr(loss, "autocast", False) is None:
            # The momentum encoders run in the mixed precision of the model's forward pass.
            loss.autocast = self.accelerator.autocast
        if isinstance(loss, nn.Module):
            loss.to(args.device)
        self.loss = loss
        self._loss_parts: dict[str, tuple[torch.Tensor | float, int]] = {}
        self._augmentation_epochs = _AugmentationEpochCallback()
        self.add_callback(self._augmentation_epochs)

    @staticmethod
    def _check_collator(collator: Any, stage: str, config) -> None:
        if not isinstance(collator, AesformerDataCollator):
            return
        if collator.multimodal != (stage == MULTIMODAL):
            raise ValueError(
                f"The data collator has multimodal={collator.multimodal}, but stage {stage!r} "
                f"{'reads' if stage == MULTIMODAL else 'does not read'} comments: build it with "
                f"multimodal={stage == MULTIMODAL}."
            )
        if collator.num_bins is None:
            collator.num_bins = config.num_bins
        elif collator.num_bins != config.num_bins:
            raise ValueError(
                f"The data collator expects {collator.num_bins} bins but the model predicts {config.num_bins}."
            )

    # -- losses ------------------------------------------------------------------------------------
    @property
    def momentum_contrast(self) -> MomentumContrast | None:
        """The stage-1 momentum state that the loss owns (`loss.momentum_contrast`), or `None`."""
        return getattr(getattr(self, "loss", None), "momentum_contrast", None)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """`self.loss(model, inputs)` (see the module docstring); in training, its loss parts are kept for `log`.

        With `return_outputs`, also a dict of the loss's predicted distributions `(batch, bins)` after `loss`:
        `distribution` and, in stage 1, `image_distribution`, `text_distribution` (`PREDICTION_KEYS` order).
        """
        result = self.loss(model, inputs)
        if isinstance(result, StageLossOutput):
            loss, predictions, parts = result.loss, result.predictions, result.parts
        else:
            loss, predictions, parts = result, {}, {}
        if model.training and parts:
            self._record_loss_parts(parts)
        return (loss, {"loss": loss, **predictions}) if return_outputs else loss

    def _record_loss_parts(self, parts: dict[str, torch.Tensor]) -> None:
        # Summed on the device and read only when logging, so that steps do not wait on `.item()`.
        for name, value in parts.items():
            total, count = self._loss_parts.get(name, (0.0, 0))
            self._loss_parts[name] = (total + value.detach().float(), count + 1)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """`Trainer.log`, plus the means of the stage-1 loss terms since the last log (this process's batches)."""
        if "loss" in logs and self._loss_parts:
            for name, (total, count) in self._loss_parts.items():
                logs[name] = round(float(total) / count, 4)
            self._loss_parts.clear()
        super().log(logs, start_time)

    # -- training data -----------------------------------------------------------------------------
    def get_train_dataloader(self):
        """`Trainer.get_train_dataloader` over [`RowsWithAugmentationSeeds`] of the training dataset.

        Only for an [`AesformerDataCollator`] with the training transform (another collator would not expect
        the extra `augmentation_seed` key) and a map-style dataset (an iterable one has no row indices: its
        crops come from the global RNG, so a mid-epoch resumption does not repeat them).
        """
        dataset = self.train_dataset
        collator = self.data_collator
        if (
            dataset is not None
            and not isinstance(dataset, IterableDataset)
            and has_length(dataset)
            and not len(dataset)
        ):
            raise ValueError(
                "The training dataset has no rows (in stage 'multimodal', keep_rows_with_comments may have dropped "
                "them all: only rows with comments can be trained on there)."
            )
        if (
            not isinstance(collator, AesformerDataCollator)
            or not collator.training
            or dataset is None
            or isinstance(dataset, IterableDataset)
            or not has_length(dataset)
        ):
            return super().get_train_dataloader()
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        rows = RowsWithAugmentationSeeds(dataset, seed=seed, process_index=self.args.process_index)
        self._augmentation_epochs.rows = rows
        self.train_dataset = rows
        try:
            return super().get_train_dataloader()
        finally:
            self.train_dataset = dataset

    # -- evaluation data ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _evaluation_collator(self):
        training_collator = self.data_collator
        self.data_collator = self.eval_data_collator
        try:
            yield
        finally:
            self.data_collator = training_collator

    def get_eval_dataloader(self, eval_dataset=None):
        with self._evaluation_collator():
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset):
        with self._evaluation_collator():
            return super().get_test_dataloader(test_dataset)

    # -- optimiser ---------------------------------------------------------------------------------
    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        # Decaying the temperature would pull it towards 0, i.e. towards ever sharper contrastive logits.
        return [
            name for name in super().get_decay_parameter_names(model) if "contrastive_temperature" not in name
        ]

    # -- checkpoints -------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        save_loss_state = getattr(self.loss, "save_checkpoint", None)
        if save_loss_state is not None and self.args.should_save and not self.args.save_only_model:
            # Written before the rest of the checkpoint so that a push of the checkpoint folder includes it.
            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            save_loss_state(folder)
        super()._save_checkpoint(model, trial)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """`Trainer._save`, completed for the Hub (`aesformer_hf.hub.complete_for_hub`: the pipeline and the base
        model's `AutoModel` entry), so that a folder the Trainer saves or pushes (`push_to_hub`) loads with
        `pipeline("image-aesthetics", model=..., trust_remote_code=True)` where aesformer_hf is not installed."""
        super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save:
            from ..hub.remote_code import complete_for_hub

            complete_for_hub(output_dir if output_dir is not None else self.args.output_dir)

    def latest_eval_metrics(self) -> dict[str, float]:
        """The last evaluation's metrics from the log history (`eval_` prefixes kept), or `{}`."""
        for entry in reversed(self.state.log_history):
            if any(key.startswith("eval_") and key != "eval_loss" for key in entry):
                return {k: v for k, v in entry.items() if k.startswith("eval_")}
        return {}

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        **kwargs,
    ):
        """Write the AesFormer model card (`output_dir/README.md`) with the measured figures as `model-index`.

        Takes `Trainer.create_model_card`'s arguments (so `push_to_hub(license=..., finetuned_from=..., tags=...,
        dataset=..., language=...)` reach the card) and keeps the Trainer's hyperparameter and framework sections.
        `finetuned_from` becomes `base_model` (default: the pretrained Swin and BERT of a released-shape model);
        `dataset` names the evaluated data and `dataset_tags` its Hub id. Without evaluation metrics (no
        evaluation ran) the Trainer's own card is written.
        """
        from ..hub.model_card import write_model_card

        metrics = kwargs.pop("metrics", None)
        metrics = metrics if metrics is not None else self.latest_eval_metrics()
        if kwargs:
            raise TypeError(f"create_model_card() got unexpected keyword arguments {sorted(kwargs)}.")
        if not self.is_world_process_zero():
            return None
        trainer_kwargs = dict(
            language=language,
            license=license,
            tags=tags,
            model_name=model_name,
            finetuned_from=finetuned_from,
            tasks=tasks,
            dataset_tags=dataset_tags,
            dataset=dataset,
            dataset_args=dataset_args,
        )
        if not metrics:
            return super().create_model_card(**trainer_kwargs)
        config = self.model.config
        dataset_name = dataset[0] if isinstance(dataset, (list, tuple)) and dataset else dataset
        dataset_ids = [dataset_tags] if isinstance(dataset_tags, str) else list(dataset_tags or [])
        return write_model_card(
            self.args.output_dir,
            metrics,
            dataset_name=dataset_name or (dataset_ids[0] if dataset_ids else "unspecified"),
            variant=config.released_variant or "custom",
            stage=self.args.stage,
            model_name=model_name,
            dataset_id=dataset_ids[0] if dataset_ids else None,
            base_model=finetuned_from,
            license=license,
            tags=[tags] if isinstance(tags, str) else list(tags or []),
            language=language,
            extra_sections=[self._trainer_card_sections()],
        )

    def _trainer_card_sections(self) -> str:
        """The Trainer card's "Training hyperparameters" and "Framework versions" sections."""
        from transformers.modelcard import TrainingSummary, extract_hyperparameters_from_trainer

        summary = TrainingSummary(
            model_name="", hyperparameters=extract_hyperparameters_from_trainer(self), source="trainer"
        )
        text = summary.to_model_card()
        start = text.find("### Training hyperparameters")
        if start < 0:
            return ""
        sections = text[start:].replace("### ", "## ", 1)
        return sections.replace("\n### Framework versions", "\n## Framework versions")

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """`Trainer.train`; when resuming, the loss's state comes back too (stage 1: momentum encoders and queues).

        `resume_from_checkpoint=True` resumes from the latest `checkpoint-*` folder of `output_dir`, as `Trainer`
        does (`transformers.trainer_utils.get_last_checkpoint`), momentum state included. On the CPU, denormal
        floats are flushed to zero while training (see `aesformer_hf.training.denormals`) and the caller's
        setting is restored afterwards.
        """
        if resume_from_checkpoint is True:
            # Resolved here once, so that the momentum state and the Trainer's state come from the same folder.
            output_dir = self.args.output_dir
            resume_from_checkpoint = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
            if resume_from_checkpoint is None:
                raise ValueError(
                    f"resume_from_checkpoint=True, but the output directory {self.args.output_dir} holds no "
                    f"{PREFIX_CHECKPOINT_DIR}-* folder to resume from."
                )
        load_loss_state = getattr(self.loss, "load_checkpoint", None)
        if resume_from_checkpoint and load_loss_state is not None:
            load_loss_state(resume_from_checkpoint)
        with flush_denormals_on_cpu(self.args.device):
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)


__all__ = ["AesformerTrainer", "ADAPTATION", "MULTIMODAL"]
