"""`pipeline("image-aesthetics")`: rate images, with or without their users' comments.

Built on transformers' `Pipeline` machinery (`preprocess` -> `_forward` -> `postprocess`, a `DataLoader` for
batches and worker processes). Each image is routed by itself: with comments it is rated by the multimodal path
(MIAA), without by the vision path (VIAA). A batch may hold both: `_forward` runs the model once per mode on its
part of the batch. Results come back in the input order, identical (to float error) to rating them one by one.

* one input -> one dict; a list -> a list; anything else iterable (a generator, `datasets.Dataset`,
  `datasets.IterableDataset`, `KeyDataset`, ...) -> an iterator of dicts, streamed: the first result comes before
  the input is exhausted.
* every image is read by `load_image` (paths, URLs, bytes, file objects, PIL, numpy, torch, `datasets` Image
  values), so a file gives the same pixels whichever way it arrives.
"""

from __future__ import annotations

import collections.abc
import os

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

from .checkpoint_keys_aesformer import require_matching_checkpoint
from .configuration_aesformer import MULTIMODAL_MODE, VISION_MODE
from .image_utils_aesformer import ImageLoadError, images_left_encoded, load_image
from .processing_aesformer import (
    MAX_COMMENT_WORDS,
    MAX_TEXT_TOKENS,
    RELEASED_COMMENT_STYLE,
    comment_text,
    has_comments,
)

ON_ERROR_CHOICES = ("raise", "skip")
# fast_decode: a JPEG is DCT-scaled to no less than this many times the model's input side, then resized exactly.
FAST_DECODE_FACTOR = 2
_TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def _is_single_input(value) -> bool:
    """One image (or one `{"image": ..., "comments": ...}` item), as opposed to a list or a stream of them."""
    if isinstance(
        value, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, collections.abc.Mapping)
    ):
        return True
    if hasattr(value, "ndim"):  # numpy array or torch tensor: a 4-d one is a batch of images
        return value.ndim in (2, 3)
    return hasattr(value, "read")  # a binary file object


def _split_item(item):
    """An input item -> `(image source, comments)`.

    Items are an image source, an `(image, comments)` pair, or a mapping with an `image` key and an optional
    `comments` key (a `datasets` row); a `{"bytes", "path"}` mapping is a `datasets` Image value.
    """
    comments = None
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(f"A tuple item must be (image, comments); got a tuple of {len(item)}.")
        item, comments = item
    if isinstance(item, collections.abc.Mapping):
        if "image" in item:
            if comments is not None and item.get("comments") is not None:
                raise ValueError("An item has comments both inside it and in `comments=`: give them once.")
            comments = item.get("comments") if comments is None else comments
            item = item["image"]
        elif "bytes" not in item and "path" not in item:
            raise ValueError(
                f"An item is a mapping with keys {sorted(map(str, item))}: expected an 'image' key (and optionally "
                "'comments'), or a datasets Image value {'bytes': ..., 'path': ...}. For a dataset whose image "
                "column has another name, pass KeyDataset(dataset, 'column') or rename the column to 'image'."
            )
    return item, comments


