"""Goodreads library export (``goodreads_library_export.csv``) parsed into rows to import.

Columns used: ``Title``, ``Author``, ``Additional Authors``, ``ISBN13`` (Goodreads writes it
as ``="9780439023481"`` so spreadsheets keep it as text), ``Number of Pages``, ``Exclusive
Shelf`` (``to-read``, ``currently-reading``, ``read``), ``Date Read`` and ``Date Added``
(``YYYY/MM/DD``), and ``Date Started`` when an export has it. The export has no start date
otherwise, so a book read is logged (simple mode needs both dates) only when it has one.
Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

from vigil.reading.models import Status
from vigil.reading.sources.base import clean_isbn13

SHELVES = {"to-read": Status.TBR, "currently-reading": Status.READING, "read": Status.FINISHED}
REQUIRED = ("Title", "Author", "Exclusive Shelf")


@dataclass(frozen=True)
class Row:
    line: int
    title: str
    author: str
    isbn13: str | None
    pages: int | None
    status: str
    started: date | None
    finished: date | None


@dataclass(frozen=True)
class Refused:
    line: int
    title: str
    reason: str


class NotAnExport(ValueError):
    """The file is not a Goodreads export (the message says what is missing)."""


def _text(value: str | None) -> str:
    value = (value or "").strip()
    if value.startswith('="') and value.endswith('"'):
        value = value[2:-1]
    return value.replace("\x00", "").strip()


def _date(value: str | None) -> date | None:
    text = _text(value)
    if not text:
        return None
    for form in ("%Y/%m/%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (YYYY/MM/DD)")


def parse(content: str) -> tuple[list[Row], list[Refused]]:
    reader = csv.DictReader(io.StringIO(content.lstrip("\ufeff")))
    try:
        fields = reader.fieldnames or []
    except csv.Error as exc:
        raise NotAnExport(f"the file is not valid CSV: {exc}") from None
    missing = [c for c in REQUIRED if c not in fields]
    if missing:
        raise NotAnExport(
            f"not a Goodreads library export: no column {', '.join(missing)} (export it from "
            "Goodreads: My Books, Import and export, Export Library)"
        )
    rows: list[Row] = []
    refused: list[Refused] = []
    try:
        records = list(reader)
    except csv.Error as exc:
        raise NotAnExport(f"the file is not valid CSV: {exc}") from None
    for number, record in enumerate(records, start=2):  # line 1 is the header
        title = _text(record.get("Title"))[:500]
        if not title:
            refused.append(Refused(number, "", "no title"))
            continue
        shelf = _text(record.get("Exclusive Shelf")).lower()
        if shelf not in SHELVES:
            refused.append(
                Refused(number, title, f"shelf {shelf!r} is not to-read, currently-reading or read")
            )
            continue
        try:
            finished = _date(record.get("Date Read"))
            started = _date(record.get("Date Started"))
        except ValueError as exc:
            refused.append(Refused(number, title, str(exc)))
            continue
        if started and finished and started > finished:
            refused.append(Refused(number, title, "Date Started is after Date Read"))
            continue
        pages_text = _text(record.get("Number of Pages"))
        pages = int(pages_text) if pages_text.isdigit() and int(pages_text) > 0 else None
        authors = [_text(record.get("Author")), *_text(record.get("Additional Authors")).split(",")]
        rows.append(
            Row(
                number,
                title,
                ", ".join(a.strip() for a in authors if a.strip())[:500],
                clean_isbn13(_text(record.get("ISBN13"))),
                pages,
                SHELVES[shelf],
                started,
                finished,
            )
        )
    return rows, refused
