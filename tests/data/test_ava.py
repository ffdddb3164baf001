"""AVA: the real label excerpts, the three comment layouts, splits, dirty data, Parquet round trip."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from datasets import Image, load_dataset

from aesformer_hf.data import AVA_SPEC, get_dataset_spec, prepare_dataset, read_ava
from aesformer_hf.data.ava import read_ava_comments, read_ava_csv, read_ava_txt, read_id_names
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.splits import read_id_list

from .helpers import corrupt_exif_jpeg, image_bytes, truncated_jpeg

RATINGS = np.arange(1, 11)

# ---------------------------------------------------------------------------------------------------
# The real excerpts


def test_real_ava_txt_lines(fixtures_dir, tmp_path):
    report = BuildReport()
    labels = read_ava_txt(fixtures_dir / "ava" / "AVA_lines_1-3.txt", report)
    assert not report.entries
    assert [label.image_id for label in labels] == ["953619", "953958", "954184"]
    assert labels[0].votes == (0, 1, 5, 17, 38, 36, 15, 6, 5, 1)
    assert labels[0].tag_ids == (1, 22) and labels[0].challenge_id == 1396
    assert labels[2].tag_ids == (0, 0)
    assert (fixtures_dir / "ava" / "AVA_lines_1-3.txt").read_text().splitlines() == AVA_TXT_LINES
    for name in ("tags.txt", "challenges.txt"):
        shutil.copy(fixtures_dir / "ava" / name, tmp_path / name)
    shutil.copy(fixtures_dir / "ava" / "AVA_lines_1-3.txt", tmp_path / "AVA.txt")
    (tmp_path / "generic_test.jpgl").write_text("")  # everything in train
    source = read_ava(tmp_path)
    rows = {record.image_id: record.columns for record in source.splits["train"]}
    # By hand: 699/124, 592/126 (10+14+45+104+130+126+70+64+9+20), 715/126 (12+32+205+336+70+24+36).
    expected = {"953619": (699 / 124, 1), "953958": (592 / 126, 0), "954184": (715 / 126, 1)}
    for image_id, (mean, label) in expected.items():
        assert rows[image_id]["score"] == pytest.approx(mean)
        assert rows[image_id]["label"] == label
    assert rows["953958"]["distribution"][0] == pytest.approx(10 / 126)
    assert rows["953619"]["tag2_name"] == "Macro" and rows["953958"]["tag2_name"] == "Black and White"
    assert rows["953619"]["challenge_name"] == "100_Meters" and rows["954184"]["tag1_name"] is None


def test_real_tags_and_challenges(fixtures_dir):
    tags = read_id_names(fixtures_dir / "ava" / "tags.txt")
    challenges = read_id_names(fixtures_dir / "ava" / "challenges.txt")
    assert len(tags) == 66 and tags[37] == "Diptych / Triptych" and tags[1] == "Abstract"
    assert len(challenges) == 1398 and challenges[1396] == "100_Meters"


def test_real_csv_form_matches_an_independent_parse(fixtures_dir):
    path = fixtures_dir / "ava" / "relic_test_rows_1-100.csv"
    report = BuildReport()
    labels = read_ava_csv(path, report)
    frame = pd.read_csv(path, dtype={"image_id": str})
    assert not report.entries and len(labels) == len(frame) == 100
    for label, (_, row) in zip(labels, frame.iterrows()):
        assert label.image_id == row["image_id"]
        assert list(label.votes) == [int(row[f"score{n}"]) for n in range(2, 12)]
        assert label.tag_ids == (row["tag1"], row["tag2"]) and label.challenge_id == row["tag3"]
    assert labels[0].image_id == "773931" and labels[0].votes[4] == 82


def test_real_image_lists(fixtures_dir):
    test_ids = read_id_list(fixtures_dir / "ava" / "generic_test_lines_1-100.jpgl")
    train_ids = read_id_list(fixtures_dir / "ava" / "generic_ls_train_lines_1-100.jpgl")
    assert len(test_ids) == len(set(test_ids)) == 100 and test_ids[:2] == ["629797", "902498"]
    assert not set(test_ids) & set(train_ids)


# ---------------------------------------------------------------------------------------------------
# A format-faithful AVA copy with every kind of dirty row

TEST_IDS = ["629797", "902498", "588000", "448695"]  # first ids of the real generic_test.jpgl
VOTES = {
    "629797": [0, 1, 5, 17, 38, 36, 15, 6, 5, 1],
    "902498": [10, 7, 15, 26, 26, 21, 10, 8, 1, 2],
    "588000": [0, 0, 4, 8, 41, 56, 10, 3, 4, 0],
    "448695": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "417938": [3, 3, 3, 3, 3, 3, 3, 3, 3, 3],
    "173641": [0, 0, 0, 0, 0, 50, 50, 0, 0, 0],
    "294617": [0, 0, 0, 0, 7, 0, 0, 0, 0, 0],
    "937505": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    "276533": [2, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    "440774": [0, 0, 0, 0, 1, 1, 0, 0, 0, 0],
    "2129": [0] * 10,
}
KEPT = {"test": ["629797", "902498", "448695"], "train": ["417938", "173641", "294617"]}
SKIPPED = {
    ("588000", "missing_image"),
    ("937505", "truncated_image"),
    ("276533", "empty_image"),
    ("440774", "undecodable_image"),  # a known corrupt AVA id
    ("2129", "no_votes"),
    ("417938", "duplicate_id"),
    ("111111", "malformed_row"),
}
COMMENTS = {"629797": ["Great light!", "café au lait tones"], "417938": ['Nice "diptych", isn\'t it?']}
# The same comments as the authors' CSV writes them (each with a CRLF, like their Photo.net cells).
CSV_COMMENTS = {
    image_id: [comment + "\r\n" for comment in comments] for image_id, comments in COMMENTS.items()
}


def write_ava_copy(root: Path) -> dict[str, bytes]:
    """AVA.txt (+ the dirty rows), tags, challenges, the test list and images; returns image bytes."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, (image_id, votes) in enumerate(VOTES.items(), start=1):
        tags = "22 37" if image_id == "629797" else "1 0"
        lines.append(f"{index} {image_id} {' '.join(map(str, votes))} {tags} 1396")
    lines.append(f"{len(lines) + 1} 417938 {' '.join(['9'] * 10)} 0 0 1396")  # id listed twice
    lines.append(f"{len(lines) + 1} 111111 1 2 3 4 5 6 7 8 9 0 0 1396")  # 14 columns
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    (root / "tags.txt").write_text("1 Abstract\n37 Diptych / Triptych\n22 Macro\n")
    (root / "challenges.txt").write_text("1396 100_Meters\n")
    (root / "aesthetics_image_lists").mkdir()
    (root / "aesthetics_image_lists" / "generic_test.jpgl").write_text("\n".join(TEST_IDS) + "\n")
    images = root / "images"
    images.mkdir()
    files = {
        "629797.jpg": image_bytes(seed=1),
        "902498.jpg": image_bytes(mode="L", seed=2),
        "448695.png": image_bytes(image_format="PNG", seed=3),
        "417938.jpg": corrupt_exif_jpeg(seed=4),
        "173641.jpg": image_bytes(mode="CMYK", seed=5),
        "294617.png": image_bytes(mode="RGBA", image_format="PNG", seed=6),
        "937505.jpg": truncated_jpeg(seed=7),
        "276533.jpg": b"",
        "440774.jpg": b"\x00" * 64,
        "2129.jpg": image_bytes(seed=8),
    }
    for name, data in files.items():
        (images / name).write_bytes(data)
    return files


