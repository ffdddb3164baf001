"""AVA (Aesthetic Visual Analysis, Murray et al. 2012), with the users' comments when available.

Accepted ``data_dir`` layouts (names are looked up in ``data_dir`` and in ``data_dir/AVA_dataset``,
the folder the official archive extracts to)::

    AVA.txt                               labels: 255,530 lines of 15 integers (required, or CSVs below)
    tags.txt, challenges.txt              id -> name maps (optional: names left empty without them)
    aesthetics_image_lists/generic_test.jpgl   the standard test ids (also found at the top level)
    images/<id>.jpg                       images; also image/, Images/, images/images/..., or
                                          anywhere below data_dir (any of .jpg .jpeg .png ...)

Instead of ``AVA.txt``, the CSV form other tools ship (``image_id,score2..score11,tag1,tag2,tag3``:
AVA.txt without the index column) is read from every such ``*.csv`` in ``data_dir``; files named
``train.csv`` / ``val.csv`` / ``test.csv`` then define the splits.

Comments (``comments=``, one or more paths), in any of the three known layouts:

* a folder of ``<id>.txt`` files, one comment per line;
* one text file, one image per line: ``<id>#<comment>#<comment>...``;
* the AesFormer authors' CSV (``index`` = image id, ``label`` = votes, ``comment`` = a Python list
  literal of strings), or a folder of such CSVs (their train/test files).

The comments are stored as written (see :mod:`aesformer_hf.data.text`): a CSV cell's list exactly as parsed,
so that the processor rebuilds the released models' text from it; a ``.txt`` line or a ``#``-separated piece
as it stands, without its line break, blank ones dropped. Those two layouts had no list literal: the text
the processor makes of them is what the released code would read from a CSV cell holding ``repr`` of these
lists (if the authors' own AVA cells kept each comment's CRLF, as their Photo.net cells do, their text also
had a backslash-r after each comment).

Splits: the ids of ``split_file`` (any ``.jpgl``-style list) or of ``generic_test.jpgl`` are the
test split and every other row is train (the standard split, ~235.5k / ~19.9k usable); without a
list, ``test_fraction`` gives a seeded random split. ``validation_fraction`` carves a seeded
validation split out of train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from datasets import Value

from aesformer_hf.data.builder import DatasetBuilder, splits_named_by_files
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.schema import (
    AVA_SPEC,
    DATASET_FACTS,
    build_features,
    parse_count,
    targets_from_votes,
)
from aesformer_hf.data.source import DatasetDescription, DatasetSource, ImageRecord
from aesformer_hf.data.splits import split_file_order, split_name_from_file
from aesformer_hf.data.text import (
    comment_lines,
    decode_with_fallback,
    non_blank_comments,
    parse_comment_list,
    read_csv_rows,
    read_text,
)

AVA_FEATURES = build_features(
    AVA_SPEC,
    extra={
        "tag1_id": Value("int32"),
        "tag1_name": Value("string"),
        "tag2_id": Value("int32"),
        "tag2_name": Value("string"),
        "challenge_id": Value("int32"),
        "challenge_name": Value("string"),
    },
)

AVA_DESCRIPTION = DatasetDescription(
    pretty_name="AVA: Aesthetic Visual Analysis",
    summary=(
        "About 255,000 photos from dpchallenge.com, each rated 1..10 by about 200 people, with "
        "semantic tags, the photo challenge and (when a comment dump was given) the users' comments. "
        "Built for AesFormer (image aesthetic assessment)."
    ),
    homepage="https://github.com/imfing/ava_downloader (AVA.txt, tags, challenges, image lists)",
    license_name="ava-no-redistribution",
    license_link="https://github.com/imfing/ava_downloader",
    license_notice=DATASET_FACTS["ava"].licence,
    citation=DATASET_FACTS["ava"].citation,
    column_notes={
        "votes": "votes for the ratings 1..10",
        "tag1_id": "first semantic tag id (1..66; 0 = none)",
        "tag1_name": "its name from tags.txt (null when none)",
        "tag2_id": "second semantic tag id (0 = none)",
        "tag2_name": "its name from tags.txt (null when none)",
        "challenge_id": "the dpchallenge challenge the photo was entered in",
        "challenge_name": "its name from challenges.txt (underscores as in the file)",
    },
)

_NUM_COLUMNS = 15  # index, image id, 10 vote counts, 2 tag ids, challenge id
_DATASET_FOLDERS = (".", "AVA_dataset")
_IMAGE_FOLDERS = ("images", "image", "Images", "AVA_dataset/images", "AVA_dataset/image")
_TEST_LISTS = ("generic_test.jpgl", "aesthetics_image_lists/generic_test.jpgl")
EXPECTED_LAYOUT = (
    "expected DIR/AVA.txt (or DIR/AVA_dataset/AVA.txt, or CSVs with columns image_id,score2..score11), "
    "optional tags.txt, challenges.txt, aesthetics_image_lists/generic_test.jpgl, and images under DIR/images/"
)
AVA_BUILDER = DatasetBuilder(
    AVA_SPEC,
    AVA_FEATURES,
    AVA_DESCRIPTION,
    EXPECTED_LAYOUT,
    image_folders=_IMAGE_FOLDERS,
    splits_named_by="the label CSV file names",
    no_split="expected aesthetics_image_lists/generic_test.jpgl (the standard test ids), a --split-file with "
    "test ids, or a --test-fraction for a seeded random split",
)


@dataclass(frozen=True)
class AvaLabel:
    """One parsed label row: id, the 10 vote counts (ratings 1..10), tag ids, challenge id."""

    image_id: str
    votes: tuple[int, ...]
    tag_ids: tuple[int, int]
    challenge_id: int
    location: str
    split: str | None = None  # set when the row came from a per-split CSV


def read_ava_txt(path: str | os.PathLike, report: BuildReport) -> list[AvaLabel]:
    """Parse ``AVA.txt``; malformed lines are reported and skipped."""
    text, _ = read_text(path)
    labels = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        location = f"{Path(path).name}:{line_number}"
        image_id = fields[1] if len(fields) > 1 else f"<line {line_number}>"
        try:
            if len(fields) != _NUM_COLUMNS:
                raise ValueError(f"expected {_NUM_COLUMNS} integers, got {len(fields)}")
            numbers = [parse_count(field) for field in fields]
        except ValueError as error:
            report.skip(image_id, "malformed_row", f"{error}: {line.strip()[:120]!r}", location)
            continue
        labels.append(
            AvaLabel(fields[1], tuple(numbers[2:12]), (numbers[12], numbers[13]), numbers[14], location)
        )
    return labels


def read_ava_csv(path: str | os.PathLike, report: BuildReport) -> list[AvaLabel]:
    """Parse the CSV form: ``image_id``, ten ``scoreN`` vote columns in N order, ``tag1..tag3``.

    ``tag1``/``tag2`` are the semantic tags and ``tag3`` the challenge (missing ones read as 0).
    The rows' split is the file's name when it is one (``train.csv`` -> train).
    """
    header, rows, _ = read_csv_rows(path)
    columns = {name.lower(): index for index, name in enumerate(header)}
    score_columns = sorted(
        (int(name[5:]), index)
        for name, index in columns.items()
        if name.startswith("score") and name[5:].isdigit()
    )
    if "image_id" not in columns or len(score_columns) != AVA_SPEC.num_bins:
        raise ValueError(
            f"{path} is not an AVA CSV: expected the columns image_id and score2..score11 "
            f"(10 vote counts), got {header}"
        )
    split = split_name_from_file(path)
    labels = []
    for line_number, fields in rows:
        location = f"{Path(path).name}:{line_number}"
        image_id = _strip_image_extension(_field(fields, columns["image_id"]))
        try:
            votes = tuple(parse_count(_field(fields, index)) for _, index in score_columns)
            tags = tuple(
                parse_count(_field(fields, columns[name]) or "0") if name in columns else 0
                for name in ("tag1", "tag2", "tag3")
            )
        except ValueError as error:
            report.skip(image_id or f"<line {line_number}>", "malformed_row", str(error), location)
            continue
        labels.append(AvaLabel(image_id, votes, (tags[0], tags[1]), tags[2], location, split))
    return labels


def _field(fields: list[str], index: int) -> str:
    return fields[index].strip() if index < len(fields) else ""


def _strip_image_extension(name: str) -> str:
    stem, extension = os.path.splitext(name.strip())
    return stem if extension.lower() in (".jpg", ".jpeg", ".png") else name.strip()


def read_id_names(path: str | os.PathLike) -> dict[int, str]:
    """Read ``tags.txt`` / ``challenges.txt``: ``<id> <name>`` per line, split on the first space."""
    names = {}
    text, _ = read_text(path)
    for line in text.splitlines():
        number, _, name = line.strip().partition(" ")
        if number.isdigit():
            names[int(number)] = name.strip()
    return names


# ---------------------------------------------------------------------------------------------------
# Comments


def read_ava_comments(path: str | os.PathLike, report: BuildReport) -> dict[str, list[str]]:
    """Read AVA comments from any of the three layouts (see the module docstring).

    Returns ``{image_id: [comment, ...]}``. Files that are not UTF-8 are decoded with a fallback
    and reported as repaired.
    """
    path = Path(path)
    if path.is_dir():
        text_files = sorted(path.glob("*.txt"))
        csv_files = sorted(path.glob("*.csv"))
        if text_files:
            return _read_comment_folder(text_files, report)
        if csv_files:
            comments: dict[str, list[str]] = {}
            for csv_file in csv_files:
                for image_id, found in _read_comment_csv(csv_file, report).items():
                    _add_once(comments, image_id, found, report, csv_file)
            return comments
        raise FileNotFoundError(
            f"the comments folder {path} holds no <id>.txt files and no CSVs; expected one comment per "
            "line in <id>.txt, or the authors' CSVs (index,label,comment)"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"comments not found: {path} (expected a folder of <id>.txt, a '#' file or a CSV)"
        )
    if path.suffix.lower() == ".csv":
        return _read_comment_csv(path, report)
    return _read_hash_separated_comments(path, report)


def _read_comment_folder(files: list[Path], report: BuildReport) -> dict[str, list[str]]:
    comments = {}
    for file in files:
        text, encoding = decode_with_fallback(file.read_bytes())
        if encoding != "utf-8":
            report.repair(file.stem, "comments_not_utf8", f"{file.name} decoded as {encoding}", file.name)
        comments[file.stem] = comment_lines(text)
    return comments


def _read_hash_separated_comments(path: Path, report: BuildReport) -> dict[str, list[str]]:
    comments: dict[str, list[str]] = {}
    # Decode line by line: one badly encoded line must not change how the others are read.
    for line_number, raw_line in enumerate(path.read_bytes().split(b"\n"), start=1):
        line, encoding = decode_with_fallback(raw_line.rstrip(b"\r"))
        if not line.strip():
            continue
        image_id, _, rest = line.partition("#")
        image_id = _strip_image_extension(image_id)
        location = f"{path.name}:{line_number}"
        if not image_id:
            report.warn(
                f"<line {line_number}>",
                "comment_without_id",
                f"line starts with no image id: {line[:80]!r}",
                location,
            )
            continue
        if encoding != "utf-8":
            report.repair(image_id, "comments_not_utf8", f"line decoded as {encoding}", location)
        # Several lines for one id add up: a long comment list may be wrapped.
        comments.setdefault(image_id, []).extend(non_blank_comments(rest.split("#")) if rest else [])
    return comments


def _read_comment_csv(path: Path, report: BuildReport) -> dict[str, list[str]]:
    header, rows, encoding = read_csv_rows(path)
    columns = {name.lower(): index for index, name in enumerate(header)}
    id_column = columns.get("index", columns.get("image_id"))
    if id_column is None or "comment" not in columns:
        raise ValueError(
            f"{path} is not an AVA comments CSV: expected the columns index and comment, got {header}"
        )
    if encoding != "utf-8":
        report.repair("", "comments_not_utf8", f"the whole file {path.name} decoded as {encoding}", path.name)
    comments: dict[str, list[str]] = {}
    for line_number, fields in rows:
        image_id = _strip_image_extension(_field(fields, id_column))
        if image_id.endswith(".0") and image_id[:-2].isdigit():  # ids written as floats by pandas
            image_id = image_id[:-2]
        location = f"{path.name}:{line_number}"
        raw = _field(fields, columns["comment"])
        parsed = parse_comment_list(raw)
        if parsed is None:
            report.repair(
                image_id,
                "comments_not_a_list",
                "comment field is not a list literal; kept as one comment",
                location,
            )
            parsed = non_blank_comments([raw])
        _add_once(comments, image_id, parsed, report, location)
    return comments


def _add_once(
    comments: dict[str, list[str]], image_id: str, found: list[str], report: BuildReport, where
) -> None:
    if image_id in comments:
        report.warn(image_id, "duplicate_comments", "comments listed twice; kept the first", str(where))
        return
    comments[image_id] = found


# ---------------------------------------------------------------------------------------------------
# The builder


def _find(data_dir: Path, names: tuple[str, ...]) -> Path | None:
    for folder in _DATASET_FOLDERS:
        for name in names:
            candidate = data_dir / folder / name
            if candidate.is_file():
                return candidate
    return None


def _read_labels(data_dir: Path, report: BuildReport) -> tuple[list[AvaLabel], str]:
    ava_txt = _find(data_dir, ("AVA.txt",))
    if ava_txt is not None:
        return read_ava_txt(ava_txt, report), ava_txt.name
    csv_files = []
    for candidate in sorted(data_dir.glob("*.csv")):
        header, _, _ = read_csv_rows(candidate) if candidate.stat().st_size else ([], [], "")
        if "image_id" in [name.lower() for name in header]:
            csv_files.append(candidate)
    if not csv_files:
        raise FileNotFoundError(f"no AVA labels in {data_dir}: {EXPECTED_LAYOUT}")
    labels = []
    for csv_file in sorted(csv_files, key=split_file_order):
        labels.extend(read_ava_csv(csv_file, report))
    return labels, ", ".join(path.name for path in csv_files)


def read_ava(
    data_dir: str | os.PathLike,
    *,
    comments: str | os.PathLike | list[str | os.PathLike] | None = None,
    split_file: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    test_fraction: float | None = None,
    validation_fraction: float = 0.0,
    seed: int = 42,
) -> DatasetSource:
    """Parse a local AVA copy into a :class:`DatasetSource` (no image is read yet).

    Rows with malformed lines, no votes or an id seen before are skipped and reported.
    """
    build = AVA_BUILDER.start(data_dir)
    data_dir, report, notes = build.data_dir, build.report, build.notes
    labels, label_files = _read_labels(data_dir, report)
    notes.append(f"labels from {label_files}")

    tag_file, challenge_file = _find(data_dir, ("tags.txt",)), _find(data_dir, ("challenges.txt",))
    tag_names = read_id_names(tag_file) if tag_file else {}
    challenge_names = read_id_names(challenge_file) if challenge_file else {}
    if tag_file is None or challenge_file is None:
        notes.append("tags.txt or challenges.txt not found: their name columns are empty")

    comment_paths = (
        [] if comments is None else comments if isinstance(comments, (list, tuple)) else [comments]
    )
    all_comments: dict[str, list[str]] = {}
    for comment_path in comment_paths:
        for image_id, found in read_ava_comments(comment_path, report).items():
            _add_once(all_comments, image_id, found, report, comment_path)

    records: dict[str, ImageRecord] = {}
    record_split: dict[str, str | None] = {}
    for label in labels:
        if not build.keep_first(records, label.image_id, label.location):
            continue
        try:
            distribution, score, binary = targets_from_votes(label.votes, AVA_SPEC)
        except ValueError as error:
            code = "no_votes" if sum(label.votes) == 0 else "bad_votes"
            report.skip(label.image_id, code, f"{error}: votes {list(label.votes)}", label.location)
            continue
        tag1, tag2 = label.tag_ids
        records[label.image_id] = ImageRecord(
            label.image_id,
            {
                "votes": list(label.votes),
                "distribution": distribution,
                "score": score,
                "label": binary,
                "comments": all_comments.get(label.image_id, []),
                "tag1_id": tag1,
                "tag1_name": tag_names.get(tag1) if tag1 else None,
                "tag2_id": tag2,
                "tag2_name": tag_names.get(tag2) if tag2 else None,
                "challenge_id": label.challenge_id,
                "challenge_name": challenge_names.get(label.challenge_id),
            },
            label.location,
        )
        record_split[label.image_id] = label.split

    if comment_paths:
        with_comments = sum(1 for image_id in records if records[image_id].columns["comments"])
        orphans = len(set(all_comments) - set(records))
        notes.append(f"comments for {with_comments:,} of {len(records):,} images")
        if orphans:
            notes.append(f"comments for {orphans:,} ids without a label row were not used")

    assignment = build.assign_splits(
        records,
        split_file,
        test_fraction,
        validation_fraction,
        seed,
        named=splits_named_by_files(record_split),
        test_list=_find(data_dir, _TEST_LISTS),
    )
    return build.finish(records, assignment, images_dir)
