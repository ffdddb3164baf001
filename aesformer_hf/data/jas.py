"""JAS / JenAesthetics: 1,628 paintings with median observer scores on 0..100, no votes, no comments.

Accepted ``data_dir`` layout (files are found in ``data_dir`` or up to two folders below, e.g. the
``JenAesthetics subjective Dataset/`` folder of the archive and ReLIC's ``data/JAS/``)::

    Subjective scores.xlsx        sheet "Subjective score": File name, Aesthetic Quality, Beauty,
                                  Liking of Color/Composition/Content, Familiarity, Artist
                                  (or the same table as a CSV)
    train.csv, val.csv, test.csv  the commonly used split (1,125 / 126 / 313), ReLIC's columns
                                  name,Quality,Beauty,Color,Composition,Content,Familiarity,Artist
    True Files/<name>.tru         per-painting metadata (Key: value lines, CRLF, often Latin-1)
    <images>/<name>.jpg           the paintings, anywhere below data_dir (or --images-dir)

Names may hold spaces (``Aivazovsky 2``); the ``image_id`` is the name without extension.
The target is ``score = Quality / 100`` (0..1), ``high`` when above 0.5. The spreadsheet is the
source of truth for scores when present; the split CSVs decide membership (the 64 paintings in
none of them are reported as skipped). Without split CSVs, ``split_file`` may name a folder that
holds them, or ``test_fraction``/``validation_fraction`` give a seeded split.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Value

from aesformer_hf.data.builder import DatasetBuilder
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.schema import DATASET_FACTS, JAS_SPEC, build_features, label_from_score
from aesformer_hf.data.source import DatasetDescription, DatasetSource, ImageRecord
from aesformer_hf.data.splits import SPLIT_ORDER, split_name_from_file
from aesformer_hf.data.text import read_csv_rows, read_text
from aesformer_hf.models.aesformer.configuration_aesformer import PIPELINE_TASK

JAS_FEATURES = build_features(
    JAS_SPEC,
    extra={
        "quality": Value("float32"),
        "beauty": Value("float32"),
        "color": Value("float32"),
        "composition": Value("float32"),
        "content": Value("float32"),
        "familiarity": Value("float32"),
        "artist_familiarity": Value("float32"),
        "artist": Value("string"),
        "year": Value("string"),
        "period": Value("string"),
    },
    with_comments=False,
)

JAS_DESCRIPTION = DatasetDescription(
    pretty_name="JAS: JenAesthetics subjective dataset",
    summary=(
        "1,628 colour paintings of the JenAesthetics set with median observer ratings (0..100) of "
        "aesthetic quality, beauty, liking of colour, composition and content, and familiarity. "
        "The target is Quality / 100. No comments: vision-only (VIAA)."
    ),
    homepage="JenAesthetics (Amirshahi et al.); split as in fei-aiart/ReLIC data/JAS",
    license_name="jenaesthetics-no-redistribution",
    license_link="https://github.com/fei-aiart/ReLIC",
    license_notice=DATASET_FACTS["jas"].licence,
    citation=DATASET_FACTS["jas"].citation,
    column_notes={
        "score": "Aesthetic Quality / 100 (0..1)",
        "quality": "median Aesthetic Quality, 0..100",
        "beauty": "median Beauty, 0..100",
        "color": "median Liking of Color, 0..100",
        "composition": "median Liking of Composition, 0..100",
        "content": "median Liking of Content, 0..100",
        "familiarity": "median Familiarity (with the painting)",
        "artist_familiarity": "the spreadsheet's `Artist` column (median familiarity with the artist)",
        "artist": "artist name from the .tru file",
        "year": "year from the .tru file, as written",
        "period": "period code from the .tru file (p1..p19)",
    },
    tags=(PIPELINE_TASK, "aesformer", "paintings"),
)

# Canonical column -> the header names it has in the spreadsheet and in ReLIC's split CSVs.
_HEADER_NAMES = {
    "name": ("file name", "name", "filename"),
    "quality": ("aesthetic quality", "quality"),
    "beauty": ("beauty",),
    "color": ("liking of color", "liking of colour", "color", "colour"),
    "composition": ("liking of composition", "composition"),
    "content": ("liking of content", "content"),
    "familiarity": ("familiarity",),
    "artist_familiarity": ("artist",),
}
_SCORE_COLUMNS = tuple(name for name in _HEADER_NAMES if name != "name")
_PERCENT_COLUMNS = ("quality", "beauty", "color", "composition", "content")  # medians on 0..100
_SPREADSHEET_NAME = "Subjective score"
EXPECTED_LAYOUT = (
    "expected 'Subjective scores.xlsx' (or its CSV, columns File name,Aesthetic Quality,...) and/or the split "
    "CSVs train.csv/val.csv/test.csv (name,Quality,...), optional 'True Files/*.tru', and the paintings as "
    "<name>.jpg below DIR"
)
JAS_BUILDER = DatasetBuilder(
    JAS_SPEC,
    JAS_FEATURES,
    JAS_DESCRIPTION,
    EXPECTED_LAYOUT,
    image_folders=(),
    splits_named_by="the split CSVs",
    no_split="no split files (train.csv, val.csv, test.csv): pass --split-file with their folder, or "
    "--test-fraction (and --validation-fraction) for a seeded split",
    unit="paintings",
)


@dataclass(frozen=True)
class JasScores:
    """One row of a JAS score table: the painting key and its 0..100 medians (``None`` if blank)."""

    name: str
    scores: dict[str, float | None]
    location: str


@dataclass
class _TableFiles:
    spreadsheet: Path | None = None
    split_files: dict[str, Path] = field(default_factory=dict)


def painting_key(name: str) -> str:
    """``"Aivazovsky 2.jpg "`` -> ``"Aivazovsky 2"``: outer spaces and the image extension dropped."""
    name = str(name).strip()
    stem, extension = os.path.splitext(name)
    return stem.strip() if extension.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff") else name


def _column_map(header: list) -> dict[str, int] | None:
    normalised = [str(cell).strip().lower() if cell is not None else "" for cell in header]
    mapping = {}
    for canonical, names in _HEADER_NAMES.items():
        for name in names:
            if name in normalised:
                mapping[canonical] = normalised.index(name)
                break
    return mapping if "name" in mapping and "quality" in mapping else None


def _bad_value(column: str, value: float | None) -> str | None:
    """Why ``value`` cannot be written to ``column`` (``None`` when it can): not finite, or off 0..100."""
    if value is None:
        return None
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if column in _PERCENT_COLUMNS and not 0 <= value <= 100:
        return f"{value:g} is outside 0..100"
    return None


def _checked_scores(row: JasScores, report: BuildReport) -> dict[str, float | None]:
    """``row.scores`` with each value that cannot be stored (``nan``, ``inf``, off 0..100) left empty and reported."""
    scores = dict(row.scores)
    for column, value in row.scores.items():
        problem = _bad_value(column, value)
        if problem is not None:
            scores[column] = None
            report.repair(row.name, "bad_value", f"{column} {problem}; left empty", row.location)
    return scores


def _number(value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


def _rows_to_scores(
    header: list, rows: list[tuple[int, list]], source: Path, report: BuildReport
) -> list[JasScores]:
    columns = _column_map(header)
    if columns is None:
        raise ValueError(f"{source} is not a JAS score table: {EXPECTED_LAYOUT}; got the header {header}")
    table = []
    for line_number, cells in rows:
        location = f"{source.name}:{line_number}"
        raw_name = cells[columns["name"]] if columns["name"] < len(cells) else None
        if raw_name is None or not str(raw_name).strip():
            continue
        name = painting_key(raw_name)
        try:
            scores = {
                column: _number(cells[columns[column]])
                if column in columns and columns[column] < len(cells)
                else None
                for column in _SCORE_COLUMNS
            }
        except (TypeError, ValueError) as error:
            report.skip(name, "malformed_row", f"non-numeric score: {error}", location)
            continue
        table.append(JasScores(name, scores, location))
    return table


def read_jas_scores(path: str | os.PathLike, report: BuildReport) -> list[JasScores]:
    """Read the scores spreadsheet (``.xlsx``) or any CSV with its or ReLIC's columns."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        header, rows = _read_spreadsheet(path)
    else:
        header, rows, _ = read_csv_rows(path)
    return _rows_to_scores(header, rows, path, report)


