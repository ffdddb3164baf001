"""Tiny AesFormer configurations and tokenizers for tests, examples and the demo.

Nothing here downloads anything: the Swin and BERT towers are built from configs with random weights,
and the tokenizer's WordPiece vocabulary is made from a word list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from transformers import BertTokenizer

from .models.aesformer.configuration_aesformer import VARIANTS, AesformerConfig

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BASIC_WORDS = (
    "the a an is and or but very too so not it this that photo image picture shot colour colours color light "
    "dark bright sharp blurry blur soft focus noise noisy grain grainy tilted tilt horizon crop cropped "
    "composition exposure overexposed underexposed contrast flat washed out nice great lovely beautiful good "
    "bad poor boring excellent amazing love like detail details subject background framing"
).split()


def tiny_config(
    image_size: int = 64,
    embed_dim: int = 8,
    text_hidden_size: int = 32,
    vision_only: bool = False,
    vocab_size: int = 128,
    **overrides,
) -> AesformerConfig:
    """A few-thousand-parameter AesFormer that runs in milliseconds on a CPU.

    The Swin has 4 stages of one block at `image_size` pixels with 4x4 windows; its last level is `8*embed_dim`
    wide, so `embed_dim=8` with a 32-wide text tower exercises the projection (like AesFormer-B) and
    `embed_dim=4` does not (like AesFormer-T).
    """
    heads = max(1, text_hidden_size // 16)
    vision = {
        "architecture": VARIANTS["tiny"].swin,
        "model_args": {
            "embed_dim": embed_dim,
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 1, 2],
            "img_size": image_size,
            "window_size": 4,
        },
    }
    text = None
    if not vision_only:
        text = {
            "vocab_size": vocab_size,
            "hidden_size": text_hidden_size,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "intermediate_size": text_hidden_size * 2,
            "max_position_embeddings": 512,
        }
    fusion = {}
    if vision_only:
        fusion = {
            "fusion_hidden_size": text_hidden_size,
            "fusion_num_attention_heads": heads,
            "fusion_intermediate_size": text_hidden_size * 2,
        }
    params = {"vision_config": vision, "text_config": text, "head_hidden_size": 16, **fusion}
    params.update(overrides)
    return AesformerConfig(**params)


def tiny_tokenizer(corpus: Iterable[str] = (), max_vocab: int = 128) -> BertTokenizer:
    """A lower-casing BERT WordPiece tokenizer whose vocabulary is the special tokens, letters, and the most
    frequent words of `corpus` plus a basic photo-critique word list, capped at `max_vocab` entries."""
    counts: dict[str, int] = {}
    for text in corpus:
        for word in re.findall(r"[a-z]+", text.lower()):
            counts[word] = counts.get(word, 0) + 1
    letters = list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    punctuation = list(".,!?-;/&%+=0123456789")
    words = sorted(counts, key=lambda w: (-counts[w], w)) + BASIC_WORDS
    vocab: dict[str, int] = {}
    for token in SPECIAL_TOKENS + letters + punctuation + words:
        if token not in vocab and len(vocab) < max_vocab:
            vocab[token] = len(vocab)
    return BertTokenizer(vocab=vocab, do_lower_case=True)
