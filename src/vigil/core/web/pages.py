"""What a module hands to the shell: its page router, its templates and its menu entries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter


@dataclass(frozen=True)
class NavLink:
    title: str
    path: str  # absolute, e.g. /markets/dashboard


@dataclass(frozen=True)
class WebPages:
    router: APIRouter  # pages under /<module>/…, answering HTML (HTMX partials included)
    templates: Path  # holds a folder named after the module: templates/<module>/page.html
    nav: tuple[NavLink, ...] = ()
