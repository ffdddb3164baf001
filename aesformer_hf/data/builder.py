"""The steps every dataset builder shares, around the parsing that is each dataset's own.

Each builder (``read_ava``, ``read_photonet``, ``read_jas``) declares its dataset once (a
:class:`DatasetBuilder`) and reads a copy as::

    build = PHOTONET_BUILDER.start(data_dir)           # the folder must exist; an empty report and notes
    ...parse the label files into {id: ImageRecord}, keeping the first row of an id (build.keep_first)...
    assignment = build.assign_splits(records, split_file, test_fraction, validation_fraction, seed, named=...)
    return build.finish(records, assignment, images_dir)  # the DatasetSource

so that the split rules, their notes and refusals, and the source handed to the writer are the same for every
dataset.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features

from aesformer_hf.data.images import ImageIndex, image_roots
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.schema import DATASET_FACTS, AestheticDatasetSpec
from aesformer_hf.data.source import DatasetDescription, DatasetSource, ImageRecord, group_by_split
from aesformer_hf.data.splits import TEST, TRAIN, carve_validation, read_id_list, seeded_split


@dataclass(frozen=True)
class DatasetBuilder:
    """One dataset, as the shared build steps need it.

    Args:
        spec: the dataset's scale; its ``name`` keys ``DATASET_FACTS``, whose ``title`` messages use.
        features: the columns the builder writes.
        description: the text of the dataset card.
        expected_layout: the accepted ``data_dir`` layout, quoted when something is missing.
        image_folders: folders below ``data_dir`` searched first for the images (else all of ``data_dir``).
        splits_named_by: what names the splits when the label files do (``"the CSV file names"``), for notes.
        no_split: what to pass when nothing defines the splits, for the error.
        unit: what the rows are, for the notes (``"rows"``, ``"paintings"``).
    """

    spec: AestheticDatasetSpec
    features: Features
    description: DatasetDescription
    expected_layout: str
    image_folders: tuple[str, ...]
    splits_named_by: str
    no_split: str
    unit: str = "rows"

    @property
    def title(self) -> str:
        return DATASET_FACTS[self.spec.name].title

    def start(self, data_dir: str | os.PathLike) -> DatasetBuild:
        """A build of the copy in ``data_dir``; ``FileNotFoundError`` when there is no such folder."""
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise FileNotFoundError(f"{self.title} data dir not found: {data_dir} ({self.expected_layout})")
        return DatasetBuild(self, data_dir)


@dataclass
class DatasetBuild:
    """One build in progress: what it reports and notes, and the steps after parsing."""

    builder: DatasetBuilder
    data_dir: Path
    report: BuildReport = field(default_factory=BuildReport)
    notes: list[str] = field(default_factory=list)  # facts about the build, for the card and the summary

    def keep_first(self, rows: Mapping[str, Any], image_id: str, location: str, kind: str = "id") -> bool:
        """True when ``image_id`` is not in ``rows`` yet; else a ``duplicate_id`` skip naming the first."""
        if image_id not in rows:
            return True
        first = rows[image_id].location
        self.report.skip(image_id, "duplicate_id", f"{kind} already on {first}; kept the first", location)
        return False

    def assign_splits(
        self,
        ids: Iterable[str],
        split_file: str | os.PathLike | None,
        test_fraction: float | None,
        validation_fraction: float,
        seed: int,
        *,
        named: Mapping[str, str] | None = None,
        named_by: str | None = None,
        test_list: Path | None = None,
    ) -> dict[str, str]:
        """``{id: split}`` for ``ids``, by the first rule the dataset gives, then a carved validation split.

        1. ``split_file``, a list of test ids (``.jpgl``): those are test, every other id train;
        2. ``named``, the splits the label files name (``train.csv`` -> train; :func:`splits_named_by_files`),
           noted as ``named_by`` (default: the builder's ``splits_named_by``);
        3. ``test_list``, the dataset's own list of test ids (AVA's ``generic_test.jpgl``), as 1;
        4. ``test_fraction``, a seeded random test split of that share of the ids.

        Then ``validation_fraction`` of the train ids (seeded) become validation, refused when the label files
        already name a validation split. Listed test ids without a row are reported.

        Raises:
            FileNotFoundError: ``split_file`` does not exist, or no rule applies.
        """
        ids = list(ids)
        named_by = named_by or self.builder.splits_named_by
        if split_file is not None:
            if not Path(split_file).is_file():
                raise FileNotFoundError(
                    f"split file not found: {split_file} (expected a list of test image ids, one per line)"
                )
            assignment = self._test_list_split(ids, Path(split_file))
        elif named is not None:
            self.notes.append(f"splits from {named_by}")
            assignment = dict(named)
        elif test_list is not None:
            assignment = self._test_list_split(ids, test_list)
        elif test_fraction is not None:
            self.notes.append(
                f"test: seeded random {test_fraction:.0%} of the {self.builder.unit} (seed {seed})"
            )
            assignment = seeded_split(ids, {TEST: test_fraction}, seed)
        else:
            raise FileNotFoundError(
                f"no split for {self.builder.title} in {self.data_dir}: {self.builder.no_split}"
            )
        carve_validation(assignment, validation_fraction, seed, self.notes, named_by)
        return assignment

    def _test_list_split(self, ids: list[str], test_list: Path) -> dict[str, str]:
        test_ids = read_id_list(test_list)
        self.notes.append(
            f"test split: the {len(set(test_ids)):,} ids of {test_list.name}; train: every other row"
        )
        known = set(ids)
        for image_id in dict.fromkeys(test_ids):
            if image_id not in known:
                self.report.warn(
                    image_id,
                    "split_id_without_label",
                    f"listed in {test_list.name} but has no usable label row",
                )
        test_set = set(test_ids)
        return {image_id: TEST if image_id in test_set else TRAIN for image_id in ids}

    def finish(
        self,
        records: dict[str, ImageRecord],
        assignment: Mapping[str, str],
        images_dir: str | os.PathLike | None,
    ) -> DatasetSource:
        """The :class:`DatasetSource` of ``records`` (``{id: record}``, each id in ``assignment``)."""
        builder = self.builder
        return DatasetSource(
            spec=builder.spec,
            features=builder.features,
            splits=group_by_split(records, dict(assignment)),
            images=ImageIndex(image_roots(self.data_dir, images_dir, builder.image_folders)),
            description=builder.description,
            report=self.report,
            notes=self.notes,
        )


def splits_named_by_files(file_splits: Mapping[str, str | None]) -> dict[str, str] | None:
    """``file_splits`` (``{id: the split its label file names, or None}``) when no id lacks one, else None."""
    if file_splits and all(split is not None for split in file_splits.values()):
        return dict(file_splits)
    return None
