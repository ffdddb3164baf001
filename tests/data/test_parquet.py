"""The shard writer: bounded shards, an empty split, a row that cannot be stored."""

from __future__ import annotations

import pyarrow.parquet as pq
from datasets import Features

from aesformer_hf.data.images import ImageIndex
from aesformer_hf.data.parquet import write_parquet_splits
from aesformer_hf.data.photonet import PHOTONET_DESCRIPTION, PHOTONET_FEATURES
from aesformer_hf.data.schema import PHOTONET_SPEC, get_dataset_spec, targets_from_votes
from aesformer_hf.data.source import DatasetSource, ImageRecord

from .helpers import write_image


def _record(image_id: str, votes: list[int]) -> ImageRecord:
    distribution, score, label = targets_from_votes(votes, PHOTONET_SPEC)
    columns = {
        "votes": votes,
        "distribution": distribution,
        "score": score,
        "label": label,
        "comments": ["ok"],
    }
    return ImageRecord(image_id, columns, f"test.csv:{image_id}")


def test_a_row_that_does_not_fit_the_schema_is_skipped_alone(tmp_path):
    for image_id in ("1", "2", "3"):
        write_image(tmp_path / "images" / f"{image_id}.jpg", seed=int(image_id))
    bad = _record("2", [1, 1, 1, 1, 1, 1, 1])
    bad.columns["votes"] = [1, 1, 1]  # 3 counts where the features want 7
    source = DatasetSource(
        spec=PHOTONET_SPEC,
        features=PHOTONET_FEATURES,
        splits={
            "test": [_record("1", [0, 0, 0, 1, 0, 0, 0]), bad, _record("3", [0, 0, 0, 0, 0, 0, 2])],
            "train": [],
        },
        images=ImageIndex([tmp_path / "images"]),
        description=PHOTONET_DESCRIPTION,
    )
    written = write_parquet_splits(source, tmp_path / "out", progress=False)
    assert list(written) == ["train", "test"]  # split order, whatever the dict order
    assert written["test"].num_rows == 2 and written["train"].num_rows == 0
    table = pq.read_table(tmp_path / "out" / written["test"].files[0])
    assert table.column("image_id").to_pylist() == ["1", "3"]
    assert [(e.image_id, e.code) for e in source.report.entries] == [("2", "unwritable_row")]
    assert get_dataset_spec(Features.from_arrow_schema(table.schema)) == PHOTONET_SPEC
    # An empty split gets no shard (`datasets` cannot load a 0-row split; the card leaves it out).
    assert written["train"].files == () and not list((tmp_path / "out" / "data").glob("train-*"))
