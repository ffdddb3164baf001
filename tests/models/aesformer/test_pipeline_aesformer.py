"""pipeline("image-aesthetics") and `aesformer-hf score`: routing, batching, input kinds, broken files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import pipeline

from aesformer_hf import AesformerForAesthetic, AesformerProcessor
from aesformer_hf.cli import main as cli_main

from ...conftest import random_image


@pytest.fixture(scope="module")
def scorer(saved_model_dir):
    return pipeline("image-aesthetics", model=str(saved_model_dir))


def test_single_image_result(scorer):
    result = scorer(random_image(0))
    assert set(result) == {"score", "distribution", "label", "mode"}
    assert result["mode"] == "vision" and len(result["distribution"]) == 10
    assert abs(sum(result["distribution"]) - 1) < 1e-5
    assert result["score"] == pytest.approx(
        sum((i + 1) * p for i, p in enumerate(result["distribution"])), abs=1e-5
    )
    assert result["label"] == ("high" if result["score"] > 5.0 else "low")


def test_matches_the_model_called_directly(scorer, saved_model_dir):
    model = AesformerForAesthetic.from_pretrained(saved_model_dir).eval()
    processor = AesformerProcessor.from_pretrained(saved_model_dir)
    image = random_image(1)
    with torch.no_grad():
        direct = model(**processor(images=image, text=["too blurry"]))
    result = scorer(image, comments=["too blurry"])
    assert result["mode"] == "multimodal"
    assert result["score"] == pytest.approx(float(direct.score[0]), abs=1e-5)


def test_batch_with_mixed_modes_equals_one_by_one(scorer):
    images = [random_image(i) for i in range(5)]
    comments = [
        ["too blurry", "tilted"],
        None,
        "lovely sharp colours and a very long comment " * 3,
        [],
        "nice",
    ]
    batched = scorer(images, comments=comments, batch_size=3)
    assert [r["mode"] for r in batched] == ["multimodal", "vision", "multimodal", "vision", "multimodal"]
    for image, comment, result in zip(images, comments, batched):
        alone = scorer(image, comments=comment)
        assert alone["mode"] == result["mode"]
        np.testing.assert_allclose(alone["distribution"], result["distribution"], atol=1e-5)
        assert alone["score"] == pytest.approx(result["score"], abs=1e-5)


def test_paths_numpy_and_pil_give_the_same_result(scorer, tmp_path):
    image = random_image(2)
    path = tmp_path / "photo.png"
    image.save(path)
    by_pil, by_path, by_array = scorer([image, str(path), np.asarray(image)])
    assert by_pil["score"] == pytest.approx(by_path["score"], abs=1e-6)
    assert by_pil["score"] == pytest.approx(by_array["score"], abs=1e-6)


def test_comments_must_match_images(scorer):
    with pytest.raises(ValueError, match="2 images but comments for 1"):
        scorer([random_image(0), random_image(1)], comments=[["a"]])
    with pytest.raises(ValueError, match="one entry per image"):
        scorer([random_image(0), random_image(1)], comments="nice")


def test_comments_get_the_processors_released_text(scorer, saved_model_dir):
    processor = AesformerProcessor.from_pretrained(saved_model_dir)
    image = random_image(4)
    comments = ["Don't\r\n", "(tilted) horizon\r\n"]
    prepared = scorer.preprocess((image, comments))
    assert prepared["input_ids"].tolist() == processor(images=image, text=comments)["input_ids"].tolist()
    expected = processor.tokenizer("Don t\\r , tilted horizon\\r")["input_ids"]
    assert prepared["input_ids"][0].tolist() == expected
    # Blank comments are no comments: the image is rated by the vision path.
    assert scorer(image, comments=["  ", "\r\n"])["mode"] == "vision"
    assert scorer(image, comments=["()", "*"])["mode"] == "vision"


def test_vision_only_model_refuses_comments(tmp_path, processor):
    from aesformer_hf.testing_utils import tiny_config

    AesformerForAesthetic(tiny_config(vision_only=True)).save_pretrained(tmp_path)
    processor.image_processor.save_pretrained(tmp_path)
    vision = pipeline("image-aesthetics", model=str(tmp_path))
    assert vision(random_image(0))["mode"] == "vision"
    with pytest.raises(ValueError, match="vision-only"):
        vision(random_image(0), comments=["nice"])


def test_vision_only_folder_loads_without_asking_to_run_code(tmp_path, processor):
    """No video processor is looked for: transformers would find the image processor's remote code in the folder
    and ask on stdin whether to run it (blocking 15 s on a terminal)."""
    import os
    import subprocess
    import sys

    from aesformer_hf.testing_utils import tiny_config

    AesformerForAesthetic(tiny_config(vision_only=True)).save_pretrained(tmp_path)
    processor.image_processor.save_pretrained(tmp_path)
    script = (
        "import sys, aesformer_hf\n"
        "from transformers import pipeline\n"
        "rate = pipeline('image-aesthetics', model=sys.argv[1])\n"
        "print('video processor:', rate.video_processor)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-2000:]
    assert "video processor: None" in completed.stdout
    assert "custom code" not in output and "[y/N]" not in output, output[-2000:]


def test_dtype_bfloat16(saved_model_dir):
    scorer = pipeline("image-aesthetics", model=str(saved_model_dir), dtype=torch.bfloat16)
    assert scorer.model.dtype == torch.bfloat16
    result = scorer(random_image(3), comments=["too blurry"])
    assert 1.0 <= result["score"] <= 10.0 and abs(sum(result["distribution"]) - 1) < 1e-3


def test_cli_scores_a_folder_and_skips_a_broken_file(saved_model_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    random_image(0).save(folder / "a.jpg")
    random_image(1).save(folder / "sub" / "c.png")
    (folder / "b.jpg").write_bytes(b"this is not a jpeg")
    random_image(2).save(tmp_path / "z_first.png")
    comments = tmp_path / "comments.json"
    comments.write_text(json.dumps({"a.jpg": ["too blurry"]}))
    code = cli_main(
        [
            "score",
            str(tmp_path / "z_first.png"),
            str(folder),
            "--model",
            str(saved_model_dir),
            "--comments",
            str(comments),
            "--format",
            "json",
            "--batch-size",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1  # something was skipped
    results = json.loads(captured.out)
    assert [r["path"].rsplit("/", 1)[-1] for r in results] == ["z_first.png", "a.jpg", "c.png"]
    assert [r["mode"] for r in results] == ["vision", "multimodal", "vision"]
    assert "b.jpg" in captured.err and "unreadable" in captured.err


def test_cli_all_good_exits_zero(saved_model_dir, tmp_path, capsys):
    random_image(0).save(tmp_path / "a.jpg")
    assert cli_main(["score", str(tmp_path), "--model", str(saved_model_dir), "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "path,score,label,mode,distribution" and ',vision,"[' in out[1]
