"""Writing a :class:`DatasetSource` as Hub-layout Parquet shards with the images embedded.

Layout of the output folder (what ``load_dataset(folder)`` and the Hub read)::

    data/train-00000-of-00003.parquet     one file per ~500 MB, 100 rows per row group
    data/test-00000-of-00001.parquet
    README.md                              the dataset card (configs, features, splits, spec)
    aesthetic_spec.json                    the spec, for tools that do not read features
    build_report.csv                       every skipped / repaired row (stays local)

Rows are written in one streaming pass: images are read and checked in ``num_proc`` worker
processes, a window at a time, in order, so memory stays flat on AVA's 255k images and the
output is the same whatever ``num_proc`` is. Each shard carries the ``datasets`` features in its
schema metadata, so the columns (and the spec inside them) survive without the card.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features
from tqdm.auto import tqdm

from aesformer_hf.data.images import ImageOutcome, load_image_for_dataset
from aesformer_hf.data.source import DatasetSource, ImageRecord

DATA_FOLDER = "data"
REPORT_FILENAME = "build_report.csv"
DEFAULT_MAX_SHARD_BYTES = 500 * 2**20
ROWS_PER_ROW_GROUP = 100  # small row groups keep streaming and the Hub viewer light on image data
_WINDOW_PER_PROCESS = 64


@dataclass(frozen=True)
class WrittenSplit:
    """One split on disk: its row count, its bytes on disk and its shard files (relative paths)."""

    name: str
    num_rows: int
    num_bytes: int
    files: tuple[str, ...]


def split_pattern(split: str) -> str:
    """The ``data_files`` glob of ``split`` inside the output folder."""
    return f"{DATA_FOLDER}/{split}-*.parquet"


def write_parquet_splits(
    source: DatasetSource,
    output_dir: str | os.PathLike,
    *,
    num_proc: int = 1,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    progress: bool = True,
) -> dict[str, WrittenSplit]:
    """Read every image of ``source``, write the rows that survive, report the ones that do not.

    Returns ``{split: WrittenSplit}`` in split order. Skipped and converted images go to
    ``source.report``; the caller writes the report and the card.
    """
    data_dir = Path(output_dir) / DATA_FOLDER
    data_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, WrittenSplit] = {}
    pool = multiprocessing.get_context().Pool(num_proc) if num_proc > 1 else None
    try:
        for split, records in source.splits.items():
            shards = _ShardWriter(data_dir, split, source.features, max_shard_bytes, _reporter(source))
            bar = tqdm(total=len(records), desc=f"{source.name} {split}", unit="img", disable=not progress)
            for record, outcome in _checked_images(source, records, pool, num_proc):
                bar.update(1)
                if outcome.skipped:
                    source.report.skip(
                        record.image_id, outcome.code, outcome.detail, f"{split}: {record.location}"
                    )
                    continue
                if outcome.code is not None:
                    source.report.repair(
                        record.image_id, outcome.code, outcome.detail, f"{split}: {record.location}"
                    )
                row = {"image": outcome.image, "image_id": record.image_id, **record.columns}
                shards.add(row, f"{split}: {record.location}", _approximate_bytes(outcome.image, record))
            bar.close()
            written[split] = shards.close()
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return written


def _reporter(source: DatasetSource) -> Callable[[str, str, Exception], None]:
    def report_unwritable(image_id: str, location: str, error: Exception) -> None:
        detail = f"cannot store the row: {type(error).__name__}: {error}"
        source.report.skip(image_id, "unwritable_row", detail, location)

    return report_unwritable


def _checked_images(
    source: DatasetSource, records: list[ImageRecord], pool, num_proc: int
) -> Iterator[tuple[ImageRecord, ImageOutcome]]:
    window = _WINDOW_PER_PROCESS * max(num_proc, 1)
    for start in range(0, len(records), window):
        chunk = records[start : start + window]
        paths = [source.images.find(record.image_id) for record in chunk]
        to_read = [path for path in paths if path is not None]
        if pool is not None:
            read = iter(pool.imap(load_image_for_dataset, to_read, chunksize=4))
        else:
            read = map(load_image_for_dataset, to_read)
        for record, path in zip(chunk, paths):
            if path is None:
                detail = f"no image file named {record.image_id}.<jpg|jpeg|png|...> under {source.images.describe()}"
                yield record, ImageOutcome(None, "missing_image", detail)
                continue
            others = source.images.duplicates(record.image_id)
            if others:
                source.report.warn(
                    record.image_id, "duplicate_image_file", f"used {path}; also found {', '.join(others)}"
                )
            yield record, next(read)


def _approximate_bytes(image: dict, record: ImageRecord) -> int:
    comments = record.columns.get("comments") or []
    return len(image["bytes"]) + sum(len(comment) for comment in comments) + 256


class _ShardWriter:
    """Writes one split's rows into ``<split>-XXXXX-of-YYYYY.parquet`` files of bounded size.

    Rows are plain Python values already in the features' storage form (the image as a
    ``{"bytes", "path"}`` dict, the label as its integer), converted to Arrow a row group at a time.
    A row that does not fit the schema is handed to ``on_bad_row`` and dropped, alone.
    """

    def __init__(
        self,
        directory: Path,
        split: str,
        features: Features,
        max_shard_bytes: int,
        on_bad_row: Callable[[str, str, Exception], None],
    ):
        self.directory = directory
        self.split = split
        self.schema = features.arrow_schema  # carries the ``datasets`` features as metadata
        self.max_shard_bytes = max_shard_bytes
        self.on_bad_row = on_bad_row
        self.partial_files: list[Path] = []
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[tuple[dict, str]] = []
        self.shard_bytes = 0
        self.num_rows = 0
        for stale in directory.glob(f"{split}-*"):  # leftovers of an interrupted run
            stale.unlink()

    def add(self, row: dict, location: str, num_bytes: int) -> None:
        if self.writer is None or self.shard_bytes >= self.max_shard_bytes:
            self._open_next_shard()
        self.buffer.append((row, location))
        self.shard_bytes += num_bytes
        if len(self.buffer) >= ROWS_PER_ROW_GROUP or self.shard_bytes >= self.max_shard_bytes:
            self._flush()

    def _open_next_shard(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        path = self.directory / f"{self.split}-{len(self.partial_files):05d}.parquet.partial"
        self.partial_files.append(path)
        self.writer = pq.ParquetWriter(path, self.schema)
        self.shard_bytes = 0

    def _flush(self) -> None:
        if not self.buffer:
            return
        rows = [row for row, _ in self.buffer]
        try:
            table = pa.Table.from_pylist(rows, schema=self.schema)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            # Rare: find the culprit(s) row by row so that the others are still written.
            batches = []
            for row, location in self.buffer:
                try:
                    batches.append(pa.RecordBatch.from_pylist([row], schema=self.schema))
                except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
                    self.on_bad_row(str(row.get("image_id")), location, error)
            table = pa.Table.from_batches(batches, schema=self.schema).combine_chunks()
        if table.num_rows:  # a row group of 0 rows would make `datasets` fail to read the shard
            self.writer.write_table(table)
        self.num_rows += table.num_rows
        self.buffer = []

    def close(self) -> WrittenSplit:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        if self.num_rows == 0:
            # Every row skipped: no shard. `datasets` cannot load a split of 0 rows, so the card
            # leaves the split out of its configs (render_dataset_card) and it needs no file.
            for partial in self.partial_files:
                partial.unlink()
            return WrittenSplit(self.split, 0, 0, ())
        total = len(self.partial_files)
        files = []
        num_bytes = 0
        for index, partial in enumerate(self.partial_files):
            final = self.directory / f"{self.split}-{index:05d}-of-{total:05d}.parquet"
            partial.replace(final)
            num_bytes += final.stat().st_size
            files.append(f"{DATA_FOLDER}/{final.name}")
        return WrittenSplit(self.split, self.num_rows, num_bytes, tuple(files))
