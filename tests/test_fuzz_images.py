"""Fuzzing: a few hundred randomly mutated and truncated JPEG, PNG and WebP files through `score`, the pipeline
(`on_error="skip"`) and `prepare-dataset`. Every file is rated or reported, nothing crashes or hangs, and the
exit code says when some were skipped. The three routes read images with the same loader, so they must agree on
which files are readable and, for `score` and the pipeline, on the scores.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import pipeline

from aesformer_hf.cli import main as cli_main
from aesformer_hf.commands.prepare_dataset import main as prepare_main

NUM_FILES = 240
FORMATS = ("JPEG", "PNG", "WEBP")


def _clean_image(rng: np.random.Generator) -> Image.Image:
    height, width = rng.integers(24, 72, size=2)
    # A smooth gradient plus noise compresses like a photo (JPEG's entropy-coded data stays long).
    y, x = np.mgrid[0:height, 0:width]
    base = (np.stack([x * 3, y * 2, (x + y) * 2], axis=-1) + rng.integers(0, 40, (height, width, 3))) % 256
    return Image.fromarray(base.astype(np.uint8), "RGB")


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(data)
    kind = rng.integers(0, 6)
    if kind == 0:  # truncated
        return bytes(data[: rng.integers(0, len(data))])
    if kind == 1:  # a few bytes flipped, anywhere (headers included)
        for position in rng.integers(0, len(data), size=rng.integers(1, 12)):
            data[position] ^= int(rng.integers(1, 256))
        return bytes(data)
    if kind == 2:  # random bytes inserted
        position = int(rng.integers(0, len(data)))
        return bytes(data[:position]) + rng.bytes(int(rng.integers(1, 64))) + bytes(data[position:])
    if kind == 3:  # a run zeroed
        start = int(rng.integers(0, len(data)))
        data[start : start + int(rng.integers(1, 200))] = b"\0" * len(data[start : start + 200])
        return bytes(data[: len(data)])
    if kind == 4:  # a chunk duplicated
        start = int(rng.integers(0, len(data)))
        return bytes(data) + bytes(data[start : start + 300])
    return bytes(data)  # left intact


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("fuzzed")
    rng = np.random.default_rng(20261201)
    paths = []
    for index in range(NUM_FILES):
        image_format = FORMATS[index % len(FORMATS)]
        buffer = io.BytesIO()
        _clean_image(rng).save(buffer, format=image_format, quality=85)
        path = folder / f"{1000 + index}.{image_format.lower().replace('jpeg', 'jpg')}"
        path.write_bytes(_mutate(buffer.getvalue(), rng))
        paths.append(path)
    return paths


def _is_valid_score(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 1.0 <= value <= 10.0


@pytest.fixture(scope="module")
def pipeline_results(fuzzed, saved_model_dir):
    rater = pipeline("image-aesthetics", model=str(saved_model_dir))
    return rater([str(p) for p in fuzzed], on_error="skip", batch_size=8)


def test_pipeline_rates_or_reports_every_fuzzed_file(fuzzed, pipeline_results):
    assert len(pipeline_results) == len(fuzzed)
    rated = skipped = 0
    for path, result in zip(fuzzed, pipeline_results):
        if "error" in result:
            assert result["error"].startswith(str(path)), result  # the error names the file
            skipped += 1
        else:
            assert _is_valid_score(result["score"]), result
            rated += 1
    # The corpus is meant to hold both kinds; if it ever stops doing so, the test no longer tests anything.
    assert rated >= NUM_FILES // 5 and skipped >= NUM_FILES // 10, (rated, skipped)


def test_score_command_agrees_with_the_pipeline_and_says_some_were_skipped(
    fuzzed, pipeline_results, saved_model_dir, tmp_path, capsys
):
    output = tmp_path / "scores.jsonl"
    folder = fuzzed[0].parent
    code = cli_main(
        ["score", str(folder), "--model", str(saved_model_dir), "--output", str(output), "--no-progress"]
    )
    assert code == 1  # some files were skipped
    rows = {row["path"]: row for row in map(json.loads, output.read_text().splitlines())}
    assert len(rows) == len(fuzzed)  # every file once, nothing lost
    for path, expected in zip(fuzzed, pipeline_results):
        row = rows[str(path)]
        if "error" in expected:
            assert row.get("error") and row.get("score") is None, row
        else:
            assert not row.get("error") and row["score"] == pytest.approx(expected["score"], abs=1e-4), row
    err = capsys.readouterr().err
    assert sum(1 for line in err.splitlines() if line.startswith("skipped ")) == sum(
        "error" in r for r in pipeline_results
    )


def test_prepare_dataset_writes_the_readable_files_and_reports_the_others(
    fuzzed, pipeline_results, tmp_path, capsys
):
    data_dir = tmp_path / "AVA"
    (data_dir / "images").mkdir(parents=True)
    lines = []
    for index, path in enumerate(fuzzed):
        image_id = path.stem
        (data_dir / "images" / f"{image_id}.jpg").write_bytes(path.read_bytes())
        votes = " ".join(str(v) for v in np.random.default_rng(index).integers(0, 30, 10))
        lines.append(f"{index + 1} {image_id} {votes} 0 0 1")
    (data_dir / "AVA.txt").write_text("\n".join(lines) + "\n")
    (data_dir / "generic_test.jpgl").write_text("".join(f"{p.stem}\n" for p in fuzzed[::4]))
    output = tmp_path / "dataset"
    code = prepare_main(["ava", "--data-dir", str(data_dir), "--output", str(output), "--no-progress"])
    assert code == 0, capsys.readouterr()
    with (output / "build_report.csv").open(encoding="utf-8") as handle:
        skipped_ids = {row["image_id"] for row in csv.DictReader(handle) if row["action"] == "skipped"}
    unreadable_ids = {path.stem for path, result in zip(fuzzed, pipeline_results) if "error" in result}
    # The builder reads with the same loader: exactly the files the pipeline could not read are skipped.
    assert skipped_ids == unreadable_ids
    from datasets import load_dataset

    dataset = load_dataset(str(output), cache_dir=str(tmp_path / "cache"))
    assert sum(split.num_rows for split in dataset.values()) == len(fuzzed) - len(unreadable_ids)
