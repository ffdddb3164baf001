"""Reading the text files of the datasets: encodings, comment lists, list literals.

The label and comment files come from many hands: some are UTF-8, some Windows-1252 or Latin-1
(231 of JAS's ``.tru`` files), line endings are LF or CRLF. Nothing here raises on a bad
encoding: text is decoded as UTF-8 when it is valid, else as Windows-1252, else as Latin-1 (which
maps every byte), and the caller is told which one was used so that it can report it.

Comments are stored as written, not cleaned: the released AesFormer models read each image's comments as
``repr`` of the list in the authors' CSV, cleaned by the processor (``released_comment_text``), so a list parsed
from such a cell is kept exactly as parsed (``repr`` of it gives the cell back; for every Photo.net cell it
does). The one change is :func:`repair_surrogates`, which Arrow needs.
"""

from __future__ import annotations

import ast
import csv
import io
import os
import re
import sys

FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")

# Comment fields of AVA and Photo.net run past the csv module's default limit of 131,072 characters.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def decode_with_fallback(data: bytes) -> tuple[str, str]:
    """Decode ``data`` as UTF-8 (a BOM is dropped), else Windows-1252, else Latin-1.

    Returns ``(text, encoding)``; ``encoding`` is ``"utf-8"`` unless a fallback was needed.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in FALLBACK_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def read_text(path: str | os.PathLike) -> tuple[str, str]:
    """Read a whole text file with :func:`decode_with_fallback`; returns ``(text, encoding)``."""
    with open(path, "rb") as handle:
        return decode_with_fallback(handle.read())


def read_csv_rows(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """Read a CSV file of any line ending and encoding.

    Returns ``(header, rows, encoding)`` where ``rows`` holds ``(line number, fields)``; quoted
    fields may span lines (the line number is the row's first line). An empty file gives an
    empty header.
    """
    text, encoding = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    line_number = 1
    for fields in reader:
        if not header:
            header = [name.strip() for name in fields]
        elif any(field.strip() for field in fields):
            rows.append((line_number, fields))
        line_number = reader.line_num + 1
    return header, rows, encoding


_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_SURROGATES = re.compile("[\ud800-\udfff]")


def repair_surrogates(comment: str) -> str:
    """``comment`` with its UTF-16 surrogates made storable; every other character kept as it is.

    Escaped surrogate pairs (``\\ud83d\\ude00`` in a list literal) are joined into their character and lone
    surrogates replaced by U+FFFD, since Arrow stores only valid UTF-8. A comment repaired so no longer gives
    its cell back through ``repr`` (none of the Photo.net cells needs it).
    """
    if _SURROGATES.search(comment):
        comment = comment.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return comment


def non_blank_comments(pieces: list[str]) -> list[str]:
    """The pieces of a comment file that are comments: whitespace-only pieces dropped, the others kept as written.

    For the layouts without a list literal (one comment per line, ``#``-separated): a blank line or an empty
    piece between two ``#`` is layout, not a comment. Nothing else is stripped or changed (apart from
    :func:`repair_surrogates`).
    """
    return [repair_surrogates(piece) for piece in pieces if piece.strip()]


def comment_lines(text: str) -> list[str]:
    """The comments of a one-comment-per-line file: lines split at CRLF, CR or LF (the line breaks are not kept;
    other characters that ``str.splitlines`` would split at stay in their comment), blank lines dropped."""
    return non_blank_comments(_LINE_BREAKS.split(text))


def parse_comment_list(literal: str) -> list[str] | None:
    """Parse a Python list literal of comment strings, as in the authors' CSVs, keeping every item as parsed.

    ``"['Nice\\r\\n', ' ']"`` -> ``["Nice\\r\\n", " "]``: the escapes in the literal (``\\r\\n`` written as four
    characters) are real line breaks once parsed, and they, blank items and outer spaces are kept, so that
    ``repr`` of the result is the cell again and the processor rebuilds the released text from it (only
    :func:`repair_surrogates` may change an item). A tuple literal becomes a list and a string literal a
    one-item list (brackets, parentheses and quotes all clean to spaces, so the text is the same, but for the
    trailing comma of a one-item tuple). An empty field is no comments.
    Returns ``None`` when the field is not a literal of strings.
    """
    literal = literal.strip()
    if not literal:
        return []
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        return None
    return [repair_surrogates(item) for item in value]
