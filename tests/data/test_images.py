"""The image storage policy: originals kept, odd images converted, broken ones skipped."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from aesformer_hf.data.images import ImageIndex, encode_image_bytes, load_image_for_dataset

from .helpers import corrupt_exif_jpeg, image_bytes, truncated_jpeg, write_image


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_rgb_jpeg_and_png_are_stored_byte_identical(image_format):
    data = image_bytes(image_format=image_format)
    outcome = encode_image_bytes(data, "953619.jpg")
    assert outcome.image == {"bytes": data, "path": "953619.jpg"}
    assert outcome.code is None and not outcome.skipped


def test_corrupt_exif_keeps_the_original_rgb_bytes():
    data = corrupt_exif_jpeg()
    with pytest.warns(UserWarning, match="Corrupt EXIF"):
        Image.open(io.BytesIO(data)).getexif()  # the fixture really is corrupt
    outcome = encode_image_bytes(data, "1.jpg")
    assert outcome.image["bytes"] == data and outcome.code is None


def test_corrupt_exif_on_a_greyscale_jpeg_converts_and_applies_orientation():
    outcome = encode_image_bytes(corrupt_exif_jpeg(mode="L", size=(12, 9)), "2.jpg")
    assert outcome.code == "converted_image"
    converted = _open(outcome.image["bytes"])
    # Orientation 6 (rotate 90) is baked into the converted pixels: 12x9 becomes 9x12.
    assert converted.mode == "RGB" and converted.size == (9, 12) and converted.format == "JPEG"


@pytest.mark.parametrize(
    ("mode", "image_format", "stored_format", "stored_name"),
    [
        ("L", "JPEG", "JPEG", "7.jpg"),  # lossy source stays JPEG (q95)
        ("CMYK", "JPEG", "JPEG", "7.jpg"),
        ("RGBA", "PNG", "PNG", "7.png"),  # lossless source stays lossless
        ("P", "PNG", "PNG", "7.png"),
        ("I;16", "PNG", "PNG", "7.png"),
        ("RGB", "BMP", "PNG", "7.png"),  # RGB but not JPEG/PNG: re-encoded
    ],
)
def test_non_rgb_images_are_converted(mode, image_format, stored_format, stored_name):
    outcome = encode_image_bytes(image_bytes(mode=mode, image_format=image_format), "7.jpg")
    assert outcome.code == "converted_image" and mode in outcome.detail
    stored = _open(outcome.image["bytes"])
    assert stored.mode == "RGB" and stored.format == stored_format and stored.size == (12, 9)
    assert outcome.image["path"] == stored_name


def test_rgba_is_composited_on_white_losslessly():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    stored = _open(encode_image_bytes(buffer.getvalue(), "t.png").image["bytes"])
    assert stored.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("data", "code"),
    [(truncated_jpeg(), "truncated_image"), (b"<html>not found</html>", "undecodable_image")],
)
def test_broken_images_are_skipped_with_a_reason(data, code):
    outcome = encode_image_bytes(data, "440774.jpg")
    assert outcome.skipped and outcome.code == code and "440774.jpg" in outcome.detail


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "1.jpg"
    empty.write_bytes(b"")
    assert load_image_for_dataset(empty).code == "empty_image"
    assert load_image_for_dataset(tmp_path / "absent.jpg").code == "unreadable_image"


def test_truncation_is_detected_even_if_pil_was_told_to_tolerate_it(monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert encode_image_bytes(truncated_jpeg(), "x.jpg").code == "truncated_image"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_image_index_finds_nested_spaced_and_case_variant_names(tmp_path):
    write_image(tmp_path / "a" / "Aivazovsky 2.jpg")
    write_image(tmp_path / "a" / "deep" / "953619.JPG")
    write_image(tmp_path / "953619.png", image_format="PNG")  # shallower: wins
    write_image(tmp_path / "a" / "Monet24.jpeg")
    (tmp_path / "a" / "953619.txt").write_text("not an image")
    index = ImageIndex([tmp_path])
    assert index.find("Aivazovsky 2") == str(tmp_path / "a" / "Aivazovsky 2.jpg")
    assert index.find("953619") == str(tmp_path / "953619.png")
    assert index.duplicates("953619") == [str(tmp_path / "a" / "deep" / "953619.JPG")]
    assert index.find("monet24") == str(tmp_path / "a" / "Monet24.jpeg")
    assert index.find("404") is None and len(index) == 3