def _read_spreadsheet(path: Path) -> tuple[list, list[tuple[int, list]]]:
    from aesformer_hf.utils.optional import require

    require("openpyxl", purpose=f"Reading the JAS spreadsheet {path.name}")
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = (
            [workbook[_SPREADSHEET_NAME]] if _SPREADSHEET_NAME in workbook.sheetnames else workbook.worksheets
        )
        for sheet in sheets:
            rows = [
                (number, list(values))
                for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
            ]
            for position, (_, values) in enumerate(rows):
                if _column_map(values) is not None:  # the header may follow a title row
                    return values, rows[position + 1 :]
    finally:
        workbook.close()
    raise ValueError(f"{path} has no sheet with a JAS header: {EXPECTED_LAYOUT}")


def read_tru(path: str | os.PathLike, report: BuildReport) -> dict[str, str]:
    """Read one ``.tru`` file: ``Key: value`` lines (blank lines between, CRLF, UTF-8 or Latin-1)."""
    text, encoding = read_text(path)
    if encoding != "utf-8":
        report.repair(
            Path(path).stem, "metadata_not_utf8", f"{Path(path).name} decoded as {encoding}", Path(path).name
        )
    metadata = {}
    for line in text.splitlines():
        key, separator, value = line.partition(":")
        if separator and key.strip():
            metadata[key.strip().lower()] = value.strip()
    return metadata


