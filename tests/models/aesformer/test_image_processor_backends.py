"""The image processor on transformers' two backends.

* `AesformerImageProcessor` (PIL backend) gives, bit for bit, the pixels of the released preprocessing: the package's
  RGB conversion, PIL bicubic resize to the model's side, `/ 255` and the ImageNet normalisation in float32. The
  reference here is written independently (PIL `resize` + numpy) on images of many sizes and modes.
* `AesformerImageProcessorFast` (torchvision backend) agrees with it within the stated tolerances, in pixels and in the
  score of a tiny model.
* Saved configs load back through `AutoImageProcessor` on either backend, and configs saved before the move to
  transformers' backends (`"size": 64`) still load.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor
from transformers.image_utils import SizeDict

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.data.synthetic import SOURCE_PHOTOS
from aesformer_hf.models.aesformer.image_processing_aesformer import (
    FAST_MAX_PIXEL_DIFFERENCE,
    FAST_MAX_SCORE_DIFFERENCE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AesformerImageProcessorFast,
)
from aesformer_hf.models.aesformer.image_utils_aesformer import load_image
from aesformer_hf.testing_utils import tiny_config

SIZE = 64


def _jpeg_rotated_by_exif() -> Image.Image:
    array = np.random.default_rng(11).integers(0, 256, (40, 90, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _images() -> dict[str, object]:
    """Inputs of different sizes (down, up, same, non-square, tiny) and modes, as users pass them."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (50, 70, 4), dtype=np.uint8)
    palette = Image.fromarray(rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)).convert("P")
    palette.info["transparency"] = 0
    return {
        "rgb_down": Image.fromarray(rgb),
        "rgb_same": Image.fromarray(rgb[:SIZE, :SIZE]),
        "rgb_up_tiny": Image.fromarray(rgb[:5, :3]),
        "rgb_tall": Image.fromarray(rng.integers(0, 256, (300, 20, 3), dtype=np.uint8)),
        "grey_L": Image.fromarray(rgb[:, :, 0]),
        "rgba_on_white": Image.fromarray(rgba, "RGBA"),
        "la": Image.fromarray(rgba[:, :, :2].copy(), "LA"),
        "palette_transparent": palette,
        "cmyk": Image.fromarray(rgb).convert("CMYK"),
        "sixteen_bit": Image.fromarray(rgb[:, :, 1].astype(np.uint16) * 257),
        "exif_rotated_jpeg": _jpeg_rotated_by_exif(),
        "numpy_hwc_uint8": rgb[:60, :80],
        "numpy_chw_float": rgb[:60, :80].transpose(2, 0, 1).astype(np.float32) / 255.0,
        "numpy_uint16": rgb[:60, :80].astype(np.uint16) * 257,
        "torch_chw_uint8": torch.from_numpy(rgb[:45, :77].copy()).permute(2, 0, 1),
    }


def reference_pixels(image, size: int = SIZE) -> np.ndarray:
    """The released evaluation transform, written independently: the package's RGB conversion (`load_image`), PIL
    bicubic resize, then `/ 255` and `(x - mean) / std` in float32 numpy. `(3, size, size)` float32."""
    rgb = load_image(image)
    resized = np.asarray(rgb.resize((size, size), Image.BICUBIC), dtype=np.float32)
    scaled = resized / np.float32(255.0)
    normalised = (scaled - np.asarray(IMAGENET_MEAN, dtype=np.float32)) / np.asarray(
        IMAGENET_STD, dtype=np.float32
    )
    return normalised.transpose(2, 0, 1)


IMAGES = _images()


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_pil_backend_is_bit_identical_to_the_released_preprocessing(name):
    pixels = AesformerImageProcessor(size=SIZE)(IMAGES[name])["pixel_values"]
    assert pixels.shape == (1, 3, SIZE, SIZE) and pixels.dtype == torch.float32
    np.testing.assert_array_equal(pixels[0].numpy(), reference_pixels(IMAGES[name]))


def test_pil_backend_batches_equal_single_images():
    names = sorted(IMAGES)
    batch = AesformerImageProcessor(size=SIZE)([IMAGES[n] for n in names])["pixel_values"]
    expected = np.stack([reference_pixels(IMAGES[n]) for n in names])
    np.testing.assert_array_equal(batch.numpy(), expected)


