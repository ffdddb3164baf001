"""Training runs that repeat, stay fast on the CPU and stop clearly on data or arguments they cannot use.

* the same `--seed` gives the same run (the model is built after seeding);
* CPU training flushes denormal floats while it runs and restores the caller's setting afterwards;
* stage 1 with no row left after dropping rows without comments, a split of 0 rows, a batch size of 0 and
  `--resume_from_checkpoint True` with nothing to resume are refused in one line (exit code 2);
  `--resume_from_checkpoint True` resumes stage 1 from the latest checkpoint, momentum state included.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from PIL import Image
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback

from aesformer_hf import AesformerImageProcessor
from aesformer_hf.testing_utils import tiny_config
from aesformer_hf.training import (
    AesformerTrainer,
    flush_denormal_enabled,
    flush_denormals,
    vision_pretraining,
)
from aesformer_hf.training.run_training import main as train_main

from .conftest import make_args, make_model


def _common(output_dir, *extra):
    return [
        "--output_dir", str(output_dir), "--per_device_train_batch_size", "4", "--max_steps", "2",
        "--report_to", "none", "--use_cpu", "--save_strategy", "no", "--disable_tqdm", "true",
        "--contrastive_queue_size", "8", "--logging_steps", "1", *extra,
    ]  # fmt: skip


def _write_parquet(folder, splits: dict) -> str:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, data in splits.items():
        data.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return str(folder)


@pytest.fixture(scope="module")
def parquet_folder(tmp_path_factory, aesthetics):
    return _write_parquet(tmp_path_factory.mktemp("parquet"), dict(aesthetics))


def _one_error_line(err: str) -> str:
    """The one error line on stderr (progress bars of datasets aside), with no traceback."""
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- the same seed, the same run -------------------------------------------------------------------
def test_same_seed_gives_the_same_first_loss_and_weights(tmp_path, parquet_folder):
    runs = []
    for name in ("a", "b"):
        output = tmp_path / name
        argv = ["--stage", "adaptation", "--dataset", parquet_folder, "--config_preset", "test"]
        assert train_main([*argv, *_common(output, "--seed", "7")]) == 0
        history = json.loads((output / "trainer_state.json").read_text())["log_history"]
        runs.append(
            ([entry["loss"] for entry in history if "loss" in entry], load_file(output / "model.safetensors"))
        )
    (losses_a, weights_a), (losses_b, weights_b) = runs
    assert losses_a and losses_a == losses_b
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)


# -- denormal floats on the CPU --------------------------------------------------------------------
class _FlushRecorder(TrainerCallback):
    def __init__(self):
        self.seen = []

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(flush_denormal_enabled())


def test_flush_denormal_enabled_reads_the_setting():
    assert not flush_denormal_enabled()
    with flush_denormals():
        assert flush_denormal_enabled()
        assert torch.tensor(1e-40) * 1.0 == 0.0  # a float32 denormal reads as zero
        with flush_denormals(False):
            assert not flush_denormal_enabled()
        assert flush_denormal_enabled()
    assert not flush_denormal_enabled()


def test_cpu_training_flushes_denormals_and_restores_the_setting(tmp_path, aesthetics, training_processor):
    recorder = _FlushRecorder()
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, stage="adaptation", max_steps=2),
        processing_class=training_processor,
        train_dataset=aesthetics["train"],
        callbacks=[recorder],
    )
    try:
        for before in (False, True):  # off (PyTorch's default), then on: either way it comes back as it was
            torch.set_flush_denormal(before)
            recorder.seen.clear()
            trainer.train()
            assert recorder.seen == [True, True]
            assert flush_denormal_enabled() == before
    finally:
        torch.set_flush_denormal(False)


def test_vision_pretraining_flushes_denormals_and_restores_the_setting(tmp_path, monkeypatch):
    seen = []

    class RecordingTrainer(Trainer):
        def training_step(self, *args, **kwargs):
            seen.append(flush_denormal_enabled())
            return super().training_step(*args, **kwargs)

    monkeypatch.setattr(vision_pretraining, "Trainer", RecordingTrainer)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(4)]
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=["a", "b"])})
    data = Dataset.from_dict({"image": images, "label": [0, 1, 0, 1]}, features=features)
    vision_pretraining.pretrain_vision_tower(
        tiny_config(image_size=32, embed_dim=8).vision_config,
        data,
        "label",
        AesformerImageProcessor(size=32),
        tmp_path / "swin",
        max_steps=2,
        batch_size=2,
        use_cpu=True,
        disable_tqdm=True,
    )
    assert seen == [True, True]
    assert not flush_denormal_enabled()


def test_demo_restores_the_callers_setting():
    from aesformer_hf.training.demo import fast_cpu_math

    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    try:
        with fast_cpu_math(num_threads=1):
            assert flush_denormal_enabled() and torch.get_num_threads() == 1
        assert flush_denormal_enabled() and torch.get_num_threads() == threads
    finally:
        torch.set_flush_denormal(False)


# -- data and arguments a run cannot use -----------------------------------------------------------
def test_stage1_without_rows_with_comments_is_refused(tmp_path, aesthetics, capsys):
    silent = {split: data.map(lambda row: {"comments": []}) for split, data in aesthetics.items()}
    folder = _write_parquet(tmp_path / "silent", silent)
    argv = ["--stage", "multimodal", "--dataset", folder, "--config_preset", "test"]
    assert train_main([*argv, *_common(tmp_path / "out")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "none of the 12 rows" in line and "'train'" in line and "--stage adaptation" in line


def test_trainer_refuses_an_empty_training_dataset(tmp_path, aesthetics, training_processor):
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, stage="adaptation"),
        processing_class=training_processor,
        train_dataset=aesthetics["train"].select([]),
    )
    with pytest.raises(ValueError, match="The training dataset has no rows"):
        trainer.train()


def test_a_split_of_zero_rows_is_named(tmp_path, aesthetics, capsys):
    folder = _write_parquet(
        tmp_path / "data", {"train": aesthetics["train"], "test": aesthetics["test"].select([])}
    )
    argv = ["--stage", "adaptation", "--dataset", folder, "--config_preset", "test"]
    assert train_main([*argv, *_common(tmp_path / "out")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "split 'test' has no rows" in line and folder in line


@pytest.mark.parametrize("option", ["--per_device_train_batch_size", "--per_device_eval_batch_size"])
def test_batch_size_below_one_is_refused(tmp_path, parquet_folder, capsys, option):
    argv = ["--stage", "adaptation", "--dataset", parquet_folder, "--config_preset", "test"]
    assert train_main([*argv, *_common(tmp_path / "out"), option, "0"]) == 2
    assert f"{option} 0: must be at least 1" in _one_error_line(capsys.readouterr().err)


def test_resume_true_resumes_stage1_from_the_latest_checkpoint(tmp_path, parquet_folder, capsys):
    output = tmp_path / "stage1"
    argv = ["--stage", "multimodal", "--dataset", parquet_folder, "--config_preset", "test"]
    assert train_main([*argv, *_common(output, "--save_strategy", "steps", "--save_steps", "1")]) == 0
    assert (output / "checkpoint-2" / "momentum_contrast.safetensors").is_file()
    resumed = [*argv, *_common(output, "--max_steps", "3", "--resume_from_checkpoint", "True")]
    assert train_main(resumed) == 0
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3]


def test_resume_true_without_a_checkpoint_is_refused(
    tmp_path, parquet_folder, aesthetics, training_processor, capsys
):
    argv = ["--stage", "multimodal", "--dataset", parquet_folder, "--config_preset", "test"]
    assert train_main([*argv, *_common(tmp_path / "empty", "--resume_from_checkpoint", "True")]) == 2
    assert "holds no checkpoint-* folder" in _one_error_line(capsys.readouterr().err)
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path / "api", stage="multimodal"),
        processing_class=training_processor,
        train_dataset=aesthetics["train"],
    )
    with pytest.raises(ValueError, match="holds no checkpoint-\\* folder to resume from"):
        trainer.train(resume_from_checkpoint=True)
