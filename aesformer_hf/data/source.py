"""What a dataset builder hands to the writer: parsed rows per split, before any image is read.

Parsing the label files is fast and happens once, in the main process; reading and checking the
images is the slow part and happens later, in parallel, in :mod:`aesformer_hf.data.parquet`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasets import Features

from aesformer_hf.data.images import ImageIndex
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.schema import AestheticDatasetSpec
from aesformer_hf.data.splits import order_splits
from aesformer_hf.models.aesformer.configuration_aesformer import PIPELINE_TASK


@dataclass(frozen=True)
class ImageRecord:
    """One row whose labels are parsed and whose image is still to be read.

    ``columns`` holds every column of the features except ``image`` and ``image_id``;
    ``location`` names the label file and line, for the report.
    """

    image_id: str
    columns: dict[str, Any]
    location: str = ""


@dataclass(frozen=True)
class DatasetDescription:
    """Text for the dataset card: what the data is, where it comes from, what one may do with it."""

    pretty_name: str
    summary: str
    homepage: str
    license_name: str
    license_link: str  # a URL to the terms (the Hub wants one when the license is "other")
    license_notice: str
    citation: str
    column_notes: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = (PIPELINE_TASK, "aesformer")


@dataclass
class DatasetSource:
    """A parsed local copy of one dataset: the spec, the features and the rows of each split."""

    spec: AestheticDatasetSpec
    features: Features
    splits: dict[str, list[ImageRecord]]
    images: ImageIndex
    description: DatasetDescription
    report: BuildReport = field(default_factory=BuildReport)
    notes: list[str] = field(default_factory=list)  # facts about the build for the card and summary

    def __post_init__(self):
        self.splits = {name: self.splits[name] for name in order_splits(self.splits)}

    @property
    def name(self) -> str:
        return self.spec.name

    def num_records(self) -> dict[str, int]:
        """Rows per split before the images are checked."""
        return {split: len(records) for split, records in self.splits.items()}


def group_by_split(
    records: dict[str, ImageRecord], assignment: dict[str, str]
) -> dict[str, list[ImageRecord]]:
    """`{split: [records]}` from `{id: record}` and `{id: split}`, keeping the records' order within a split."""
    splits: dict[str, list[ImageRecord]] = {}
    for image_id, record in records.items():
        splits.setdefault(assignment[image_id], []).append(record)
    return splits
