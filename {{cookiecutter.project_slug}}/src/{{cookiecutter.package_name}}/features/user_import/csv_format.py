"""What a users CSV looks like: columns, encodings, delimiters, and how a row is checked.

Pure functions and small classes, shared by the api (checking an upload's header and
bytes while it streams in) and the worker (reading and validating the rows).
"""

import codecs
import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from ..users import rules

BOM = codecs.BOM_UTF8
UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
CP1252 = "cp1252"

# Column -> the header names accepted for it (compared case-insensitively, trimmed).
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "nome"),
    "email": ("email", "e-mail"),
    "department": ("department", "departamento"),
    "job_title": ("job_title", "cargo"),
}
REQUIRED = ("name", "email")
TEMPLATE_ROWS = (
    ("name", "email", "department", "job_title"),
    ("Ana Souza", "ana.souza@example.com", "Engineering", "Software Engineer"),
    ("João Pereira", "joao.pereira@example.com", "Sales", "Account Manager"),
)

# The most characters one row (record) may have, header included: a row of absurd width
# (a 50 MB line of commas is 50 million cells) is a row error read in bounded memory.
ROW_MAX_CHARS = 64 * 1024
# Spreadsheets run cells starting with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class HeaderError(ValueError):
    """The header row does not name the required columns (or names one twice)."""

    def __init__(self, message: str, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)


def detect_delimiter(header_line: str) -> str:
    """`;` when the header has more semicolons than commas, else `,`."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def map_header(cells: Sequence[str]) -> dict[str, int]:
    """Column name -> its index in the rows; raises HeaderError when a required one is missing."""
    aliases = {alias: column for column, names in COLUMNS.items() for alias in names}
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        column = aliases.get(cell.strip().lstrip("\ufeff").strip().lower())
        if column is None:
            continue
        if column in found:
            raise HeaderError(f"the header names the '{column}' column twice")
        found[column] = index
    missing = [column for column in REQUIRED if column not in found]
    if missing:
        expected = ", ".join(f"'{c}' (or '{COLUMNS[c][1]}')" for c in missing)
        raise HeaderError(f"the header has no {expected} column", missing)
    return found


def parse_header(line: str) -> tuple[str, dict[str, int]]:
    """The delimiter and column map of a CSV's first line."""
    delimiter = detect_delimiter(line)
    cells = next(csv.reader([line], delimiter=delimiter), [])
    return delimiter, map_header(cells)


class RowTooLongError(Exception):
    """The row being read is longer than ROW_MAX_CHARS; the rest of its line was skipped."""


class BoundedLines(Iterator[str]):
    """A text stream's lines for `csv.reader`, never more than `max_chars` per record.

    csv.reader builds a whole record before it hands it over, so the bound must hold
    below it: call `start_record()` before asking the reader for each record; a line
    that would take the record past `max_chars` raises RowTooLongError out of the
    reader (which starts afresh on the next call) after the rest of that physical line
    is skipped, read `max_chars` at a time. Memory is bounded by `max_chars`, whatever
    the file holds.
    """

    def __init__(self, text: TextIO, max_chars: int = ROW_MAX_CHARS) -> None:
        self.text = text
        self.max_chars = max_chars
        self.used = 0

    def start_record(self) -> None:
        self.used = 0

    def __next__(self) -> str:
        # One character over the budget tells a record that fits from one that does not.
        line = self.text.readline(self.max_chars - self.used + 1)
        if not line:
            raise StopIteration
        self.used += len(line)
        if self.used > self.max_chars:
            while line and not line.endswith(("\n", "\r")):
                line = self.text.readline(self.max_chars)
            raise RowTooLongError
        return line


class EncodingSniffer:
    """Fed a file's bytes in order, says which encoding reads it all.

    UTF-8 with a BOM, else UTF-8 when every byte decodes as UTF-8, else Windows-1252
    (which leaves only five byte values undefined). NUL bytes mean a binary file.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder(UTF8)()
        self._cp1252 = codecs.getincrementaldecoder(CP1252)()
        self.utf8_ok = True
        self.cp1252_ok = True
        self.has_nul = False
        self.starts_with_bom: bool | None = None
        self._head = b""

    def feed(self, data: bytes) -> None:
        if self.starts_with_bom is None:
            self._head += data
            if len(self._head) < len(BOM):
                return
            self.starts_with_bom = self._head.startswith(BOM)
            data, self._head = self._head, b""
        self._check(data, final=False)

    def _check(self, data: bytes, *, final: bool) -> None:
        if b"\x00" in data:
            self.has_nul = True
        if self.utf8_ok:
            try:
                self._utf8.decode(data, final=final)
            except UnicodeDecodeError:
                self.utf8_ok = False
        if self.cp1252_ok:
            try:
                self._cp1252.decode(data, final=final)
            except UnicodeDecodeError:
                self.cp1252_ok = False

    def finish(self) -> str | None:
        """The encoding, or None when no supported one reads the whole file."""
        if self.starts_with_bom is None:
            self.starts_with_bom = self._head.startswith(BOM)
        self._check(self._head, final=True)
        self._head = b""
        if self.has_nul:
            return None
        if self.utf8_ok:
            return UTF8_BOM if self.starts_with_bom else UTF8
        return CP1252 if self.cp1252_ok else None


def decode_header(head: bytes) -> str:
    """The first line of a file, decoded the way `EncodingSniffer` would most likely read it."""
    line = head.split(b"\n", 1)[0].removeprefix(BOM).rstrip(b"\r")
    try:
        return line.decode(UTF8)
    except UnicodeDecodeError:
        return line.decode(CP1252, errors="replace")


@dataclass(frozen=True)
class RowError:
    row_number: int
    field: str
    message: str


@dataclass(frozen=True)
class ValidRow:
    row_number: int
    email: str
    name: str
    department: str | None
    job_title: str | None


def _cell(cells: Sequence[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def cell_count(cells: Sequence[str]) -> int:
    """How many cells a row has, not counting empty ones at its end (spreadsheets pad)."""
    count = len(cells)
    while count and not cells[count - 1].strip():
        count -= 1
    return count


def validate_row(
    row_number: int, cells: Sequence[str], columns: dict[str, int], width: int
) -> ValidRow | list[RowError]:
    """One data row of a file whose header has `width` cells: a ValidRow, or every problem.

    The fields follow the users feature's rules (`users/rules.py`), as `POST /admin/users`
    does; a row with more cells than the header is refused (a delimiter in an unquoted
    cell shifts every column after it).
    """
    if (count := cell_count(cells)) > width:
        message = f"has {count} cells, more than the header's {width}: quote cells with a delimiter"
        return [RowError(row_number, "row", message)]
    name = _cell(cells, columns.get("name"))
    email = _cell(cells, columns.get("email"))
    department = _cell(cells, columns.get("department")) or None
    job_title = _cell(cells, columns.get("job_title")) or None
    problems = rules.problems(name=name, email=email, department=department, job_title=job_title)
    if problems:
        return [RowError(row_number, p.field, p.message) for p in problems]
    return ValidRow(
        row_number,
        rules.normalize_email(email),
        rules.normalize_name(name),
        department,
        job_title,
    )


def is_blank(cells: Sequence[str]) -> bool:
    return all(not cell.strip() for cell in cells)


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def neutralised(cells: Iterable[str]) -> list[str]:
    return [neutralise(cell) for cell in cells]