def _find_tables(data_dir: Path, split_file: str | os.PathLike | None) -> _TableFiles:
    found = _TableFiles()
    candidates = []
    for pattern in ("*", "*/*", "*/*/*"):
        candidates += sorted(
            p for p in data_dir.glob(pattern) if p.suffix.lower() in (".csv", ".xlsx", ".xlsm")
        )
    if split_file is not None:
        split_path = Path(split_file)
        if not split_path.exists():
            raise FileNotFoundError(
                f"split file not found: {split_file} (expected train.csv/val.csv/test.csv or their folder)"
            )
        folder = split_path if split_path.is_dir() else split_path.parent
        candidates = [p for p in candidates if split_name_from_file(p) is None] + sorted(folder.glob("*.csv"))
    score_tables = []
    for candidate in candidates:
        if not _looks_like_score_table(candidate):
            continue
        split = split_name_from_file(candidate)
        if split is not None:
            found.split_files.setdefault(split, candidate)
        else:
            score_tables.append(candidate)
    # The .xlsx is the original; a CSV dump of it is the second choice.
    score_tables.sort(key=lambda path: path.suffix.lower() == ".csv")
    found.spreadsheet = score_tables[0] if score_tables else None
    return found


def _looks_like_score_table(path: Path) -> bool:
    try:
        if path.suffix.lower() == ".csv":
            header, _, _ = read_csv_rows(path)
            return _column_map(header) is not None
        _read_spreadsheet(path)
        return True
    except (ValueError, OSError, KeyError):
        return False


