"""Turning whatever a user or a dataset hands us into an 8-bit RGB PIL image.

Photos in the wild come greyscale, with alpha, palettised, in CMYK, in 16-bit and with broken EXIF.
The model only ever sees 8-bit RGB, so every path (processor, pipeline, dataset builders) goes
through :func:`ensure_rgb` and behaves the same. :func:`load_image` is the one loader for every source (path,
URL, bytes, file object, PIL, numpy, torch, a `datasets` Image value); it raises :class:`ImageLoadError`, whose
message always starts with the source's name.
"""

from __future__ import annotations

import io
import os
import stat
import warnings

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


# --------------------------------------------------------------------------------------------------
# One loader for every source
# --------------------------------------------------------------------------------------------------
class ImageLoadError(ValueError):
    """An image that cannot be read. The message is always ``"<source name>: <reason>"``.

    ``kind`` says why, for callers that sort failures: ``"missing"``, ``"not_a_file"`` (a directory, FIFO, socket
    or device), ``"unreadable"`` (an OS or network error), ``"not_an_image"``, ``"too_large"`` (decompression bomb
    limit), ``"truncated"``, ``"undecodable"``, ``"unconvertible"`` or ``"unsupported"`` (not an image source).
    """

    def __init__(self, source: str, reason: str, kind: str = "undecodable"):
        self.source = source
        self.reason = reason
        self.kind = kind
        super().__init__(f"{source}: {reason}")

    def __reduce__(self):  # picklable, so that errors cross DataLoader worker processes intact
        return (type(self), (self.source, self.reason, self.kind))


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _fetch_url(url: str, timeout: float | None) -> bytes:
    """The bytes at ``url``, with `requests` or `httpx` (whichever is installed). Tests monkeypatch this."""
    try:
        import requests
    except ImportError:
        requests = None
    if requests is not None:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        return response.content
    try:
        import httpx
    except ImportError:
        httpx = None
    if httpx is not None:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
        return response.content
    raise RuntimeError("reading URLs needs `requests` or `httpx` installed (pip install requests)")


