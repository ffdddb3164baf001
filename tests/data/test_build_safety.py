"""prepare-dataset never loses or half-writes data: atomic builds, --overwrite, the lock, bad numbers, empty splits."""

from __future__ import annotations

import errno
import hashlib
import math
import pathlib
import secrets
from pathlib import Path

import pytest
from datasets import load_dataset

from aesformer_hf.commands.prepare_dataset import main
from aesformer_hf.data import parquet, read_ava, read_jas, read_photonet
from aesformer_hf.data.prepare import prepare_dataset
from aesformer_hf.data.report import BuildReport

from .helpers import image_bytes

# id -> 10 AVA vote counts; the last id is the test split.
VOTES = {
    "953619": [0, 1, 5, 17, 38, 36, 15, 6, 5, 1],
    "953958": [10, 7, 15, 26, 26, 21, 10, 8, 1, 2],
    "954184": [0, 0, 4, 8, 41, 56, 10, 3, 4, 0],
    "954113": [0, 1, 6, 29, 51, 44, 21, 9, 2, 1],
}
TEST_ID = "954184"


def _ava(root: Path, ids=tuple(VOTES)) -> Path:
    """A tiny AVA copy with an image for each of ``ids``; ``TEST_ID`` is the test split."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = [
        f"{number} {image_id} {' '.join(map(str, VOTES[image_id]))} 1 22 1396"
        for number, image_id in enumerate(ids, start=1)
    ]
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    (root / "generic_test.jpgl").write_text(f"{TEST_ID}\n")
    for image_id in ids:
        (root / "images" / f"{image_id}.jpg").write_bytes(image_bytes(seed=int(image_id) % 97))
    return root


def _load(output: Path, tmp_path: Path):
    """``load_dataset(output)`` with a fresh cache under ``tmp_path`` (nothing goes to ~/.cache)."""
    return load_dataset(str(output), cache_dir=str(tmp_path / "hf-cache" / secrets.token_hex(4)))


def _rows(dataset) -> dict[str, int]:
    return {split: part.num_rows for split, part in dataset.items()}


def _files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _leftovers(parent: Path, name: str = "out") -> list[str]:
    """Temporary folders of builds into ``parent/name`` (the lock file is not one)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.") and p.is_dir())


def _fail_in_split(monkeypatch, split: str, error: BaseException) -> None:
    """Make the shard writer raise ``error`` on the first row of ``split``."""
    add = parquet._ShardWriter.add

    def failing_add(self, *args, **kwargs):
        if self.split == split:
            raise error
        return add(self, *args, **kwargs)

    monkeypatch.setattr(parquet._ShardWriter, "add", failing_add)


# ---------------------------------------------------------------------------------------------------
# 2. A build that does not finish never loads as a dataset


