"""JAS: the spreadsheet and its CSV, the split CSVs, Latin-1 .tru files, names with spaces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook

from aesformer_hf.data import JAS_SPEC, get_dataset_spec, prepare_dataset, read_jas
from aesformer_hf.data.jas import read_jas_scores, read_tru
from aesformer_hf.data.report import BuildReport

from .helpers import image_bytes

SHEET_HEADER = [
    "File name",
    "Aesthetic Quality",
    "Beauty",
    "Liking of Color",
    "Liking of Composition",
    "Liking of Content",
    "Familiarity",
    "Artist",
]
SPLIT_HEADER = "name,Quality,Beauty,Color,Composition,Content,Familiarity,Artist\n"


def test_real_spreadsheet_and_its_csv_read_the_same(fixtures_dir):
    report = BuildReport()
    from_xlsx = read_jas_scores(fixtures_dir / "jas" / "subjective_scores_rows_1-100.xlsx", report)
    from_csv = read_jas_scores(fixtures_dir / "jas" / "subjective_scores_rows_1-100.csv", report)
    assert not report.entries and len(from_xlsx) == len(from_csv) == 100
    assert [(r.name, r.scores) for r in from_xlsx] == [(r.name, r.scores) for r in from_csv]
    rows = {row.name: row.scores for row in from_xlsx}
    assert rows["Aalto1"] == {
        "quality": 39,
        "beauty": 32,
        "color": 52,
        "composition": 40,
        "content": 43,
        "familiarity": 1,
        "artist_familiarity": 1,
    }
    assert rows["Aalto2"]["beauty"] == 40.5
    assert rows["Aivazovsky 2"]["quality"] == 80 and rows["Altdorfer 1"]["quality"] == 59


def test_real_split_csvs_agree_with_the_spreadsheet(fixtures_dir):
    report = BuildReport()
    sheet = {
        row.name: row.scores
        for row in read_jas_scores(fixtures_dir / "jas" / "subjective_scores_rows_1-100.xlsx", report)
    }
    train = read_jas_scores(fixtures_dir / "jas" / "relic_train_rows_1-100.csv", report)
    assert len(train) == 100 and train[0].name == "Bernard4" and train[0].scores["quality"] == 53.0
    shared = [row for row in train if row.name in sheet]
    assert shared and all(row.scores == sheet[row.name] for row in shared)


def test_real_tru_files_latin1_and_spaces(fixtures_dir):
    report = BuildReport()
    alcazar = read_tru(fixtures_dir / "jas" / "true_files" / "Alcazar1.tru", report)
    assert (
        alcazar["artist"] == "Luis Paret y Alcázar"
        and alcazar["period"] == "p6"
        and alcazar["year"] == "1784"
    )
    assert [(e.image_id, e.code) for e in report.entries] == [("Alcazar1", "metadata_not_utf8")]
    spaced = read_tru(fixtures_dir / "jas" / "true_files" / "Aivazovsky 2.tru", report)
    assert spaced["artist"] == "Hovhannes Aivazovsky" and spaced["file name"] == "Aivazovsky 2.jpg"
    assert read_tru(fixtures_dir / "jas" / "true_files" / "Aalto1.tru", report)["period"] == "p19"


def test_build_from_the_real_excerpts(fixtures_dir, tmp_path):
    root = tmp_path / "JAS"
    dataset_folder = root / "JenAesthetics subjective Dataset"
    (dataset_folder / "True Files").mkdir(parents=True)
    shutil.copy(
        fixtures_dir / "jas" / "subjective_scores_rows_1-100.xlsx", dataset_folder / "Subjective scores.xlsx"
    )
    for tru in (fixtures_dir / "jas" / "true_files").glob("*.tru"):
        shutil.copy(tru, dataset_folder / "True Files" / tru.name)
    splits = root / "ReLIC" / "JAS"
    splits.mkdir(parents=True)
    for split, name in (
        ("train", "relic_train_rows_1-100.csv"),
        ("val", "relic_val_rows_1-30.csv"),
        ("test", "relic_test_rows_1-40.csv"),
    ):
        shutil.copy(fixtures_dir / "jas" / name, splits / f"{split}.csv")
    paintings = root / "paintings"
    for name in ("Albani1", "AmanJean1", "Boucher1", "Aalto1"):
        (paintings).mkdir(exist_ok=True)
        (paintings / f"{name}.jpg").write_bytes(image_bytes(seed=len(name)))
    source = read_jas(root)
    by_split = {split: {r.image_id: r for r in records} for split, records in source.splits.items()}
    # Albani1 (train), AmanJean1 (val), Boucher1 (test) are in the sheet and in a split file.
    assert (
        "Albani1" in by_split["train"]
        and "AmanJean1" in by_split["validation"]
        and "Boucher1" in by_split["test"]
    )
    # Boucher1.jpg,57,71,68,78,64,0,0 in the sheet and in test.csv.
    assert by_split["test"]["Boucher1"].columns["score"] == pytest.approx(0.57)
    skipped = {(e.image_id, e.code) for e in source.report.by_action("skipped")}
    assert ("Aalto1", "not_in_split") in skipped  # in the sheet, in no split: reported, not written
    warned = {(e.image_id, e.code) for e in source.report.by_action("warning")}
    assert ("Cezanne24", "not_in_spreadsheet") in warned  # the excerpt sheet stops at 'B...'


def _write_synthetic_jas(root: Path) -> None:
    folder = root / "JenAesthetics subjective Dataset"
    (folder / "True Files").mkdir(parents=True)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Subjective score"
    sheet.append(SHEET_HEADER)
    sheet.append(["Aivazovsky 2.jpg", 80, 84, 92, 88, 85, 0, 0])
    sheet.append(["Monet24.jpg", 50, 66.5, 54.5, 64.5, 77, 0, 0])  # exactly the threshold: low
    sheet.append(["Renoir17.jpg", 50.5, 56, 64, 66, 57, 3, 2])
    sheet.append(["Unrated1.jpg", None, 10, 10, 10, 10, 0, 0])
    sheet.append(["Unused1.jpg", 70, 70, 70, 70, 70, 0, 0])
    sheet.append(["NoImage1.jpg", 40, 40, 40, 40, 40, 0, 0])
    sheet.append([None] * 8)  # trailing blank row, as spreadsheets have
    workbook.save(folder / "Subjective scores.xlsx")
    (folder / "File Name.txt").write_bytes(b"Aivazovsky 2\r\nMonet24\r\nRenoir17\r\n")
    (folder / "True Files" / "Aivazovsky 2.tru").write_bytes(
        b"File name: Aivazovsky 2.jpg\r\n\r\nArtist: Hovhannes Aivazovsky \r\n\r\nYear: 1850\r\n\r\nPeriod: p8\r\n"
    )
    (folder / "True Files" / "Renoir17.tru").write_bytes(
        "Artist: Pierre-Auguste Renoir Çé\r\n".encode("latin-1")
    )
    splits = root / "splits"
    splits.mkdir()
    (splits / "train.csv").write_text(
        SPLIT_HEADER + "Aivazovsky 2.jpg,80,84,92,88,85,0,0\nNoImage1.jpg,40,40,40,40,40,0,0\n"
    )
    (splits / "val.csv").write_text(
        SPLIT_HEADER + "Renoir17.jpg,50.5,56,64,66,57,3,2\nUnrated1.jpg,,10,10,10,10,0,0\n"
    )
    (splits / "test.csv").write_text(
        SPLIT_HEADER + "Monet24.jpg,50.0,66.5,54.5,64.5,77.0,0.0,0.0\nAivazovsky 2.jpg,80,1,1,1,1,0,0\n"
    )
    images = root / "images"
    images.mkdir()
    for name in ("Aivazovsky 2", "Monet24", "Renoir17", "Unused1", "Unrated1"):
        (images / f"{name}.jpg").write_bytes(image_bytes(seed=len(name)))


def test_build_synthetic_copy(tmp_path):
    _write_synthetic_jas(tmp_path / "JAS")
    prepared = prepare_dataset(
        "jas", tmp_path / "JAS", tmp_path / "out", split_file=tmp_path / "JAS" / "splits", progress=False
    )
    loaded = prepared.load(cache_dir=tmp_path / "cache")
    assert get_dataset_spec(loaded) == JAS_SPEC
    assert {"votes", "distribution", "comments"}.isdisjoint(loaded["train"].column_names)
    assert loaded["train"]["image_id"] == ["Aivazovsky 2"]
    assert loaded["validation"]["image_id"] == ["Renoir17"] and loaded["test"]["image_id"] == ["Monet24"]
    aivazovsky, renoir, monet = loaded["train"][0], loaded["validation"][0], loaded["test"][0]
    assert (
        aivazovsky["score"] == pytest.approx(0.8) and aivazovsky["label"] == 1 and aivazovsky["quality"] == 80
    )
    assert (
        aivazovsky["artist"] == "Hovhannes Aivazovsky"
        and aivazovsky["period"] == "p8"
        and aivazovsky["year"] == "1850"
    )
    assert (
        renoir["score"] == pytest.approx(0.505) and renoir["label"] == 1 and renoir["artist_familiarity"] == 2
    )
    assert renoir["artist"] == "Pierre-Auguste Renoir Çé"
    assert monet["score"] == pytest.approx(0.5) and monet["label"] == 0 and monet["artist"] is None
    entries = {(e.image_id, e.action, e.code) for e in prepared.report.entries}
    assert entries == {
        ("Unused1", "skipped", "not_in_split"),
        ("Unrated1", "skipped", "no_score"),
        ("NoImage1", "skipped", "missing_image"),
        ("Aivazovsky 2", "skipped", "duplicate_id"),  # listed in train and test: kept in train
        ("Renoir17", "repaired", "metadata_not_utf8"),
        ("Monet24", "warning", "no_metadata"),
        ("NoImage1", "warning", "no_metadata"),
    }


def test_seeded_split_when_no_split_files(tmp_path):
    _write_synthetic_jas(tmp_path / "JAS")
    shutil.rmtree(tmp_path / "JAS" / "splits")
    with pytest.raises(FileNotFoundError, match="--test-fraction"):
        read_jas(tmp_path / "JAS")
    source = read_jas(tmp_path / "JAS", test_fraction=0.4, validation_fraction=0.34)
    sizes = {split: len(records) for split, records in source.splits.items()}
    # Six named rows, Unrated1 skipped later for its blank score: 2 test of 6, 1 validation of 4.
    assert sum(sizes.values()) + len(source.report.by_action("skipped")) == 6
    assert set(sizes) <= {"train", "validation", "test"}


def test_missing_scores_name_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="Subjective scores.xlsx"):
        read_jas(tmp_path)


def test_split_files_alone_are_enough(tmp_path):
    _write_synthetic_jas(tmp_path / "JAS")
    shutil.rmtree(tmp_path / "JAS" / "JenAesthetics subjective Dataset")
    source = read_jas(tmp_path / "JAS")
    ids = {split: [r.image_id for r in records] for split, records in source.splits.items()}
    assert ids == {"train": ["Aivazovsky 2", "NoImage1"], "validation": ["Renoir17"], "test": ["Monet24"]}
    assert source.splits["test"][0].columns["beauty"] == 66.5
    # Once each: the duplicate across train.csv and test.csv, and the blank score.
    assert sorted((e.image_id, e.code) for e in source.report.entries) == [
        ("Aivazovsky 2", "duplicate_id"),
        ("Unrated1", "no_score"),
    ]
