"""The data collator that turns rows of an aesthetics `datasets.Dataset` into AesFormer batches.

Rows carry raw columns (as the dataset builders write them): `image` (PIL image, `{"bytes", "path"}` or a path), `distribution`
(`num_bins` probabilities) or, for score-only datasets such as JAS, `score`, optionally `comments`
(list of strings) and `image_id`. The collator

* applies the training transform (resize to `resize_size` with the processor's filter, random crop to the
  processor's `size`, random horizontal flip: 256 then 224 by default; torchvision v2 functional ops) or the
  evaluation transform (the image processor itself: resize to `size`, no crop), and normalises with the image
  processor (`do_resize=False` for the training crops);
* draws each row's flip and crop from that row's `augmentation_seed` when the row carries one (what
  [`RowsWithAugmentationSeeds`] adds, and [`AesformerTrainer`] trains on), else from `generator` / torch's
  global generator;
* cleans and tokenises the comments (multimodal batches only: tokenising never happens inside the model);
* checks the targets and raises a `ValueError` naming the row (its `image_id` when present) for a
  missing distribution, a wrong number of bins, NaN/inf, negative values or rows that do not sum to 1,
  and, in multimodal batches, for rows without comments.

Rows without comments cannot go through the multimodal path: filter them out first with
[`keep_rows_with_comments`] (stage 1 does; stage 2 reads no comments).

Why per-row seeds: `Trainer` makes a run resumed from a checkpoint continue like the uninterrupted run by
restoring the global RNG states saved in the checkpoint, but it restores them only after the resumed epoch's
first batch has been fetched (the data loader also looks one batch ahead), and batches collated in
dataloader worker processes never see the main process's RNG at all. An augmentation drawn from the global
RNG therefore differs after a mid-epoch resumption. A seed that is a pure function of (seed, epoch,
process, dataset row) depends on no RNG state and no fetch order: the same row in the same epoch gets the
same crop whether the run was interrupted or not, in any worker, and each process draws its own crops.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as tvF
from transformers.image_processing_utils import BaseImageProcessor
from transformers.image_utils import pil_torch_interpolation_mapping

from ..models.aesformer.image_utils_aesformer import ImageLoadError, load_image
from ..models.aesformer.losses_aesformer import distribution_faults
from ..models.aesformer.processing_aesformer import (
    MAX_COMMENT_WORDS,
    MAX_TEXT_TOKENS,
    RELEASED_COMMENT_STYLE,
    comment_text,
    has_comments,
)

# The paper's training resize: 256 before a 224 crop.
_TRAIN_RESIZE_RATIO = 256 / 224
# The row key holding the seed of that row's training flip and crop (read by the collator, never output).
AUGMENTATION_SEED_KEY = "augmentation_seed"


def default_train_resize_size(size: int) -> int:
    """Side that training images are resized to before a random crop to `size` (256 for 224)."""
    return int(round(size * _TRAIN_RESIZE_RATIO))


def keep_rows_with_comments(dataset, column: str = "comments", num_proc: int | None = None):
    """The rows of `dataset` with comments (see `has_comments`: not empty or blank; what stage 1 can train on)."""
    if column not in dataset.column_names:
        raise ValueError(
            f"The dataset has no {column!r} column (columns: {dataset.column_names}); multimodal training "
            "needs the users' comments."
        )
    return dataset.filter(
        has_comments, input_columns=column, num_proc=num_proc, desc="Keeping rows with comments"
    )


def augmentation_seed(seed: int, epoch: int, process_index: int, index: int) -> int:
    """The seed of the training flip and crop of dataset row `index` in `epoch` on process `process_index`.

    Hashed with numpy's `SeedSequence` (made to turn tuples of integers into independent streams), so nearby
    keys do not give correlated generators. A pure function: it needs no state saved in checkpoints.
    """
    key = [int(value) & 0xFFFFFFFFFFFFFFFF for value in (seed, epoch, process_index, index)]
    return int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> np.uint64(1))


class RowsWithAugmentationSeeds(torch.utils.data.Dataset):
    r"""
    A map-style dataset's rows, each with its `augmentation_seed` (see [`augmentation_seed`]) added.

    [`AesformerTrainer`] trains on this view of its training dataset so that the random crops and flips of
    [`AesformerDataCollator`] depend only on (`seed`, epoch, `process_index`, row index): a run resumed from a
    mid-epoch checkpoint then collates exactly the batches that the uninterrupted run collated, with any
    number of dataloader workers, and each process of a distributed run draws its own crops.

    The epoch lives in a shared-memory tensor, so that [`set_epoch`] reaches dataloader workers that were
    started earlier (`dataloader_persistent_workers=True`) as well as those started by the next epoch.

    Args:
        dataset: map-style dataset (`datasets.Dataset` or a `torch.utils.data.Dataset` with `__len__`) whose
            items are mappings (columns -> values).
        seed (`int`): the run's seed (`TrainingArguments.data_seed`, else `seed`).
        process_index (`int`, defaults to 0): this process's rank.
    """

    def __init__(self, dataset, seed: int, process_index: int = 0):
        self.dataset = dataset
        self.seed = int(seed)
        self.process_index = int(process_index)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Key the rows fetched from now on (here and in dataloader workers) to `epoch`."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self.dataset)

    def _with_seed(self, row: Mapping[str, Any], index: int, epoch: int) -> dict[str, Any]:
        seed = augmentation_seed(self.seed, epoch, self.process_index, index)
        return {**row, AUGMENTATION_SEED_KEY: seed}

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._with_seed(self.dataset[index], index, self.epoch)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        # One query for the whole batch where the dataset supports it (`datasets.Dataset` does).
        get_many = getattr(self.dataset, "__getitems__", None)
        rows = get_many(list(indices)) if get_many is not None else [self.dataset[i] for i in indices]
        epoch = self.epoch
        return [self._with_seed(row, index, epoch) for row, index in zip(rows, indices)]


def describe_row(row: Mapping[str, Any], index: int) -> str:
    """How errors name a row: its position in the batch and, when it has one, its `image_id`."""
    image_id = row.get("image_id")
    return f"row {index} of the batch" + (f" (image_id {image_id!r})" if image_id is not None else "")


def _load_image(value: Any, row_name: str) -> Image.Image:
    """A dataset's image cell (PIL, `{"bytes", "path"}`, a path, bytes, an array) -> 8-bit RGB PIL, by `load_image`."""
    if value is None:
        raise ValueError(f"{row_name} has no image (the 'image' column is None).")
    try:
        return load_image(value)
    except ImageLoadError as error:
        raise ValueError(f"{row_name}: {error}") from error


