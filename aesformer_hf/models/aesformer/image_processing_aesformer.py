"""AesFormer image processors: the released models' evaluation transform, on transformers' two backends.

Every image is resized (no crop: aesthetics depends on composition, so nothing is cut away) to `size` with bicubic
resampling and normalised with the ImageNet mean and std. Inputs may be PIL images, numpy arrays or torch tensors, in
any of the modes photos come in. The settings are class attributes, as in transformers' own processors (ViT, CLIP);
`AesformerImageProcessor` runs them on the PIL backend (the released pixels, exactly) and `AesformerImageProcessorFast`
on the torchvision backend (faster, batched, on GPU if asked; within a stated tolerance of the PIL backend).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend, TorchvisionBackend
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling, SizeDict

from .image_utils_aesformer import ensure_rgb

IMAGENET_MEAN = tuple(IMAGENET_DEFAULT_MEAN)  # (0.485, 0.456, 0.406)
IMAGENET_STD = tuple(IMAGENET_DEFAULT_STD)  # (0.229, 0.224, 0.225)

# How far the torchvision backend may be from the PIL backend on photos (measured and tested; see
# `AesformerImageProcessorFast`): one 8-bit level in normalised units (the narrowest std), and a tiny model's score.
FAST_MAX_PIXEL_DIFFERENCE = 1 / 255 / min(IMAGENET_STD) + 1e-6
FAST_MAX_SCORE_DIFFERENCE = 1e-5


def _array_to_pil(array: np.ndarray, index: int) -> Image.Image:
    """HWC or CHW, 1/3/4 channels, uint8/uint16/float (0..1 or 0..255) -> PIL."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(
            f"Image {index} has shape {array.shape}; expected (height, width), (height, width, channels) or "
            "(channels, height, width) with 1, 3 or 4 channels."
        )
    # Channels-first when the first axis looks like channels and the others like pixels (not like channels).
    if array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4) and min(array.shape[1:]) > 4:
        array = np.moveaxis(array, 0, -1)
    if array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"Image {index} has shape {array.shape}: {array.shape[-1]} channels, expected 1, 3 or 4."
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"Image {index} contains NaN or inf values.")
        scale = 255.0 if array.max(initial=0.0) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype == np.uint16:
        array = (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        if array.min(initial=0) < 0 or array.max(initial=0) > 255:
            raise ValueError(f"Image {index} has integer values outside 0..255 ({array.dtype}).")
        array = array.astype(np.uint8)
    channels = array.shape[-1]
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode=mode)


def to_rgb_pil(image, index: int = 0) -> Image.Image:
    """One PIL / numpy / torch image -> 8-bit RGB PIL (see `ensure_rgb` for the modes handled)."""
    if isinstance(image, Image.Image):
        return ensure_rgb(image)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dtype == torch.bfloat16:
            image = image.float()
        image = image.numpy()
    if isinstance(image, np.ndarray):
        return ensure_rgb(_array_to_pil(image, index))
    raise TypeError(
        f"Image {index} is a {type(image).__name__}; expected a PIL.Image.Image, numpy array or torch tensor "
        "(the pipeline also accepts paths and URLs)."
    )


def _image_list(images) -> list:
    """One image, a list of images or a batch (4-D array / tensor) -> a non-empty list of images."""
    if images is None:
        raise ValueError("No images given: pass one image or a list of images.")
    if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) == 0:
        raise ValueError("Got an empty list of images.")
    return list(images)


class _AesformerImageProcessing:
    """The settings and input handling both backends share (one place for each fact).

    The released evaluation transform: resize to `size` (bicubic, no crop: aesthetics depends on composition), `/ 255`,
    ImageNet mean and std. Before anything else every image goes through the package's RGB conversion (`to_rgb_pil`,
    i.e. `ensure_rgb`: EXIF orientation, 16-bit scaled by its range, alpha composited on white, palette, CMYK), so
    both backends see the same 8-bit RGB pixels as `load_image` gives the pipeline.
    """

    size = {"height": 224, "width": 224}
    do_resize = True
    resample = PILImageResampling.BICUBIC
    do_rescale = True  # by rescale_factor = 1 / 255 (BaseImageProcessor's default)
    do_normalize = True
    image_mean = IMAGENET_MEAN
    image_std = IMAGENET_STD
    do_convert_rgb = True
    do_center_crop = False
    # As before the move to transformers' backends: a stacked `torch.Tensor` unless asked otherwise.
    return_tensors = "pt"

    def _prepare_image_like_inputs(self, images, *args, expected_ndims: int = 3, **kwargs):
        images = _image_list(images)
        if kwargs.get("do_convert_rgb"):
            # The package's conversion, not transformers' `convert_to_rgb`, which knows neither EXIF nor 16-bit nor CMYK.
            images = [to_rgb_pil(image, index) for index, image in enumerate(images)]
        return super()._prepare_image_like_inputs(images, *args, expected_ndims=expected_ndims, **kwargs)

    def process_image(self, image, *args, do_convert_rgb: bool | None = None, **kwargs):
        # Converted above: transformers' conversion would only copy an RGB image once more.
        if do_convert_rgb and isinstance(image, Image.Image) and image.mode == "RGB":
            do_convert_rgb = False
        return super().process_image(image, *args, do_convert_rgb=do_convert_rgb, **kwargs)


