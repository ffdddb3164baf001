"""pipeline("image-aesthetics") on transformers' Pipeline machinery: streaming, workers, errors, routes, fast decode."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import pipeline
from transformers.pipelines.pt_utils import KeyDataset

from aesformer_hf.models.aesformer.image_utils_aesformer import ImageLoadError

from ...conftest import random_image
from .test_image_loading import FORMATS, _truncated_jpeg

COMMENTS = [["too blurry", "tilted"], None, "lovely sharp colours and a very long comment " * 3, [], "nice"]


@pytest.fixture(scope="module")
def scorer(saved_model_dir):
    return pipeline("image-aesthetics", model=str(saved_model_dir))


@pytest.fixture(scope="module")
def images():
    return [random_image(i) for i in range(len(COMMENTS))]


@pytest.fixture(scope="module")
def one_by_one(scorer, images):
    return [scorer(image, comments=comment) for image, comment in zip(images, COMMENTS)]


def _assert_same(results, expected):
    assert len(results) == len(expected)
    for result, reference in zip(results, expected):
        assert result["mode"] == reference["mode"] and result["label"] == reference["label"]
        assert result["score"] == pytest.approx(reference["score"], abs=1e-5)
        np.testing.assert_allclose(result["distribution"], reference["distribution"], atol=1e-5)


def test_a_generator_streams_in_order(scorer, images, one_by_one):
    consumed = []

    def items():
        for i, (image, comment) in enumerate(zip(images, COMMENTS)):
            consumed.append(i)
            yield {"image": image, "comments": comment}

    results = scorer(items(), batch_size=2)
    assert not isinstance(results, (list, dict))
    first = next(results)
    assert len(consumed) < len(images)  # the first result came before the input was exhausted
    _assert_same([first, *results], one_by_one)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8])
def test_mixed_modes_in_one_batch_equal_one_by_one(scorer, images, one_by_one, batch_size):
    _assert_same(scorer(images, comments=COMMENTS, batch_size=batch_size), one_by_one)
    pairs = ((image, comment) for image, comment in zip(images, COMMENTS))
    _assert_same(list(scorer(pairs, batch_size=batch_size)), one_by_one)


def test_datasets_stream(scorer, images, one_by_one, tmp_path):
    import datasets

    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        image.save(paths[-1])
    comments = [[c] if isinstance(c, str) else (c or []) for c in COMMENTS]
    dataset = datasets.Dataset.from_dict({"image": paths, "comments": comments}).cast_column(
        "image", datasets.Image()
    )
    streamed = scorer(dataset, batch_size=2)
    assert not isinstance(streamed, list)
    _assert_same(list(streamed), one_by_one)
    _assert_same(list(scorer(dataset.to_iterable_dataset(), batch_size=3)), one_by_one)
    vision = [scorer(image) for image in images]
    _assert_same(list(scorer(KeyDataset(dataset, "image"), batch_size=2)), vision)
    undecoded = dataset.cast_column("image", datasets.Image(decode=False))
    _assert_same(list(scorer(undecoded, batch_size=4)), one_by_one)


def test_a_list_gives_a_list_and_one_image_a_dict(scorer, images):
    assert isinstance(scorer(images[:2]), list) and isinstance(scorer(images[0]), dict)
    assert scorer([]) == []
    assert isinstance(scorer({"image": images[0], "comments": ["nice"]}), dict)


class _RecordingFile(io.BytesIO):
    """A file object that notes which process reads it."""

    def __init__(self, data: bytes, log: Path):
        super().__init__(data)
        self.log = log

    def read(self, *args):
        with open(self.log, "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().read(*args)


def test_num_workers_decode_in_worker_processes(scorer, images, one_by_one, tmp_path):
    log = tmp_path / "pids.txt"
    files = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        files.append(_RecordingFile(buffer.getvalue(), log))
    results = scorer(files, comments=COMMENTS, batch_size=2, num_workers=2)
    _assert_same(results, one_by_one)
    pids = {int(line) for line in log.read_text().split()}
    assert pids and os.getpid() not in pids


def test_unknown_keyword_arguments_are_refused(scorer, images, saved_model_dir):
    with pytest.raises(TypeError, match="top_k"):
        scorer(images[0], top_k=3)
    with pytest.raises(TypeError, match="batchsize"):
        scorer(images, batchsize=2)
    with pytest.raises(TypeError, match="top_k"):
        pipeline("image-aesthetics", model=str(saved_model_dir), top_k=3)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_batch_size_must_be_positive(scorer, images, saved_model_dir, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        scorer(images, batch_size=batch_size)
    with pytest.raises(ValueError, match="batch_size"):  # at construction, not at the first call
        pipeline("image-aesthetics", model=str(saved_model_dir), batch_size=batch_size)
    with pytest.raises(ValueError, match="num_workers"):
        pipeline("image-aesthetics", model=str(saved_model_dir), num_workers=-1)


def test_on_error_skip_names_the_file_and_rates_the_others(scorer, images, tmp_path):
    broken = tmp_path / "broken.jpg"
    _truncated_jpeg(broken)
    missing = tmp_path / "missing.jpg"
    good = tmp_path / "good.png"
    images[0].save(good)
    inputs = [str(good), str(broken), images[1], missing, b"not an image"]
    for batch_size, num_workers in [(1, 0), (2, 0), (3, 1)]:
        results = scorer(inputs, on_error="skip", batch_size=batch_size, num_workers=num_workers)
        assert [set(r) for r in results] == [{"score", "distribution", "label", "mode"}, {"error"}] + [
            {"score", "distribution", "label", "mode"},
            {"error"},
            {"error"},
        ]
        assert results[1]["error"].startswith(f"{broken}: cannot decode image")
        assert results[3]["error"] == f"{missing}: no such file"
        assert results[4]["error"].startswith("<bytes, 12 bytes>: not an image file")
        _assert_same([results[0], results[2]], [scorer(images[0]), scorer(images[1])])
    assert scorer(str(missing), on_error="skip") == {"error": f"{missing}: no such file"}


@pytest.mark.parametrize("num_workers", [0, 1])
def test_on_error_raise_names_the_file(scorer, images, tmp_path, num_workers):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(ImageLoadError, match=f"^{missing}: no such file"):
        scorer([images[0], str(missing)], batch_size=2, num_workers=num_workers)
    with pytest.raises(ImageLoadError, match=f"^{missing}: no such file"):
        scorer(str(missing))
    results = scorer((x for x in [images[0], str(missing), images[1]]), on_error="raise")
    assert "score" in next(results)
    with pytest.raises(ImageLoadError, match=f"^{missing}"):
        next(results)
    with pytest.raises(ValueError, match="on_error"):
        scorer(images[0], on_error="ignore")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_route_gives_the_same_score(scorer, tmp_path, name):
    import datasets

    path = tmp_path / name
    FORMATS[name](path)
    data = path.read_bytes()
    dataset = datasets.Dataset.from_dict({"image": [str(path)]}).cast_column("image", datasets.Image())
    routes = [str(path), path, Image.open(path), data, io.BytesIO(data), {"bytes": data, "path": None}]
    results = scorer(routes, batch_size=3) + list(scorer(dataset))
    for result in results[1:]:
        assert result["score"] == pytest.approx(results[0]["score"], abs=1e-6)
        np.testing.assert_allclose(result["distribution"], results[0]["distribution"], atol=1e-6)


def test_fast_decode(scorer, saved_model_dir, tmp_path):
    large = tmp_path / "large.jpg"
    random_image(3, size=(60, 80)).resize((1600, 1200), Image.BICUBIC).save(large, quality=90)
    small = tmp_path / "small.jpg"
    random_image(4).save(small)
    exact, fast = scorer(str(large)), scorer(str(large), fast_decode=True)
    assert fast["score"] == pytest.approx(exact["score"], abs=0.05)
    assert scorer.preprocess(str(large), fast_decode=True)["pixel_values"].shape == (1, 3, 64, 64)
    assert scorer(str(small), fast_decode=True) == scorer(str(small))  # too small to draft: unchanged
    drafted = []
    from aesformer_hf.models.aesformer import pipeline_aesformer

    original = pipeline_aesformer.load_image

    def spy(source, **kwargs):
        drafted.append(kwargs.get("draft_size"))
        return original(source, **kwargs)

    pipeline_aesformer.load_image = spy
    try:
        scorer(str(large), fast_decode=True)
        pipeline("image-aesthetics", model=str(saved_model_dir), fast_decode=True)(str(large))
        scorer(str(large))
    finally:
        pipeline_aesformer.load_image = original
    assert drafted == [(128, 128), (128, 128), None]  # twice the 64-pixel model input
    with pytest.raises(TypeError, match="fast_decode"):
        scorer(str(large), fast_decode="yes")


def test_a_decoding_dataset_with_unreadable_files_is_skipped_not_fatal(scorer, images, tmp_path):
    """A `datasets` Image column decodes rows itself: the pipeline leaves the files encoded for its own loader,
    so an unreadable one becomes an error row (not a crash in the DataLoader) and fast decode reaches the JPEG."""
    import datasets

    good = tmp_path / "good.png"
    images[0].save(good)
    broken = tmp_path / "broken.jpg"
    _truncated_jpeg(broken)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    large = tmp_path / "large.jpg"
    random_image(3, size=(60, 80)).resize((1600, 1200), Image.BICUBIC).save(large, quality=90)
    paths = [str(good), str(broken), str(garbage), str(large)]
    dataset = datasets.Dataset.from_dict({"image": paths}).cast_column("image", datasets.Image())
    expected = scorer(paths, on_error="skip", fast_decode=True)  # the path route: the reference
    assert [set(r) for r in expected] == [
        {"score", "distribution", "label", "mode"},
        {"error"},
        {"error"},
    ] + [{"score", "distribution", "label", "mode"}]
    for data in (dataset, KeyDataset(dataset, "image"), dataset.to_iterable_dataset()):
        results = list(scorer(data, on_error="skip", fast_decode=True, batch_size=2, num_workers=1))
        assert results[1]["error"].startswith(f"{broken}: ") and results[2]["error"].startswith(
            f"{garbage}: "
        )
        _assert_same([results[0], results[3]], [expected[0], expected[3]])
    exact = scorer(str(large))
    assert abs(expected[3]["score"] - exact["score"]) > 0  # fast decode changed the large JPEG's input
    assert dataset.features["image"].decode  # the caller's dataset is left as it was
