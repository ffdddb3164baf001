"""Fixtures of the training tests: a very small synthetic aesthetics dataset, a processor and tiny models."""

from __future__ import annotations

import pytest
import torch

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer
from aesformer_hf.training import AesformerTrainingArguments

TRAIN_IMAGE_SIZE = 64


@pytest.fixture(scope="session")
def aesthetics():
    """12 training rows (2 photos) and 6 test rows (an unseen photo), 48 px, all with comments."""
    from aesformer_hf.data.synthetic import build_synthetic_aesthetics

    return build_synthetic_aesthetics(
        num_photos=3, strengths=(0, 4), degradations=("blur", "noise", "underexposure"), image_size=48
    )


@pytest.fixture(scope="session")
def training_processor(aesthetics):
    corpus = [comment for comments in aesthetics["train"]["comments"] for comment in comments]
    return AesformerProcessor(AesformerImageProcessor(size=TRAIN_IMAGE_SIZE), tiny_tokenizer(corpus))


def make_model(seed: int = 0, **overrides) -> AesformerForAesthetic:
    torch.manual_seed(seed)
    return AesformerForAesthetic(tiny_config(image_size=TRAIN_IMAGE_SIZE, **overrides))


def make_args(output_dir, **overrides) -> AesformerTrainingArguments:
    """Quiet, CPU-only, no checkpoints unless asked; `overrides` win."""
    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=6,
        learning_rate=1e-3,
        max_steps=3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        contrastive_queue_size=10,
    )
    settings.update(overrides)
    return AesformerTrainingArguments(**settings)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test (a full training run); deselect with -m 'not slow'")