def test_the_released_defaults_are_settings():
    processor = AesformerImageProcessor()
    assert dict(processor.size) == {"height": 224, "width": 224}
    assert (
        processor.do_resize and processor.do_rescale and processor.do_normalize and processor.do_convert_rgb
    )
    assert processor.resample == Image.BICUBIC
    assert processor.rescale_factor == 1 / 255
    assert tuple(processor.image_mean) == IMAGENET_MEAN and tuple(processor.image_std) == IMAGENET_STD
    assert not processor.do_center_crop
    assert processor.backend == "pil" and AesformerImageProcessorFast().backend == "torchvision"


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """scikit-image's sample photos (bundled, no download), as stored and upscaled 3x."""
    stored = [Image.fromarray(load()) for load in SOURCE_PHOTOS.values()]
    return stored + [p.resize((p.width * 3, p.height * 3), Image.BICUBIC) for p in stored[:3]]


@pytest.mark.parametrize("size", [SIZE, 224])
def test_fast_backend_agrees_with_pil_on_photos_within_the_stated_tolerance(photos, size):
    a = AesformerImageProcessor(size=size)(photos)["pixel_values"]
    b = AesformerImageProcessorFast(size=size)(photos)["pixel_values"]
    assert b.shape == a.shape == (len(photos), 3, size, size) and b.dtype == torch.float32
    assert float((a - b).abs().max()) <= FAST_MAX_PIXEL_DIFFERENCE  # one 8-bit level


@pytest.mark.parametrize("size", [SIZE, 224])
def test_fast_backends_resize_off_the_cpu_agrees_with_pil_on_photos(photos, size):
    """Off the CPU torchvision resizes 8-bit images in float; the two rounded passes used there instead, run here on the
    CPU with the same float kernel, stay within one level of PIL's resize."""
    fast = AesformerImageProcessorFast(size=size)
    for photo in photos:
        pixels = torch.from_numpy(np.array(photo)).permute(2, 0, 1)
        got = fast.resize_in_rounded_passes(
            pixels[None], SizeDict(height=size, width=size), resample=fast.resample
        )
        assert got.dtype == torch.uint8 and got.shape == (1, 3, size, size)
        expected = torch.from_numpy(np.array(photo.resize((size, size), Image.BICUBIC))).permute(2, 0, 1)
        assert int((got[0].int() - expected.int()).abs().max()) <= 1


def test_fast_backend_uses_the_rounded_passes_off_the_cpu_only(monkeypatch):
    devices = []

    def record(self, image, size, **kwargs):
        devices.append(image.device.type)
        return image

    monkeypatch.setattr(AesformerImageProcessorFast, "resize_in_rounded_passes", record)
    fast, size = AesformerImageProcessorFast(size=SIZE), SizeDict(height=SIZE, width=SIZE)
    fast.resize(torch.zeros(1, 3, 10, 12, dtype=torch.uint8, device="meta"), size, resample=fast.resample)
    assert (
        fast.resize(torch.zeros(1, 3, 10, 12, dtype=torch.uint8), size, resample=fast.resample).shape[-1]
        == SIZE
    )
    assert devices == ["meta"]


def test_fast_backend_scores_agree_with_pil_within_the_stated_tolerance(photos):
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=SIZE)).eval()
    with torch.no_grad():
        pil_scores = model(pixel_values=AesformerImageProcessor(size=SIZE)(photos)["pixel_values"]).score
        fast_scores = model(pixel_values=AesformerImageProcessorFast(size=SIZE)(photos)["pixel_values"]).score
    assert float((pil_scores - fast_scores).abs().max()) <= FAST_MAX_SCORE_DIFFERENCE


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_fast_backend_resizes_the_packages_rgb_conversion(name):
    """Whatever the mode (EXIF, 16-bit, alpha, palette, CMYK, arrays), the torchvision backend resizes exactly the RGB
    image `load_image` gives (transformers' own conversion knows neither EXIF nor 16-bit nor CMYK)."""
    fast = AesformerImageProcessorFast(size=SIZE)
    expected = fast(load_image(IMAGES[name]))["pixel_values"]
    torch.testing.assert_close(fast(IMAGES[name])["pixel_values"], expected, rtol=0, atol=0)


def test_fast_backend_without_resizing_equals_pil():
    """Only the resize differs: at the model's size (no resize) both backends give the same pixels (to float32
    rounding: torchvision fuses the rescale into the normalisation)."""
    image = IMAGES["rgb_same"]
    a = AesformerImageProcessor(size=SIZE)(image)["pixel_values"]
    b = AesformerImageProcessorFast(size=SIZE)(image)["pixel_values"]
    torch.testing.assert_close(a, b, rtol=0, atol=2e-6)


