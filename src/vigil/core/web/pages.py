"""What a module hands to the shell: its page router, its templates, its menu entries and
the cards it puts on the home page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request

#: A home page card: the card's HTML for this request (rendered by the module from its own
#: templates and data), or None for no card (nobody signed in, no permission, no data).
HomeCard = Callable[[Request], str | None]


@dataclass(frozen=True)
class NavLink:
    title: str
    path: str  # absolute, e.g. /markets/dashboard


@dataclass(frozen=True)
class WebPages:
    router: APIRouter  # pages under /<module>/…, answering HTML (HTMX partials included)
    templates: Path  # holds a folder named after the module: templates/<module>/page.html
    nav: tuple[NavLink, ...] = ()
    home_cards: tuple[HomeCard, ...] = ()
