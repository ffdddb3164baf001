"""Photo.net, as the AesFormer/AesMamba authors distribute its labels and comments.

Accepted ``data_dir`` layout::

    train.csv, test.csv (optional val.csv)  the authors' CSVs, found in data_dir or up to two
                                            folders below (e.g. csvfile/Photo.Net/)
    images/<id>.jpg                         images; also image/, Images/, or anywhere below data_dir

Each CSV (CRLF line endings) has an unnamed pandas index column, then ``index`` (the image id,
also the jpg name), ``comment`` (a Python list literal; its strings hold ``\\r\\n`` escapes),
``label`` (7 vote counts for the ratings 1..7, separated by runs of spaces), ``score`` (mean on
1..7) and ``class`` (an AesMamba bucket, not kept). The files named ``train``/``val``/``test``
are the splits; a single CSV with another name is split by ``split_file`` (test ids) or a seeded
``test_fraction``. Votes are the source of truth: ``score`` is recomputed and a disagreement with
the CSV's column is reported as a warning.

The comments are stored exactly as parsed from the list literal (``\\r\\n`` endings, blank items and all):
``repr`` of the stored list is the CSV cell again (true of every row of the authors' test CSV), so the
processor's ``released_comment_text`` gives the text the released models were trained on. A cell that is
not a list literal is kept as one comment (and reported).
"""

from __future__ import annotations

import os
from pathlib import Path

from aesformer_hf.data.builder import DatasetBuilder, splits_named_by_files
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.schema import (
    DATASET_FACTS,
    PHOTONET_SPEC,
    build_features,
    parse_count,
    targets_from_votes,
)
from aesformer_hf.data.source import DatasetDescription, DatasetSource, ImageRecord
from aesformer_hf.data.splits import split_file_order, split_name_from_file
from aesformer_hf.data.text import non_blank_comments, parse_comment_list, read_csv_rows

PHOTONET_FEATURES = build_features(PHOTONET_SPEC, extra={})

PHOTONET_DESCRIPTION = DatasetDescription(
    pretty_name="Photo.net (AesFormer comments release)",
    summary=(
        "Photos from photo.net rated 1..7 by their viewers (4 to 114 votes each), with the viewers' "
        "comments (the first is often the photographer's caption). Built for AesFormer."
    ),
    homepage="https://github.com/AiArt-Gao/AesMamba (csvfile/Photo.Net)",
    license_name="photonet-no-redistribution",
    license_link="https://github.com/AiArt-Gao/AesMamba",
    license_notice=DATASET_FACTS["photonet"].licence,
    citation=DATASET_FACTS["photonet"].citation,
    column_notes={"votes": "votes for the ratings 1..7"},
)

_REQUIRED_COLUMNS = ("index", "comment", "label")
_IMAGE_FOLDERS = ("images", "image", "Images", "imgs")
EXPECTED_LAYOUT = (
    "expected DIR/train.csv and DIR/test.csv (optional val.csv; columns ',index,comment,label,score,class') "
    "and images under DIR/images/<id>.jpg"
)
PHOTONET_BUILDER = DatasetBuilder(
    PHOTONET_SPEC,
    PHOTONET_FEATURES,
    PHOTONET_DESCRIPTION,
    EXPECTED_LAYOUT,
    image_folders=_IMAGE_FOLDERS,
    splits_named_by="the CSV file names",
    no_split="name the CSVs train.csv/test.csv, or pass --split-file (test ids) or --test-fraction",
)


def _find_label_csvs(data_dir: Path) -> list[Path]:
    found = []
    for depth in ("*.csv", "*/*.csv", "*/*/*.csv"):
        for candidate in sorted(data_dir.glob(depth)):
            header, _, _ = read_csv_rows(candidate)
            if all(column in [name.lower() for name in header] for column in _REQUIRED_COLUMNS):
                found.append(candidate)
        if found:
            return sorted(found, key=split_file_order)
    return found


def read_photonet_csv(path: str | os.PathLike, report: BuildReport) -> list[ImageRecord]:
    """Parse one Photo.net CSV into records; bad rows are reported and skipped."""
    path = Path(path)
    header, rows, encoding = read_csv_rows(path)
    columns = {name.lower(): index for index, name in enumerate(header)}
    missing = [column for column in _REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise ValueError(
            f"{path} is not a Photo.net CSV: missing the columns {missing} ({EXPECTED_LAYOUT}); got {header}"
        )
    if encoding != "utf-8":
        report.repair("", "text_not_utf8", f"the whole file {path.name} decoded as {encoding}", path.name)
    records = []
    for line_number, fields in rows:
        location = f"{path.name}:{line_number}"
        image_id = _cell(fields, columns["index"])
        if image_id.endswith(".0") and image_id[:-2].isdigit():  # written as a float by pandas
            image_id = image_id[:-2]
        if not image_id:
            report.skip(f"<line {line_number}>", "malformed_row", "no image id in the index column", location)
            continue
        try:
            votes = [parse_count(count) for count in _cell(fields, columns["label"]).split()]
            distribution, score, binary = targets_from_votes(votes, PHOTONET_SPEC)
        except ValueError as error:
            code = "no_votes" if str(error) == "no votes" else "bad_votes"
            report.skip(image_id, code, f"{error}: label field {_cell(fields, columns['label'])!r}", location)
            continue
        _check_score_column(fields, columns, score, image_id, location, report)
        raw_comments = _cell(fields, columns["comment"])
        comments = parse_comment_list(raw_comments)
        if comments is None:
            report.repair(
                image_id,
                "comments_not_a_list",
                "comment field is not a list literal; kept as one comment",
                location,
            )
            comments = non_blank_comments([raw_comments])
        columns_out = {
            "votes": votes,
            "distribution": distribution,
            "score": score,
            "label": binary,
            "comments": comments,
        }
        records.append(ImageRecord(image_id, columns_out, location))
    return records


def _cell(fields: list[str], index: int) -> str:
    return fields[index].strip() if index < len(fields) else ""


def _check_score_column(fields, columns, score, image_id, location, report) -> None:
    if "score" not in columns:
        return
    try:
        listed = float(_cell(fields, columns["score"]))
    except ValueError:
        return
    if abs(listed - score) > 1e-6:
        report.warn(
            image_id,
            "score_mismatch",
            f"score column {listed} but the votes give {score:.6f}; used the votes",
            location,
        )


def read_photonet(
    data_dir: str | os.PathLike,
    *,
    split_file: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    test_fraction: float | None = None,
    validation_fraction: float = 0.0,
    seed: int = 42,
) -> DatasetSource:
    """Parse a local Photo.net copy into a :class:`DatasetSource` (no image is read yet)."""
    build = PHOTONET_BUILDER.start(data_dir)
    data_dir = build.data_dir
    csv_files = _find_label_csvs(data_dir)
    if not csv_files:
        raise FileNotFoundError(f"no Photo.net label CSV in {data_dir}: {EXPECTED_LAYOUT}")
    build.notes.append(f"labels from {', '.join(str(path.relative_to(data_dir)) for path in csv_files)}")

    records: dict[str, ImageRecord] = {}
    file_split: dict[str, str | None] = {}
    for csv_file in csv_files:
        for record in read_photonet_csv(csv_file, build.report):
            if build.keep_first(records, record.image_id, record.location):
                records[record.image_id] = record
                file_split[record.image_id] = split_name_from_file(csv_file)

    assignment = build.assign_splits(
        records, split_file, test_fraction, validation_fraction, seed, named=splits_named_by_files(file_split)
    )
    return build.finish(records, assignment, images_dir)