class _IndexedInputs(TorchDataset):
    """A sized, indexable input (`datasets.Dataset`, ...) seen as a torch map-style dataset, so that it streams
    through the DataLoader (and `num_workers` decode in parallel) instead of being taken as one image."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index]


def _check_loader_sizes(batch_size, num_workers) -> None:
    """ValueError for a `batch_size` below 1 or a `num_workers` below 0 (None: not given)."""
    for name, value, smallest in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < smallest):
            raise ValueError(f"{name} must be a whole number >= {smallest}, got {value!r}.")


class ImageAestheticsPipeline(Pipeline):
    """Aesthetic rating of images: per image `{"score", "distribution", "label", "mode"}`.

    Inputs: one image -> one dict; a list of images -> a list of dicts; a generator, `datasets.Dataset`,
    `datasets.IterableDataset` or `KeyDataset` -> an iterator of dicts (streamed, in input order). An image is a
    path, an `http(s)` URL, bytes, a binary file object, a PIL image, a numpy array or torch tensor, or a `datasets`
    Image value. An item may also be `{"image": ..., "comments": [...]}` (e.g. a `datasets` row) or an
    `(image, comments)` pair.

    Keyword arguments (at call time; all but `comments` also at `pipeline(...)`):
        comments: for one image a string or list of strings; for a list of images one entry per image (`None` / `[]`
            for images without comments). Images with comments are rated by MIAA, the others by VIAA.
        batch_size: images per forward pass (a batch may mix MIAA and VIAA images). Must be positive.
        num_workers: DataLoader worker processes that read and preprocess images (a generator or iterable
            dataset is read by one worker, as in transformers).
        fast_decode: decode a JPEG much larger than the model input at a reduced size (PIL draft mode, no less
            than twice the input side) before the exact resize; several times faster on camera-sized photos.
        on_error: `"raise"` (default) raises `ImageLoadError("<source>: <reason>")` for an image that cannot be
            read; `"skip"` puts `{"error": "<source>: <reason>"}` in its place and rates the others.
        timeout: seconds for fetching a URL.
        allow_partial_weights (at `pipeline(...)` only): rate even when the model's checkpoint leaves weights
            missing or holds unexpected ones (by default a ValueError naming them).

    `score` is on the model's scale (1..10 on AVA), `distribution` has `num_bins` probabilities, `label` is
    `"high"` or `"low"`, `mode` is `"multimodal"` or `"vision"`.
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    # Images only: left at None, transformers would look for a video processor in the folder and, finding the
    # image processor's remote code there, ask on stdin whether to run it (15 s before giving up).
    _load_video_processor = False
    _load_tokenizer = None  # vision-only models ship no tokenizer

    def __init__(self, *args, allow_partial_weights: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        _check_loader_sizes(getattr(self, "_batch_size", None), getattr(self, "_num_workers", None))
        # The Auto loader only warns about weights it could not place; rating with random heads must not pass
        # silently. `allow_partial_weights=True` keeps transformers' behaviour.
        if not allow_partial_weights:
            require_matching_checkpoint(self.model, "the image-aesthetics pipeline's AesFormer")

    def _sanitize_parameters(self, timeout=None, fast_decode=None, on_error=None, **unknown):
        if unknown:
            raise TypeError(
                f"The image-aesthetics pipeline got unexpected keyword argument(s): {', '.join(sorted(unknown))}. "
                "It takes comments, batch_size, num_workers, fast_decode, on_error and timeout."
            )
        preprocess, postprocess = {}, {}
        if timeout is not None:
            preprocess["timeout"] = timeout
        if fast_decode is not None:
            if not isinstance(fast_decode, bool):
                raise TypeError(f"fast_decode must be True or False, got {fast_decode!r}.")
            preprocess["fast_decode"] = fast_decode
        if on_error is not None:
            if on_error not in ON_ERROR_CHOICES:
                raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
            postprocess["on_error"] = on_error
        return preprocess, {}, postprocess

    # -- the pipeline stages ---------------------------------------------------------------------------
    def _draft_size(self) -> tuple[int, int]:
        # {"height", "width"}; a config saved with an int side loads as that square.
        size = self.image_processor.size
        return FAST_DECODE_FACTOR * int(size["width"]), FAST_DECODE_FACTOR * int(size["height"])

    def preprocess(self, inputs, timeout=None, fast_decode=False):
        """One item -> the model inputs of one image (`pixel_values`, plus the comment tokens in MIAA), or
        `{"error": (source, reason)}` for an image that cannot be read (raised or skipped in `postprocess`)."""
        image, comments = _split_item(inputs)
        try:
            pil = load_image(image, draft_size=self._draft_size() if fast_decode else None, timeout=timeout)
        except ImageLoadError as error:
            return {"error": (error.source, error.reason)}
        model_inputs = dict(self.image_processor(pil, return_tensors="pt"))
        # The processor's recipe when one was given (`pipeline(..., processor=...)`), else the released one: the same
        # text as the processor and the training collator produce.
        style = getattr(self.processor, "comment_style", RELEASED_COMMENT_STYLE)
        max_words = getattr(self.processor, "max_comment_words", MAX_COMMENT_WORDS)
        if has_comments(comments, style):
            cleaned = comment_text(comments, style, max_words)
            if self.tokenizer is None or self.model.config.is_vision_only:
                raise ValueError(
                    "Comments were given but this model is vision-only (no comment tower or tokenizer): call the "
                    "pipeline without comments, or load a multimodal AesFormer."
                )
            model_inputs.update(
                self.tokenizer(cleaned, truncation=True, max_length=MAX_TEXT_TOKENS, return_tensors="pt")
            )
        return model_inputs

    def _collate(self, items: list[dict]) -> dict:
        """Preprocessed items -> one batch: the readable images' pixels, the MIAA images' comment tokens (padded),
        which readable image is MIAA, and each item's error (None when readable), in item order."""
        readable = [item for item in items if "error" not in item]
        batch = {
            "errors": [item.get("error") for item in items],
            "is_miaa": [("input_ids" in item) for item in readable],
        }
        if readable:
            batch["pixel_values"] = torch.cat([item["pixel_values"] for item in readable])
        texts = [{k: item[k][0] for k in _TEXT_KEYS if k in item} for item in readable if "input_ids" in item]
        if texts:
            padded = self.tokenizer.pad(texts, padding=True, return_tensors="pt")
            batch.update({f"text_{k}": v for k, v in padded.items()})
        return batch

    def _forward(self, batch):
        """Rate a batch: the VIAA and the MIAA images each in one forward pass of their own."""
        is_miaa = batch["is_miaa"]
        rated: list[dict | None] = [None] * len(is_miaa)
        pixel_values = batch["pixel_values"].to(self.dtype) if is_miaa else None
        for mode in (VISION_MODE, MULTIMODAL_MODE):
            indices = [i for i, miaa in enumerate(is_miaa) if miaa == (mode == MULTIMODAL_MODE)]
            if not indices:
                continue
            inputs = {
                "pixel_values": pixel_values if len(indices) == len(is_miaa) else pixel_values[indices],
            }
            if mode == MULTIMODAL_MODE:
                inputs.update({k[len("text_") :]: v for k, v in batch.items() if k.startswith("text_")})
            outputs = self.model(**inputs)
            for row, index in enumerate(indices):
                rated[index] = {
                    "score": outputs.score[row],
                    "distribution": outputs.distribution[row],
                    "label": outputs.label[row],
                    "mode": mode,
                }
        readable = iter(rated)
        return {"results": [{"error": e} if e is not None else next(readable) for e in batch["errors"]]}

    def postprocess(self, model_outputs, on_error: str = "raise"):
        entry = model_outputs["results"]
        if isinstance(entry, list):  # batch_size 1: the batch is not unrolled by transformers
            entry = entry[0]
        if "error" in entry:
            source, reason = entry["error"]
            if on_error == "raise":
                raise ImageLoadError(source, reason)
            return {"error": f"{source}: {reason}"}
        return {
            "score": float(entry["score"]),
            "distribution": [float(p) for p in entry["distribution"]],
            "label": self.model.config.id2label[int(entry["label"])],
            "mode": entry["mode"],
        }

    # -- transformers' machinery, with our collate function ------------------------------------------------
    def run_single(self, inputs, preprocess_params, forward_params, postprocess_params):
        batch = self._collate([self.preprocess(inputs, **preprocess_params)])
        return self.postprocess(self.forward(batch, **forward_params), **postprocess_params)

    def get_iterator(
        self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params
    ):
        if isinstance(inputs, collections.abc.Sized):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:
            # Several workers would each read the whole stream; one worker reads it (as in transformers).
            num_workers = min(num_workers, 1)
            dataset = PipelineIterator(inputs, self.preprocess, preprocess_params)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        dataloader = DataLoader(
            dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=self._collate
        )
        model_iterator = PipelineIterator(
            dataloader, self.forward, forward_params, loader_batch_size=batch_size
        )
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def __call__(self, images=None, comments=None, **kwargs):
        """Rate `images`: one (-> dict), a list (-> list) or a stream (-> iterator); see the class docstring."""
        if images is None:
            images = kwargs.pop("inputs", None)
        if images is None:
            raise ValueError("No images given: pass one image, a list, or an iterable of images.")
        _check_loader_sizes(kwargs.get("batch_size"), kwargs.get("num_workers"))

        if _is_single_input(images):
            item = images if comments is None else (images, comments)
            return super().__call__(item, **kwargs)

        if isinstance(images, (list, tuple)) or (hasattr(images, "ndim") and images.ndim == 4):
            items = list(images)
            if comments is not None:
                if isinstance(comments, str) or not isinstance(comments, collections.abc.Sequence):
                    raise ValueError(
                        f"For {len(items)} images, comments must be a list with one entry per image (a string, a "
                        "list of strings, or None), not a single string."
                    )
                if len(comments) != len(items):
                    raise ValueError(f"Got {len(items)} images but comments for {len(comments)}.")
                items = list(zip(items, comments))
            if not items:
                return []
            return super().__call__(items, **kwargs)

        # A stream: comments travel inside the items.
        if comments is not None:
            raise ValueError(
                "With a stream of images (a generator or dataset), give each image's comments inside its item: "
                "{'image': ..., 'comments': [...]} (a datasets row with 'image' and 'comments' columns works as is)."
            )
        images = images_left_encoded(images)
        if isinstance(images, TorchDataset) and isinstance(images, collections.abc.Sized):
            return iter(super().__call__(images, **kwargs))  # KeyDataset and other map-style torch datasets
        if isinstance(images, collections.abc.Sized) and hasattr(images, "__getitem__"):
            return iter(super().__call__(_IndexedInputs(images), **kwargs))  # datasets.Dataset
        if isinstance(images, collections.abc.Iterable):
            return iter(
                super().__call__((item for item in images), **kwargs)
            )  # generators, IterableDataset, ...
        raise TypeError(
            f"Cannot rate a {type(images).__name__}: pass an image (path, URL, bytes, file object, PIL image, numpy "
            "array, torch tensor), a list of images, or an iterable of them."
        )


__all__ = ["ImageAestheticsPipeline"]
