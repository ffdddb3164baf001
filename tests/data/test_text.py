"""Encodings, comment lists as written, list literals and CSV line numbers."""

from __future__ import annotations

import pytest

from aesformer_hf.data.text import (
    comment_lines,
    decode_with_fallback,
    non_blank_comments,
    parse_comment_list,
    read_csv_rows,
    repair_surrogates,
)


@pytest.mark.parametrize(
    ("data", "text", "encoding"),
    [
        ("café".encode(), "café", "utf-8"),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "café", "utf-8"),  # BOM dropped
        (b"\x93quoted\x94", "\u201cquoted\u201d", "cp1252"),  # Windows smart quotes
        (b"Alc\xe1zar", "Alcázar", "cp1252"),  # Latin-1 text reads the same through cp1252
        (b"\x81", "\x81", "latin-1"),  # undefined in cp1252: Latin-1 maps every byte
    ],
)
def test_decode_with_fallback(data, text, encoding):
    assert decode_with_fallback(data) == (text, encoding)


def test_comment_files_keep_each_comment_as_written():
    # One comment per line: split at CRLF, CR or LF only, blank lines dropped, nothing stripped.
    assert comment_lines(" first \r\nsecond\rthird\n\n \t\nform\x0cfeed\u2028kept\r\n") == [
        " first ",
        "second",
        "third",
        "form\x0cfeed\u2028kept",
    ]
    assert non_blank_comments(["", " a ", "  ", "b\r\n"]) == [" a ", "b\r\n"]
    assert repair_surrogates(" as is\r\n") == " as is\r\n"


def test_comment_list_literal_is_kept_exactly_as_parsed():
    # As in the authors' CSVs: the backslash escapes are characters of the field, not line breaks. The parsed
    # list is stored as it is, so that repr gives the field back (the processor cleans repr of it).
    field = r"""['Nice shot\r\n', "It's great\r\n", '  ', 'two\r\nlines']"""
    assert "\r" not in field
    parsed = parse_comment_list(field)
    assert parsed == ["Nice shot\r\n", "It's great\r\n", "  ", "two\r\nlines"]
    assert repr(parsed) == field
    assert parse_comment_list("[]") == [] and parse_comment_list("['']") == [""]
    assert parse_comment_list("('a', 'b')") == ["a", "b"] and parse_comment_list("'one'") == ["one"]
    assert parse_comment_list("") == []
    assert parse_comment_list("['unterminated") is None
    assert parse_comment_list("[1, 2]") is None


def test_read_csv_rows_keeps_line_numbers_across_quoted_newlines(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b'a,b\r\n1,"multi\r\nline"\r\n\r\n2,x\r\n')
    header, rows, encoding = read_csv_rows(path)
    assert header == ["a", "b"] and encoding == "utf-8"
    assert rows == [(2, ["1", "multi\r\nline"]), (5, ["2", "x"])]


def test_escaped_surrogate_pairs_become_characters():
    # Arrow stores only valid UTF-8: a pair becomes its emoji, a lone half becomes U+FFFD.
    assert parse_comment_list(r"['smile \ud83d\ude00', 'half \ud800 x']") == [
        "smile \U0001f600",
        "half \ufffd x",
    ]
