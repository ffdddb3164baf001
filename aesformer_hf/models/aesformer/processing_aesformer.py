"""AesFormer processor: the image processor plus the BERT tokenizer for the users' comments.

The comments of one image are joined into one string and cleaned the way the released models were
trained (DESIGN §2): brackets, quotes, parentheses, `*`, `#`, `:` and `~` removed, literal `\\n`
turned into a space, whitespace collapsed, cut to 200 words; then tokenised with truncation to 512.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

MAX_COMMENT_WORDS = 200
MAX_TEXT_TOKENS = 512
_REMOVED_CHARACTERS = re.compile(r"[\[\]{}()\"'*#:~]")
_LITERAL_NEWLINES = re.compile(r"\\r\\n|\\n|\\r")
_WHITESPACE = re.compile(r"\s+")


def clean_comments(comments: str | Sequence[str] | None, max_words: int = MAX_COMMENT_WORDS) -> str:
    """Join one image's comments and clean them; returns `""` when nothing is left.

    Args:
        comments: one string, or a list of comment strings (joined with spaces).
        max_words: keep at most this many whitespace-separated words.
    """
    if comments is None:
        return ""
    if isinstance(comments, str):
        joined = comments
    else:
        if not all(isinstance(c, str) for c in comments):
            kinds = sorted({type(c).__name__ for c in comments if not isinstance(c, str)})
            raise TypeError(f"Comments must be strings; got {', '.join(kinds)} in {list(comments)[:3]!r}...")
        joined = " ".join(comments)
    text = _LITERAL_NEWLINES.sub(" ", joined)
    text = _REMOVED_CHARACTERS.sub("", text)
    words = _WHITESPACE.sub(" ", text).strip().split(" ")
    return " ".join(words[:max_words]) if words != [""] else ""


def has_comments(comments: str | Sequence[str] | None) -> bool:
    """True when `comments` hold any text after cleaning (such an image can be rated with MIAA)."""
    return bool(clean_comments(comments))


class AesformerProcessor(ProcessorMixin):
    r"""
    Prepares images and comments for [`AesformerForAesthetic`].

    Args:
        image_processor ([`AesformerImageProcessor`]): the image transform.
        tokenizer (a BERT tokenizer): tokenises the cleaned comments.
        max_comment_words (`int`, defaults to 200): words kept per image before tokenising.
    """

    def __init__(
        self, image_processor=None, tokenizer=None, max_comment_words: int = MAX_COMMENT_WORDS, **kwargs
    ):
        self.max_comment_words = max_comment_words
        super().__init__(image_processor, tokenizer)

    def clean(self, comments) -> str:
        return clean_comments(comments, self.max_comment_words)

    def __call__(
        self,
        images=None,
        text: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        return_tensors: str | None = "pt",
        padding: bool | str = True,
        truncation: bool = True,
        max_length: int = MAX_TEXT_TOKENS,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            images: one image or a list (PIL, numpy, torch), see [`AesformerImageProcessor`].
            text: the comments: for one image a string or a list of strings; for a batch, one entry per image.

        Returns:
            `BatchFeature` with `pixel_values` `(batch, 3, size, size)` and, with text, `input_ids`, `attention_mask`
            and `token_type_ids` `(batch, tokens)`.
        """
        if images is None and text is None:
            raise ValueError("AesformerProcessor needs images, text or both.")
        data = {}
        num_images = None
        if images is not None:
            data.update(self.image_processor(images, return_tensors=return_tensors))
            num_images = len(data["pixel_values"])
        if text is not None:
            per_image = self._comments_per_image(text, num_images)
            cleaned = [self.clean(c) for c in per_image]
            empty = [i for i, c in enumerate(cleaned) if not c]
            if empty:
                raise ValueError(
                    f"Images {empty} have an empty comment list. Every image of a multimodal (MIAA) batch needs "
                    "comments; rate the others without text (VIAA) — pipeline('image-aesthetics') routes each image "
                    "by itself."
                )
            data.update(
                self.tokenizer(
                    cleaned,
                    padding=padding,
                    truncation=truncation,
                    max_length=max_length,
                    return_tensors=return_tensors,
                    **kwargs,
                )
            )
        return BatchFeature(data=dict(data), tensor_type=None)

    @staticmethod
    def _comments_per_image(text, num_images: int | None) -> list:
        """Normalise `text` to one entry (a string or list of strings) per image."""
        if isinstance(text, str):
            per_image = [text]
        elif isinstance(text, Sequence) and len(text) > 0 and all(isinstance(t, str) for t in text):
            # A flat list of strings is one string per image in a batch, or one image's comments.
            per_image = list(text) if num_images is None or num_images == len(text) else [list(text)]
        else:
            per_image = list(text)
        if num_images is not None and len(per_image) != num_images:
            raise ValueError(
                f"Got {num_images} images but comments for {len(per_image)}: pass one string or list of comments "
                "per image."
            )
        return per_image

    @property
    def model_input_names(self):
        return ["pixel_values", "input_ids", "attention_mask", "token_type_ids"]


__all__ = ["AesformerProcessor", "clean_comments", "has_comments"]
