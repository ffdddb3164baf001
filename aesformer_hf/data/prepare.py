"""From a local copy to Parquet (and the Hub): ``prepare_dataset``, the library behind ``aesformer-hf prepare-dataset``.

::

    aesformer-hf prepare-dataset ava --data-dir ~/data/AVA --comments ~/data/AVA_comments \\
        --output ~/data/ava-parquet --num-proc 8 --push-to-hub my-org/ava-aesformer

In Python, ``prepare_dataset("ava", data_dir, output_dir, ...)`` does the same and returns a
:class:`PreparedDataset`, whose :meth:`~PreparedDataset.load` gives the ``DatasetDict``. The command itself
(arguments, messages, exit codes) is :mod:`aesformer_hf.commands.prepare_dataset`.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aesformer_hf.data.ava import read_ava
from aesformer_hf.data.card import render_dataset_card
from aesformer_hf.data.jas import read_jas
from aesformer_hf.data.output import (
    check_output,
    new_staging_folder,
    output_lock,
    publish,
    recover_interrupted,
)
from aesformer_hf.data.parquet import (
    DEFAULT_MAX_SHARD_BYTES,
    REPORT_FILENAME,
    WrittenSplit,
    write_parquet_splits,
)
from aesformer_hf.data.photonet import read_photonet
from aesformer_hf.data.push import push_dataset_folder
from aesformer_hf.data.report import SKIPPED, BuildReport
from aesformer_hf.data.schema import AestheticDatasetSpec, write_spec_file
from aesformer_hf.data.source import DatasetSource

DATASET_READERS: dict[str, Callable[..., DatasetSource]] = {
    "ava": read_ava,
    "photonet": read_photonet,
    "jas": read_jas,
}


@dataclass
class PreparedDataset:
    """A dataset written to ``output_dir``: its spec, splits, report and (if pushed) Hub URL."""

    output_dir: Path
    spec: AestheticDatasetSpec
    splits: dict[str, WrittenSplit]
    report: BuildReport
    summary: str
    hub_url: str | None = None

    def load(self, streaming: bool = False, cache_dir: str | os.PathLike | None = None):
        """``load_dataset(output_dir)``: a ``DatasetDict`` (or ``IterableDatasetDict`` when streaming)."""
        from datasets import load_dataset

        return load_dataset(
            str(self.output_dir), streaming=streaming, cache_dir=None if cache_dir is None else str(cache_dir)
        )


def build_dataset(
    source: DatasetSource,
    output_dir: str | os.PathLike,
    *,
    num_proc: int = 1,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    overwrite: bool = False,
    progress: bool = True,
) -> PreparedDataset:
    """Write a parsed ``source`` as Parquet shards + card + spec + report into ``output_dir``.

    All or nothing (see :mod:`aesformer_hf.data.output`): the build is written into a staging
    folder beside ``output_dir`` under an exclusive lock and moved into place only when complete;
    a failed build leaves ``output_dir`` as it was. A split whose rows were all skipped is reported
    and left out of the card (``datasets`` cannot load a split of 0 rows); when every split is
    empty there is no dataset and ``ValueError`` says why.
    """
    output = Path(output_dir).expanduser().resolve()
    with output_lock(output):
        recover_interrupted(output)
        check_output(output, overwrite)
        staging = new_staging_folder(output)
        try:
            splits = write_parquet_splits(
                source, staging, num_proc=num_proc, max_shard_bytes=max_shard_bytes, progress=progress
            )
            _report_empty_splits(source, splits, output)
            card = render_dataset_card(
                source.description, source.spec, source.features, splits, source.report, source.notes
            )
            (staging / "README.md").write_text(card, encoding="utf-8")
            write_spec_file(source.spec, staging)
            source.report.write_csv(staging / REPORT_FILENAME)
            check_output(output, overwrite)  # again: a file may have been put there during the build
            publish(staging, output)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone once published; else an unfinished build
    output = Path(output_dir)
    summary = source.report.summary(source.name, {name: split.num_rows for name, split in splits.items()})
    summary += "".join(f"\n  note: {note}" for note in source.notes)
    summary += f"\n  report: {output / REPORT_FILENAME}"
    return PreparedDataset(output, source.spec, splits, source.report, summary)


def _report_empty_splits(source: DatasetSource, splits: dict[str, WrittenSplit], output: Path) -> None:
    if not any(split.num_rows for split in splits.values()):
        skipped = source.report.counts().get(SKIPPED, Counter())
        reasons = ", ".join(f"{code} {number:,}" for code, number in skipped.most_common()) or "no rows"
        raise ValueError(
            f"{source.name}: every row was skipped ({reasons}); there is no dataset to write and "
            f"{output} is left as it was"
        )
    records = source.num_records()
    for name, split in splits.items():
        if not split.num_rows:
            source.report.warn(
                "",
                "empty_split",
                f"the {name} split has no rows ({records.get(name, 0):,} skipped): it is left out of the "
                "dataset, which `datasets` could not load with an empty split",
                name,
            )


def prepare_dataset(
    name: str,
    data_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    num_proc: int = 1,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    overwrite: bool = False,
    progress: bool = True,
    push_to_hub: str | None = None,
    private: bool = True,
    token: str | None = None,
    **reader_kwargs,
) -> PreparedDataset:
    """Read dataset ``name`` (``"ava"``, ``"photonet"``, ``"jas"``) from ``data_dir``, write it to
    ``output_dir`` and, with ``push_to_hub="org/name"``, upload it (private unless ``private=False``).

    ``reader_kwargs`` go to :func:`read_ava` / :func:`read_photonet` / :func:`read_jas`
    (``comments``, ``split_file``, ``images_dir``, ``test_fraction``, ``validation_fraction``, ``seed``).
    """
    if name not in DATASET_READERS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(DATASET_READERS)}")
    if Path(output_dir).resolve() == Path(data_dir).resolve():
        raise ValueError(
            f"--output must differ from --data-dir ({data_dir}): the build never writes into your copy"
        )
    # Refuse an unusable output before reading the source; build_dataset checks again under the lock.
    check_output(Path(output_dir).expanduser().resolve(), overwrite)
    source = DATASET_READERS[name](data_dir, **reader_kwargs)
    prepared = build_dataset(
        source,
        output_dir,
        num_proc=num_proc,
        max_shard_bytes=max_shard_bytes,
        overwrite=overwrite,
        progress=progress,
    )
    if push_to_hub:
        prepared.hub_url = push_dataset_folder(prepared.output_dir, push_to_hub, private=private, token=token)
        prepared.summary += f"\n  pushed to {prepared.hub_url} ({'private' if private else 'PUBLIC'})"
    return prepared
