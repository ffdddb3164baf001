"""The build steps the AVA, Photo.net and JAS builders share: the split rules, their notes and refusals."""

from __future__ import annotations

import pytest

from aesformer_hf.data.ava import AVA_BUILDER
from aesformer_hf.data.builder import splits_named_by_files
from aesformer_hf.data.jas import JAS_BUILDER
from aesformer_hf.data.photonet import PHOTONET_BUILDER
from aesformer_hf.data.schema import DATASET_FACTS
from aesformer_hf.data.splits import TEST, TRAIN, VALIDATION

IDS = ["a", "b", "c", "d"]
NAMED = {"a": TRAIN, "b": TRAIN, "c": VALIDATION, "d": TEST}


def _assign(build, split_file=None, test_fraction=None, validation_fraction=0.0, **rules):
    return build.assign_splits(IDS, split_file, test_fraction, validation_fraction, 7, **rules)


def test_the_first_rule_a_dataset_gives_assigns_the_splits(tmp_path):
    listed = tmp_path / "test.jpgl"
    listed.write_text("b\r\nd.jpg\nzz\n")
    default = tmp_path / "generic_test.jpgl"
    default.write_text("a\n")
    build = AVA_BUILDER.start(tmp_path)
    by_file = _assign(build, split_file=listed, named=NAMED, test_list=default, test_fraction=0.5)
    assert by_file == {"a": TRAIN, "b": TEST, "c": TRAIN, "d": TEST}
    assert [(e.image_id, e.code) for e in build.report.entries] == [("zz", "split_id_without_label")]
    assert _assign(build, named=NAMED, test_list=default, test_fraction=0.5) == NAMED
    assert _assign(build, test_list=default, test_fraction=0.5) == {
        "a": TEST,
        "b": TRAIN,
        "c": TRAIN,
        "d": TRAIN,
    }
    seeded = _assign(build, test_fraction=0.5)
    assert sorted(seeded.values()) == [TEST, TEST, TRAIN, TRAIN]
    assert _assign(build, test_fraction=0.5) == seeded  # the same seed and ids, the same split
    assert build.notes == [
        "test split: the 3 ids of test.jpgl; train: every other row",
        "splits from the label CSV file names",
        "test split: the 1 ids of generic_test.jpgl; train: every other row",
        "test: seeded random 50% of the rows (seed 7)",
        "test: seeded random 50% of the rows (seed 7)",
    ]


@pytest.mark.parametrize("builder", [AVA_BUILDER, PHOTONET_BUILDER, JAS_BUILDER], ids=lambda b: b.spec.name)
def test_every_builder_refuses_alike(builder, tmp_path):
    title = DATASET_FACTS[builder.spec.name].title
    with pytest.raises(FileNotFoundError, match=f"{title} data dir not found"):
        builder.start(tmp_path / "missing")
    build = builder.start(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"no split for {title} in .*--test-fraction"):
        _assign(build)
    with pytest.raises(FileNotFoundError, match="split file not found"):
        _assign(build, split_file=tmp_path / "missing.jpgl")
    with pytest.raises(ValueError, match=f"{builder.splits_named_by} already define a validation split"):
        _assign(build, named=NAMED, validation_fraction=0.5)
    carved = _assign(build, named={name: TRAIN for name in IDS}, validation_fraction=0.5)
    assert sorted(carved.values()) == [TRAIN, TRAIN, VALIDATION, VALIDATION]
    assert build.notes[-1] == "validation: seeded 50% of train (seed 7)"
    # Each builder's card text cites and licenses the dataset from the one registry.
    assert builder.description.citation == DATASET_FACTS[builder.spec.name].citation
    assert builder.description.license_notice == DATASET_FACTS[builder.spec.name].licence


def test_splits_named_by_the_files_count_only_when_every_row_has_one():
    assert splits_named_by_files({"a": TRAIN, "b": TEST}) == {"a": TRAIN, "b": TEST}
    assert splits_named_by_files({"a": TRAIN, "b": None}) is None
    assert splits_named_by_files({}) is None


def test_keep_first_reports_the_later_duplicate(tmp_path):
    build = PHOTONET_BUILDER.start(tmp_path)

    class Row:
        location = "train.csv:2"

    rows = {"a": Row()}
    assert build.keep_first(rows, "b", "test.csv:3")
    assert not build.keep_first(rows, "a", "test.csv:4", kind="name")
    [entry] = build.report.entries
    assert (entry.image_id, entry.code, entry.location) == ("a", "duplicate_id", "test.csv:4")
    assert entry.detail == "name already on train.csv:2; kept the first"
