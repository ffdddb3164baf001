"""AesFormer image processor: the evaluation transform of DESIGN §2.

Every image is resized (no crop: aesthetics depends on composition, so nothing is cut away) to
`size x size` with bicubic resampling and normalised with the ImageNet mean and std. Inputs may be PIL
images, numpy arrays or torch tensors, in any of the modes photos come in.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .image_utils_aesformer import ensure_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


class AesformerImageProcessor(BaseImageProcessor):
    r"""
    Resize to `size x size` (bicubic, no crop) and normalise with the ImageNet statistics.

    Args:
        size (`int`, defaults to 224): output height and width in pixels; must match the model's Swin input.
        image_mean, image_std (`tuple[float, float, float]`): normalisation, ImageNet by default.
        resample (`int`, defaults to `PIL.Image.BICUBIC`): PIL resampling filter.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        size: int | dict = 224,
        image_mean: tuple[float, float, float] | list[float] = IMAGENET_MEAN,
        image_std: tuple[float, float, float] | list[float] = IMAGENET_STD,
        resample: int = Image.BICUBIC,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(size, dict):
            size = int(size.get("height", size.get("shortest_edge", 224)))
        if int(size) < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}.")
        self.size = int(size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.resample = int(resample)

    def normalize_pil(self, image: Image.Image) -> torch.Tensor:
        """An RGB PIL image already at its final size -> normalised `(3, H, W)` float32 tensor."""
        array = (
            torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)
        )
        mean = torch.tensor(self.image_mean).view(3, 1, 1)
        std = torch.tensor(self.image_std).view(3, 1, 1)
        return (array - mean) / std

    def preprocess(
        self, images, size: int | None = None, return_tensors: str | None = "pt", **kwargs
    ) -> BatchFeature:
        """
        Args:
            images: one image or a list of images (PIL, numpy HWC/CHW, torch CHW/HWC; grey, RGB, RGBA, palette,
                CMYK, 16-bit).
            size: override of `self.size` for this call.

        Returns:
            `BatchFeature` with `pixel_values` of shape `(batch, 3, size, size)`, float32.
        """
        size = int(size or self.size)
        if images is None:
            raise ValueError("No images given: pass one image or a list of images.")
        if isinstance(images, torch.Tensor) and images.ndim == 4:
            images = list(images)
        elif isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) == 0:
            raise ValueError("Got an empty list of images.")
        tensors = [
            self.normalize_pil(to_rgb_pil(image, i).resize((size, size), resample=self.resample))
            for i, image in enumerate(images)
        ]
        pixel_values = torch.stack(tensors)
        if return_tensors in (None, "np"):
            pixel_values = pixel_values.numpy()
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=None)

    def __call__(self, images, *args, **kwargs) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)

    def to_dict(self):
        data = super().to_dict()
        for key in list(data):
            if key.startswith("_"):
                data.pop(key)
        return data


__all__ = ["AesformerImageProcessor"]