@dataclass
class AesformerDataCollator:
    r"""
    Collates rows of an aesthetics dataset into `pixel_values`, `labels` and, for multimodal batches, the
    tokenised comments.

    Args:
        processor ([`AesformerProcessor`], [`AesformerImageProcessor`] or [`AesformerImageProcessorFast`]): its
            image processor gives `size` (square), the resampling filter and the normalisation, and is the
            evaluation transform; its tokenizer tokenises the comments (a multimodal collator needs one).
        multimodal (`bool`, defaults to `True`): tokenise the comments (stage 1, MIAA). `False` ignores them (stage
            2, VIAA).
        training (`bool`, defaults to `True`): the random training transform; `False` the evaluation transform.
            [`AesformerTrainer`] uses `for_evaluation()` of the training collator for its evaluation data.
        num_bins (`int`, optional): bins a `distribution` must have; [`AesformerTrainer`] sets it from the model.
            Left `None`, the first row decides and the others must agree.
        resize_size (`int`, optional): training resize side; defaults to `round(size * 256 / 224)`.
        max_text_tokens (`int`, defaults to 512): comment tokens kept per image (truncation).
        generator (`torch.Generator`, optional): source of the flips and crops of rows without an
            `augmentation_seed`; by default torch's global generator. A row's `augmentation_seed` takes
            precedence (a fresh generator seeded with it): [`AesformerTrainer`] adds one to every training row
            so that resuming mid-epoch repeats the uninterrupted run's crops (see the module docstring).

    Returns (from `__call__`), a dict of tensors:
        `pixel_values` `(batch, 3, size, size)` float32, normalised;
        `labels` `(batch, num_bins)` float32 distributions, or `(batch,)` scores for score-only data;
        multimodal only: `input_ids`, `attention_mask`, `token_type_ids` `(batch, text_tokens)`.
    """

    processor: Any
    multimodal: bool = True
    training: bool = True
    num_bins: int | None = None
    resize_size: int | None = None
    max_text_tokens: int = MAX_TEXT_TOKENS
    image_column: str = "image"
    comments_column: str = "comments"
    generator: torch.Generator | None = None

    def __post_init__(self):
        self.image_processor = getattr(self.processor, "image_processor", self.processor)
        if not isinstance(self.image_processor, BaseImageProcessor):
            raise TypeError(
                f"processor is a {type(self.processor).__name__}; expected an AesformerProcessor or an "
                "AesformerImageProcessor."
            )
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.multimodal and self.tokenizer is None:
            raise ValueError(
                "A multimodal collator tokenises comments, but the processor has no tokenizer: pass an "
                "AesformerProcessor, or set multimodal=False for vision-only training."
            )
        size = self.image_processor.size
        if size.get("height") is None or size.get("height") != size.get("width"):
            raise ValueError(
                f"The training transform crops squares; the image processor's size is {dict(size)}. Use a square "
                "size {'height': n, 'width': n}, as the model's Swin input is."
            )
        self.size = int(size["height"])
        if self.resize_size is None:
            self.resize_size = default_train_resize_size(self.size)
        if self.resize_size < self.size:
            raise ValueError(
                f"resize_size={self.resize_size} is smaller than the crop size {self.size}: training images are "
                "resized to resize_size, then randomly cropped to the processor's size."
            )

    def for_evaluation(self) -> AesformerDataCollator:
        """The same collator with the evaluation transform (resize to `size`, no flip, no crop)."""
        return dataclasses.replace(self, training=False)

    # -- images ------------------------------------------------------------------------------------
    def augment(self, image: Image.Image, generator: torch.Generator | None = None) -> Image.Image:
        """RGB PIL -> RGB PIL `size x size`: resize to `resize_size`, random crop, flip with p=0.5 (not normalised).

        The crop and flip come from `generator`, else the collator's `generator`, else torch's global one.
        """
        generator = generator if generator is not None else self.generator
        # torchvision.transforms.v2's RandomCrop and RandomHorizontalFlip draw from torch's global RNG and take no
        # generator, so the parameters are drawn here from the row's generator and applied with v2.functional. On a
        # PIL image these ops are PIL's own resize, crop and transpose.
        interpolation = pil_torch_interpolation_mapping[self.image_processor.resample]
        resized = tvF.resize(image, [self.resize_size, self.resize_size], interpolation=interpolation)
        margin = self.resize_size - self.size
        top, left = torch.randint(0, margin + 1, (2,), generator=generator).tolist()
        cropped = tvF.crop(resized, top, left, self.size, self.size)
        if torch.rand((), generator=generator) < 0.5:
            cropped = tvF.horizontal_flip(cropped)
        return cropped

    def normalize(self, crops: Sequence[Image.Image]) -> torch.Tensor:
        """Training crops (already `size x size`) -> `(n, 3, size, size)`, normalised by the image processor."""
        return self.image_processor(list(crops), do_resize=False, return_tensors="pt")["pixel_values"]

    def train_transform(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        """RGB PIL -> `(3, size, size)`: [`augment`] (resize, random crop, flip), then normalise."""
        return self.normalize([self.augment(image, generator)])[0]

    @staticmethod
    def _row_generator(row: Mapping[str, Any]) -> torch.Generator | None:
        seed = row.get(AUGMENTATION_SEED_KEY)
        return None if seed is None else torch.Generator().manual_seed(int(seed))

    def pixel_values(self, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """`(batch, 3, size, size)`: each row's image, loaded and put through the training or evaluation transform."""
        transformed = []
        for i, row in enumerate(rows):
            if self.image_column not in row:
                raise KeyError(
                    f"{describe_row(row, i)} has no {self.image_column!r} column (it has {sorted(row)}). With the plain "
                    "Trainer, set TrainingArguments(remove_unused_columns=False): the model's forward takes "
                    "pixel_values, so the Trainer drops the image column before the collator sees it "
                    "(AesformerTrainer turns the setting off itself)."
                )
            image = _load_image(row.get(self.image_column), describe_row(row, i))
            transformed.append(self.augment(image, self._row_generator(row)) if self.training else image)
        if self.training:
            return self.normalize(transformed)
        return self.image_processor(transformed, return_tensors="pt")["pixel_values"]

    def eval_transform(self, image: Image.Image) -> torch.Tensor:
        """RGB PIL -> `(3, size, size)`: the image processor itself (resize, no crop, normalise)."""
        return self.image_processor([image], return_tensors="pt")["pixel_values"][0]

    # -- targets -----------------------------------------------------------------------------------
    def _distributions(self, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        expected_bins = self.num_bins
        distributions = []
        for index, row in enumerate(rows):
            value = row.get("distribution")
            if value is None:
                raise ValueError(
                    f"{describe_row(row, index)} has no 'distribution' (None) while the dataset has that column; "
                    "every row needs its vote distribution."
                )
            array = np.asarray(value, dtype=np.float64)
            if expected_bins is None:
                expected_bins = int(array.size)
            if array.ndim != 1 or array.size != expected_bins:
                raise ValueError(
                    f"{describe_row(row, index)} has a distribution of shape {array.shape}; expected {expected_bins} "
                    "bins (one probability per score bin of the model)."
                )
            if not np.isfinite(array).all():
                raise ValueError(
                    f"{describe_row(row, index)} has NaN or inf in its distribution: {array.tolist()}."
                )
            distributions.append(array)
        stacked = torch.from_numpy(np.stack(distributions))
        # One check of the whole batch (float64, as read), naming the first row that is not a distribution.
        negative, off, sums = distribution_faults(stacked)
        if negative or off:
            index = min(negative + off)
            raise ValueError(
                f"{describe_row(rows[index], index)} has a distribution that is not a probability distribution "
                f"(non-negative, summing to 1): it sums to {float(sums[index]):.6g}. Divide vote counts by their total."
            )
        return stacked.float()

    @staticmethod
    def _scores(rows: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        scores = []
        for index, row in enumerate(rows):
            value = row.get("score")
            if value is None or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
                raise ValueError(
                    f"{describe_row(row, index)} has score {value!r}; expected a finite number (the mean rating)."
                )
            scores.append(float(value))
        return torch.tensor(scores, dtype=torch.float32)

    def _labels(self, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        if "distribution" in rows[0]:
            return self._distributions(rows)
        if "score" in rows[0]:
            return self._scores(rows)
        raise ValueError(
            f"The rows have neither a 'distribution' nor a 'score' column (columns: {sorted(rows[0])}). "
            "Train on vote distributions (num_bins probabilities) or, for score-only data, mean scores."
        )

    # -- comments ----------------------------------------------------------------------------------
    def _tokenised_comments(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        # The processor's recipe (the released text by default): the same text as the processor and the pipeline.
        style = getattr(self.processor, "comment_style", RELEASED_COMMENT_STYLE)
        max_words = getattr(self.processor, "max_comment_words", MAX_COMMENT_WORDS)
        texts = []
        for index, row in enumerate(rows):
            if self.comments_column not in row:
                raise ValueError(
                    f"{describe_row(row, index)} has no {self.comments_column!r} column, which multimodal (stage 1) "
                    "training needs. Train vision-only with stage='adaptation' instead."
                )
            comments = row[self.comments_column]
            if not has_comments(comments, style):
                raise ValueError(
                    f"{describe_row(row, index)} has no comments, so it cannot go through the multimodal path. Drop "
                    "such rows first: aesformer_hf.training.keep_rows_with_comments(dataset)."
                )
            texts.append(comment_text(comments, style, max_words))
        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
        )
        return dict(encoded)

    # -- the batch ---------------------------------------------------------------------------------
    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if len(rows) == 0:
            raise ValueError("Cannot collate an empty batch.")
        batch = {"pixel_values": self.pixel_values(rows), "labels": self._labels(rows)}
        if self.multimodal:
            batch.update(self._tokenised_comments(rows))
        return batch


__all__ = [
    "AUGMENTATION_SEED_KEY",
    "AesformerDataCollator",
    "RowsWithAugmentationSeeds",
    "augmentation_seed",
    "default_train_resize_size",
    "keep_rows_with_comments",
]
