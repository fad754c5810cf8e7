"""FastAPI dependencies: the request's database session (committed once when the request
succeeds) and the process's platform services."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from vigil.core.cache import Cache
from vigil.core.jobs import JobRegistry
from vigil.core.runtime import Runtime
from vigil.settings import Settings


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def db_session(request: Request) -> Iterator[Session]:
    with runtime(request).db.session(write=request.method not in SAFE_METHODS) as session:
        yield session


def settings_dep(request: Request) -> Settings:
    return runtime(request).settings


def job_registry(request: Request) -> JobRegistry:
    return runtime(request).registry


def cache_dep(request: Request) -> Cache:
    return runtime(request).cache