def write_comment_layouts(root: Path) -> dict[str, Path]:
    """The same comments as a folder of <id>.txt, a '#' file and the authors' CSV."""
    folder = root / "comments_txt"
    folder.mkdir(parents=True)
    for image_id, comments in COMMENTS.items():
        # One file in Windows-1252, as some dumps are: "café" must survive.
        encoding = "cp1252" if image_id == "629797" else "utf-8"
        (folder / f"{image_id}.txt").write_bytes("\r\n".join(comments).encode(encoding) + b"\r\n")
    (folder / "448695.txt").write_text("\n\n")  # an image whose file holds no comment
    hash_file = root / "comments.txt"
    hash_file.write_text(
        "".join(f"{i}#{'#'.join(c)}\n" for i, c in COMMENTS.items()) + "448695#\n", encoding="utf-8"
    )
    csv_file = root / "comments.csv"
    with csv_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["", "index", "label", "comment"])
        for row, (image_id, comments) in enumerate(COMMENTS.items()):
            literal = "[" + ", ".join(repr(comment + "\r\n") for comment in comments) + "]"
            writer.writerow([row, image_id, " ".join(map(str, VOTES[image_id])), literal])
    return {"folder": folder, "hash": hash_file, "csv": csv_file}


@pytest.fixture(scope="module")
def ava_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("ava")
    files = write_ava_copy(root / "AVA")
    layouts = write_comment_layouts(root)
    prepared = prepare_dataset("ava", root / "AVA", root / "out", comments=layouts["folder"], progress=False)
    loaded = prepared.load(cache_dir=root / "cache")
    return {"root": root, "files": files, "layouts": layouts, "prepared": prepared, "loaded": loaded}


