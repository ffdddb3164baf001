"""AesformerTrainer: losses per stage, metrics, checkpoints with the momentum state, exact resumption."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import TrainerCallback, TrainingArguments

from aesformer_hf import AesformerForAesthetic
from aesformer_hf.training import (
    ADAPTATION,
    MOMENTUM_STATE_FILENAME,
    MULTIMODAL,
    AesformerDataCollator,
    AesformerTrainer,
    MomentumContrast,
)
from aesformer_hf.training.losses import (
    LOSS_STATE_FILENAME,
    AdaptationStageLoss,
    MultimodalStageLoss,
    StageLossOutput,
)

from .conftest import make_args, make_model


class LossRecorder(TrainerCallback):
    def __init__(self):
        self.losses = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = logs["loss"]


def test_needs_aesformer_training_arguments(tmp_path, training_processor):
    with pytest.raises(TypeError, match="AesformerTrainingArguments"):
        AesformerTrainer(
            model=make_model(), args=TrainingArguments(str(tmp_path)), processing_class=training_processor
        )


def test_stage_and_collator_must_agree(tmp_path, training_processor):
    collator = AesformerDataCollator(training_processor, multimodal=False)
    with pytest.raises(ValueError, match="multimodal=True"):
        AesformerTrainer(model=make_model(), args=make_args(tmp_path), data_collator=collator)


def test_remove_unused_columns_is_turned_off(tmp_path, training_processor):
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, remove_unused_columns=True),
        processing_class=training_processor,
    )
    assert trainer.args.remove_unused_columns is False


def test_stage_one_logs_its_loss_terms_and_evaluates_each_head(tmp_path, aesthetics, training_processor):
    recorder = LossRecorder()
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, max_steps=2, logging_steps=1),
        train_dataset=aesthetics["train"],
        eval_dataset=aesthetics["test"],
        processing_class=training_processor,
        callbacks=[recorder],
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert {"image_head_loss", "text_head_loss", "contrastive_loss", "temperature"} <= set(logged[0])
    metrics = trainer.evaluate()
    for prefix in ("eval_", "eval_image_head_", "eval_text_head_"):
        for name in ("accuracy", "plcc", "srcc", "rmse", "emd"):
            assert prefix + name in metrics, prefix + name
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and 0.0 <= metrics["eval_emd"] <= 1.0


def test_metrics_agree_with_a_direct_computation(tmp_path, aesthetics, training_processor):
    from aesformer_hf.metrics import compute_aesthetic_metrics

    model = make_model()
    trainer = AesformerTrainer(
        model=model, args=make_args(tmp_path, stage=ADAPTATION), processing_class=training_processor
    )
    metrics = trainer.evaluate(aesthetics["test"])
    collator = AesformerDataCollator(training_processor, multimodal=False, training=False)
    batch = collator(list(aesthetics["test"]))
    with torch.no_grad():
        predicted = model.eval()(pixel_values=batch["pixel_values"]).distribution
    expected = compute_aesthetic_metrics(
        pred_distributions=predicted.numpy(), true_distributions=batch["labels"].numpy()
    )
    assert metrics["eval_rmse"] == pytest.approx(expected["rmse"], rel=1e-5)
    assert metrics["eval_emd"] == pytest.approx(expected["emd_r1"], rel=1e-5)


def test_score_only_data_trains_with_the_mean_score_mse(tmp_path, aesthetics, training_processor):
    scores = aesthetics["train"].select_columns(["image", "image_id", "score"])
    model = make_model(num_bins=10, score_min=0.0, score_max=1.0, label_threshold=0.5)
    scores = scores.map(lambda row: {"score": row["score"] / 10})
    trainer = AesformerTrainer(
        model=model,
        args=make_args(tmp_path, stage=ADAPTATION, max_steps=2),
        train_dataset=scores,
        eval_dataset=scores.select(range(6)),
        processing_class=training_processor,
    )
    batch = trainer.data_collator([scores[i] for i in range(4)])
    assert batch["labels"].shape == (4,)
    model.train()
    loss = trainer.compute_loss(model, batch)
    predicted = model(pixel_values=batch["pixel_values"]).score
    torch.testing.assert_close(loss, ((predicted - batch["labels"]) ** 2).mean(), rtol=1e-4, atol=1e-6)
    trainer.train()
    metrics = trainer.evaluate()
    assert "eval_srcc" in metrics and "eval_emd" not in metrics


def _numpy_emd2(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((np.cumsum(p, 1) - np.cumsum(t, 1)) ** 2, axis=1))


@pytest.mark.parametrize("stage", [MULTIMODAL, ADAPTATION])
def test_stage_loss_is_the_models_loss_and_the_papers_objective(
    tmp_path, aesthetics, training_processor, stage
):
    """The Trainer's stage loss (without the contrastive term, which needs training mode in stage 1) equals the
    model's `outputs.loss` for the same labels, and both equal the paper's objective computed in float64."""
    model = make_model()
    trainer = AesformerTrainer(
        model=model, args=make_args(tmp_path, stage=stage), processing_class=training_processor
    )
    trainer.data_collator.training = False  # no random crops: the same pixels for every call below
    batch = trainer.data_collator([aesthetics["train"][i] for i in range(4)])
    model.eval()
    with torch.no_grad():
        trainer_loss = trainer.compute_loss(model, batch)
        inputs = {k: v for k, v in batch.items() if stage == MULTIMODAL or k in ("pixel_values", "labels")}
        out = model(**inputs)
    t = batch["labels"].double().numpy()
    if stage == MULTIMODAL:
        reference = sum(
            _numpy_emd2(torch.softmax(logits.double(), -1).numpy(), t).mean()
            for logits in (out.image_logits, out.text_logits)
        )
    else:
        p = out.distribution.double().numpy()
        reference = _numpy_emd2(p, t).mean() + 10 * np.mean((p - t) ** 2)
    assert trainer_loss.item() == pytest.approx(out.loss.item(), abs=1e-6)
    assert trainer_loss.item() == pytest.approx(reference, abs=5e-6)


def test_evaluation_uses_the_evaluation_transform(tmp_path, aesthetics, training_processor):
    trainer = AesformerTrainer(
        model=make_model(), args=make_args(tmp_path), processing_class=training_processor
    )
    loader = trainer.get_eval_dataloader(aesthetics["test"])
    assert loader.collate_fn.training is False
    trainer.train_dataset = aesthetics["train"]
    assert trainer.get_train_dataloader().collate_fn.training is True


def _train(output_dir, aesthetics, processor, resume=None, trainer_class=AesformerTrainer, **overrides):
    recorder = LossRecorder()
    settings = dict(
        max_steps=6, logging_steps=1, save_strategy="steps", save_steps=3, contrastive_queue_size=7
    )
    settings.update(overrides)
    trainer = trainer_class(
        model=make_model(seed=0),
        args=make_args(output_dir, **settings),
        train_dataset=aesthetics["train"],
        processing_class=processor,
        callbacks=[recorder],
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer, recorder.losses


def test_resuming_from_a_checkpoint_continues_exactly(tmp_path, aesthetics, training_processor):
    """12 rows in batches of 4: an epoch is 3 steps, so the checkpoint after step 3 is a clean interruption."""
    full, full_losses = _train(tmp_path / "full", aesthetics, training_processor)
    checkpoint = tmp_path / "full" / "checkpoint-3"
    assert (checkpoint / MOMENTUM_STATE_FILENAME).is_file()

    resumed, resumed_losses = _train(
        tmp_path / "resumed", aesthetics, training_processor, resume=str(checkpoint)
    )
    assert sorted(resumed_losses) == [4, 5, 6]
    for step in (4, 5, 6):
        assert resumed_losses[step] == pytest.approx(full_losses[step], rel=1e-5), step
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    for (name, a), (_, b) in zip(
        full.momentum_contrast.state_dict().items(), resumed.momentum_contrast.state_dict().items()
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_resuming_without_the_momentum_state_differs(tmp_path, aesthetics, training_processor, monkeypatch):
    """The control of the test above: a resumed run whose momentum state starts afresh does not continue exactly."""
    _, full_losses = _train(tmp_path / "full", aesthetics, training_processor, max_steps=4)
    checkpoint = str(tmp_path / "full" / "checkpoint-3")
    monkeypatch.setattr(MomentumContrast, "load", lambda self, folder: None)
    _, resumed_losses = _train(
        tmp_path / "resumed", aesthetics, training_processor, resume=checkpoint, max_steps=4
    )
    assert resumed_losses[4] != pytest.approx(full_losses[4], rel=1e-5)


def test_resuming_from_a_checkpoint_without_momentum_state_fails(tmp_path, aesthetics, training_processor):
    _train(tmp_path / "full", aesthetics, training_processor, max_steps=3)
    checkpoint = tmp_path / "full" / "checkpoint-3"
    os.remove(checkpoint / MOMENTUM_STATE_FILENAME)
    with pytest.raises(FileNotFoundError, match="no momentum-contrast state"):
        _train(tmp_path / "resumed", aesthetics, training_processor, resume=str(checkpoint), max_steps=4)


class _BatchRecordingTrainer(AesformerTrainer):
    """Records each training batch's pixels (sum per image): what the collator's crops and flips made."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pixel_sums = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.pixel_sums.append(inputs["pixel_values"].detach().sum(dim=(1, 2, 3)).clone())
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def _train_recording_batches(output_dir, aesthetics, processor, resume=None, **overrides):
    settings = dict(max_steps=7, save_steps=4, trainer_class=_BatchRecordingTrainer)
    return _train(output_dir, aesthetics, processor, resume, **{**settings, **overrides})


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resuming_mid_epoch_continues_exactly(tmp_path, aesthetics, training_processor, num_workers):
    """3 steps per epoch; interrupted after step 4, one step into the second epoch, the resumed run re-enters
    that epoch mid-way (the Trainer skips the batch already trained on) and crosses into the third.

    The batches, crops and flips included, the losses, the weights and the momentum state must be those of the
    uninterrupted run, also when dataloader workers collate the batches.
    """
    full, full_losses = _train_recording_batches(
        tmp_path / "full", aesthetics, training_processor, dataloader_num_workers=num_workers
    )
    checkpoint = tmp_path / "full" / "checkpoint-4"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["epoch"] == pytest.approx(4 / 3)

    resumed, resumed_losses = _train_recording_batches(
        tmp_path / "resumed",
        aesthetics,
        training_processor,
        resume=str(checkpoint),
        dataloader_num_workers=num_workers,
    )
    assert len(full.pixel_sums) == 7 and len(resumed.pixel_sums) == 3
    for step, (a, b) in enumerate(zip(full.pixel_sums[4:], resumed.pixel_sums), start=5):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=f"the batch of step {step}")
    assert sorted(resumed_losses) == [5, 6, 7]
    for step in (5, 6, 7):
        assert resumed_losses[step] == pytest.approx(full_losses[step], rel=1e-6, abs=1e-7), step
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)
    for (name, a), (_, b) in zip(
        full.momentum_contrast.state_dict().items(), resumed.momentum_contrast.state_dict().items()
    ):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)


