"""Image processor and processor: the evaluation transform against a float64 reference, image modes, comments.

The comment text is checked against a second, independent writing of the released cleaning rules
(`reference_released_text`, a character loop) on the real Photo.net cells and on hand-written cases.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aesformer_hf import AesformerImageProcessor, AesformerProcessor, has_comments, released_comment_text
from aesformer_hf.models.aesformer.image_processing_aesformer import IMAGENET_MEAN, IMAGENET_STD
from aesformer_hf.models.aesformer.processing_aesformer import clean_comment_cell, comment_text

from ...conftest import IMAGE_SIZE, random_image


def reference_pixels(image: Image.Image, size: int) -> np.ndarray:
    resized = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float64) / 255.0
    return ((resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).transpose(2, 0, 1)


def test_eval_transform_matches_float64_reference():
    processor = AesformerImageProcessor(size=IMAGE_SIZE)
    image = random_image(0, size=(100, 150))
    pixels = processor(image)["pixel_values"]
    assert pixels.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and pixels.dtype == torch.float32
    np.testing.assert_allclose(pixels[0].double().numpy(), reference_pixels(image, IMAGE_SIZE), atol=1e-5)


def test_default_size_is_224_and_round_trips(tmp_path):
    processor = AesformerImageProcessor()
    assert dict(processor.size) == {"height": 224, "width": 224}
    assert processor(random_image(1))["pixel_values"].shape == (1, 3, 224, 224)
    processor.save_pretrained(tmp_path)
    assert dict(AesformerImageProcessor.from_pretrained(tmp_path).size) == {"height": 224, "width": 224}


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "I;16", "I", "F"])
def test_image_modes_become_rgb(mode):
    processor = AesformerImageProcessor(size=IMAGE_SIZE)
    image = random_image(2)
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)
        assert converted.mode.startswith("I;16")
    elif mode == "F":
        converted = Image.fromarray(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)
    else:
        converted = image.convert(mode)
    pixels = processor(converted)["pixel_values"]
    assert pixels.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and torch.isfinite(pixels).all()
    if mode in ("L", "I;16", "F", "I"):
        # Grey in, grey out: the three channels hold the same value before normalisation.
        raw = pixels[0] * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        torch.testing.assert_close(raw[0], raw[1], atol=1e-5, rtol=0)
        reference = reference_pixels(image.convert("L"), IMAGE_SIZE)
        np.testing.assert_allclose(pixels[0].double().numpy(), reference, atol=0.05)


def test_numpy_and_torch_inputs_equal_pil():
    processor = AesformerImageProcessor(size=IMAGE_SIZE)
    image = random_image(3)
    array = np.asarray(image)
    expected = processor(image)["pixel_values"]
    torch.testing.assert_close(processor(array)["pixel_values"], expected)
    torch.testing.assert_close(processor(array.transpose(2, 0, 1))["pixel_values"], expected)  # CHW
    torch.testing.assert_close(processor(array.astype(np.float32) / 255.0)["pixel_values"], expected)
    torch.testing.assert_close(processor(array.astype(np.uint16) * 257)["pixel_values"], expected)
    torch.testing.assert_close(processor(torch.from_numpy(array).permute(2, 0, 1))["pixel_values"], expected)
    batch = processor(np.stack([array, array]))["pixel_values"]
    assert batch.shape[0] == 2


def test_corrupt_exif_does_not_lose_the_image():
    image = random_image(4)
    exif = Image.Exif()
    exif[0x0112] = 99  # invalid orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    reloaded = Image.open(io.BytesIO(buffer.getvalue()))
    assert AesformerImageProcessor(size=IMAGE_SIZE)(reloaded)["pixel_values"].shape == (
        1,
        3,
        IMAGE_SIZE,
        IMAGE_SIZE,
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 5), dtype=np.uint8), "5 channels"),
        (np.zeros((2, 3, 4, 4, 3)), "expected"),
        (np.full((8, 8, 3), np.nan, dtype=np.float32), "NaN"),
        ("not an image", "expected a PIL"),
    ],
)
def test_bad_images(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        AesformerImageProcessor(size=IMAGE_SIZE)([bad])


# -- comments ---------------------------------------------------------------------------------------

# The shared folder beside the repository (see ../shared/fixtures/SOURCES.md); absent on other machines.
SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"
PHOTONET_CSV = SHARED / "fixtures" / "photonet" / "aesmamba_photonet_test_rows_0-99.csv"
# The characters the released code replaces by a space (DESIGN §2).
SPACED = frozenset("[]()'\"*#:~")


def reference_released_text(cell: str, max_words: int = 200) -> str:
    """The released cleaning of a comment cell, written as character loops (no regular expressions)."""
    # 1. Each listed character becomes a space.
    chars = [" " if ch in SPACED else ch for ch in cell]
    # 2. The two characters backslash, n become a space (left to right, without overlaps).
    spaced, i = [], 0
    while i < len(chars):
        if chars[i] == "\\" and i + 1 < len(chars) and chars[i + 1] == "n":
            spaced.append(" ")
            i += 2
        else:
            spaced.append(chars[i])
            i += 1
    # 3. A run of two or more whitespace characters becomes one space; a lone one stays as it is.
    collapsed, run = [], []
    for ch in [*spaced, None]:
        if ch is not None and ch.isspace():
            run.append(ch)
            continue
        collapsed.extend([" "] if len(run) >= 2 else run)
        run = []
        if ch is not None:
            collapsed.append(ch)
    # 4. Spaces (only spaces) off both ends.
    start, end = 0, len(collapsed)
    while start < end and collapsed[start] == " ":
        start += 1
    while end > start and collapsed[end - 1] == " ":
        end -= 1
    text = "".join(collapsed[start:end])
    # 5. Cut just before the max_words-th space: max_words space-separated words are left.
    if max_words == 0:
        return ""
    spaces = 0
    for index, ch in enumerate(text):
        if ch == " ":
            spaces += 1
            if spaces == max_words:
                return text[:index]
    return text


def photonet_cells() -> list[str]:
    if not PHOTONET_CSV.is_file():
        pytest.skip(f"the Photo.net fixture is not on this machine: {PHOTONET_CSV}")
    with PHOTONET_CSV.open(newline="", encoding="utf-8") as handle:
        return [row["comment"] for row in csv.DictReader(handle)]


def test_released_text_matches_the_reference_on_every_photonet_row(processor):
    cells = photonet_cells()
    assert len(cells) == 100
    cut = 0
    for cell in cells:
        comments = ast.literal_eval(cell)
        assert isinstance(comments, list) and repr(comments) == cell  # the cell is repr of the list
        expected = reference_released_text(cell)
        assert released_comment_text(comments) == expected
        assert processor.clean(comments) == expected
        assert clean_comment_cell(cell) == expected
        assert " , " in expected or len(comments) == 1
        cut += len(reference_released_text(cell, max_words=10**6).split(" ")) > 200
    assert cut > 0  # some rows run past 200 words, so the cut is exercised


def test_processor_tokenises_the_released_text_of_photonet_rows(processor, tokenizer):
    cells = photonet_cells()[:3]
    batch = processor(images=[random_image(i) for i in range(3)], text=[ast.literal_eval(c) for c in cells])
    expected = tokenizer([reference_released_text(c) for c in cells], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == expected["input_ids"].tolist()


@pytest.mark.parametrize(
    ("comments", "text"),
    [
        (["don't"], "don t"),  # replaced by a space, not removed
        (["lovely light", "tilted"], "lovely light , tilted"),  # the list's separators stay
        (["lovely light\r\n", "tilted"], "lovely light\\r , tilted"),  # the escape \r survives, \n does not
        (['Nice "diptych", isn\'t it?'], "Nice diptych , isn\\ t it?"),  # repr escapes the apostrophe
        (["[wow](sic)*so*#1:~ok~"], "wow sic so 1 ok"),  # each becomes a space, runs collapse
        (["{braces} stay; Case Stays!"], "{braces} stay; Case Stays!"),
        # repr escapes a tab; of a typed backslash-n (repr: two backslashes, n) one backslash is left.
        (["a\tb", "c\\nd"], "a\\tb , c\\ d"),
        ("one string's", "one string s"),  # one string is one comment
        ([], ""),
        ([""], ""),
        (None, ""),
        (("a", "b"), "a , b"),
    ],
)
def test_released_text_hand_written_cases(comments, text):
    assert released_comment_text(comments) == text
    if comments is not None:
        items = [comments] if isinstance(comments, str) else list(comments)
        assert reference_released_text(repr(items)) == text


def test_released_text_cuts_at_200_space_separated_words():
    long = ["w"] * 300  # "w , w , ...": 599 words, the commas count
    assert released_comment_text(long) == " ".join(["w", ","] * 100)
    assert released_comment_text(["word " * 300]).split(" ") == ["word"] * 200
    assert (
        released_comment_text(["a b c d"], max_words=3)
        == "a b c"
        == reference_released_text("['a b c d']", 3)
    )
    assert released_comment_text(["a b c"], max_words=3) == "a b c"
    assert comment_text(["a b c d"], "released", max_words=2) == "a b"
    with pytest.raises(ValueError, match="max_words"):
        released_comment_text(["a"], max_words=-1)


def test_has_comments_means_some_non_blank_comment_with_text():
    for empty in (None, [], [""], ["  "], ["", ""], ["\r\n"], ["\r\n", "\t "], ["()", "*"], "   "):
        assert not has_comments(empty), empty
    # Text, but none of a comment's own: has_comments says no.
    assert released_comment_text(["", ""]) == "," and released_comment_text(["()", "*"]) == ","
    for some in (["ok"], ["", "ok"], "ok", ["\r\n", "nice\r\n"]):
        assert has_comments(some), some
    with pytest.raises(TypeError, match="strings"):
        released_comment_text(["ok", 3])


def test_comment_style_is_checked():
    with pytest.raises(ValueError, match="comment_style"):
        comment_text(["ok"], "plain")
    with pytest.raises(ValueError, match="comment_style"):
        AesformerProcessor(AesformerImageProcessor(size=IMAGE_SIZE), None, comment_style="plain")


def test_comment_settings_are_saved_and_read_back(processor, tmp_path):
    custom = AesformerProcessor(processor.image_processor, processor.tokenizer, max_comment_words=3)
    assert custom.comment_style == "released"
    custom.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["comment_style"] == "released" and saved["max_comment_words"] == 3
    reloaded = AesformerProcessor.from_pretrained(tmp_path)
    assert reloaded.comment_style == "released" and reloaded.max_comment_words == 3
    assert reloaded.clean(["a b", "c d"]) == "a b ,"
    # The value is read from the file: an unknown recipe there is refused, a config without one is "released".
    (tmp_path / "processor_config.json").write_text(json.dumps({**saved, "comment_style": "lower-cased"}))
    with pytest.raises(ValueError, match="comment_style"):
        AesformerProcessor.from_pretrained(tmp_path)
    del saved["comment_style"]
    (tmp_path / "processor_config.json").write_text(json.dumps(saved))
    assert AesformerProcessor.from_pretrained(tmp_path).comment_style == "released"


def test_processor_outputs_and_tokenises_cleaned_comments(processor, tokenizer):
    images = [random_image(5), random_image(6)]
    batch = processor(images=images, text=[["too blurry", "(tilted)"], "lovely sharp colours"])
    assert set(batch) >= {"pixel_values", "input_ids", "attention_mask"}
    assert batch["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert batch["input_ids"].shape[0] == 2
    expected = tokenizer("too blurry , tilted")["input_ids"]
    assert batch["input_ids"][0, : len(expected)].tolist() == expected
    # One image, several comments.
    single = processor(images=images[0], text=["too blurry", "tilted"])
    assert single["input_ids"].shape[0] == 1


def test_processor_rejects_mismatched_and_empty_comments(processor):
    images = [random_image(5), random_image(6)]
    with pytest.raises(ValueError, match="2 images but comments for 3"):
        processor(images=images, text=[["a"], ["b"], ["c"]])
    with pytest.raises(ValueError, match=r"Images \[1\] have no comments"):
        processor(images=images, text=[["too blurry"], []])
    with pytest.raises(ValueError, match=r"Images \[0\] have no comments"):
        processor(images=images, text=[["  ", "\r\n"], ["too blurry"]])


def test_processor_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    reloaded = AesformerProcessor.from_pretrained(tmp_path)
    image = random_image(7)
    a = processor(images=image, text="too blurry")
    b = reloaded(images=image, text="too blurry")
    torch.testing.assert_close(a["pixel_values"], b["pixel_values"])
    assert a["input_ids"].tolist() == b["input_ids"].tolist()
