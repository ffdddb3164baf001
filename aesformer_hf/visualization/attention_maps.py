"""Attention maps: where AesFormer's pooled prediction looks, drawn on the image as a heatmap.

**Which attention.** The image prediction is a head on the *mean* of the fused image tokens, so the attention of the
pooled output onto a token is the mean, over the image-token queries, of their attention rows. The fusion layers'
attention (heads averaged) is combined over layers by **attention rollout** (Abnar & Zuidema, 2020): each layer's
matrix is mixed half-and-half with the identity, for the residual connection around the attention, and the layers
are multiplied, so that entry (i, j) says how much fused token i draws on fusion input token j. `method="last"`
uses the last layer's attention alone instead.

**Which tokens.** The fusion layers see Swin tokens on the last level's grid (7x7 at 224 px), so the map has that
resolution; what happens inside the Swin and BERT towers is not traced. In VIAA the 4 levels x grid² tokens are
folded into one grid by averaging over the levels. In MIAA the heatmap uses the image-token queries (the image head)
and their attention onto the image tokens; the comment words are ranked by the attention of the [CLS] token (the
text head's query) onto the comment tokens, summed over each word's word pieces.

The model's forward computes the attention eagerly when asked for it (`output_attentions=True`: fused kernels return
no probabilities); only this path pays for that. The overlay uses matplotlib's colormaps only: no figure, no GUI
backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from aesformer_hf.models.aesformer.configuration_aesformer import MIAA, VIAA
from aesformer_hf.models.aesformer.image_utils_aesformer import load_image
from aesformer_hf.models.aesformer.processing_aesformer import (
    MAX_COMMENT_WORDS,
    MAX_TEXT_TOKENS,
    RELEASED_COMMENT_STYLE,
    comment_text,
    has_comments,
)

ROLLOUT = "rollout"
LAST_LAYER = "last"
METHODS = (ROLLOUT, LAST_LAYER)
VIAA_LEVELS = 4  # L1..L4, each grid x grid tokens, in this order (see AesformerModel.get_swin_levels)


@dataclass
class AttentionMap:
    """The attention of one image's pooled prediction.

    Attributes:
        heatmap: `(grid, grid)` float32 in [0, 1] (min-max scaled; all zeros when the attention is uniform); row 0
            is the top of the image.
        mode: `"MIAA"` (image + comments) or `"VIAA"` (image only).
        score: the predicted mean score, on the model's scale (1..10 on AVA).
        label: `"high"` or `"low"`.
        top_words: MIAA only: the most attended comment words, `(word, share)` by decreasing share, where share is
            the word's part of the [CLS] query's attention onto comment words (0..1).
    """

    heatmap: np.ndarray
    mode: str
    score: float
    label: str
    top_words: list[tuple[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# From attention probabilities to token weights
# --------------------------------------------------------------------------------------------------
def combine_layers(attentions: Sequence[torch.Tensor], method: str = ROLLOUT) -> torch.Tensor:
    """Fusion attention `(batch, heads, tokens, tokens)` per layer -> one `(batch, tokens, tokens)` matrix.

    Heads are averaged. `"rollout"`: `R = Â_L ... Â_1` with `Â_l = (A_l + I) / 2` (rows still sum to 1);
    `"last"`: the last layer's `A_L`.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not supported; expected one of {list(METHODS)}.")
    if not attentions or any(a is None for a in attentions):
        raise RuntimeError(
            "The model returned no attention probabilities: call it with output_attentions=True, which makes the "
            "fusion layers compute their attention eagerly."
        )
    per_layer = [a.float().mean(dim=1) for a in attentions]
    if method == LAST_LAYER:
        return per_layer[-1]
    identity = torch.eye(per_layer[0].shape[-1], device=per_layer[0].device)
    rollout = identity.expand_as(per_layer[0])
    for attention in per_layer:
        rollout = ((attention + identity) / 2.0) @ rollout
    return rollout


def _square_grid(num_tokens: int, what: str) -> int:
    grid = math.isqrt(num_tokens)
    if grid * grid != num_tokens:
        raise ValueError(f"{what}: {num_tokens} tokens do not form a square grid.")
    return grid