def test_training_crops_are_new_each_epoch_and_do_not_depend_on_workers(
    tmp_path, aesthetics, training_processor
):
    """The same rows in every epoch (one batch of all 12), cropped anew each epoch; with or without workers."""
    settings = dict(per_device_train_batch_size=12, max_steps=3, contrastive_queue_size=12)
    main, _ = _train_recording_batches(tmp_path / "main", aesthetics, training_processor, **settings)
    workers, _ = _train_recording_batches(
        tmp_path / "workers", aesthetics, training_processor, dataloader_num_workers=2, **settings
    )
    epochs = [sums.sort().values for sums in main.pixel_sums]
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    for a, b in zip(main.pixel_sums, workers.pixel_sums):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_saved_model_holds_no_momentum_state(tmp_path, aesthetics, training_processor):
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path / "run", max_steps=2),
        train_dataset=aesthetics["train"],
        processing_class=training_processor,
    )
    trainer.train()
    assert int(trainer.momentum_contrast.queue_length) > 0
    trainer.save_model(tmp_path / "model")
    with safe_open(tmp_path / "model" / "model.safetensors", "pt") as saved:
        keys = set(saved.keys())
    assert keys == set(AesformerForAesthetic(trainer.model.config).state_dict())
    assert not any("queue" in key or "momentum" in key or key.endswith("_m") for key in keys)
    assert not (tmp_path / "model" / MOMENTUM_STATE_FILENAME).exists()
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert "momentum" not in json.dumps({k: v for k, v in config.items() if k != "contrastive_momentum"})
    reloaded = AesformerForAesthetic.from_pretrained(tmp_path / "model")
    for (name, a), (_, b) in zip(trainer.model.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_stage_two_starts_from_a_stage_one_folder(tmp_path, aesthetics, training_processor):
    first = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path / "one", max_steps=1),
        train_dataset=aesthetics["train"],
        processing_class=training_processor,
    )
    first.train()
    first.save_model(tmp_path / "stage1")
    model = AesformerForAesthetic.from_pretrained(tmp_path / "stage1")
    second = AesformerTrainer(
        model=model,
        args=make_args(tmp_path / "two", stage=ADAPTATION, max_steps=1),
        train_dataset=aesthetics["train"],
        processing_class=training_processor,
    )
    assert (
        second.momentum_contrast is None
        and second.parameter_counts.trainable < first.parameter_counts.trainable
    )
    second.train()
    assert np.isfinite(second.state.log_history[-1]["train_loss"])