def read_jas(
    data_dir: str | os.PathLike,
    *,
    split_file: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    test_fraction: float | None = None,
    validation_fraction: float = 0.0,
    seed: int = 42,
) -> DatasetSource:
    """Parse a local JAS copy into a :class:`DatasetSource` (no image is read yet)."""
    build = JAS_BUILDER.start(data_dir)
    data_dir, report, notes = build.data_dir, build.report, build.notes
    tables = _find_tables(data_dir, split_file)
    if tables.spreadsheet is None and not tables.split_files:
        raise FileNotFoundError(f"no JAS scores in {data_dir}: {EXPECTED_LAYOUT}")

    by_split: dict[str, list[JasScores]] = {}
    for split in SPLIT_ORDER:
        if split in tables.split_files:
            by_split[split] = read_jas_scores(tables.split_files[split], report)
    sheet = read_jas_scores(tables.spreadsheet, report) if tables.spreadsheet else None
    notes.append(f"scores from {(tables.spreadsheet or next(iter(tables.split_files.values()))).name}")

    rows: dict[str, JasScores] = {}
    for row in sheet or []:  # without a spreadsheet, the split files fill ``rows`` below
        if build.keep_first(rows, row.name, row.location, kind="name"):
            rows[row.name] = row

    # The split files decide which paintings are in: they name each one's split.
    named = _split_membership(rows, by_split, sheet is not None, report) if by_split else None
    assignment = build.assign_splits(
        rows,
        None,  # `split_file` names the split files' folder, read above
        test_fraction,
        validation_fraction,
        seed,
        named=named,
        named_by=f"the split CSVs ({', '.join(by_split)})",
    )

    metadata = _read_all_tru(data_dir, report, notes)
    records: dict[str, ImageRecord] = {}
    for name, row in rows.items():
        if name not in assignment:
            continue
        quality = row.scores["quality"]
        if quality is None:
            report.skip(name, "no_score", "Aesthetic Quality is blank", row.location)
            continue
        problem = _bad_value("quality", quality)
        if problem is not None:
            report.skip(name, "bad_score", f"Aesthetic Quality {problem}", row.location)
            continue
        info = metadata.get(name)
        if info is None and metadata:
            report.warn(name, "no_metadata", "no .tru file: artist, year and period left empty", row.location)
        info = info or {}
        score = quality / 100.0
        columns = {"score": score, "label": label_from_score(score, JAS_SPEC), **_checked_scores(row, report)}
        columns.update({"artist": info.get("artist"), "year": info.get("year"), "period": info.get("period")})
        records[name] = ImageRecord(name, columns, row.location)
    return build.finish(records, assignment, images_dir)


def _split_membership(rows, by_split, have_sheet, report) -> dict[str, str]:
    """``{name: split}`` of the paintings the split files list; ``rows`` gains those the spreadsheet lacks."""
    assignment: dict[str, str] = {}
    for split, table in by_split.items():
        for row in table:
            if row.name in assignment:
                report.skip(
                    row.name,
                    "duplicate_id",
                    f"also in the {assignment[row.name]} split; kept it there",
                    row.location,
                )
                continue
            if row.name not in rows:
                if have_sheet:
                    report.warn(
                        row.name, "not_in_spreadsheet", "scores taken from the split file", row.location
                    )
                rows[row.name] = row
            elif (
                have_sheet
                and row.scores["quality"] != rows[row.name].scores["quality"]
                and _bad_value("quality", rows[row.name].scores["quality"])
                is None  # else skipped as bad_score
            ):
                report.warn(
                    row.name,
                    "score_mismatch",
                    f"split file Quality {row.scores['quality']} vs spreadsheet {rows[row.name].scores['quality']}; "
                    "used the spreadsheet",
                    row.location,
                )
            assignment[row.name] = split
    for name, row in rows.items():
        if name not in assignment:
            report.skip(name, "not_in_split", "in none of the split files", row.location)
    return assignment


def _read_all_tru(data_dir: Path, report: BuildReport, notes: list[str]) -> dict[str, dict[str, str]]:
    metadata = {}
    for path in sorted(data_dir.rglob("*.tru")):
        metadata.setdefault(painting_key(path.stem), read_tru(path, report))
    if not metadata:
        notes.append("no .tru files found: artist, year and period are empty")
    return metadata
