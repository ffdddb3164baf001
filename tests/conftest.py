"""Shared fixtures: tiny AesFormer models, processors and saved folders (all offline, random weights)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests leave nothing in ~/.cache or ~/.config: the datasets, evaluate, Hub, matplotlib and browser caches live in a folder removed at exit (set
# before anything imports datasets or huggingface_hub, which read these variables once).
_CACHE = tempfile.mkdtemp(prefix="aesformer-tests-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
for _variable, _folder in (
    ("HF_HOME", "hf"),
    ("HF_DATASETS_CACHE", "datasets"),
    ("HF_EVALUATE_CACHE", "evaluate"),
    ("MPLCONFIGDIR", "matplotlib"),  # matplotlib's font cache
    ("XDG_CACHE_HOME", "xdg-cache"),  # headless Chromium's caches
    ("XDG_CONFIG_HOME", "xdg-config"),  # Chromium's profile and dconf
):
    os.environ[_variable] = os.path.join(_CACHE, _folder)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import aesformer_hf  # noqa: E402, F401  (registers the Auto classes and the pipeline)
from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor  # noqa: E402
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer  # noqa: E402

IMAGE_SIZE = 64


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer(["the photo is too blurry", "lovely sharp colours", "the horizon is tilted"])


@pytest.fixture(scope="session")
def processor(tokenizer):
    return AesformerProcessor(AesformerImageProcessor(size=IMAGE_SIZE), tokenizer)


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return AesformerForAesthetic(tiny_config(image_size=IMAGE_SIZE)).eval()


@pytest.fixture(scope="session")
def saved_model_dir(tmp_path_factory, processor):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-aesformer")
    AesformerForAesthetic(tiny_config(image_size=IMAGE_SIZE)).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def random_image(seed: int, size=(80, 96), mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=np.uint8)
    return Image.fromarray(array, mode="RGB").convert(mode)


@pytest.fixture()
def pixel_values():
    torch.manual_seed(1)
    return torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE)
