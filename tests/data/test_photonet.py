"""Photo.net: the authors' CSV (list literals with \\r\\n escapes, runs of spaces, CRLF), splits, bad rows."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aesformer_hf.data import PHOTONET_SPEC, get_dataset_spec, prepare_dataset, read_photonet
from aesformer_hf.data.photonet import read_photonet_csv
from aesformer_hf.data.report import BuildReport
from aesformer_hf.models.aesformer.processing_aesformer import clean_comment_cell, released_comment_text

from .helpers import image_bytes

FIXTURE = Path("photonet") / "aesmamba_photonet_test_rows_0-99.csv"


def test_real_excerpt_parses_exactly(fixtures_dir):
    path = fixtures_dir / FIXTURE
    assert b"\r\n" in path.read_bytes()[:200]  # the excerpt really is CRLF
    report = BuildReport()
    records = read_photonet_csv(path, report)
    assert len(records) == 100 and not report.entries  # the CSV's own score agrees with every row
    first = records[0]
    assert first.image_id == "4088596" and first.columns["votes"] == [0, 0, 0, 5, 2, 4, 0]
    assert (
        first.columns["score"] == pytest.approx((4 * 5 + 5 * 2 + 6 * 4) / 11) and first.columns["label"] == 0
    )
    assert first.columns["comments"] == [
        "Thank you for your considerations\r\n",
        "Very nice shot of what looks like a dusky gull.\r\n",
    ]
    third = records[2].columns["comments"]
    assert (
        len(third) == 7
        and third[1]
        == "On the head of a wheat grass! I'm astounded that these photographs are possible. \r\n"
    )
    # An independent reading: pandas for the columns, numpy for the targets.
    frame = pd.read_csv(path, index_col=0)
    assert [r.image_id for r in records] == [str(i) for i in frame["index"]]
    for record, (_, row) in zip(records, frame.iterrows()):
        votes = np.array([int(v) for v in row["label"].split()])
        np.testing.assert_allclose(record.columns["distribution"], votes / votes.sum())
        assert record.columns["score"] == pytest.approx(row["score"])
        assert record.columns["label"] == int(row["score"] > 5.0)
        # The comments are the parsed list literal, unchanged: repr gives the cell back.
        assert repr(record.columns["comments"]) == row["comment"]


def _write_csv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Rows of (image id, comment field, label field) in the authors' layout, CRLF."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["", "index", "comment", "label", "score", "class"])
        for number, (image_id, comment, label) in enumerate(rows):
            votes = [int(v) for v in label.split()] if label.split() else [0]
            score = sum((i + 1) * v for i, v in enumerate(votes)) / max(sum(votes), 1)
            writer.writerow([number, image_id, comment, label, score, 2])


def test_build_with_splits_and_bad_rows(tmp_path, capsys):
    root = tmp_path / "photonet"
    (root / "images").mkdir(parents=True)
    _write_csv(
        root / "train.csv",
        [
            ("4088604", r"['Any comments welcome.\r\n', 'Well done.\r\n']", "0  0  0  3  5  7  0"),
            ("4088614", r"['broken\x literal']", "0  0  0  3  3  9  1"),
            ("4088627", "[]", "0  0  0  0  0  0  0"),
            ("4088663", "[]", "1  2  3  4  5  6"),
        ],
    )
    _write_csv(
        root / "test.csv",
        [
            ("4088701", r"['..\r\n', 'Nice effect, Bob..!\r\n']", "0  0  3  1  5  1  1"),
            ("4088604", "[]", "1 1 1 1 1 1 1"),
        ],
    )
    for image_id in ("4088604", "4088614", "4088701"):
        (root / "images" / f"{image_id}.jpg").write_bytes(image_bytes(seed=int(image_id) % 97))
    prepared = prepare_dataset("photonet", root, tmp_path / "out", progress=False)
    loaded = prepared.load(cache_dir=tmp_path / "cache")
    assert get_dataset_spec(loaded) == PHOTONET_SPEC and "comments" in loaded["train"].features
    assert loaded["train"]["image_id"] == ["4088604", "4088614"] and loaded["test"]["image_id"] == ["4088701"]
    train = {row["image_id"]: row for row in loaded["train"]}
    assert train["4088604"]["comments"] == ["Any comments welcome.\r\n", "Well done.\r\n"]
    assert train["4088604"]["score"] == pytest.approx((12 + 25 + 42) / 15) and train["4088604"]["label"] == 1
    assert train["4088614"]["comments"] == [r"['broken\x literal']"]  # kept, and reported
    assert loaded["test"][0]["distribution"] == pytest.approx([0, 0, 3 / 11, 1 / 11, 5 / 11, 1 / 11, 1 / 11])
    codes = {(e.image_id, e.action, e.code) for e in prepared.report.entries}
    assert codes == {
        ("4088614", "repaired", "comments_not_a_list"),
        ("4088627", "skipped", "no_votes"),
        ("4088663", "skipped", "bad_votes"),
        ("4088604", "skipped", "duplicate_id"),
    }


def test_stored_comments_give_the_released_text_of_the_cell(fixtures_dir, tmp_path):
    """Built to Parquet and loaded back, each row's comments give the text the released code made of its cell."""
    root = tmp_path / "photonet"
    (root / "images").mkdir(parents=True)
    shutil.copy(fixtures_dir / FIXTURE, root / "test.csv")
    with (root / "test.csv").open(newline="", encoding="utf-8") as handle:
        cells = {row["index"]: row["comment"] for row in csv.DictReader(handle)}
    for number, image_id in enumerate(cells):
        (root / "images" / f"{image_id}.jpg").write_bytes(image_bytes(seed=number))
    prepared = prepare_dataset("photonet", root, tmp_path / "out", progress=False)
    rows = prepared.load(cache_dir=tmp_path / "cache")["test"].remove_columns("image")
    assert len(rows) == len(cells) == 100
    for row in rows:
        cell = cells[row["image_id"]]
        assert repr(row["comments"]) == cell
        assert released_comment_text(row["comments"]) == clean_comment_cell(cell)


def test_single_csv_needs_a_split(tmp_path):
    _write_csv(tmp_path / "photonet_all.csv", [("1", "[]", "1 1 1 1 1 1 1"), ("2", "[]", "0 0 0 0 0 0 9")])
    with pytest.raises(FileNotFoundError, match="--test-fraction"):
        read_photonet(tmp_path)
    source = read_photonet(tmp_path, test_fraction=0.5, seed=1)
    assert sorted(len(records) for records in source.splits.values()) == [1, 1]


def test_missing_csv_names_the_expected_layout(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FileNotFoundError, match=r"train\.csv.*test\.csv"):
        read_photonet(tmp_path)
