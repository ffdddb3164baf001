"""Attention maps: overlay of the input's size, a heatmap that follows the image, the rollout maths, the CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.commands.attention import add_parser
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer
from aesformer_hf.visualization import (
    combine_layers,
    compute_attention_map,
    image_heatmap,
    render_attention,
    top_comment_words,
)

IMAGE_SIZE = 128  # a 4x4 token grid for the tiny Swin
COMMENTS = ["lovely sharp colours, the horizon is tilted!", "too blurry"]


def _photo(seed: int, size=(96, 72)) -> Image.Image:
    array = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(array)


@pytest.fixture(scope="module")
def model_and_processor():
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=IMAGE_SIZE)).eval()
    processor = AesformerProcessor(AesformerImageProcessor(size=IMAGE_SIZE), tiny_tokenizer(COMMENTS))
    return model, processor


@pytest.mark.parametrize("comments", [None, COMMENTS], ids=["VIAA", "MIAA"])
def test_overlay_has_the_input_size(model_and_processor, comments):
    model, processor = model_and_processor
    image = _photo(0, size=(96, 72))
    overlay, attention = render_attention(image, model, processor, comments)
    assert overlay.size == image.size and overlay.mode == "RGB"
    assert attention.heatmap.shape == (4, 4)
    assert attention.heatmap.min() == 0.0 and attention.heatmap.max() == 1.0
    assert attention.mode == ("VIAA" if comments is None else "MIAA")


@pytest.mark.parametrize("comments", [None, COMMENTS], ids=["VIAA", "MIAA"])
def test_heatmap_changes_with_the_image(model_and_processor, comments):
    model, processor = model_and_processor
    first = compute_attention_map(model, processor, _photo(1), comments).heatmap
    again = compute_attention_map(model, processor, _photo(1), comments).heatmap
    other = compute_attention_map(model, processor, _photo(2), comments).heatmap
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.05


def test_miaa_reports_the_most_attended_comment_words(model_and_processor):
    model, processor = model_and_processor
    attention = compute_attention_map(model, processor, _photo(3), COMMENTS, top_k=3)
    words = [word for word, _ in attention.top_words]
    assert len(words) == 3 and len(set(words)) == 3
    comment_words = set(" ".join(COMMENTS).replace(",", " ").replace("!", " ").split())
    assert set(words) <= comment_words
    shares = [share for _, share in attention.top_words]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0 + 1e-6
    assert compute_attention_map(model, processor, _photo(3)).top_words == []


def test_vision_only_model_with_comments_is_refused():
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=64, vision_only=True)).eval()
    with pytest.raises(ValueError, match="vision-only"):
        compute_attention_map(model, AesformerImageProcessor(size=64), _photo(4), ["nice light"])
    assert compute_attention_map(model, AesformerImageProcessor(size=64), _photo(4)).mode == "VIAA"


def test_rollout_multiplies_residual_mixed_head_means():
    generator = torch.Generator().manual_seed(0)
    layers = [torch.softmax(torch.randn(1, 2, 3, 3, generator=generator), dim=-1) for _ in range(2)]
    mixed = [(layer.mean(dim=1)[0] + torch.eye(3)) / 2 for layer in layers]
    torch.testing.assert_close(combine_layers(layers, "rollout")[0], mixed[1] @ mixed[0])
    torch.testing.assert_close(combine_layers(layers, "last")[0], layers[1].mean(dim=1)[0])
    torch.testing.assert_close(combine_layers(layers)[0].sum(dim=-1), torch.ones(3))
    with pytest.raises(ValueError, match="method='mean'"):
        combine_layers(layers, "mean")
    with pytest.raises(RuntimeError, match="output_attentions=True"):
        combine_layers([None, None])


def test_viaa_heatmap_folds_the_four_levels_onto_one_grid():
    grid, levels = 2, 4
    tokens = levels * grid * grid
    attention = torch.zeros(tokens, tokens)
    # Every query looks at position (1, 0) of level 3 only: the folded map must peak there.
    attention[:, 2 * grid * grid + 1 * grid + 0] = 1.0
    heatmap = image_heatmap(attention, "VIAA", tokens)
    expected = np.zeros((grid, grid), dtype=np.float32)
    expected[1, 0] = 1.0
    np.testing.assert_array_equal(heatmap, expected)


def test_miaa_heatmap_uses_image_queries_and_image_keys_only():
    image_tokens, text_tokens = 4, 3
    attention = torch.zeros(image_tokens + text_tokens, image_tokens + text_tokens)
    attention[:image_tokens, 3] = 0.6  # image queries -> image token 3 (bottom right)
    attention[:image_tokens, 5] = 0.4  # image queries -> a text token: not part of the image map
    attention[image_tokens:, 0] = 1.0  # text queries -> image token 0: not the image head's query
    heatmap = image_heatmap(attention, "MIAA", image_tokens)
    np.testing.assert_array_equal(heatmap, np.array([[0, 0], [0, 1]], dtype=np.float32))


def test_top_comment_words_sums_word_pieces_and_skips_punctuation():
    # [CLS] sharp ##ness , sharp [SEP]
    cls_row = torch.tensor([0.1, 0.2, 0.25, 0.3, 0.1, 0.05])
    word_ids = [None, 0, 0, 1, 2, None]
    words = ["sharpness", ",", "sharp"]
    ranked = top_comment_words(cls_row, word_ids, words, top_k=5)
    assert [word for word, _ in ranked] == ["sharpness", "sharp"]
    np.testing.assert_allclose([share for _, share in ranked], [0.45 / 0.85, 0.1 / 0.85])


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="aesformer-hf")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_an_overlay_of_the_input_size(tmp_path, saved_model_dir, capsys):
    image_path = tmp_path / "photo.jpg"
    _photo(5, size=(120, 90)).save(image_path)
    output = tmp_path / "maps" / "attention.png"
    argv = ["attention", str(image_path), "--model", str(saved_model_dir), "--output", str(output)]
    assert _run_cli([*argv, "--comments", "lovely sharp colours", "--comments", "the horizon is tilted"]) == 0
    with Image.open(output) as written:
        assert written.format == "PNG" and written.size == (120, 90)
    printed = capsys.readouterr().out
    assert "mode: MIAA" in printed and "most attended comment words:" in printed

    assert _run_cli([*argv, "--method", "last"]) == 0
    assert "mode: VIAA" in capsys.readouterr().out


def test_cli_errors_name_the_bad_input(tmp_path, saved_model_dir, capsys):
    missing = tmp_path / "missing.jpg"
    assert _run_cli(["attention", str(missing), "--model", str(saved_model_dir), "--output", "a.png"]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    image_path = tmp_path / "photo.png"
    _photo(6).save(image_path)
    assert _run_cli(["attention", str(image_path), "--model", str(saved_model_dir), "--output", "a.jpg"]) == 2
    assert "must end in .png" in capsys.readouterr().err