def test_three_comment_layouts_give_the_same_comments(tmp_path):
    layouts = write_comment_layouts(tmp_path)
    report = BuildReport()
    found = {name: read_ava_comments(path, report) for name, path in layouts.items()}
    assert found["folder"] == {**COMMENTS, "448695": []}
    assert found["hash"] == {**COMMENTS, "448695": []}
    # The CSV's list literals are kept as parsed: their items end with the CRLF the literals hold.
    assert found["csv"] == CSV_COMMENTS
    assert [(entry.image_id, entry.code) for entry in report.entries] == [("629797", "comments_not_utf8")]
    # A folder of the authors' CSVs (their train/test files) reads like one CSV.
    csv_folder = tmp_path / "csvs"
    csv_folder.mkdir()
    layouts["csv"].rename(csv_folder / "train.csv")
    assert read_ava_comments(csv_folder, report) == CSV_COMMENTS


def test_splits_follow_the_test_list(ava_build):
    loaded = ava_build["loaded"]
    assert list(loaded) == ["train", "test"]
    assert loaded["test"]["image_id"] == KEPT["test"]
    assert loaded["train"]["image_id"] == KEPT["train"]
    assert get_dataset_spec(loaded) == AVA_SPEC


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # PIL, decoding 417938's image on row access
def test_rows_hold_the_votes_and_targets(ava_build):
    rows = {row["image_id"]: row for split in ava_build["loaded"].values() for row in split}
    for image_id, row in rows.items():
        votes = np.array(VOTES[image_id])
        assert row["votes"] == VOTES[image_id]
        np.testing.assert_allclose(row["distribution"], votes / votes.sum(), rtol=1e-6)
        mean = float((votes * RATINGS).sum() / votes.sum())
        assert row["score"] == pytest.approx(mean, rel=1e-6)
        assert row["label"] == int(mean > 5.0)
        assert row["image"].mode == "RGB"
    assert rows["448695"]["score"] == pytest.approx(7.0)  # sum(i*i)/sum(i) = 385/55
    assert rows["294617"]["label"] == 0  # exactly 5.0 is low
    assert rows["629797"]["tag1_name"] == "Macro" and rows["629797"]["tag2_name"] == "Diptych / Triptych"
    assert rows["417938"]["tag2_id"] == 0 and rows["417938"]["tag2_name"] is None
    assert rows["629797"]["comments"] == COMMENTS["629797"]
    assert rows["173641"]["comments"] == []


def test_every_dirty_row_is_reported(ava_build):
    prepared = ava_build["prepared"]
    with (prepared.output_dir / "build_report.csv").open(newline="", encoding="utf-8") as handle:
        entries = list(csv.DictReader(handle))
    skipped = {(entry["image_id"], entry["code"]) for entry in entries if entry["action"] == "skipped"}
    assert skipped == SKIPPED
    repaired = {(entry["image_id"], entry["code"]) for entry in entries if entry["action"] == "repaired"}
    assert repaired == {
        ("902498", "converted_image"),
        ("173641", "converted_image"),
        ("294617", "converted_image"),
        ("629797", "comments_not_utf8"),
    }
    duplicate = next(entry for entry in entries if entry["code"] == "duplicate_id")
    assert "AVA.txt:5" in duplicate["detail"] and duplicate["location"] == "AVA.txt:12"
    assert "skipped: 7" in prepared.summary and "missing_image 1" in prepared.summary
    assert "skipped" in (prepared.output_dir / "README.md").read_text()


def test_original_bytes_are_stored_and_round_trip(ava_build):
    files, loaded = ava_build["files"], ava_build["loaded"]
    raw = {
        row["image_id"]: row["image"]
        for split in loaded.values()
        for row in split.cast_column("image", Image(decode=False))
    }
    assert raw["629797"]["bytes"] == files["629797.jpg"]
    assert raw["448695"]["bytes"] == files["448695.png"]
    assert raw["417938"]["bytes"] == files["417938.jpg"]  # corrupt EXIF, RGB: untouched
    assert raw["902498"]["bytes"] != files["902498.jpg"] and raw["902498"]["path"] == "902498.jpg"
    assert raw["294617"]["path"] == "294617.png"


