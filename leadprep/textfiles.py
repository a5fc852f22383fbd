"""Reading the text files people hand us (deal exports, commitment lists): encoding and delimiter."""

from __future__ import annotations

import csv
from pathlib import Path

from leadprep.errors import DataError


def decode_text(path: Path, data: bytes) -> str:
    """The file's text (UTF-8, with or without a byte-order mark); else where it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} cannot be read.",
            hint="Export the file as 'CSV UTF-8', or convert it, e.g. "
            f"`iconv -f windows-1252 -t utf-8 {path.name} > deals-utf8.csv`.",
        ) from None


def sniff_delimiter(header_line: str) -> str:
    """Comma or semicolon (spreadsheets in comma-decimal locales write semicolons)."""
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;").delimiter
    except csv.Error:
        return ";" if header_line.count(";") > header_line.count(",") else ","
