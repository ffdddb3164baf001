"""Finding a dataset's image files and turning each into the bytes stored in Parquet.

Storage policy (one decision, applied to every dataset):

* Every image is fully decoded first. A missing, empty, truncated or undecodable file is skipped
  and reported; it never stops the build.
* An image that decodes to 8-bit RGB from a JPEG or PNG file is stored as the **original bytes**:
  no generation loss, byte-identical to the user's copy, EXIF (orientation included) kept so the
  processor applies it exactly as it would on the file.
* Any other image (greyscale, CMYK, RGBA, palette, 16-bit, or another file format) is passed
  through :func:`ensure_rgb` (which applies the EXIF orientation and tolerates corrupt EXIF) and
  re-encoded: as **PNG** when the source was lossless (PNG, TIFF, BMP, GIF, ...) so nothing is
  lost, as **JPEG quality 95, 4:4:4 chroma** when the source was already JPEG, where a lossless
  copy of a decoded JPEG would be 5-10x the size for no visible gain.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

from aesformer_hf.models.aesformer.image_utils_aesformer import (
    ImageLoadError,
    ensure_rgb,
    open_image,
    read_file_bytes,
)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
PASSTHROUGH_FORMATS = frozenset({"JPEG", "MPO", "PNG"})  # MPO: a JPEG with extra frames, read as JPEG
LOSSY_FORMATS = frozenset({"JPEG", "MPO"})
REENCODED_JPEG_QUALITY = 95


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one image file.

    ``image`` is the ``{"bytes", "path"}`` dict stored in the ``image`` column (``path`` is only the
    file name, never the user's folder), or ``None`` when the row must be skipped. ``code`` and
    ``detail`` explain a skip or a conversion (``None`` when the original bytes are stored as is).
    """

    image: dict | None
    code: str | None = None
    detail: str | None = None

    @property
    def skipped(self) -> bool:
        return self.image is None


def load_image_for_dataset(path: str | os.PathLike) -> ImageOutcome:
    """Read, verify and (when needed) convert one image file; never raises for a bad file."""
    path = Path(path)
    try:
        # A FIFO or device among the images is refused, never read (reading a FIFO would block the build).
        data = read_file_bytes(path, name=path.name)
    except ImageLoadError as error:
        return ImageOutcome(None, "unreadable_image", f"cannot read {error}")
    if not data:
        return ImageOutcome(None, "empty_image", f"{path.name} is an empty file (0 bytes)")
    return encode_image_bytes(data, path.name)


def encode_image_bytes(data: bytes, file_name: str) -> ImageOutcome:
    """Verify that ``data`` decodes (with the package's one loader, :func:`open_image`) and apply the storage
    policy of the module docstring."""
    try:
        image = _decode_fully(data, file_name)
    except ImageLoadError as error:
        return ImageOutcome(None, _SKIP_CODES.get(error.kind, "undecodable_image"), str(error))
    image_format = image.format

    if image.mode == "RGB" and image_format in PASSTHROUGH_FORMATS:
        return ImageOutcome({"bytes": data, "path": file_name})

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = ensure_rgb(image)
        encoded, extension = _encode_rgb(rgb, lossy_source=image_format in LOSSY_FORMATS)
    except Exception as error:  # noqa: BLE001 - a conversion failure skips the row, never the build
        return ImageOutcome(None, "unconvertible_image", f"{file_name}: {type(error).__name__}: {error}")
    stored_name = f"{Path(file_name).stem}{extension}"
    detail = f"{file_name}: {image_format or 'unknown format'} {image.mode} -> RGB {extension[1:].upper()}"
    return ImageOutcome({"bytes": encoded, "path": stored_name}, "converted_image", detail)


# ImageLoadError.kind -> the skip code reported by the builders.
_SKIP_CODES = {
    "too_large": "image_too_large",
    "truncated": "truncated_image",
    "not_an_image": "undecodable_image",
    "undecodable": "undecodable_image",
    "unconvertible": "unconvertible_image",
}


def _decode_fully(data: bytes, file_name: str) -> Image.Image:
    # open_image loads everything (Image.verify() misses truncated pixel data) and refuses decompression bombs.
    # Truncation must raise even if some other code switched PIL to tolerate it.
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # corrupt EXIF and similar: harmless for the pixels
            return open_image(data, name=file_name)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _encode_rgb(image: Image.Image, lossy_source: bool) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if lossy_source:
        image.save(buffer, format="JPEG", quality=REENCODED_JPEG_QUALITY, subsampling=0)
        return buffer.getvalue(), ".jpg"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


class ImageIndex:
    """Maps an image id (the file name without extension) to an image file below some folders.

    Accepts any folder layout (flat, ``images/``, ``images/images/``, ...): every file with an
    image extension below the roots is indexed by its stem. When several files share a stem, the
    shallowest (then alphabetically first) wins and :meth:`duplicates` tells the others.
    Lookups are exact first, then case-insensitive.
    """

    def __init__(self, roots: list[Path]):
        self.roots = [Path(root) for root in roots]
        candidates: dict[str, list[tuple[int, str]]] = {}
        for root in self.roots:
            for directory, subdirectories, files in os.walk(root):
                subdirectories.sort()
                depth = len(Path(directory).relative_to(root).parts)
                for name in files:
                    stem, extension = os.path.splitext(name)
                    if extension.lower() in IMAGE_EXTENSIONS:
                        candidates.setdefault(stem, []).append((depth, os.path.join(directory, name)))
        self._paths: dict[str, str] = {}
        self._duplicates: dict[str, list[str]] = {}
        for stem, found in candidates.items():
            found.sort()
            self._paths[stem] = found[0][1]
            if len(found) > 1:
                self._duplicates[stem] = [path for _, path in found[1:]]
        self._casefolded: dict[str, str] = {}
        for stem in sorted(self._paths):
            self._casefolded.setdefault(stem.casefold(), stem)

    def __len__(self) -> int:
        return len(self._paths)

    def _stem(self, image_id: str) -> str | None:
        if image_id in self._paths:
            return image_id
        return self._casefolded.get(image_id.casefold())

    def find(self, image_id: str) -> str | None:
        """Path of the image file for ``image_id``, or ``None`` when there is none."""
        stem = self._stem(image_id)
        return None if stem is None else self._paths[stem]

    def duplicates(self, image_id: str) -> list[str]:
        """The other files sharing ``image_id``'s stem (not used), usually empty."""
        stem = self._stem(image_id)
        return [] if stem is None else self._duplicates.get(stem, [])

    def describe(self) -> str:
        return " or ".join(str(root) for root in self.roots)


def image_roots(
    data_dir: Path,
    images_dir: str | os.PathLike | None,
    preferred: tuple[str, ...] = ("images", "image", "Images"),
) -> list[Path]:
    """Where to look for images: ``images_dir`` if given, else the first ``preferred`` sub-folder of
    ``data_dir`` that exists, else all of ``data_dir``."""
    if images_dir is not None:
        if not Path(images_dir).is_dir():
            raise FileNotFoundError(f"images folder not found: {images_dir}")
        return [Path(images_dir)]
    found = [data_dir / name for name in preferred if (data_dir / name).is_dir()]
    return found[:1] or [data_dir]
