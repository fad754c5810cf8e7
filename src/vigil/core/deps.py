"""FastAPI dependencies: the request's database session (committed once when the request
succeeds) and the process's platform services.

The plain lookups are ``async def``: FastAPI runs a sync dependency in the thread pool, a hop
that costs more than the lookup itself on a cached answer."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from vigil.core.cache import Cache
from vigil.core.jobs import JobRegistry
from vigil.core.runtime import Runtime
from vigil.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def runtime(request: Request) -> Runtime:
    return runtime_of(request)


def db_session(request: Request) -> Iterator[Session]:
    with runtime_of(request).db.session(write=request.method not in SAFE_METHODS) as session:
        yield session


async def settings_dep(request: Request) -> Settings:
    return runtime_of(request).settings


async def job_registry(request: Request) -> JobRegistry:
    return runtime_of(request).registry


async def cache_dep(request: Request) -> Cache:
    return runtime_of(request).cache
