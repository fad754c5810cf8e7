"""How a module plugs into core: one small object per module, found through the
``vigil.modules`` entry point group, so core never imports a module by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from fastapi import APIRouter

from vigil.core.cache import CacheRule
from vigil.core.events import Handler
from vigil.core.jobs import JobSpec
from vigil.core.queue import Trigger
from vigil.core.web.pages import WebPages

if TYPE_CHECKING:
    import typer
    from sqlalchemy.orm import Session


API_PREFIX = "/api/v1"


def module_prefix(name: str) -> str:
    """Where a module's routes live: ``/api/v1/<module>``."""
    return f"{API_PREFIX}/{name}"


@dataclass(frozen=True)
class Module:
    name: str  # URL prefix (/api/v1/<name>) and CLI group (`vigil <name> …`)
    title: str
    router: APIRouter | None = None
    #: Routers at other paths under /api/v1, for a path a seed names (the network module's
    #: /api/v1/devices). Each prefix belongs to one module and clashes with no other route;
    #: core checks both when it builds the app.
    extra_routers: tuple[APIRouter, ...] = ()
    web: WebPages | None = None  # UI pages under /<name>/…, added to the shell's menu
    jobs: tuple[JobSpec, ...] = ()
    event_handlers: tuple[tuple[str, Handler], ...] = ()
    triggers: tuple[Trigger, ...] = ()  # events that enqueue one of the module's jobs
    cache_rules: tuple[CacheRule, ...] = ()  # events that make cached answers stale
    cli: Callable[[], typer.Typer] | None = None  # built lazily: the API never needs it
    #: Job name -> cron that replaces the job's schedule, read from the module's own data
    #: when the scheduler starts (e.g. a configured source's schedule).
    schedule_overrides: Callable[[Session], dict[str, str]] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


@lru_cache(maxsize=1)
def load_modules() -> tuple[Module, ...]:
    found: list[Module] = []
    for ep in sorted(entry_points(group="vigil.modules"), key=lambda e: e.name):
        module = ep.load()
        if not isinstance(module, Module):
            raise TypeError(f"entry point {ep.value} is not a vigil Module")
        found.append(module)
    return tuple(found)
