"""Reading the text files of the datasets: encodings, comment clean-up, list literals.

The label and comment files come from many hands: some are UTF-8, some Windows-1252 or Latin-1
(231 of JAS's ``.tru`` files), line endings are LF or CRLF. Nothing here raises on a bad
encoding: text is decoded as UTF-8 when it is valid, else as Windows-1252, else as Latin-1 (which
maps every byte), and the caller is told which one was used so that it can report it.
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


_LINE_BREAKS = re.compile(r"\r\n|\r")
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_comment(comment: str) -> str:
    """One comment as stored: CRLF/CR line breaks made ``\\n``, outer whitespace stripped.

    Escaped UTF-16 surrogate pairs (``\\ud83d\\ude00`` in a list literal) are joined into their
    character and lone surrogates replaced, since Arrow stores only valid UTF-8. The text is
    otherwise kept as written: the model's processor does its own clean-up.
    """
    if _SURROGATES.search(comment):
        comment = comment.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return _LINE_BREAKS.sub("\n", comment).strip()


def clean_comments(comments: list[str]) -> list[str]:
    """:func:`clean_comment` on each comment, dropping the ones left empty."""
    cleaned = (clean_comment(comment) for comment in comments)
    return [comment for comment in cleaned if comment]


def parse_comment_list(literal: str) -> list[str] | None:
    """Parse a Python list literal of comment strings, as in the authors' CSVs.

    ``"['Nice\\r\\n', 'Great']"`` -> ``["Nice", "Great"]``: the escapes in the literal (``\\r\\n``
    written as four characters) are real line breaks once parsed, then cleaned. An empty field
    is no comments. Returns ``None`` when the field is not a list literal of strings.
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
    return clean_comments(list(value))
