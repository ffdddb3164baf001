"""`pipeline("image-aesthetics")`: rate images, with or without their users' comments.

Each image is routed by itself: with comments it is rated by the multimodal path (MIAA), without by the
vision path (VIAA). Images are grouped by path into batches of `batch_size`, and results come back in
the input order, identical (to float error) to rating them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from transformers import Pipeline
from transformers.image_utils import load_image

from .image_processing_aesformer import to_rgb_pil
from .processing_aesformer import (
    MAX_COMMENT_WORDS,
    MAX_TEXT_TOKENS,
    RELEASED_COMMENT_STYLE,
    comment_text,
    has_comments,
)

MIAA_MODE = "multimodal"
VIAA_MODE = "vision"


def _is_single_image(images) -> bool:
    if isinstance(images, (str, Image.Image)):
        return True
    if isinstance(images, np.ndarray):
        return images.ndim in (2, 3)
    if isinstance(images, torch.Tensor):
        return images.ndim in (2, 3)
    return False


class ImageAestheticsPipeline(Pipeline):
    """Aesthetic rating of images: per image `{"score", "distribution", "label", "mode"}`.

    Call it with one image or a list (paths, URLs, PIL images, numpy arrays) and optionally `comments=`: for one
    image a string or list of strings; for a list of images one entry per image (`None`/`[]` for images without
    comments). `batch_size` groups images of the same mode. `score` is on the model's scale (1..10 on AVA),
    `distribution` has `num_bins` probabilities, `label` is `"high"` or `"low"`.
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = None  # vision-only models ship no tokenizer

    def _sanitize_parameters(self, comments=None, top_k=None, timeout=None, **kwargs):
        preprocess = {}
        if timeout is not None:
            preprocess["timeout"] = timeout
        return preprocess, {}, {}

    # -- the four pipeline stages, per image ---------------------------------------------------------
    def preprocess(self, inputs, timeout=None):
        image, comments = inputs if isinstance(inputs, tuple) else (inputs, None)
        if isinstance(image, str):
            image = load_image(image, timeout=timeout)
        pil = to_rgb_pil(image)
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

    def _forward(self, model_inputs):
        return self.model(**model_inputs)

    def postprocess(self, model_outputs, mode: str = VIAA_MODE):
        results = []
        for i in range(model_outputs.score.shape[0]):
            score = float(model_outputs.score[i])
            results.append(
                {
                    "score": score,
                    "distribution": [float(p) for p in model_outputs.distribution[i]],
                    "label": self.model.config.id2label[int(model_outputs.label[i])],
                    "mode": mode,
                }
            )
        return results

    # -- batching by mode ----------------------------------------------------------------------------
    def _collate(self, items: list[dict]) -> dict:
        batch = {"pixel_values": torch.cat([item["pixel_values"] for item in items])}
        if "input_ids" in items[0]:
            text = [{k: item[k][0] for k in item if k != "pixel_values"} for item in items]
            batch.update(self.tokenizer.pad(text, padding=True, return_tensors="pt"))
        return batch

    def _run_batch(self, items: list[dict], mode: str) -> list[dict]:
        batch = self._ensure_tensor_on_device(self._collate(items), device=self.device)
        batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            outputs = self._forward(batch)
        return self.postprocess(outputs, mode=mode)

    def _rate_prepared(self, prepared: list[dict], batch_size: int) -> list[dict]:
        """Rate preprocessed images in batches of one mode each; results in the input order."""
        results: list[dict | None] = [None] * len(prepared)
        for mode in (MIAA_MODE, VIAA_MODE):
            indices = [i for i, item in enumerate(prepared) if ("input_ids" in item) == (mode == MIAA_MODE)]
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                for index, result in zip(chunk, self._run_batch([prepared[i] for i in chunk], mode)):
                    results[index] = result
        return results

    def __call__(self, images, comments=None, batch_size: int | None = None, **kwargs):
        """Rate `images` (one or a list); see the class docstring."""
        single = _is_single_image(images)
        image_list = [images] if single else list(images)
        if comments is None:
            comment_list = [None] * len(image_list)
        elif single:
            comment_list = [comments]
        else:
            if isinstance(comments, str) or not isinstance(comments, Sequence):
                raise ValueError(
                    f"For {len(image_list)} images, comments must be a list with one entry per image (a string, a "
                    "list of strings, or None), not a single string."
                )
            comment_list = list(comments)
            if len(comment_list) != len(image_list):
                raise ValueError(f"Got {len(image_list)} images but comments for {len(comment_list)}.")
        preprocess_params, _, _ = self._sanitize_parameters(**kwargs)
        batch_size = int(batch_size or self._batch_size or 1)

        results: list[dict] = []
        # Preprocess a window of images at a time so that a folder of 100k photos never sits in memory at once.
        window = batch_size * 4
        for window_start in range(0, len(image_list), window):
            pairs = zip(
                image_list[window_start : window_start + window],
                comment_list[window_start : window_start + window],
            )
            prepared = [self.preprocess(pair, **preprocess_params) for pair in pairs]
            results.extend(self._rate_prepared(prepared, batch_size))
        return results[0] if single else results


__all__ = ["ImageAestheticsPipeline"]