@pytest.mark.parametrize("backend", ["pil", "torchvision"])
def test_both_backends_refuse_bad_inputs_as_before(backend):
    cls = AesformerImageProcessor if backend == "pil" else AesformerImageProcessorFast
    processor = cls(size=SIZE)
    with pytest.raises(TypeError, match="expected a PIL"):
        processor(["not an image"])
    with pytest.raises(ValueError, match="No images"):
        processor(None)
    with pytest.raises(ValueError, match="empty list"):
        processor([])
    with pytest.raises(ValueError, match="NaN"):
        processor(np.full((8, 8, 3), np.nan, dtype=np.float32))


def _saved(tmp_path, processor) -> dict:
    processor.save_pretrained(tmp_path)
    return json.loads((tmp_path / "preprocessor_config.json").read_text())


@pytest.mark.parametrize("use_fast", [False, True])
@pytest.mark.parametrize("saved_by", [AesformerImageProcessor, AesformerImageProcessorFast])
def test_saved_config_loads_back_with_auto_image_processor(tmp_path, saved_by, use_fast):
    saved = _saved(tmp_path, saved_by(size=SIZE))
    assert saved["size"] == {"height": SIZE, "width": SIZE}
    loaded = AutoImageProcessor.from_pretrained(tmp_path, use_fast=use_fast)
    assert type(loaded) is (AesformerImageProcessorFast if use_fast else AesformerImageProcessor)
    assert dict(loaded.size) == {"height": SIZE, "width": SIZE}
    image = IMAGES["rgb_down"]
    expected = AesformerImageProcessor(size=SIZE)(image)["pixel_values"]
    if use_fast:
        torch.testing.assert_close(
            loaded(image)["pixel_values"], expected, rtol=0, atol=FAST_MAX_PIXEL_DIFFERENCE
        )
    else:
        torch.testing.assert_close(loaded(image)["pixel_values"], expected, rtol=0, atol=0)


def test_auto_image_processor_defaults_to_the_exact_pil_backend(tmp_path):
    """transformers picks torchvision when nothing is asked; AesFormer's default stays the released (PIL) pixels."""
    AesformerImageProcessorFast(size=SIZE).save_pretrained(tmp_path)
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is AesformerImageProcessor
    assert (
        type(AutoImageProcessor.from_pretrained(tmp_path, backend="torchvision"))
        is AesformerImageProcessorFast
    )


def test_configs_saved_before_the_backends_still_load(tmp_path):
    """What `preprocessor_config.json` held before: `size` an int, no `do_*` flags."""
    old = {
        "auto_map": {"AutoImageProcessor": "image_processing_aesformer.AesformerImageProcessor"},
        "image_mean": list(IMAGENET_MEAN),
        "image_processor_type": "AesformerImageProcessor",
        "image_std": list(IMAGENET_STD),
        "resample": 3,
        "size": SIZE,
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(old))
    for loader in (
        lambda: AesformerImageProcessor.from_pretrained(tmp_path),
        lambda: AutoImageProcessor.from_pretrained(tmp_path),
        lambda: AutoImageProcessor.from_pretrained(tmp_path, use_fast=False),
    ):
        processor = loader()
        assert type(processor) is AesformerImageProcessor
        np.testing.assert_array_equal(
            processor(IMAGES["cmyk"])["pixel_values"][0].numpy(), reference_pixels(IMAGES["cmyk"])
        )
    fast = AutoImageProcessor.from_pretrained(tmp_path, use_fast=True)
    assert type(fast) is AesformerImageProcessorFast and dict(fast.size) == {"height": SIZE, "width": SIZE}


def test_processor_round_trip_keeps_the_pil_backend(tmp_path, tokenizer):
    AesformerProcessor(AesformerImageProcessor(size=SIZE), tokenizer).save_pretrained(tmp_path)
    loaded = AesformerProcessor.from_pretrained(tmp_path)
    assert type(loaded.image_processor) is AesformerImageProcessor
    np.testing.assert_array_equal(
        loaded(images=IMAGES["rgba_on_white"])["pixel_values"][0].numpy(),
        reference_pixels(IMAGES["rgba_on_white"]),
    )