def test_streaming_and_plain_parquet_give_identical_rows(ava_build):
    output = ava_build["prepared"].output_dir
    loaded = ava_build["loaded"]
    streamed = load_dataset(str(output), streaming=True)
    assert get_dataset_spec(streamed) == AVA_SPEC
    for split in ("train", "test"):
        expected = list(loaded[split].cast_column("image", Image(decode=False)))
        assert list(streamed[split].cast_column("image", Image(decode=False))) == expected
        direct = pq.read_table(sorted((output / "data").glob(f"{split}-*.parquet"))).to_pylist()
        assert [row["image"]["bytes"] for row in direct] == [row["image"]["bytes"] for row in expected]
        assert [row["comments"] for row in direct] == [row["comments"] for row in expected]


def test_parallel_build_and_small_shards_give_the_same_rows(ava_build, tmp_path):
    root = ava_build["root"]
    parallel = prepare_dataset(
        "ava",
        root / "AVA",
        tmp_path / "out",
        comments=ava_build["layouts"]["folder"],
        num_proc=2,
        max_shard_bytes=1,
        progress=False,
    )
    train_files = sorted((tmp_path / "out" / "data").glob("train-*.parquet"))
    assert [path.name for path in train_files] == [f"train-{i:05d}-of-00003.parquet" for i in range(3)]
    assert parallel.splits["train"].num_rows == 3
    for split in ("train", "test"):
        first = pq.read_table(sorted((ava_build["prepared"].output_dir / "data").glob(f"{split}-*.parquet")))
        second = pq.read_table(sorted((tmp_path / "out" / "data").glob(f"{split}-*.parquet")))
        assert first.to_pylist() == second.to_pylist()


def test_seeded_split_and_validation_fraction(tmp_path):
    write_ava_copy(tmp_path / "AVA")
    (tmp_path / "AVA" / "aesthetics_image_lists" / "generic_test.jpgl").unlink()
    with pytest.raises(FileNotFoundError, match="generic_test.jpgl"):
        read_ava(tmp_path / "AVA")
    first = read_ava(tmp_path / "AVA", test_fraction=0.3, validation_fraction=0.25, seed=7)
    again = read_ava(tmp_path / "AVA", test_fraction=0.3, validation_fraction=0.25, seed=7)
    ids = {split: [r.image_id for r in records] for split, records in first.splits.items()}
    assert ids == {split: [r.image_id for r in records] for split, records in again.splits.items()}
    # 11 labelled ids; 2129 has no votes (the duplicate and the malformed line are dropped too).
    assert sum(len(v) for v in ids.values()) == 10
    assert len(ids["test"]) == 3 and len(ids["validation"]) == 2  # 30% of 10; 25% of the 7 left, rounded


AVA_TXT_LINES = [  # the first three lines of the real AVA.txt (fixtures/ava/AVA_lines_1-3.txt)
    "1 953619 0 1 5 17 38 36 15 6 5 1 1 22 1396",
    "2 953958 10 7 15 26 26 21 10 8 1 2 1 21 1396",
    "3 954184 0 0 4 8 41 56 10 3 4 0 0 0 1396",
]


def test_split_file_overrides_and_csv_form_without_index(tmp_path):
    # The CSV form: AVA.txt's columns without the index, one file per split.
    root = tmp_path / "AVA"
    root.mkdir()
    lines = AVA_TXT_LINES
    header = "image_id," + ",".join(f"score{n}" for n in range(2, 12)) + ",tag1,tag2,tag3\n"
    rows = [",".join(line.split()[1:]) for line in lines]
    (root / "train.csv").write_text(header + "\n".join(rows[:2]) + "\n")
    (root / "test.csv").write_text(header + rows[2] + "\n")
    source = read_ava(root)
    assert [r.image_id for r in source.splits["train"]] == ["953619", "953958"]
    assert [r.image_id for r in source.splits["test"]] == ["954184"]
    assert source.splits["test"][0].columns["votes"] == [0, 0, 4, 8, 41, 56, 10, 3, 4, 0]
    split_file = tmp_path / "my_test.jpgl"
    split_file.write_text("953619\r\n")
    overridden = read_ava(root, split_file=split_file)
    assert [r.image_id for r in overridden.splits["test"]] == ["953619"]


def test_missing_labels_name_the_path_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        read_ava(tmp_path)
    assert (
        str(tmp_path) in str(error.value) and "AVA.txt" in str(error.value) and "images" in str(error.value)
    )
    with pytest.raises(FileNotFoundError, match="split file not found"):
        write_ava_copy(tmp_path / "AVA")
        read_ava(tmp_path / "AVA", split_file=tmp_path / "nope.jpgl")
