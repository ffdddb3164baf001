"""Pre-training the Swin tower as a classifier (`pretrain_vision_tower`): it learns, saves a loadable tower."""

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor
from aesformer_hf.models.aesformer.pretrained_towers_aesformer import load_vision_tower
from aesformer_hf.testing_utils import tiny_config
from aesformer_hf.training.collator import AesformerDataCollator
from aesformer_hf.training.vision_pretraining import ImageClassificationCollator, pretrain_vision_tower

SIZE = 32


def stripes(direction: str, rng: np.random.Generator) -> Image.Image:
    """Stripes of a random period and phase: the class is their direction, which no crop or flip changes."""
    period = rng.integers(6, 12)
    phase = rng.uniform(0, 2 * np.pi)
    line = 0.5 + 0.4 * np.sin(2 * np.pi * np.arange(SIZE) / period + phase)
    grid = np.tile(line, (SIZE, 1))
    grid = grid if direction == "vertical" else grid.T
    grid = grid + rng.normal(0, 0.05, grid.shape)
    return Image.fromarray((np.clip(grid, 0, 1) * 255).astype(np.uint8)).convert("RGB")


@pytest.fixture(scope="module")
def stripes_dataset():
    rng = np.random.default_rng(0)
    directions = ["vertical", "horizontal"] * 12
    features = Features({"image": ImageFeature(), "direction": ClassLabel(names=["vertical", "horizontal"])})
    return Dataset.from_dict(
        {
            "image": [stripes(d, rng) for d in directions],
            "direction": [int(d == "horizontal") for d in directions],
        },
        features=features,
    )


@pytest.fixture(scope="module")
def trained(stripes_dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vision")
    config = tiny_config(image_size=SIZE, embed_dim=8)
    processor = AesformerImageProcessor(size=SIZE)
    classifier = pretrain_vision_tower(
        config.vision_config,
        stripes_dataset,
        "direction",
        processor,
        folder,
        max_steps=80,
        learning_rate=3e-3,
        batch_size=8,
        use_cpu=True,
    )
    return classifier, folder, config, processor


def test_the_classifier_learns_the_labels(trained, stripes_dataset):
    classifier, _, _, processor = trained
    collator = AesformerDataCollator(processor, multimodal=False, training=False)
    pixels = torch.stack([collator.eval_transform(image) for image in stripes_dataset["image"]])
    with torch.no_grad():
        predicted = classifier(pixel_values=pixels).logits.argmax(-1)
    accuracy = (predicted == torch.tensor(stripes_dataset["direction"])).float().mean().item()
    assert accuracy >= 0.9


def test_the_saved_folder_is_a_vision_tower_for_aesformer(trained):
    classifier, folder, config, _ = trained
    assert classifier.config.id2label == {0: "vertical", 1: "horizontal"}
    tower = load_vision_tower(folder)
    body = {k: v for k, v in classifier.timm_model.state_dict().items() if not k.startswith("head.")}
    loaded = tower.timm_model.state_dict()
    assert set(loaded) == set(body)
    for key, value in body.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)
    model = AesformerForAesthetic(config)
    model.model.vision_model.load_state_dict(tower.state_dict())  # strict: same architecture, no extra keys
    # ... and the folder is read like a Hub Swin by from_vision_text_pretrained.
    vision_only = AesformerForAesthetic.from_vision_text_pretrained(str(folder), None)
    assert vision_only.config.vision_config.model_args["embed_dim"] == 8
    for key, value in vision_only.model.vision_model.timm_model.state_dict().items():
        torch.testing.assert_close(value, body[key], rtol=0, atol=0, msg=key)
    # The vision config given in was copied, not changed into a classifier.
    assert config.vision_config.num_labels != 2 or config.vision_config.id2label != classifier.config.id2label


def test_bad_labels_and_columns_are_named(stripes_dataset, tmp_path):
    processor = AesformerImageProcessor(size=SIZE)
    collator = ImageClassificationCollator(AesformerDataCollator(processor, multimodal=False), "direction")
    rows = [dict(stripes_dataset[0]), dict(stripes_dataset[1], image_id="bad-one", direction=None)]
    with pytest.raises(ValueError, match=r"row 1 .*bad-one.*'direction' must be a class id"):
        collator(rows)
    with pytest.raises(ValueError, match="no 'flaw' column"):
        pretrain_vision_tower(
            tiny_config(image_size=SIZE).vision_config,
            stripes_dataset,
            "flaw",
            processor,
            tmp_path,
            max_steps=1,
        )
    no_ids = Dataset.from_dict({"image": stripes_dataset["image"][:2], "direction": ["a", "b"]})
    with pytest.raises(ValueError, match="'direction' column holds no integer class ids"):
        pretrain_vision_tower(
            tiny_config(image_size=SIZE).vision_config, no_ids, "direction", processor, tmp_path, 1
        )
    unlabelled = stripes_dataset.cast_column("direction", Value("int64"))
    classifier = pretrain_vision_tower(
        tiny_config(image_size=SIZE, embed_dim=4).vision_config,
        unlabelled,
        "direction",
        processor,
        tmp_path,
        max_steps=1,
        use_cpu=True,
    )
    assert classifier.config.id2label == {0: "0", 1: "1"}  # plain integer ids: names are the ids
