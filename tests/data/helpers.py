"""Small builders of test inputs: tiny images, broken images, format-faithful label files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(
    mode: str = "RGB", size=(12, 9), image_format: str = "JPEG", seed: int = 0, **save_kwargs
) -> bytes:
    """A tiny image with noise in it (so that JPEG round trips are not trivially exact)."""
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        array = rng.integers(0, 65535, size=(size[1], size[0]), dtype=np.uint16)
        image = Image.fromarray(array)  # uint16 -> "I;16"
    else:
        rgb = Image.fromarray(rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8))
        image = rgb.convert(mode) if mode not in ("RGB", "P") else rgb
        if mode == "P":
            image = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save_kwargs)
    return buffer.getvalue()


def write_image(path: Path, **kwargs) -> bytes:
    """Write :func:`image_bytes` to ``path`` and return the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image_bytes(**kwargs)
    path.write_bytes(data)
    return data


# An EXIF block whose first IFD claims 65,535 entries but holds two: PIL warns "Corrupt EXIF data"
# and still finds the orientation tag (6 = rotate 90 degrees), as with AVA's broken camera EXIF.
CORRUPT_EXIF = (
    b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00" * 2
)


def corrupt_exif_jpeg(mode: str = "RGB", seed: int = 0, size=(12, 9)) -> bytes:
    """A JPEG with :data:`CORRUPT_EXIF`."""
    return image_bytes(mode=mode, seed=seed, size=size, exif=CORRUPT_EXIF)


def truncated_jpeg(seed: int = 0) -> bytes:
    data = image_bytes(size=(64, 48), seed=seed)
    return data[: len(data) // 2]
