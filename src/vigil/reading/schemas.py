"""Request and response models of the reading API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

StatusName = Literal["tbr", "reading", "finished"]
MAX_PAGES = 100_000


class BookHitOut(BaseModel):
    source: str = Field(examples=["google_books"])
    source_id: str = Field(examples=["OPy6E5ZhXs0C"], description="The source's own id.")
    title: str
    authors: list[str]
    page_count: int | None = Field(description="Null: the source does not know it.")
    isbn13: str | None
    cover_url: str | None
    published: str | None


class SearchOut(BaseModel):
    query: str
    source: str = Field(description="The source that answered (open_library if Google failed).")
    notes: list[str] = Field(description="What went wrong on the way, if anything.")
    items: list[BookHitOut]


class BookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    google_book_id: str | None
    open_library_key: str | None
    title: str
    author: str
    page_count: int | None = Field(description="As the source gave it.")
    isbn13: str | None
    cover_url: str | None
    source: str


class EntryIn(BaseModel):
    """A book found by a search, to put on the list."""

    source: Literal["google_books", "open_library"] = Field(examples=["google_books"])
    source_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,40}$", examples=["OPy6E5ZhXs0C"], description="From a search."
    )
    status: StatusName = "tbr"


class EntryPatch(BaseModel):
    status: StatusName | None = None
    current_page: int | None = Field(None, ge=0, le=MAX_PAGES)
    page_count: int | None = Field(
        None, ge=1, le=MAX_PAGES, description="Your page count for the book; null: the source's."
    )
    position: int | None = Field(None, ge=0, le=1_000_000, description="Reading order.")


class EntryOut(BaseModel):
    id: int
    status: StatusName
    position: int
    current_page: int
    page_count: int | None = Field(description="Yours if you corrected it, else the book's.")
    page_count_corrected: bool
    pages_left: int | None
    added_at: datetime
    updated_at: datetime
    book: BookOut


class LogIn(BaseModel):
    entry_id: int = Field(ge=1, le=2_147_483_647, description="The book on your list.")
    started_on: date
    finished_on: date


class LogOut(BaseModel):
    id: int
    book: BookOut
    started_on: date
    finished_on: date
    pages: int
    created_at: datetime


class StartIn(BaseModel):
    entry_id: int = Field(ge=1, le=2_147_483_647, description="The book on your list.")


class StopIn(BaseModel):
    pages_read: int | None = Field(None, ge=0, le=MAX_PAGES)
    end_page: int | None = Field(None, ge=0, le=MAX_PAGES, description="The page you reached.")
    end_time: AwareDatetime | None = Field(
        None, description="When you stopped, if not now (a timer left running)."
    )


class SessionIn(BaseModel):
    """A past session, typed in."""

    entry_id: int = Field(ge=1, le=2_147_483_647)
    start_time: AwareDatetime
    end_time: AwareDatetime
    pages_read: int | None = Field(None, ge=0, le=MAX_PAGES)
    start_page: int | None = Field(None, ge=0, le=MAX_PAGES)
    end_page: int | None = Field(None, ge=0, le=MAX_PAGES)

    @model_validator(mode="after")
    def _times_in_order(self) -> SessionIn:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    book_id: int
    start_time: datetime
    end_time: datetime | None = Field(description="Null while the timer runs.")
    start_page: int | None
    end_page: int | None
    pages_read: int | None


class CurrentSessionOut(BaseModel):
    session: SessionOut | None = Field(description="The running session; null when none runs.")


class SessionPage(BaseModel):
    items: list[SessionOut]
    total: int
    limit: int
    offset: int


class BookForecastOut(BaseModel):
    entry_id: int
    title: str
    pages_left: int
    finish: date | None = Field(description="Predicted finish date; null: beyond 40 years.")
    low: date | None = Field(None, description="P10 (contextual model only).")
    high: date | None = Field(None, description="P90 (contextual model only).")


class ModelOut(BaseModel):
    name: str = Field(examples=["speed"])
    available: bool
    pages_per_day: float | None = None
    list_finish: date | None = None
    detail: dict[str, float | list[float]] = Field(default_factory=dict)


class UnknownPagesOut(BaseModel):
    entry_id: int
    title: str


class PredictionOut(BaseModel):
    today: date
    timezone: str
    model: str | None = Field(description="The model used; null when none has data yet.")
    reason: str = Field(description="Why this model (or why none).")
    pages_left: int
    list_finish: date | None = Field(description="When the whole list is read.")
    list_low: date | None = None
    list_high: date | None = None
    books: list[BookForecastOut] = Field(description="In reading order: Reading, then TBR.")
    unknown_pages: list[UnknownPagesOut] = Field(
        description="Books without a page count: set yours to include them."
    )
    models: list[ModelOut] = Field(description="Every model, for comparison.")


class ImportRefusedOut(BaseModel):
    line: int
    title: str
    reason: str


class ImportOut(BaseModel):
    rows: int = Field(description="Book rows in the file.")
    added: int = Field(description="Put on your list.")
    already: int = Field(description="Already on your list: left as they were.")
    logged: int = Field(description="Read books logged (those with a start and an end date).")
    refused: list[ImportRefusedOut] = Field(description="Rows that could not be imported, why.")