def describe_source(source) -> str:
    """The short name an error message starts with: the path or URL, or a description of the object."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<bytes, {len(source)} bytes>"
    if isinstance(source, dict):
        if source.get("path"):
            return str(source["path"])
        data = source.get("bytes")
        return describe_source(data) if data is not None else "<datasets Image value without bytes or path>"
    if isinstance(source, Image.Image):
        return (
            getattr(source, "filename", "") or f"<PIL image, {source.mode} {source.size[0]}x{source.size[1]}>"
        )
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return (
            os.fsdecode(name)
            if isinstance(name, (str, os.PathLike))
            else f"<{type(source).__name__} file object>"
        )
    shape = getattr(source, "shape", None)
    if shape is not None:
        return f"<{type(source).__name__} of shape {tuple(shape)}>"
    return f"<{type(source).__name__}>"


def _stored_orientation_swaps(image: Image.Image) -> bool:
    try:
        return image.getexif().get(0x0112) in (5, 6, 7, 8)  # 0x0112 = Orientation; these turn by 90 degrees
    except Exception:  # noqa: BLE001 - corrupt EXIF: the pixels are used as stored
        return False


def _decode(fp, name: str, draft_size: tuple[int, int] | None) -> Image.Image:
    """Open, check the size, draft (JPEG) and load; every failure is an ImageLoadError naming ``name``."""
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; a decompression bomb is an error here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageLoadError(
            name, f"refused as a possible decompression bomb: {error}", "too_large"
        ) from None
    except Image.UnidentifiedImageError:
        raise ImageLoadError(
            name, "not an image file PIL can read (unknown or corrupt format)", "not_an_image"
        ) from None
    except Exception as error:  # noqa: BLE001 - PIL raises many types for broken headers
        raise ImageLoadError(
            name, f"cannot open image: {type(error).__name__}: {error}", "not_an_image"
        ) from None
    width, height = image.size
    if limit and width * height > limit:
        raise ImageLoadError(
            name,
            f"{width}x{height} = {width * height} pixels exceeds the limit of {limit} "
            "(PIL.Image.MAX_IMAGE_PIXELS), refused as a possible decompression bomb",
            "too_large",
        )
    try:
        drafted = None
        if draft_size is not None:
            w, h = draft_size
            if _stored_orientation_swaps(image):
                w, h = h, w
            # JPEG: DCT scaling by 1/2, 1/4 or 1/8 to no less than draft_size; None for other formats.
            drafted = image.draft("RGB", (int(w), int(h)))
        image.load()
        if drafted is not None and drafted[1] is not None:
            box = drafted[1]  # where the original image lies in the scaled one
            if (box[2], box[3]) != image.size:
                # A partial last block row/column was decoded as a whole scaled pixel: resample exactly the image's
                # own extent, or the model's resize would see the picture shifted by up to 7/8 of a scaled pixel.
                size = (max(1, round(box[2])), max(1, round(box[3])))
                image = image.resize(size, Image.LANCZOS, box=box)
    except Exception as error:  # noqa: BLE001 - truncated data, bad codecs, ...
        kind = "truncated" if "truncated" in str(error).lower() else "undecodable"
        raise ImageLoadError(name, f"cannot decode image: {type(error).__name__}: {error}", kind) from None
    return image


def _open_regular_file(path: str, name: str):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageLoadError(name, "no such file", "missing") from None
    except OSError as error:
        raise ImageLoadError(name, f"cannot stat: {error.strerror or error}", "unreadable") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageLoadError(name, "is a directory, not an image file", "not_a_file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageLoadError(name, "not a regular file (a FIFO, socket or device), refused", "not_a_file")
    try:
        # Non-blocking, and checked again on the open descriptor: a path swapped for a FIFO cannot hang us.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise ImageLoadError(name, f"cannot open: {error.strerror or error}", "unreadable") from None
    file = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        file.close()
        raise ImageLoadError(name, "not a regular file (a FIFO, socket or device), refused", "not_a_file")
    return file


def read_file_bytes(path: str | os.PathLike, *, name: str | None = None) -> bytes:
    """The bytes of the regular file ``path``; a directory, FIFO, socket or device is refused (a FIFO would block).

    Raises:
        ImageLoadError: named by ``name`` (default: the path).
    """
    name = os.fsdecode(path) if name is None else name
    with _open_regular_file(os.fsdecode(path), name) as file:
        try:
            return file.read()
        except OSError as error:
            raise ImageLoadError(name, f"cannot read: {error.strerror or error}", "unreadable") from None


def open_image(
    source,
    *,
    draft_size: tuple[int, int] | None = None,
    timeout: float | None = None,
    name: str | None = None,
) -> Image.Image:
    """Like :func:`load_image`, but the decoded image as stored: its mode and ``format`` kept, not converted.

    Fully loaded (a truncated file raises here), with every guard of :func:`load_image`. Numpy arrays and torch
    tensors come back already converted to RGB.
    """
    name = describe_source(source) if name is None else name
    if isinstance(source, dict):
        data, path = source.get("bytes"), source.get("path")
        if data:
            return _decode(io.BytesIO(data), name, draft_size)
        if path:
            return open_image(path, draft_size=draft_size, timeout=timeout, name=name)
        raise ImageLoadError(name, "a datasets Image value with neither bytes nor path", "unsupported")
    if isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(source)
        if _is_url(text):
            try:
                data = _fetch_url(text, timeout)
            except Exception as error:  # noqa: BLE001 - network errors of any client
                raise ImageLoadError(
                    name, f"cannot fetch URL: {type(error).__name__}: {error}", "unreadable"
                ) from None
            return _decode(io.BytesIO(data), name, draft_size)
        with _open_regular_file(text, name) as file:
            return _decode(file, name, draft_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(bytes(source)), name, draft_size)
    if isinstance(source, Image.Image):
        # A PIL image you pass in is never drafted (shrunk) behind your back; a lazily opened one is loaded here
        # so that a truncated file fails by name.
        try:
            source.load()
        except Exception as error:  # noqa: BLE001
            kind = "truncated" if "truncated" in str(error).lower() else "undecodable"
            raise ImageLoadError(
                name, f"cannot decode image: {type(error).__name__}: {error}", kind
            ) from None
        return source
    if hasattr(source, "read"):
        try:
            seekable = source.seekable() if hasattr(source, "seekable") else hasattr(source, "seek")
            fp = source if seekable else io.BytesIO(source.read())
        except Exception as error:  # noqa: BLE001
            raise ImageLoadError(
                name, f"cannot read file object: {type(error).__name__}: {error}", "unreadable"
            ) from None
        return _decode(fp, name, draft_size)
    if isinstance(source, np.ndarray) or type(source).__module__.split(".")[0] == "torch":
        from .image_processing_aesformer import to_rgb_pil  # late: that module imports this one

        try:
            return to_rgb_pil(source)
        except (TypeError, ValueError) as error:
            raise ImageLoadError(name, str(error), "unconvertible") from None
    raise ImageLoadError(
        name,
        "not an image source: expected a path, URL, bytes, file object, PIL image, numpy array, torch tensor or a "
        "datasets Image value",
        "unsupported",
    )


def load_image(
    source,
    *,
    draft_size: tuple[int, int] | None = None,
    timeout: float | None = None,
    name: str | None = None,
) -> Image.Image:
    """Any image source -> an 8-bit RGB PIL image, the same pixels whichever way the file arrives.

    Args:
        source: a path (`str` / `os.PathLike`), an `http(s)://` URL (fetched with `requests` or `httpx`), `bytes`,
            a binary file object, a PIL image, a numpy array or torch tensor (HWC or CHW), or a `datasets` Image
            value (a `{"bytes": ..., "path": ...}` dict, or the decoded PIL image).
        draft_size: `(width, height)`; a JPEG much larger than this is decoded with DCT scaling (PIL's draft mode)
            to no less than this size, which is several times faster. Callers resize exactly afterwards. Applied
            to files, bytes and URLs only: a PIL image you pass in is never shrunk behind your back.
        timeout: seconds for fetching a URL.
        name: how errors name the source (default: the path or URL, or a short description such as
            `"<bytes, 1234 bytes>"`).

    EXIF orientation is applied (corrupt EXIF is ignored), 16-bit images are scaled by their type's range, alpha
    is composited on white, palette and CMYK images are converted (see `ensure_rgb`). Sources are refused when
    they are not regular files (a FIFO would block), or have more pixels than `PIL.Image.MAX_IMAGE_PIXELS`.

    Raises:
        ImageLoadError: the source cannot be read (missing, not a regular file, not an image, truncated, too many
            pixels, ...). The message starts with the source's name, then `": "` and the reason.
    """
    name = describe_source(source) if name is None else name
    image = open_image(source, draft_size=draft_size, timeout=timeout, name=name)
    try:
        return ensure_rgb(image)
    except Exception as error:  # noqa: BLE001 - a conversion PIL cannot do
        raise ImageLoadError(
            name, f"cannot convert {image.mode} to RGB: {type(error).__name__}: {error}", "unconvertible"
        ) from None


def images_left_encoded(data):
    """`data` with its `datasets` Image columns cast to `Image(decode=False)`, so that each row reaches `load_image`
    as its file's bytes or path, not as a PIL image `datasets` already decoded: a file that cannot be read is then
    an `ImageLoadError` (reported and skipped by the pipeline and `score`, not a crash in the DataLoader), EXIF,
    16-bit and alpha are handled by this loader, and fast decoding reaches the JPEG decoder. A `KeyDataset` is
    rebuilt over the cast dataset; anything else (a list, a generator, a dataset without Image columns) is
    returned as it is. The caller's dataset is not changed."""
    inner = getattr(data, "dataset", None)
    if inner is not None and hasattr(data, "key") and hasattr(inner, "cast_column"):  # KeyDataset
        return type(data)(images_left_encoded(inner), data.key)
    features = getattr(data, "features", None)
    if not hasattr(data, "cast_column") or not features:
        return data
    for column, feature in features.items():
        if type(feature).__name__ == "Image" and getattr(feature, "decode", False):
            data = data.cast_column(column, type(feature)(decode=False))
    return data
