"""load_image: one loader, the same pixels by every route, and clear errors for files that cannot be read."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aesformer_hf.models.aesformer import image_utils_aesformer
from aesformer_hf.models.aesformer.image_utils_aesformer import ImageLoadError, load_image

from ...data.helpers import CORRUPT_EXIF

SIZE = (40, 30)  # width, height: not square, so that a missed EXIF rotation shows


def _rgb(seed: int, size=SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)


def _grey16(path: Path) -> None:
    # A dark-to-mid 16-bit ramp: clipping it to 8 bits (the old bug) would make it white.
    ramp = np.linspace(0, 40000, SIZE[0] * SIZE[1]).reshape(SIZE[1], SIZE[0]).astype(np.uint16)
    Image.fromarray(ramp).save(path)


def _rgba(path: Path) -> None:
    array = np.dstack([_rgb(1), np.tile(np.linspace(0, 255, SIZE[0]).astype(np.uint8), (SIZE[1], 1))])
    Image.fromarray(array, mode="RGBA").save(path)


def _palette(path: Path) -> None:
    image = Image.fromarray(_rgb(2)).quantize(16)
    image.save(path, transparency=0)


def _cmyk(path: Path) -> None:
    Image.fromarray(_rgb(3)).convert("CMYK").save(path, quality=95)


def _exif_orientation_6(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_rgb(4)).save(path, quality=95, exif=exif)


def _corrupt_exif(path: Path) -> None:
    Image.fromarray(_rgb(5)).save(path, quality=95, exif=CORRUPT_EXIF)


FORMATS = {
    "grey16.png": _grey16,
    "rgba.png": _rgba,
    "palette.png": _palette,
    "cmyk.jpg": _cmyk,
    "exif6.jpg": _exif_orientation_6,
    "corrupt_exif.jpg": _corrupt_exif,
}


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    paths = {}
    for name, write in FORMATS.items():
        paths[name] = folder / name
        write(paths[name])
    return paths


def _routes(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    return {
        "str": str(path),
        "Path": path,
        "naive PIL": Image.open(path),
        "bytes": data,
        "file object": io.BytesIO(data),
        "datasets bytes": {"bytes": data, "path": None},
        "datasets path": {"bytes": None, "path": str(path)},
    }


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_route_gives_the_same_pixels(photo_files, name):
    import datasets

    path = photo_files[name]
    reference = np.asarray(load_image(path))
    assert reference.dtype == np.uint8 and reference.ndim == 3 and reference.shape[2] == 3
    for route, source in _routes(path).items():
        np.testing.assert_array_equal(np.asarray(load_image(source)), reference, err_msg=route)
    # Inside a datasets.Dataset with an Image() feature: decoded by datasets (PIL), or not decoded (dict).
    dataset = datasets.Dataset.from_dict({"image": [str(path)]}).cast_column("image", datasets.Image())
    np.testing.assert_array_equal(
        np.asarray(load_image(dataset[0]["image"])), reference, err_msg="datasets PIL"
    )
    raw = dataset.cast_column("image", datasets.Image(decode=False))
    np.testing.assert_array_equal(np.asarray(load_image(raw[0]["image"])), reference, err_msg="datasets dict")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")
def test_the_conversions_are_the_right_ones(photo_files):
    grey = np.asarray(load_image(photo_files["grey16.png"]))
    # Scaled by the 16-bit range: the ramp ends at 40000/65535 of white, not clipped to 255.
    assert grey[0, 0, 0] == 0 and grey[-1, -1, 0] == round(40000 / 65535 * 255)
    rgba = np.asarray(load_image(photo_files["rgba.png"]))
    assert (rgba[:, 0] == 255).all()  # alpha 0 in the first column: white
    # EXIF orientation 6 (rotate 90 degrees) is applied, and the corrupt block's orientation 6 too.
    assert load_image(photo_files["exif6.jpg"]).size == (SIZE[1], SIZE[0])
    assert load_image(photo_files["corrupt_exif.jpg"]).size == (SIZE[1], SIZE[0])
    for name in ("palette.png", "cmyk.jpg"):
        assert load_image(photo_files[name]).mode == "RGB"


def test_arrays_and_tensors(photo_files):
    array = _rgb(9)
    expected = np.asarray(load_image(Image.fromarray(array)))
    np.testing.assert_array_equal(np.asarray(load_image(array)), expected)
    np.testing.assert_array_equal(np.asarray(load_image(torch.from_numpy(array).permute(2, 0, 1))), expected)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")
def test_corrupt_exif_that_breaks_pil_is_ignored(photo_files, monkeypatch):
    def broken(image, **kwargs):
        raise SyntaxError("not a TIFF file")  # one of the errors PIL raises on broken EXIF

    monkeypatch.setattr(image_utils_aesformer.ImageOps, "exif_transpose", broken)
    assert load_image(photo_files["corrupt_exif.jpg"]).size == SIZE  # the pixels as stored


def test_url_uses_the_fetch_function(photo_files, monkeypatch):
    data = photo_files["rgba.png"].read_bytes()
    calls = []

    def fetch(url, timeout):
        calls.append((url, timeout))
        if url.endswith("missing.png"):
            raise OSError("404 Not Found")
        return data

    monkeypatch.setattr(image_utils_aesformer, "_fetch_url", fetch)
    image = load_image("https://example.com/rgba.png", timeout=3)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(load_image(photo_files["rgba.png"])))
    assert calls == [("https://example.com/rgba.png", 3)]
    with pytest.raises(ImageLoadError, match=r"^https://example.com/missing.png: cannot fetch URL: .*404"):
        load_image("https://example.com/missing.png")


def _truncated_jpeg(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_rgb(6, (64, 48))).save(buffer, format="JPEG")
    data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    path.write_bytes(data)
    return data


def test_errors_start_with_the_source_name(tmp_path):
    truncated = tmp_path / "truncated.jpg"
    data = _truncated_jpeg(truncated)
    (tmp_path / "text.jpg").write_text("<html>not found</html>")
    cases = [
        (tmp_path / "absent.jpg", f"{tmp_path / 'absent.jpg'}: no such file", "missing"),
        (tmp_path, f"{tmp_path}: is a directory", "not_a_file"),
        ("/dev/null", "/dev/null: not a regular file", "not_a_file"),
        (truncated, f"{truncated}: cannot decode image: .*truncated", "truncated"),
        (Image.open(truncated), f"{truncated}: cannot decode image: .*truncated", "truncated"),
        (data, f"<bytes, {len(data)} bytes>: cannot decode image", "truncated"),
        (tmp_path / "text.jpg", f"{tmp_path / 'text.jpg'}: not an image file", "not_an_image"),
        ({"bytes": None, "path": None}, "<datasets Image value without bytes or path>: ", "unsupported"),
        (12, "<int>: not an image source", "unsupported"),
    ]
    for source, message, kind in cases:
        with pytest.raises(ImageLoadError, match="^" + message) as caught:
            load_image(source)
        assert caught.value.kind == kind and isinstance(caught.value, ValueError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageLoadError, match=f"^{fifo}: not a regular file"):
        load_image(fifo)


def test_decompression_bomb_limit_is_an_error(photo_files, monkeypatch):
    path = photo_files["cmyk.jpg"]
    # Between the limit and twice it PIL only warns; the loader refuses.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", SIZE[0] * SIZE[1] - 1)
    with pytest.raises(ImageLoadError, match=f"^{path}: .*decompression bomb") as caught:
        load_image(path)
    assert caught.value.kind == "too_large"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", SIZE[0] * SIZE[1] // 3)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(path.read_bytes())


def test_the_error_pickles(tmp_path):
    import pickle

    error = pickle.loads(pickle.dumps(ImageLoadError("a.jpg", "no such file", "missing")))
    assert str(error) == "a.jpg: no such file" and error.kind == "missing" and error.reason == "no such file"


@pytest.fixture(scope="module")
def large_jpeg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("large") / "large.jpg"
    Image.fromarray(_rgb(7, (80, 60))).resize((2000, 1500), Image.BICUBIC).save(path, quality=90)
    return path


def test_draft_size_decodes_a_large_jpeg_smaller_but_not_below_the_request(large_jpeg):
    assert load_image(large_jpeg).size == (2000, 1500)
    drafted = load_image(large_jpeg, draft_size=(448, 448))
    assert drafted.size == (1000, 750)  # DCT scaling by 2: by 4 would give 375 < 448 rows
    np.testing.assert_array_equal(
        np.asarray(load_image(large_jpeg.read_bytes(), draft_size=(448, 448))), np.asarray(drafted)
    )
    for request in [(224, 224), (600, 300), (1000, 750), (1001, 751), (5000, 5000)]:
        size = load_image(large_jpeg, draft_size=request).size
        assert size[0] >= min(request[0], 2000) and size[1] >= min(request[1], 1500), (request, size)


@pytest.mark.parametrize("draft_size", [(448, 448), (224, 224)])
def test_draft_keeps_the_geometry_when_the_size_is_not_a_multiple_of_the_scale(tmp_path, draft_size):
    # 2001 x 1501 scaled by 1/2 or 1/4 leaves a partial last pixel: resampled away, the picture does not shift.
    path = tmp_path / "odd.jpg"
    Image.fromarray(_rgb(7, (80, 60))).resize((2001, 1501), Image.BICUBIC).save(path, quality=90)
    exact = np.asarray(load_image(path).resize((224, 224), Image.BICUBIC), dtype=int)
    drafted = load_image(path, draft_size=draft_size)
    assert drafted.size[0] >= draft_size[0] and drafted.size[1] >= draft_size[1] and drafted.size[0] < 2001
    fast = np.asarray(drafted.resize((224, 224), Image.BICUBIC), dtype=int)
    assert np.abs(fast - exact).max() <= 8 and np.abs(fast - exact).mean() < 1.0


def test_draft_size_is_measured_after_the_exif_rotation(tmp_path):
    path = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 2000x1000, shown 1000x2000
    Image.fromarray(_rgb(8, (80, 40))).resize((2000, 1000)).save(path, exif=exif)
    assert load_image(path).size == (1000, 2000)
    drafted = load_image(path, draft_size=(1000, 250))
    assert drafted.size[0] >= 1000 and drafted.size[1] >= 250, drafted.size


def test_draft_size_leaves_png_and_pil_objects_alone(photo_files, large_jpeg):
    png = photo_files["rgba.png"]
    assert load_image(png, draft_size=(4, 4)).size == SIZE
    opened = Image.open(large_jpeg)
    assert load_image(opened, draft_size=(224, 224)).size == (2000, 1500)  # the caller's image is not shrunk
    assert opened.size == (2000, 1500)


# -- every reader of images goes through the loader ------------------------------------------------------------
def test_the_training_collator_reads_every_route_and_names_the_row_and_file(photo_files, processor, tmp_path):
    from aesformer_hf.training import AesformerDataCollator

    collator = AesformerDataCollator(processor, multimodal=False, training=False)
    path = photo_files["grey16.png"]
    routes = [str(path), path.read_bytes(), {"bytes": None, "path": str(path)}, Image.open(path)]
    pixels = collator.pixel_values([{"image": source, "score": 5.0} for source in routes])
    for i in range(1, len(routes)):
        torch.testing.assert_close(pixels[i], pixels[0], rtol=0, atol=0)
    truncated = tmp_path / "truncated.jpg"
    _truncated_jpeg(truncated)
    with pytest.raises(ValueError, match=f"row 1 of the batch: {truncated}: cannot decode image"):
        collator.pixel_values([{"image": str(path)}, {"image": str(truncated)}])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_the_dataset_builders_skip_a_fifo_instead_of_blocking(tmp_path):
    import threading

    from aesformer_hf.data.images import load_image_for_dataset

    fifo = tmp_path / "953619.jpg"
    os.mkfifo(fifo)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(load_image_for_dataset(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # blocked on the FIFO: unblock it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
        pytest.fail("reading a FIFO blocked the dataset builder")
    assert outcome[0].code == "unreadable_image" and "953619.jpg: not a regular file" in outcome[0].detail


def test_attention_maps_read_paths_and_bytes(photo_files, model, processor):
    from aesformer_hf.visualization.attention_maps import compute_attention_map

    path = photo_files["rgba.png"]
    by_pil = compute_attention_map(model, processor, load_image(path))
    for source in (str(path), path.read_bytes()):
        np.testing.assert_array_equal(compute_attention_map(model, processor, source).heatmap, by_pil.heatmap)
