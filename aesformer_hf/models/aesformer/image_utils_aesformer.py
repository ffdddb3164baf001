"""Turning whatever a user or a dataset hands us into an 8-bit RGB PIL image.

Photos in the wild come greyscale, with alpha, palettised, in CMYK, in 16-bit and with broken EXIF.
The model only ever sees 8-bit RGB, so every path (processor, pipeline, dataset builders) goes
through :func:`ensure_rgb` and behaves the same.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def _exif_transpose(image: Image.Image) -> Image.Image:
    # Corrupt EXIF must not cost us the image: fall back to the pixels as stored.
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - PIL raises many types for bad EXIF
        return image


def _high_bit_depth_to_uint8(image: Image.Image) -> Image.Image:
    # "I;16", "I" and "F" images hold more than 8 bits; scale by the type's range, not the image's,
    # so that a dark 16-bit photo stays dark.
    array = np.asarray(image)
    if image.mode.startswith("I;16") or array.dtype == np.uint16:
        array = array.astype(np.float32) / 65535.0
    elif image.mode == "I":
        array = (
            array.astype(np.float32) / max(float(array.max()), 1.0) if array.max() > 255 else array / 255.0
        )
    else:  # "F": assume 0..1 floats unless they clearly exceed it
        array = array.astype(np.float32)
        if array.max() > 1.0:
            array = array / 255.0
    return Image.fromarray((np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), mode="L")


def ensure_rgb(image: Image.Image, apply_exif: bool = True) -> Image.Image:
    """Return ``image`` as an 8-bit RGB PIL image.

    Greyscale, palette, RGBA/LA (composited on white), CMYK, YCbCr and 16-bit/float images are
    converted; EXIF orientation is applied when readable and ignored when corrupt.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"ensure_rgb expects a PIL.Image.Image, got {type(image).__name__}")
    if apply_exif:
        image = _exif_transpose(image)
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _high_bit_depth_to_uint8(image).convert("RGB")
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
