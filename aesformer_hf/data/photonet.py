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

from aesformer_hf.data.images import ImageIndex, image_roots
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.schema import PHOTONET_SPEC, build_features, parse_count, targets_from_votes
from aesformer_hf.data.source import DatasetDescription, DatasetSource, ImageRecord, group_by_split
from aesformer_hf.data.splits import (
    TEST,
    TRAIN,
    carve_validation,
    read_id_list,
    seeded_split,
    split_file_order,
    split_name_from_file,
)
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
    license_notice=(
        "The photos and comments belong to their authors on photo.net; the label CSVs come from the "
        "AesFormer/AesMamba authors. Do not redistribute the images or comments."
    ),
    citation="""@inproceedings{datta2006studying,
  title={Studying aesthetics in photographic images using a computational approach},
  author={Datta, Ritendra and Joshi, Dhiraj and Li, Jia and Wang, James Z.},
  booktitle={ECCV},
  year={2006}
}""",
    column_notes={"votes": "votes for the ratings 1..7"},
)

_REQUIRED_COLUMNS = ("index", "comment", "label")
_IMAGE_FOLDERS = ("images", "image", "Images", "imgs")
EXPECTED_LAYOUT = (
    "expected DIR/train.csv and DIR/test.csv (optional val.csv; columns ',index,comment,label,score,class') "
    "and images under DIR/images/<id>.jpg"
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
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"Photo.net data dir not found: {data_dir} ({EXPECTED_LAYOUT})")
    csv_files = _find_label_csvs(data_dir)
    if not csv_files:
        raise FileNotFoundError(f"no Photo.net label CSV in {data_dir}: {EXPECTED_LAYOUT}")
    report = BuildReport()
    notes = [f"labels from {', '.join(str(path.relative_to(data_dir)) for path in csv_files)}"]

    records: dict[str, ImageRecord] = {}
    file_split: dict[str, str | None] = {}
    for csv_file in csv_files:
        for record in read_photonet_csv(csv_file, report):
            if record.image_id in records:
                first = records[record.image_id].location
                report.skip(
                    record.image_id, "duplicate_id", f"id already on {first}; kept the first", record.location
                )
                continue
            records[record.image_id] = record
            file_split[record.image_id] = split_name_from_file(csv_file)

    if split_file is not None:
        if not Path(split_file).is_file():
            raise FileNotFoundError(
                f"split file not found: {split_file} (expected test image ids, one per line)"
            )
        test_ids = set(read_id_list(split_file))
        assignment = {image_id: TEST if image_id in test_ids else TRAIN for image_id in records}
        notes.append(f"test split: the ids of {Path(split_file).name}")
    elif records and all(split is not None for split in file_split.values()):
        assignment = dict(file_split)
        notes.append("splits from the CSV file names")
    elif test_fraction is not None:
        assignment = seeded_split(records, {TEST: test_fraction}, seed)
        notes.append(f"test: seeded random {test_fraction:.0%} of the rows (seed {seed})")
    else:
        raise FileNotFoundError(
            f"no split for Photo.net in {data_dir}: name the CSVs train.csv/test.csv, or pass --split-file "
            "(test ids) or --test-fraction"
        )
    carve_validation(assignment, validation_fraction, seed, notes, "the CSVs")

    return DatasetSource(
        spec=PHOTONET_SPEC,
        features=PHOTONET_FEATURES,
        splits=group_by_split(records, assignment),
        images=ImageIndex(image_roots(data_dir, images_dir, _IMAGE_FOLDERS)),
        description=PHOTONET_DESCRIPTION,
        report=report,
        notes=notes,
    )
