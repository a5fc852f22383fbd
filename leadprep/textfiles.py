"""Reading the text files people hand us (deal exports, commitment lists): encoding and delimiter."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

from leadprep.errors import DataError


def decode_text(path: Path, data: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte-order mark), or UTF-16 with its byte-order
    mark (Excel's "Unicode Text"); else where it cannot be read, and how to convert it."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError(
                f"{path} starts like UTF-16 text but cannot be read as UTF-16.",
                hint="Export the file as 'CSV UTF-8'.",
            ) from None
    sample = data[:200]
    if sample.count(b"\x00") > len(sample) // 4:  # every other byte zero: UTF-16, no mark
        order = "utf-16le" if sample[1:2] == b"\x00" else "utf-16be"
        raise DataError(
            f"{path} looks like UTF-16 text without a byte-order mark.",
            hint="Export the file as 'CSV UTF-8', or convert it, e.g. "
            f"`iconv -f {order} -t utf-8 {path.name} > deals-utf8.csv`.",
        )
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
    """Comma, semicolon (spreadsheets in comma-decimal locales) or tab (Excel's "Unicode Text")."""
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: header_line.count(d) for d in ",;\t"}
        return max(counts, key=lambda d: (counts[d], d == ","))