class AesformerImageProcessor(_AesformerImageProcessing, PilBackend):
    r"""
    AesFormer's image processor on the PIL backend: the released preprocessing, bit for bit (tested).

    Resize to `size` with PIL bicubic (no crop), rescale by 1/255 and normalise with the ImageNet mean and std, after
    the package's RGB conversion (see [`load_image`]). Inputs: PIL images, numpy arrays and torch tensors (HWC or CHW;
    grey, RGB, RGBA, palette, CMYK, 16-bit, float), one at a time, as a list or as a 4-D batch.

    Args:
        size (`dict[str, int]` or `int`, defaults to `{"height": 224, "width": 224}`): output size; must match the
            model's Swin input. An `int` is a square side (as configs saved before these backends hold it).
        resample (defaults to `PIL.Image.BICUBIC`), do_resize, do_rescale, rescale_factor, do_normalize, image_mean,
        image_std, do_convert_rgb: as in transformers' image processors.

    `AutoImageProcessor` returns this class unless asked for the torchvision one ([`AesformerImageProcessorFast`],
    `backend="torchvision"` or `use_fast=True`).
    """


class AesformerImageProcessorFast(_AesformerImageProcessing, TorchvisionBackend):
    r"""
    AesFormer's image processor on the torchvision backend: the same settings as [`AesformerImageProcessor`], with the
    resize and normalisation in torch (batched by shape, on `device` when one is given, e.g. `device="cuda"`).

    The RGB conversion is the package's, on the CPU, as in the PIL backend; only the resize differs. Torchvision's
    antialiased bicubic is not PIL's (PIL rounds and clips to 8 bits between its two passes, in an order that depends on
    the shapes and on the Pillow version). Measured on CPU (torch 2.14, torchvision 0.29, Pillow 13;
    `benchmarks/bench_image_processor_backends.py`):

    * photos (scikit-image's ten sample photos, as stored and upscaled to 6 MP), at 224 and 64 px: at most 1 of 255
      levels (`FAST_MAX_PIXEL_DIFFERENCE` = 0.0175 in normalised units; 0.06-0.3 % of the values differ), and a tiny
      random AesFormer's score moves by at most 3.3e-6 (`FAST_MAX_SCORE_DIFFERENCE` = 1e-5 is what the tests allow);
    * uniform noise, the worst case for bicubic overshoot: up to 23 levels (0.40 normalised).

    Off the CPU (`device="cuda"`) torchvision has no 8-bit kernel: it resizes in float in one go, with no rounding
    between the two passes, which moves photos by up to 6 levels from PIL. There this class resizes in two passes,
    width first as the CPU kernel and PIL do, rounding to 8 bits in between (`resize_in_rounded_passes`): within
    1 level of PIL on the same photos (tested on the CPU with the same float kernel; not run on a GPU here).

    Use the PIL backend ([`AesformerImageProcessor`], the default) to reproduce the released evaluation exactly.
    """

    def resize(
        self, image: torch.Tensor, size, resample=None, antialias: bool = True, **kwargs
    ) -> torch.Tensor:
        if image.dtype == torch.uint8 and image.device.type != "cpu" and size.height and size.width:
            return self.resize_in_rounded_passes(image, size, resample=resample, antialias=antialias)
        return super().resize(image, size, resample=resample, antialias=antialias, **kwargs)

    def resize_in_rounded_passes(
        self, image: torch.Tensor, size, resample=None, antialias: bool = True
    ) -> torch.Tensor:
        """8-bit `(..., 3, H, W)` -> 8-bit `(..., 3, size.height, size.width)` in float: the width pass, rounded and
        clipped to 8 bits, then the height pass, as PIL and torchvision's CPU kernel do (on any device)."""
        height, width = int(size.height), int(size.width)
        pixels = image.to(torch.float32)
        for pass_size in ((pixels.shape[-2], width), (height, width)):
            if tuple(pixels.shape[-2:]) != pass_size:
                pixels = super().resize(
                    pixels,
                    SizeDict(height=pass_size[0], width=pass_size[1]),
                    resample=resample,
                    antialias=antialias,
                )
                pixels = pixels.round_().clamp_(0, 255)
        return pixels.to(torch.uint8)


__all__ = ["AesformerImageProcessor", "AesformerImageProcessorFast"]
