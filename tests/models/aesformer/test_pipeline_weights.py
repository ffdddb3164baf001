"""The pipeline refuses a model whose checkpoint does not fit it; `from_pretrained` keeps transformers' behaviour."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import BertConfig, BertModel, pipeline

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor
from aesformer_hf.testing_utils import tiny_config


@pytest.fixture()
def foreign_weights_folder(tmp_path):
    """An AesFormer config and image processor, but a BERT's model.safetensors."""
    folder = tmp_path / "not-aesformer-weights"
    tiny_config(vision_only=True).save_pretrained(folder)
    AesformerImageProcessor(size=64).save_pretrained(folder)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2))
    bert.save_pretrained(folder / "bert")
    (folder / "bert" / "model.safetensors").rename(folder / "model.safetensors")
    return folder


def test_pipeline_refuses_another_models_weights_naming_the_keys(foreign_weights_folder):
    # transformers' own loading still loads (random weights, a warning)...
    AesformerForAesthetic.from_pretrained(foreign_weights_folder)
    # ...the rating pipeline does not.
    with pytest.raises(ValueError, match=r"do not fit .*missing \(\d+\): .*unexpected \(\d+\): .*embeddings"):
        pipeline("image-aesthetics", model=str(foreign_weights_folder))
    rater = pipeline("image-aesthetics", model=str(foreign_weights_folder), allow_partial_weights=True)
    assert "score" in rater(Image.new("RGB", (64, 64)))


def test_pipeline_accepts_a_complete_folder_and_a_vision_only_load_of_a_full_one(tmp_path):
    torch.manual_seed(0)
    AesformerForAesthetic(tiny_config()).save_pretrained(tmp_path / "full")
    AesformerImageProcessor(size=64).save_pretrained(tmp_path / "full")
    assert "score" in pipeline("image-aesthetics", model=str(tmp_path / "full"))(Image.new("RGB", (64, 64)))
    # A vision-only model drops the comment tower on purpose: not a mismatch.
    vision = AesformerForAesthetic.from_pretrained(tmp_path / "full", vision_only=True)
    rater = pipeline("image-aesthetics", model=vision, image_processor=AesformerImageProcessor(size=64))
    assert rater(Image.new("RGB", (64, 64)))["mode"] == "vision"


def test_pipeline_names_a_truncated_weights_file(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "truncated"
    AesformerForAesthetic(tiny_config(vision_only=True)).save_pretrained(folder)
    AesformerImageProcessor(size=64).save_pretrained(folder)
    model = AesformerForAesthetic.from_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="model.safetensors: the weights file cannot be read"):
        pipeline("image-aesthetics", model=model, image_processor=AesformerImageProcessor(size=64))