@pytest.mark.parametrize("stage", [MULTIMODAL, ADAPTATION])
def test_bf16_autocast_and_gradient_accumulation(tmp_path, aesthetics, training_processor, stage):
    """Mixed precision and accumulation come from the usual arguments (bf16 autocast works on the CPU too)."""
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, stage=stage, bf16=True, gradient_accumulation_steps=2, max_steps=2),
        train_dataset=aesthetics["train"],
        eval_dataset=aesthetics["test"],
        processing_class=training_processor,
    )
    trainer.train()
    assert np.isfinite(trainer.state.log_history[-1]["train_loss"])
    assert np.isfinite(trainer.evaluate()["eval_loss"])
    assert next(trainer.model.parameters()).dtype == torch.float32  # autocast, not a bf16 copy of the weights


def test_vision_only_model_trains_stage_two(tmp_path, aesthetics, training_processor):
    trainer = AesformerTrainer(
        model=make_model(vision_only=True),
        args=make_args(tmp_path, stage=ADAPTATION, max_steps=1),
        train_dataset=aesthetics["train"],
        processing_class=training_processor.image_processor,
    )
    trainer.train()
    assert trainer.momentum_contrast is None


class _CountingAdaptationLoss(AdaptationStageLoss):
    """A custom loss: stage 2's, plus a persistent count of its training calls that it also logs as a loss part."""

    def __init__(self):
        super().__init__()
        self.register_buffer("training_calls", torch.zeros((), dtype=torch.long))

    def forward(self, model, inputs) -> StageLossOutput:
        result = super().forward(model, inputs)
        if model.training:
            self.training_calls += 1
        result.parts["training_calls"] = self.training_calls.float()
        return result


