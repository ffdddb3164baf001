"""Image processor and processor: the evaluation transform against a float64 reference, image modes, comments."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from aesformer_hf import AesformerImageProcessor, AesformerProcessor, clean_comments
from aesformer_hf.models.aesformer.image_processing_aesformer import IMAGENET_MEAN, IMAGENET_STD

from ...conftest import IMAGE_SIZE, random_image


def reference_pixels(image: Image.Image, size: int) -> np.ndarray:
    resized = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float64) / 255.0
    return ((resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).transpose(2, 0, 1)


def test_eval_transform_matches_float64_reference():
    processor = AesformerImageProcessor(size=IMAGE_SIZE)
    image = random_image(0, size=(100, 150))
    pixels = processor(image)["pixel_values"]
    assert pixels.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and pixels.dtype == torch.float32
    np.testing.assert_allclose(pixels[0].double().numpy(), reference_pixels(image, IMAGE_SIZE), atol=1e-5)


def test_default_size_is_224_and_round_trips(tmp_path):
    processor = AesformerImageProcessor()
    assert processor.size == 224
    assert processor(random_image(1))["pixel_values"].shape == (1, 3, 224, 224)
    processor.save_pretrained(tmp_path)
    assert AesformerImageProcessor.from_pretrained(tmp_path).size == 224


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "I;16", "I", "F"])
def test_image_modes_become_rgb(mode):
    processor = AesformerImageProcessor(size=IMAGE_SIZE)
    image = random_image(2)
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)
        assert converted.mode.startswith("I;16")
    elif mode == "F":
        converted = Image.fromarray(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)
    else:
        converted = image.convert(mode)
    pixels = processor(converted)["pixel_values"]
    assert pixels.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and torch.isfinite(pixels).all()
    if mode in ("L", "I;16", "F", "I"):
        # Grey in, grey out: the three channels hold the same value before normalisation.
        raw = pixels[0] * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        torch.testing.assert_close(raw[0], raw[1], atol=1e-5, rtol=0)
        reference = reference_pixels(image.convert("L"), IMAGE_SIZE)
        np.testing.assert_allclose(pixels[0].double().numpy(), reference, atol=0.05)


def test_numpy_and_torch_inputs_equal_pil():
    processor = AesformerImageProcessor(size=IMAGE_SIZE)
    image = random_image(3)
    array = np.asarray(image)
    expected = processor(image)["pixel_values"]
    torch.testing.assert_close(processor(array)["pixel_values"], expected)
    torch.testing.assert_close(processor(array.transpose(2, 0, 1))["pixel_values"], expected)  # CHW
    torch.testing.assert_close(processor(array.astype(np.float32) / 255.0)["pixel_values"], expected)
    torch.testing.assert_close(processor(array.astype(np.uint16) * 257)["pixel_values"], expected)
    torch.testing.assert_close(processor(torch.from_numpy(array).permute(2, 0, 1))["pixel_values"], expected)
    batch = processor(np.stack([array, array]))["pixel_values"]
    assert batch.shape[0] == 2


def test_corrupt_exif_does_not_lose_the_image():
    image = random_image(4)
    exif = Image.Exif()
    exif[0x0112] = 99  # invalid orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    reloaded = Image.open(io.BytesIO(buffer.getvalue()))
    assert AesformerImageProcessor(size=IMAGE_SIZE)(reloaded)["pixel_values"].shape == (
        1,
        3,
        IMAGE_SIZE,
        IMAGE_SIZE,
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 5), dtype=np.uint8), "5 channels"),
        (np.zeros((2, 3, 4, 4, 3)), "expected"),
        (np.full((8, 8, 3), np.nan, dtype=np.float32), "NaN"),
        ("not an image", "expected a PIL"),
    ],
)
def test_bad_images(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        AesformerImageProcessor(size=IMAGE_SIZE)([bad])


def test_clean_comments_follows_the_training_recipe():
    raw = ['Great [shot]! "Love" the (colours)', "*so* #sharp: ~wow~\\nnext line", "  spaced   out  "]
    assert clean_comments(raw) == "Great shot! Love the colours so sharp wow next line spaced out"
    assert clean_comments("a " * 300).count("a") == 200
    assert clean_comments([]) == "" and clean_comments(["  ", "()"]) == ""
    with pytest.raises(TypeError, match="strings"):
        clean_comments(["ok", 3])


def test_processor_outputs_and_tokenises_cleaned_comments(processor, tokenizer):
    images = [random_image(5), random_image(6)]
    batch = processor(images=images, text=[["too blurry", "(tilted)"], "lovely sharp colours"])
    assert set(batch) >= {"pixel_values", "input_ids", "attention_mask"}
    assert batch["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert batch["input_ids"].shape[0] == 2
    expected = tokenizer("too blurry tilted")["input_ids"]
    assert batch["input_ids"][0, : len(expected)].tolist() == expected
    # One image, several comments.
    single = processor(images=images[0], text=["too blurry", "tilted"])
    assert single["input_ids"].shape[0] == 1


def test_processor_rejects_mismatched_and_empty_comments(processor):
    images = [random_image(5), random_image(6)]
    with pytest.raises(ValueError, match="2 images but comments for 3"):
        processor(images=images, text=[["a"], ["b"], ["c"]])
    with pytest.raises(ValueError, match=r"Images \[1\] have an empty comment list"):
        processor(images=images, text=[["too blurry"], []])


def test_processor_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    reloaded = AesformerProcessor.from_pretrained(tmp_path)
    image = random_image(7)
    a = processor(images=image, text="too blurry")
    b = reloaded(images=image, text="too blurry")
    torch.testing.assert_close(a["pixel_values"], b["pixel_values"])
    assert a["input_ids"].tolist() == b["input_ids"].tolist()
