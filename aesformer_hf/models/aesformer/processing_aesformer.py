"""AesFormer processor: the image processor plus the BERT tokenizer for the users' comments.

The comment text is the one the released models were trained on. The released training code
(`AVA_Comment_Dataset_bert.pre_caption` in the authors' `dataset.py`) read each image's comment cell from the
authors' CSV, which is Python's `repr` of the image's list of comments (`['lovely light\\r\\n', 'tilted']`), and
cleaned that string, in this order:

1. each of `[ ] ( ) ' " * # : ~` is replaced by a space (so "don't" becomes "don t");
2. a literal backslash-n (the two characters `\\` and `n`) becomes a space;
3. every run of two or more whitespace characters becomes one space;
4. spaces are stripped from both ends;
5. the text is cut to its first 200 space-separated words.

Nothing is lower-cased (the comment tower is cased BERT). So the comments stay separated by " , ", and the
`\\r` of a comment's CRLF survives as the two characters backslash-r (`lovely light\\r , tilted`).

[`released_comment_text`] rebuilds that text from a list of comments as `repr(list(comments))` cleaned by
[`clean_comment_cell`]; it is the released text exactly when the list is the authors' cell parsed with
`ast.literal_eval` (for the Photo.net CSV, `repr` of every parsed cell gives the cell back), which is why the
dataset builders store the comment lists as parsed. The processor's `comment_style` (saved in
`processor_config.json`) names the recipe; `"released"` is the only one. The text is then tokenised with
truncation to 512 tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

MAX_COMMENT_WORDS = 200
MAX_TEXT_TOKENS = 512
RELEASED_COMMENT_STYLE = "released"
# A future recipe (a new training run on other text) gets its own name here; a saved processor says which one
# its model was trained on.
COMMENT_STYLES = (RELEASED_COMMENT_STYLE,)
# Each one replaced by one space, as the released code's character class `[ ( ' " ( ) * # : ~ ) ]` does.
SPACED_CHARACTERS = "[]()'\"*#:~"
_SPACED_CHARACTERS = re.compile("[" + re.escape(SPACED_CHARACTERS) + "]")
_WHITESPACE_RUNS = re.compile(r"\s{2,}")


def _comment_list(comments: str | Sequence[str] | None) -> list[str]:
    """One image's comments as a list: `None` is no comments, a single string is a one-comment list."""
    if comments is None:
        return []
    if isinstance(comments, str):
        return [comments]
    items = list(comments)
    if not all(isinstance(c, str) for c in items):
        kinds = sorted({type(c).__name__ for c in items if not isinstance(c, str)})
        raise TypeError(f"Comments must be strings; got {', '.join(kinds)} in {items[:3]!r}...")
    return items


def clean_comment_cell(cell: str, max_words: int = MAX_COMMENT_WORDS) -> str:
    """The released cleaning of one comment cell of the authors' CSV (the steps of the module docstring).

    Args:
        cell: the cell as stored, i.e. the `repr` of a list of comments.
        max_words: keep at most this many space-separated words.
    """
    if max_words < 0:
        raise ValueError(f"max_words must be >= 0, got {max_words}")
    text = _SPACED_CHARACTERS.sub(" ", cell)
    text = text.replace("\\n", " ")
    text = _WHITESPACE_RUNS.sub(" ", text)
    text = text.strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


def released_comment_text(comments: str | Sequence[str] | None, max_words: int = MAX_COMMENT_WORDS) -> str:
    """The text the released models read for one image's comments: `clean_comment_cell(repr(list(comments)))`.

    Args:
        comments: the image's comments as a list (or tuple) of strings, stored as parsed from the authors' cell;
            a single string is one comment (the list `[comments]`); `None` or `[]` give `""`.
        max_words: keep at most this many space-separated words (200 in the released code).

    `["lovely light\\r\\n", "don't (sic)"]` gives `"lovely light\\\\r , don t sic"`: the items are joined by " , "
    and the CR of a CRLF survives as the two characters backslash-r, as in the released training text.
    """
    return clean_comment_cell(repr(_comment_list(comments)), max_words)


def _check_comment_style(style: str) -> None:
    if style not in COMMENT_STYLES:
        raise ValueError(f"Unknown comment_style {style!r}; expected one of {COMMENT_STYLES}.")


def comment_text(
    comments: str | Sequence[str] | None,
    style: str = RELEASED_COMMENT_STYLE,
    max_words: int = MAX_COMMENT_WORDS,
) -> str:
    """One image's comments as the text given to the tokenizer under the recipe `style` (see `COMMENT_STYLES`)."""
    _check_comment_style(style)
    return released_comment_text(comments, max_words)


def has_comments(comments: str | Sequence[str] | None, style: str = RELEASED_COMMENT_STYLE) -> bool:
    """True when an image can be rated with its comments (MIAA).

    An image has comments when at least one of them holds a character that is neither whitespace nor one of the
    characters cleaning replaces by a space (`[ ] ( ) ' " * # : ~`); its cleaned text is then never empty. So
    `None`, `[]`, `[""]`, `["  "]` and `["()", "*"]` are no comments, nor is `["\\r\\n", "\\t"]`, although the
    released text of those lists is not empty: the separator `,` and escape marks such as backslash-r.
    """
    _check_comment_style(style)
    # No need to clean: a comment with a character of its own keeps it through the cleaning (see above).
    return any(_has_own_text(c) for c in _comment_list(comments))


def _has_own_text(comment: str) -> bool:
    return any(not ch.isspace() and ch not in SPACED_CHARACTERS for ch in comment)


class AesformerProcessor(ProcessorMixin):
    r"""
    Prepares images and comments for [`AesformerForAesthetic`].

    Args:
        image_processor ([`AesformerImageProcessor`]): the image transform.
        tokenizer (a BERT tokenizer): tokenises the cleaned comments.
        max_comment_words (`int`, defaults to 200): words kept per image before tokenising.
        comment_style (`str`, defaults to `"released"`): how one image's comments become text (see the module
            docstring and [`released_comment_text`]); `"released"`, the recipe of the released training code, is
            the only one. Saved in `processor_config.json`; a config saved without it reads as `"released"`.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        max_comment_words: int = MAX_COMMENT_WORDS,
        comment_style: str = RELEASED_COMMENT_STYLE,
        **kwargs,
    ):
        # Both are plain (not keyword-only) parameters and attributes of the same name: that is what
        # ProcessorMixin.to_dict saves and from_pretrained passes back.
        _check_comment_style(comment_style)
        self.max_comment_words = max_comment_words
        self.comment_style = comment_style
        super().__init__(image_processor, tokenizer)

    def clean(self, comments) -> str:
        """One image's comments (a list of strings, or one string) as the text given to the tokenizer."""
        return comment_text(comments, self.comment_style, self.max_comment_words)

    def has_comments(self, comments) -> bool:
        """True when the image can go through the multimodal path (see [`has_comments`])."""
        return has_comments(comments, self.comment_style)

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
            empty = [i for i, c in enumerate(per_image) if not self.has_comments(c)]
            if empty:
                raise ValueError(
                    f"Images {empty} have no comments (an empty list, or only blank comments). Every image of a "
                    "multimodal (MIAA) batch needs "
                    "comments; rate the others without text (VIAA) — pipeline('image-aesthetics') routes each image "
                    "by itself."
                )
            cleaned = [self.clean(c) for c in per_image]
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


__all__ = [
    "AesformerProcessor",
    "COMMENT_STYLES",
    "clean_comment_cell",
    "comment_text",
    "has_comments",
    "released_comment_text",
]
