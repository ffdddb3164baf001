"""Where `aesformer-hf score` puts its results: one row per input, written as it goes, merged in input order.

Rows have the key columns of their input (`path` for files; `image_id` when the dataset has one, and `row`, for
datasets) and then `score`, `label`, `mode`, `distribution` (the probabilities of the score bins) and `error`
(why the input could not be rated; the four result columns are then empty).

While a run goes on, each process appends its rows to its own part file `FILE.part-<rank>-of-<n>` (JSON Lines,
flushed after every batch), so a crash loses at most the batch in flight. When all processes are done, the main
process merges FILE (what earlier runs left), and the parts into FILE in input order, one row per key, through a
temporary file renamed into place, and deletes the parts. `--resume` first folds the parts of an interrupted run
into FILE the same way, then skips every key FILE holds.

Formats (by FILE's suffix):

* `.jsonl`: one JSON object per line; `distribution` a list of numbers, empty values `null`.
* `.csv`: written by the `csv` module (names with commas, quotes or newlines are quoted); `distribution` a JSON list
  in one column (`json.loads` gives it back), empty values empty.
* `.parquet`: `distribution` a list<double> column; written with pyarrow in row groups.

File names that are not valid UTF-8 (possible on Linux) are written with their undecodable bytes as `\\xNN`
escapes (`os.fsencode(name).decode("utf-8", "backslashreplace")`), in every format and on stderr; resuming uses
the same form.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
RESULT_COLUMNS = ("score", "label", "mode", "distribution", "error")
PARQUET_ROW_GROUP = 8192


def output_format(path: str | os.PathLike) -> str:
    """`jsonl`, `csv` or `parquet` from the file's suffix; ValueError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"--output {os.fsdecode(path)}: the name must end with {', '.join(FORMATS)} (it chooses the format)."
        )
    return FORMATS[suffix]


def display_text(text: str) -> str:
    """`text` as valid UTF-8: a file name's undecodable bytes (surrogate escapes) become `\\xNN`."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeError:  # lone surrogates that are not file-name bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable(text: str) -> str:
    """`display_text(text)` with control characters (a newline in a file name) escaped, for one-line messages."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in display_text(text))


@dataclass(frozen=True)
class OutputLayout:
    """The key columns of the rows (`("path",)`, `("image_id", "row")` or `("row",)`), which of them identifies an
    input for `--resume` (`resume_key`), and the parquet type of `image_id` (`"string"` or `"int64"`)."""

    key_columns: tuple[str, ...]
    resume_key: str
    id_type: str = "string"

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key_columns + RESULT_COLUMNS

    def key_of(self, row: dict) -> str:
        return str(row[self.resume_key])


FILES_LAYOUT = OutputLayout(("path",), "path")


def result_row(keys: dict, result: dict | None = None, error: str | None = None) -> dict:
    """One output row: `keys` (the key columns) and the result (`score`, `label`, `mode`, `distribution`) or
    `error`."""
    row = {name: display_text(value) if isinstance(value, str) else value for name, value in keys.items()}
    result = result or {}
    row["score"] = result.get("score")
    row["label"] = result.get("label")
    row["mode"] = result.get("mode")
    row["distribution"] = result.get("distribution")
    # One line: a reason never breaks a table or a CSV record.
    row["error"] = None if error is None else " ".join(display_text(str(error)).split())
    return row