@pytest.mark.parametrize(
    "error",
    [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")],
    ids=["ctrl-c", "disk-full"],
)
def test_an_interrupted_build_leaves_no_dataset_and_no_temporary_folder(tmp_path, monkeypatch, error):
    data_dir, output = _ava(tmp_path / "AVA"), tmp_path / "out"
    _fail_in_split(monkeypatch, "test", error)  # train is written, then the test split fails
    with pytest.raises(type(error)):
        prepare_dataset("ava", data_dir, output, progress=False)
    assert not output.exists()
    with pytest.raises(FileNotFoundError):
        _load(output, tmp_path)
    assert _leftovers(tmp_path) == []


def test_a_failure_after_the_shards_leaves_no_dataset(tmp_path, monkeypatch):
    def failing_write_csv(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BuildReport, "write_csv", failing_write_csv)  # the report is written last
    with pytest.raises(OSError, match="No space left"):
        prepare_dataset("ava", _ava(tmp_path / "AVA"), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------------
# 3. --overwrite keeps the earlier dataset until the new one is complete, and never deletes user files


def _build_then_grow(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """Build 3 rows (train 2, test 1), then add a 4th row to the source; returns its folder, the output
    and the files of the first build."""
    data_dir, output = _ava(tmp_path / "AVA", ids=("953619", "953958", TEST_ID)), tmp_path / "out"
    prepare_dataset("ava", data_dir, output, progress=False)
    assert _rows(_load(output, tmp_path)) == {"train": 2, "test": 1}
    _ava(data_dir)  # now 4 rows: a rebuild gives train 3
    return data_dir, output, _files(output)


def test_an_interrupted_rebuild_keeps_the_earlier_dataset(tmp_path, monkeypatch):
    data_dir, output, before = _build_then_grow(tmp_path)
    _fail_in_split(monkeypatch, "test", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("ava", data_dir, output, overwrite=True, progress=False)
    assert _files(output) == before
    assert _rows(_load(output, tmp_path)) == {"train": 2, "test": 1}
    assert _leftovers(tmp_path) == []

    monkeypatch.undo()
    prepare_dataset("ava", data_dir, output, overwrite=True, progress=False)
    assert _rows(_load(output, tmp_path)) == {"train": 3, "test": 1}
    assert _leftovers(tmp_path) == []  # the earlier dataset, set aside during the swap, is gone


def test_a_rebuild_interrupted_during_the_swap_puts_the_earlier_dataset_back(tmp_path, monkeypatch):
    data_dir, output, before = _build_then_grow(tmp_path)
    rename = pathlib.Path.rename

    def interrupted_rename(self, target):
        if self.name.startswith(".out.building-"):  # the new build moving into place
            raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(pathlib.Path, "rename", interrupted_rename)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("ava", data_dir, output, overwrite=True, progress=False)
    monkeypatch.undo()
    assert _files(output) == before and _leftovers(tmp_path) == []
    assert _rows(_load(output, tmp_path)) == {"train": 2, "test": 1}


def test_the_next_build_tidies_after_a_build_killed_mid_swap(tmp_path):
    data_dir, output, before = _build_then_grow(tmp_path)
    # What `kill -9` during a swap leaves: the earlier dataset set aside, a half-written build.
    output.rename(tmp_path / ".out.replaced-4242-0123abcd")
    (tmp_path / ".out.building-4242-89abcdef" / "data").mkdir(parents=True)
    (tmp_path / ".out.building-4242-89abcdef" / "data" / "train-00000.parquet.partial").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="--overwrite"):  # the earlier dataset is back: not replaced
        prepare_dataset("ava", data_dir, output, progress=False)
    assert _files(output) == before and _leftovers(tmp_path) == []
    assert _rows(_load(output, tmp_path)) == {"train": 2, "test": 1}


def test_overwrite_refuses_an_output_holding_files_it_did_not_write(tmp_path, capsys):
    data_dir, output, before = _build_then_grow(tmp_path)
    (output / "data" / "my_scores.parquet").write_bytes(b"mine")
    (output / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"data/my_scores\.parquet, notes\.txt"):
        prepare_dataset("ava", data_dir, output, overwrite=True, progress=False)
    argv = ["ava", "--data-dir", str(data_dir), "--output", str(output), "--overwrite", "--no-progress"]
    assert main(argv) == 2
    assert "data/my_scores.parquet" in capsys.readouterr().err
    assert (output / "data" / "my_scores.parquet").read_bytes() == b"mine"
    assert (output / "notes.txt").read_text() == "mine"
    assert {name: digest for name, digest in _files(output).items() if name in before} == before
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------------
# 4. Two builds into one output


def test_a_second_build_into_the_same_output_is_refused(tmp_path, monkeypatch, capsys):
    data_dir, output = _ava(tmp_path / "AVA"), tmp_path / "out"
    close = parquet._ShardWriter.close
    second: dict[str, object] = {}

    def close_then_start_another_build(self):
        if not second:  # while the first build writes its first split
            second["started"] = True
            argv = [
                "ava",
                "--data-dir",
                str(data_dir),
                "--output",
                str(output),
                "--overwrite",
                "--no-progress",
            ]
            second["code"] = main(argv)
            second["err"] = capsys.readouterr().err
        return close(self)

    monkeypatch.setattr(parquet._ShardWriter, "close", close_then_start_another_build)
    prepared = prepare_dataset("ava", data_dir, output, progress=False)
    assert second["code"] == 2
    assert str(output.resolve()) in second["err"] and ".out.lock" in second["err"]
    assert _rows(prepared.load(cache_dir=tmp_path / "hf-cache")) == {"train": 3, "test": 1}
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------------
# 5. Bad numbers are skipped and reported, never fatal, never written


def test_counts_are_parsed_in_one_place_and_bad_ones_are_value_errors():
    from aesformer_hf.data.schema import parse_count

    assert [parse_count(text) for text in ("12", " 7 ", "12.0", "1e2", "0", "-3")] == [12, 7, 12, 100, 0, -3]
    for text in ("2.7", "inf", "-inf", "nan", "", "abc", "1e12", "99999999999", "1e400"):
        with pytest.raises(ValueError):
            parse_count(text)


def _skipped(report: BuildReport) -> dict[str, str]:
    return {entry.image_id: entry.code for entry in report.by_action("skipped")}


def test_ava_csv_with_inf_nan_and_fractional_votes(tmp_path):
    header = "image_id," + ",".join(f"score{n}" for n in range(2, 12)) + ",tag1,tag2,tag3\n"
    valid = "0,1,5,17,38,36,15,6,5,1"
    (tmp_path / "train.csv").write_text(
        header
        + f"1001,{valid},1,22,1396\n"
        + "1002,0,1,5,17,inf,36,15,6,5,1,1,22,1396\n"
        + "1003,0,1,5,17,2.7,36,15,6,5,1,1,22,1396\n"
        + "1004,0,1,5,17,nan,36,15,6,5,1,1,22,1396\n"
        + "1005,0.0,1.0,5.0,17.0,38.0,36.0,15.0,6.0,5.0,1.0,1.0,22.0,1396.0\n"  # pandas' floats: fine
        + f"1006,{valid},inf,22,1396\n"
        + "1007,0,1,5,17,1e12,36,15,6,5,1,1,22,1396\n"
    )
    (tmp_path / "test.csv").write_text(header + f"2001,{valid},1,22,1396\n")
    source = read_ava(tmp_path)  # used to raise OverflowError on the inf vote
    ids = {split: [record.image_id for record in records] for split, records in source.splits.items()}
    assert ids == {"train": ["1001", "1005"], "test": ["2001"]}
    assert source.splits["train"][1].columns["votes"] == [int(v) for v in valid.split(",")]
    assert _skipped(source.report) == {
        image_id: "malformed_row" for image_id in ("1002", "1003", "1004", "1006", "1007")
    }
    assert "2.7" in next(e.detail for e in source.report.entries if e.image_id == "1003")


def test_photonet_with_inf_nan_and_fractional_votes(tmp_path):
    rows = {
        "11": "0  0  0  3  5  7  0",
        "12": "0  0  inf  3  5  7  0",
        "13": "0  0  2.7  3  5  7  0",
        "14": "0  0  nan  3  5  7  0",
        "15": "1e400  0  0  0  0  0  1",
        "16": "0.0  0.0  1.0  1.0  1.0  1.0  1.0",
    }
    lines = [",index,comment,label,score,class"]
    lines += [f"{n},{image_id},[],{label},4.0,2" for n, (image_id, label) in enumerate(rows.items())]
    (tmp_path / "train.csv").write_text("\r\n".join(lines) + "\r\n")
    (tmp_path / "test.csv").write_text(",index,comment,label,score,class\r\n0,21,[],1 1 1 1 1 1 1,4.0,2\r\n")
    source = read_photonet(tmp_path)  # used to raise OverflowError on the inf vote
    assert [record.image_id for record in source.splits["train"]] == ["11", "16"]
    assert _skipped(source.report) == {image_id: "bad_votes" for image_id in ("12", "13", "14", "15")}


def test_jas_quality_out_of_range_or_not_a_number_is_skipped_once(tmp_path):
    sheet = "File name,Aesthetic Quality,Beauty,Liking of Color,Liking of Composition,Liking of Content,Familiarity,Artist\n"
    split_header = "name,Quality,Beauty,Color,Composition,Content,Familiarity,Artist\n"
    (tmp_path / "Subjective scores.csv").write_text(
        sheet
        + "Good1.jpg,60,70,70,70,70,0,0\n"
        + "NanQ.jpg,nan,70,70,70,70,0,0\n"
        + "InfQ.jpg,inf,70,70,70,70,0,0\n"
        + "Neg.jpg,-40,70,70,70,70,0,0\n"
        + "Big.jpg,250,70,70,70,70,0,0\n"
        + "BadBeauty.jpg,55,nan,70,170,70,inf,0\n"
        + "SplitBad.jpg,45,70,70,70,70,0,0\n"
    )
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train.csv").write_text(
        split_header
        + "Good1.jpg,60,70,70,70,70,0,0\nNanQ.jpg,nan,70,70,70,70,0,0\nInfQ.jpg,inf,70,70,70,70,0,0\n"
    )
    (splits / "test.csv").write_text(
        split_header
        + "Neg.jpg,-40,70,70,70,70,0,0\nBig.jpg,250,70,70,70,70,0,0\n"
        + "BadBeauty.jpg,55,nan,70,170,70,inf,0\nSplitBad.jpg,nan,70,70,70,70,0,0\n"
    )
    source = read_jas(tmp_path, split_file=splits)
    ids = {split: [record.image_id for record in records] for split, records in source.splits.items()}
    assert ids == {"train": ["Good1"], "test": ["BadBeauty", "SplitBad"]}
    entries = sorted((e.image_id, e.action, e.code) for e in source.report.entries)
    assert entries == [
        ("BadBeauty", "repaired", "bad_value"),  # beauty nan
        ("BadBeauty", "repaired", "bad_value"),  # composition 170
        ("BadBeauty", "repaired", "bad_value"),  # familiarity inf
        ("Big", "skipped", "bad_score"),
        ("InfQ", "skipped", "bad_score"),
        ("NanQ", "skipped", "bad_score"),  # bad in both files: once, and no "score_mismatch nan vs nan"
        ("Neg", "skipped", "bad_score"),
        ("SplitBad", "warning", "score_mismatch"),  # the spreadsheet's 45 is used
    ]
    for records in source.splits.values():
        for record in records:
            assert 0 <= record.columns["quality"] <= 100 and 0 <= record.columns["score"] <= 1
            assert all(
                value is None or math.isfinite(value)
                for value in record.columns.values()
                if isinstance(value, float)
            )
    bad_beauty = source.splits["test"][0].columns
    assert (
        bad_beauty["beauty"] is None
        and bad_beauty["composition"] is None
        and bad_beauty["familiarity"] is None
    )
    assert bad_beauty["color"] == 70 and source.splits["test"][1].columns["quality"] == 45


# ---------------------------------------------------------------------------------------------------
# 6. A split whose rows were all skipped


def test_a_split_with_every_row_skipped_keeps_the_dataset_loadable(tmp_path, capsys):
    data_dir, output = _ava(tmp_path / "AVA"), tmp_path / "out"
    (data_dir / "images" / f"{TEST_ID}.jpg").unlink()  # the only test row: skipped
    argv = ["ava", "--data-dir", str(data_dir), "--output", str(output), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "(train 3, test 0)" in printed and "empty: test" in printed
    assert _rows(_load(output, tmp_path)) == {"train": 3}  # `datasets` cannot load a 0-row split
    report = (output / "build_report.csv").read_text()
    assert "empty_split" in report and "missing_image" in report
    assert "| test | 0 (every row was skipped" in (output / "README.md").read_text()
    assert not list((output / "data").glob("test-*"))


def test_every_row_skipped_is_an_error_and_writes_nothing(tmp_path):
    data_dir, output = _ava(tmp_path / "AVA"), tmp_path / "out"
    for image in (data_dir / "images").iterdir():
        image.unlink()
    with pytest.raises(ValueError, match="every row was skipped \\(missing_image 4\\)"):
        prepare_dataset("ava", data_dir, output, progress=False)
    assert not output.exists() and _leftovers(tmp_path) == []


def test_a_row_group_whose_rows_are_all_unwritable_leaves_the_split_loadable(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "ROWS_PER_ROW_GROUP", 1)  # each row is its own row group
    data_dir, output = _ava(tmp_path / "AVA"), tmp_path / "out"
    source = read_ava(data_dir)
    source.splits["train"][0].columns["votes"] = [1, 2, 3]  # 3 counts where the features want 10
    from aesformer_hf.data.prepare import build_dataset

    build_dataset(source, output, progress=False)
    assert _rows(_load(output, tmp_path)) == {"train": 2, "test": 1}
    assert _skipped(source.report) == {"953619": "unwritable_row"}