def test_a_loss_object_given_to_the_trainer_is_used(tmp_path, aesthetics, training_processor):
    loss = _CountingAdaptationLoss()
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, stage=ADAPTATION, max_steps=2, logging_steps=1),
        train_dataset=aesthetics["train"],
        eval_dataset=aesthetics["test"],
        processing_class=training_processor,
        loss=loss,
    )
    assert trainer.loss is loss
    trainer.train()
    assert int(loss.training_calls) == 2
    logged = [entry["training_calls"] for entry in trainer.state.log_history if "training_calls" in entry]
    assert logged == [1.0, 2.0]
    metrics = trainer.evaluate()  # the loss's predictions
    assert "eval_srcc" in metrics and int(loss.training_calls) == 2


def test_a_plain_callable_returning_the_loss_trains(tmp_path, aesthetics, training_processor):
    calls = []

    def loss(model, inputs):
        calls.append(model.training)
        return model(pixel_values=inputs["pixel_values"], labels=inputs["labels"]).loss

    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, stage=ADAPTATION, max_steps=2),
        train_dataset=aesthetics["train"],
        processing_class=training_processor,
        loss=loss,
    )
    trainer.train()
    assert calls == [True, True] and np.isfinite(trainer.state.log_history[-1]["train_loss"])
    assert trainer.momentum_contrast is None


def test_the_state_of_a_custom_loss_is_checkpointed_and_resumed(tmp_path, aesthetics, training_processor):
    def train(output_dir, resume=None):
        loss = _CountingAdaptationLoss()
        trainer = AesformerTrainer(
            model=make_model(),
            args=make_args(output_dir, stage=ADAPTATION, max_steps=4, save_strategy="steps", save_steps=2),
            train_dataset=aesthetics["train"],
            processing_class=training_processor,
            loss=loss,
        )
        trainer.train(resume_from_checkpoint=resume)
        return loss

    assert int(train(tmp_path / "full").training_calls) == 4
    assert (tmp_path / "full" / "checkpoint-2" / LOSS_STATE_FILENAME).is_file()
    resumed = train(tmp_path / "resumed", resume=str(tmp_path / "full" / "checkpoint-2"))
    assert int(resumed.training_calls) == 4  # 2 restored + 2 trained


def test_a_given_multimodal_loss_owns_the_momentum_state(tmp_path, training_processor):
    model = make_model()
    loss = MultimodalStageLoss(model, contrastive_weight=0.1, queue_size=3)
    trainer = AesformerTrainer(
        model=model, args=make_args(tmp_path), processing_class=training_processor, loss=loss
    )
    assert trainer.momentum_contrast is loss.momentum_contrast and loss.momentum_contrast.queue_size == 3
    assert loss.autocast is not None  # the momentum encoders follow the Trainer's mixed precision
    default = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, contrastive_weight=0.2),
        processing_class=training_processor,
    )
    assert isinstance(default.loss, MultimodalStageLoss) and default.loss.contrastive_weight == 0.2
    with pytest.raises(ValueError, match="made for stage 'multimodal'"):
        AesformerTrainer(
            model=make_model(),
            args=make_args(tmp_path, stage=ADAPTATION),
            processing_class=training_processor,
            loss=loss,
        )
    with pytest.raises(ValueError, match="momentum_contrast"):
        AesformerTrainer(
            model=model,
            args=make_args(tmp_path),
            processing_class=training_processor,
            loss=loss,
            momentum_contrast=loss.momentum_contrast,
        )