# -- writing ---------------------------------------------------------------------------------------------------
def _jsonl_text(rows: Iterable[dict], columns: Sequence[str]) -> str:
    return "".join(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n" for row in rows)


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return value


def _csv_text(rows: Iterable[dict], columns: Sequence[str], header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


class PartWriter:
    """Appends rows to one process's part file (JSON Lines); every `write` is flushed before it returns."""

    def __init__(self, path: str | os.PathLike, layout: OutputLayout):
        self.path = Path(path)
        self.layout = layout
        self._file = open(self.path, "a", encoding="utf-8", newline="\n")

    def write(self, rows: Sequence[dict]) -> None:
        if rows:
            self._file.write(_jsonl_text(rows, self.layout.columns))
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def part_path(output: str | os.PathLike, rank: int, world_size: int) -> Path:
    return Path(f"{os.fspath(output)}.part-{rank}-of-{world_size}")


def find_parts(output: str | os.PathLike) -> list[Path]:
    """The part files of `output` left by any run (any number of processes), in a fixed order."""
    output = Path(output)
    pattern = re.compile(re.escape(output.name) + r"\.part-(\d+)-of-(\d+)")
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = pattern.fullmatch(entry.name)
        if match:
            found.append((int(match.group(2)), int(match.group(1)), entry))
    return [path for _, _, path in sorted(found)]


# -- reading ---------------------------------------------------------------------------------------------------
def _float_or_none(value):
    if value in (None, ""):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _normalise(row: dict, layout: OutputLayout) -> dict:
    """A row read back from any format, with the types a fresh row has."""
    out = {}
    for column in layout.key_columns:
        value = row.get(column)
        if column == "row" and value not in (None, ""):
            value = int(value)
        out[column] = value
    out["score"] = _float_or_none(row.get("score"))
    for column in ("label", "mode", "error"):
        value = row.get(column)
        out[column] = None if value in (None, "") else str(value)
    distribution = row.get("distribution")
    if isinstance(distribution, str):
        distribution = json.loads(distribution) if distribution else None
    out["distribution"] = None if distribution is None else [float(p) for p in distribution]
    return out


def read_jsonl(path: str | os.PathLike, layout: OutputLayout) -> Iterator[dict]:
    """The complete rows of a JSON Lines file; a last line cut short by a crash is left out."""
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return  # written up to a crash: the batch it belonged to is rated again
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ValueError(
                    f"{os.fsdecode(path)}: a line is not JSON ({error}); not a score output?"
                ) from None
            if not isinstance(row, dict) or layout.resume_key not in row:
                raise ValueError(
                    f"{os.fsdecode(path)}: rows without '{layout.resume_key}'; not this run's output?"
                )
            yield _normalise(row, layout)


def read_csv(path: str | os.PathLike, layout: OutputLayout) -> Iterator[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or layout.resume_key not in reader.fieldnames:
            raise ValueError(
                f"{os.fsdecode(path)}: no '{layout.resume_key}' column (got {reader.fieldnames}); not this run's "
                "output?"
            )
        for row in reader:
            yield _normalise(row, layout)


def read_parquet(path: str | os.PathLike, layout: OutputLayout) -> Iterator[dict]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if layout.resume_key not in parquet.schema_arrow.names:
        raise ValueError(
            f"{os.fsdecode(path)}: no '{layout.resume_key}' column (got {parquet.schema_arrow.names}); not this "
            "run's output?"
        )
    for batch in parquet.iter_batches(batch_size=PARQUET_ROW_GROUP):
        for row in batch.to_pylist():
            yield _normalise(row, layout)


def read_rows(path: str | os.PathLike, layout: OutputLayout, fmt: str | None = None) -> Iterator[dict]:
    """The rows of a score output (`fmt` from the suffix when not given; part files are JSON Lines)."""
    if fmt is None:
        fmt = "jsonl" if re.search(r"\.part-\d+-of-\d+$", os.fspath(path)) else output_format(path)
    return {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}[fmt](path, layout)


def existing_sources(output: str | os.PathLike, layout: OutputLayout) -> list[Callable[[], Iterator[dict]]]:
    """Readers of what earlier runs left: FILE itself, then its part files."""
    output = Path(output)
    fmt = output_format(output)
    sources = []
    if output.exists():
        sources.append(lambda: read_rows(output, layout, fmt))
    for part in find_parts(output):
        sources.append(lambda part=part: read_jsonl(part, layout))
    return sources


# -- merging ---------------------------------------------------------------------------------------------------
class _OutOfOrder(Exception):
    pass


def _ordered(rows: Iterator[dict], position: Callable[[dict], tuple]) -> Iterator[tuple]:
    last = None
    for sequence, row in enumerate(rows):
        key = position(row)
        if last is not None and key < last:
            raise _OutOfOrder
        last = key
        yield key, sequence, row


def _merged(sources, position, presorted: bool) -> Iterator[dict]:
    """One row per position (the first source's wins), in position order."""
    if presorted:
        streams = [
            ((key, index, sequence, row) for key, sequence, row in _ordered(source(), position))
            for index, source in enumerate(sources)
        ]
        merged = heapq.merge(*streams, key=lambda item: item[:3])
    else:  # some source is out of order: sort in memory
        merged = iter(
            sorted(
                (
                    (position(row), index, sequence, row)
                    for index, source in enumerate(sources)
                    for sequence, row in enumerate(source())
                ),
                key=lambda item: item[:3],
            )
        )
    previous = None
    for key, _, _, row in merged:
        if key != previous:
            yield row
        previous = key


@dataclass
class MergeSummary:
    rows: int = 0
    errors: int = 0
    error_keys: list[str] = field(default_factory=list)


def write_rows(
    path: Path, fmt: str, layout: OutputLayout, rows: Iterable[dict], summary: MergeSummary
) -> None:
    """Write `rows` to `path` (which must not exist) in `fmt`, counting them in `summary`."""

    def counted(chunk):
        for row in chunk:
            summary.rows += 1
            if row.get("error") is not None:
                summary.errors += 1
            yield row

    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {
            "path": pa.string(),
            "image_id": pa.int64() if layout.id_type == "int64" else pa.string(),
            "row": pa.int64(),
            "score": pa.float64(),
            "label": pa.string(),
            "mode": pa.string(),
            "distribution": pa.list_(pa.float64()),
            "error": pa.string(),
        }
        schema = pa.schema([(c, types[c]) for c in layout.columns])
        with pq.ParquetWriter(path, schema) as writer:
            chunk = []
            for row in counted(rows):
                chunk.append(row)
                if len(chunk) == PARQUET_ROW_GROUP:
                    writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                    chunk = []
            if chunk or summary.rows == 0:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
        return
    with open(path, "x", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            handle.write(_csv_text([], layout.columns, header=True))
        chunk = []
        for row in counted(rows):
            chunk.append(row)
            if len(chunk) == 1024:
                handle.write(
                    _jsonl_text(chunk, layout.columns) if fmt == "jsonl" else _csv_text(chunk, layout.columns)
                )
                chunk = []
        handle.write(
            _jsonl_text(chunk, layout.columns) if fmt == "jsonl" else _csv_text(chunk, layout.columns)
        )
        handle.flush()
        os.fsync(handle.fileno())


def merge_outputs(
    output: str | os.PathLike, layout: OutputLayout, position: Callable[[dict], tuple]
) -> MergeSummary:
    """Merge FILE and its part files into FILE: input order (`position(row)`), one row per key, atomically.

    The parts are deleted once FILE holds their rows. Sources already in order (the usual case) are merged as
    streams in constant memory; otherwise the rows are sorted in memory.
    """
    output = Path(output)
    fmt = output_format(output)
    parts = find_parts(output)
    sources = existing_sources(output, layout)
    temporary = output.with_name(f".{output.name}.merging-{os.getpid()}")
    summary = MergeSummary()
    try:
        try:
            write_rows(temporary, fmt, layout, _merged(sources, position, presorted=True), summary)
        except _OutOfOrder:
            temporary.unlink(missing_ok=True)
            summary = MergeSummary()
            write_rows(temporary, fmt, layout, _merged(sources, position, presorted=False), summary)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    for part in parts:
        part.unlink(missing_ok=True)
    return summary


def done_keys(output: str | os.PathLike, layout: OutputLayout) -> set[str]:
    """The keys FILE and its part files hold (rated or failed)."""
    keys: set[str] = set()
    for source in existing_sources(output, layout):
        keys.update(layout.key_of(row) for row in source())
    return keys


# -- stdout ----------------------------------------------------------------------------------------------------
def display_width(text: str) -> int:
    """Terminal columns `text` takes: East Asian wide and full-width characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def pad_to(text: str, width: int) -> str:
    """`text` followed by spaces up to `width` terminal columns (`str.ljust` counts characters, not columns)."""
    return text + " " * max(0, width - display_width(text))


class StdoutPrinter:
    """Prints rated rows as they come, as a `table`, `json` (one array), `jsonl` or `csv`; errors are not printed
    (they go to stderr)."""

    def __init__(self, stream, fmt: str, layout: OutputLayout, key_width: int = 4):
        self.stream, self.fmt, self.layout = stream, fmt, layout
        self.columns = tuple(c for c in layout.columns if c != "error")
        self.key = layout.key_columns[0]
        self.width = max(key_width, len(self.key))
        self.count = 0

    def _header(self) -> str:
        if self.fmt == "csv":
            return _csv_text([], self.columns, header=True)
        if self.fmt == "table":
            return (
                f"{self.key:<{self.width}}  {'score':>6}  {'label':<5}  mode\n"
                + "-" * (self.width + 26)
                + "\n"
            )
        if self.fmt == "json":
            return "["
        return ""

    def write(self, rows: Sequence[dict]) -> None:
        rows = [row for row in rows if row.get("error") is None]
        if not rows:
            return
        text = self._header() if self.count == 0 else ""
        if self.fmt == "jsonl":
            text += _jsonl_text(rows, self.columns)
        elif self.fmt == "csv":
            text += _csv_text(rows, self.columns)
        elif self.fmt == "json":
            for i, row in enumerate(rows):
                separator = "\n" if self.count == 0 and i == 0 else ",\n"
                body = json.dumps({c: row[c] for c in self.columns}, indent=2, ensure_ascii=False)
                text += separator + "\n".join("  " + line for line in body.splitlines())
        else:
            text += "".join(
                f"{pad_to(printable(str(row[self.key])), self.width)}  {row['score']:>6.3f}  {row['label']:<5}  "
                f"{row['mode']}\n"
                for row in rows
            )
        self.count += len(rows)
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n" if self.count else "[]\n")
        self.stream.flush()