def image_heatmap(token_to_token: torch.Tensor, mode: str, num_image_tokens: int) -> np.ndarray:
    """`(tokens, tokens)` combined attention of one image -> `(grid, grid)` weights, min-max scaled to [0, 1].

    The pooled output's attention is the mean of the image-token query rows; its image-token columns are laid out
    on the grid (VIAA: `VIAA_LEVELS` levels of grid x grid tokens, averaged over the levels).
    """
    pooled = token_to_token[:num_image_tokens].mean(dim=0)[:num_image_tokens]
    if mode == VIAA:
        per_level = _square_grid(num_image_tokens // VIAA_LEVELS, "each VIAA level")
        grid = pooled.reshape(VIAA_LEVELS, per_level, per_level).mean(dim=0)
    else:
        side = _square_grid(num_image_tokens, "MIAA image tokens")
        grid = pooled.reshape(side, side)
    grid = grid.cpu().numpy().astype(np.float32)
    spread = float(grid.max() - grid.min())
    return (grid - grid.min()) / spread if spread > 0 else np.zeros_like(grid)


def top_comment_words(
    cls_row: torch.Tensor, word_ids: Sequence[int | None], words: Sequence[str], top_k: int
) -> list[tuple[str, float]]:
    """The `top_k` comment words the [CLS] query attends to most.

    Args:
        cls_row: `(text_tokens,)` attention of the [CLS] token onto the comment tokens.
        word_ids: for each comment token, the index of its word in `words` (None for [CLS], [SEP], padding).
        words: the comment's words.

    Each occurrence of a word gets the sum over its word pieces; a word that occurs several times is ranked by its
    strongest occurrence; words without a letter or digit (punctuation) are left out. Shares are relative to the
    attention onto all words, so they are in 0..1.
    """
    per_occurrence: dict[int, float] = {}
    for weight, word_id in zip(cls_row.tolist(), word_ids):
        if word_id is not None:
            per_occurrence[word_id] = per_occurrence.get(word_id, 0.0) + weight
    total = sum(per_occurrence.values())
    best: dict[str, tuple[str, float]] = {}
    for word_id, weight in per_occurrence.items():
        word = words[word_id]
        if not any(ch.isalnum() for ch in word):
            continue
        share = weight / total if total > 0 else 0.0
        key = word.lower()
        if key not in best or share > best[key][1]:
            best[key] = (word, share)
    return sorted(best.values(), key=lambda item: -item[1])[: max(top_k, 0)]


# --------------------------------------------------------------------------------------------------
# Running the model
# --------------------------------------------------------------------------------------------------
def _split_processor(processor):
    """An `AesformerProcessor` -> (image processor, tokenizer); an image processor alone -> (it, None)."""
    if hasattr(processor, "image_processor"):
        return processor.image_processor, getattr(processor, "tokenizer", None)
    return processor, None


def _tokenize_with_words(tokenizer, text: str):
    """Tokenise like the processor; also return each token's word index and the words (from the fast tokenizer's
    offsets, or from WordPiece's `##` continuation marks for a slow one)."""
    if getattr(tokenizer, "is_fast", False):
        encoding = tokenizer(
            text,
            truncation=True,
            max_length=MAX_TEXT_TOKENS,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = encoding.pop("offset_mapping")[0].tolist()
        word_ids = encoding.word_ids(0)
        spans: dict[int, list[int]] = {}
        for word_id, (start, end) in zip(word_ids, offsets):
            if word_id is not None:
                span = spans.setdefault(word_id, [start, end])
                span[0], span[1] = min(span[0], start), max(span[1], end)
        words = [
            text[spans[i][0] : spans[i][1]] if i in spans else "" for i in range(max(spans, default=-1) + 1)
        ]
        return encoding, word_ids, words
    encoding = tokenizer(text, truncation=True, max_length=MAX_TEXT_TOKENS, return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist())
    special = set(tokenizer.all_special_tokens)
    word_ids, words = [], []
    for token in tokens:
        if token in special:
            word_ids.append(None)
        elif token.startswith("##") and words:
            words[-1] += token[2:]
            word_ids.append(len(words) - 1)
        else:
            words.append(token)
            word_ids.append(len(words) - 1)
    return encoding, word_ids, words


def compute_attention_map(
    model,
    processor,
    image,
    comments: str | Sequence[str] | None = None,
    *,
    method: str = ROLLOUT,
    top_k: int = 5,
) -> AttentionMap:
    """The fusion attention of `model`'s pooled prediction for one image (see the module docstring).

    Args:
        model: an `AesformerForAesthetic`.
        processor: its `AesformerProcessor` (or, for a vision-only model, its `AesformerImageProcessor`).
        image: any source `load_image` reads (a path, bytes, PIL image, numpy array, torch tensor, ...).
        comments: the image's comments (one string or a list); with any non-blank comment (`has_comments`) -> MIAA.
        method: `"rollout"` (all fusion layers) or `"last"` (the last fusion layer).
        top_k: how many comment words to return in MIAA.
    """
    image_processor, tokenizer = _split_processor(processor)
    inputs = {"pixel_values": image_processor(load_image(image), return_tensors="pt")["pixel_values"]}
    max_words = getattr(processor, "max_comment_words", MAX_COMMENT_WORDS)
    style = getattr(processor, "comment_style", RELEASED_COMMENT_STYLE)
    cleaned = comment_text(comments, style, max_words) if has_comments(comments, style) else ""
    word_ids, words = [], []
    if cleaned:
        if tokenizer is None or model.config.is_vision_only:
            raise ValueError(
                "Comments were given, but this model or processor is vision-only (no comment tower or tokenizer): "
                "leave out the comments for a VIAA map, or load a multimodal AesFormer."
            )
        encoding, word_ids, words = _tokenize_with_words(tokenizer, cleaned)
        inputs.update(
            {k: v for k, v in encoding.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        )
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(**inputs, output_attentions=True, return_dict=True)
    finally:
        model.train(was_training)

    token_to_token = combine_layers(outputs.attentions, method)[0]
    num_tokens = token_to_token.shape[-1]
    mode = MIAA if cleaned else VIAA
    num_image_tokens = num_tokens - inputs["input_ids"].shape[1] if cleaned else num_tokens
    top_words = []
    if cleaned:
        cls_row = token_to_token[num_image_tokens, num_image_tokens:]
        top_words = top_comment_words(cls_row, word_ids, words, top_k)
    label_index = int(outputs.label[0])
    return AttentionMap(
        heatmap=image_heatmap(token_to_token, mode, num_image_tokens),
        mode=mode,
        score=float(outputs.score[0]),
        label=model.config.id2label.get(label_index, str(label_index)),
        top_words=top_words,
    )


# --------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------
def overlay_heatmap(
    image: Image.Image, heatmap: np.ndarray, colormap: str = "jet", alpha: float = 0.45
) -> Image.Image:
    """Blend `heatmap` `(grid, grid)` in [0, 1], upsampled bilinearly, onto `image`; returns RGB of the image's size."""
    from aesformer_hf.utils.optional import require

    require("matplotlib", purpose="The attention heatmap (its colormaps)")
    import matplotlib  # only its colormaps: no figure, no backend

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} must be within [0, 1] (0: the image only, 1: the heatmap only).")
    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError as error:
        raise ValueError(
            f"colormap={colormap!r} is not a matplotlib colormap (e.g. 'jet', 'inferno')."
        ) from error
    rgb = load_image(image)
    upsampled = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F").resize(
        rgb.size, Image.BILINEAR
    )
    colours = cmap(np.clip(np.asarray(upsampled), 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * np.asarray(rgb, dtype=np.float32) + alpha * colours
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def draw_top_words(image: Image.Image, top_words: Sequence[tuple[str, float]]) -> Image.Image:
    """Write the most attended words with their shares in a dark box in the top-left corner (size unchanged)."""
    if not top_words:
        return image
    canvas = image.convert("RGBA")
    font_size = max(10, canvas.height // 28)
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        font = ImageFont.load_default()
    lines = [f"{word}  {share:.2f}" for word, share in top_words]
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    boxes = [draw.textbbox((0, 0), line, font=font) for line in lines]
    line_height = max(box[3] - box[1] for box in boxes) + 2
    width = max(box[2] - box[0] for box in boxes) + 8
    draw.rectangle((0, 0, width, line_height * len(lines) + 6), fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        draw.text((4, 3 + i * line_height), line, fill=(255, 255, 255, 255), font=font)
    return Image.alpha_composite(canvas, layer).convert("RGB")


def render_attention(
    image,
    model,
    processor,
    comments: str | Sequence[str] | None = None,
    *,
    method: str = ROLLOUT,
    top_k: int = 5,
    colormap: str = "jet",
    alpha: float = 0.45,
) -> tuple[Image.Image, AttentionMap]:
    """The heatmap overlay of `image` (its own size; in MIAA with the `top_k` words written on it) and the map."""
    original = load_image(image)
    attention = compute_attention_map(model, processor, original, comments, method=method, top_k=top_k)
    overlay = overlay_heatmap(original, attention.heatmap, colormap=colormap, alpha=alpha)
    return draw_top_words(overlay, attention.top_words), attention


__all__ = [
    "AttentionMap",
    "METHODS",
    "combine_layers",
    "compute_attention_map",
    "draw_top_words",
    "image_heatmap",
    "overlay_heatmap",
    "render_attention",
    "top_comment_words",
]
