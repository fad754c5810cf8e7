"""The HTTP app: health, metrics, problem+json errors, and every module's router under
/api/v1/<module>. One factory serves `vigil up`, `vigil api` and the tests."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text

from vigil import __version__
from vigil.core.answers import CachedAnswerMiddleware
from vigil.core.auth.policy import public
from vigil.core.auth.service import AuthService
from vigil.core.auth.setup import declare_docs_public, document_policies, install_auth
from vigil.core.logging import configure_logging
from vigil.core.metrics import (
    RequestContextMiddleware,
    mark_this_process_dead,
    metrics_endpoint,
)
from vigil.core.migrate import current_revision, head_revision
from vigil.core.modules import API_PREFIX, Module, module_prefix
from vigil.core.openapi import problem_errors
from vigil.core.ops_alerts.api import router as ops_alerts_router
from vigil.core.problems import install_problem_handlers, problem_response
from vigil.core.ratelimit import RateLimiter, RateLimitMiddleware
from vigil.core.runtime import Runtime
from vigil.core.scheduling import Scheduler
from vigil.core.tracing import instrument_app
from vigil.core.web.shell import install_web
from vigil.settings import get_settings


def create_app(runtime: Runtime, scheduler: Scheduler | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What exists now (modules, app, ORM and pydantic machinery) lives as long as the
        # process: keep it out of the garbage collector's full passes. Without this, a full
        # pass over it took ~90 ms every few large answers (a 6,000-row page allocates
        # ~50,000 objects), which was the whole p95 of the rates endpoint.
        gc.collect()
        gc.freeze()
        runtime.start_listening()  # other processes' events (cache invalidation, triggers)
        if scheduler is not None:  # embedded mode: jobs run in this process
            runtime.queue.start()
            scheduler.start(
                run_on_start=runtime.settings.run_jobs_on_start,
                overrides=runtime.schedule_overrides(),
            )
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
                runtime.queue.stop()
            runtime.stop_listening()
            mark_this_process_dead()  # one of `vigil api --workers N`: its live gauges go

    app = FastAPI(
        title="Vigil",
        version=__version__,
        description="Time series in, signals, alerts, forecasts and dashboards out. "
        "Errors are RFC 9457 problem details (application/problem+json).",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    if runtime.settings.cache_ttl > 0:
        # Innermost: a repeated URL is answered from the cache, still rate limited, counted
        # and logged by the middlewares around it.
        app.add_middleware(CachedAnswerMiddleware, cache=runtime.cache)
    if runtime.settings.rate_limit:
        # Added first, so it runs inside CORS and the request context: a 429 still carries
        # CORS headers and a request id, and is counted and logged like any answer.
        limiter = RateLimiter(runtime.settings.rate_limit, runtime.settings.redis_url)
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    if runtime.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=runtime.settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware)
    install_problem_handlers(app)
    instrument_app(app)  # a span around each request when tracing is on (vigil.core.tracing)

    @app.get(
        "/health",
        tags=["health"],
        summary="Liveness: the process answers",
        dependencies=[Depends(public)],
    )
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get(
        "/health/ready",
        tags=["health"],
        summary="Readiness: database reachable and migrated to head (503 otherwise)",
        responses={503: {"description": "Not ready; the problem says why."}},
        dependencies=[Depends(public)],
    )
    def ready(request: Request) -> Any:
        try:
            with runtime.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current, head = current_revision(runtime.db.engine), head_revision()
        except Exception as exc:
            return problem_response(
                request,
                503,
                "Service Unavailable",
                f"Database unreachable: {type(exc).__name__}. Check VIGIL_DATABASE_URL.",
            )
        if current != head:
            return problem_response(
                request,
                503,
                "Service Unavailable",
                f"Database schema at {current or 'nothing'}, expected {head}: run `vigil migrate`.",
            )
        return JSONResponse(
            {"status": "ready", "database": runtime.db.dialect, "migration": current}
        )

    app.add_api_route(
        "/metrics", metrics_endpoint, include_in_schema=False, dependencies=[Depends(public)]
    )
    # Accounts, tokens, users, the audit log; every route of the app declares its policy
    # (vigil.core.auth.policy; tests/integration/test_route_policies.py checks).
    install_auth(app, AuthService.from_settings(runtime.settings), runtime.db)
    declare_docs_public(app)
    app.include_router(ops_alerts_router)  # /api/v1/alerts: Alertmanager's webhook receiver

    _include_module_routers(app, runtime.modules)
    install_web(app, runtime.modules, runtime.settings, runtime.db)
    document_policies(app)
    problem_errors(app)
    return app


def _include_module_routers(app: FastAPI, modules: Sequence[Module]) -> None:
    """Each module's router at ``/api/v1/<module>``, and its extra routers at the other
    prefixes it claims (e.g. ``/api/v1/devices``). A router carries its own prefix so that
    each route's path is the full template (the metrics' ``route`` label and the logs use
    it). An extra prefix must lie under /api/v1 and overlap no other module's prefix and no
    route already served (auth, users, audit)."""
    taken = {module_prefix(m.name): m.name for m in modules}
    served = [path for r in app.routes if (path := getattr(r, "path", None))]
    for module in modules:
        if module.router is not None:
            expected = module_prefix(module.name)
            if module.router.prefix != expected:
                raise ValueError(
                    f"module {module.name!r}: router prefix must be {expected!r}, "
                    f"not {module.router.prefix!r}"
                )
            app.include_router(module.router)
        for extra in module.extra_routers:
            prefix = extra.prefix
            if not prefix.startswith(API_PREFIX + "/") or prefix.count("/") != 3:
                raise ValueError(
                    f"module {module.name!r}: an extra router's prefix must be "
                    f"{API_PREFIX}/<name>, not {prefix!r}"
                )
            clash = [p for p in served if p == prefix or p.startswith(prefix + "/")]
            if prefix in taken or clash:
                owner = taken.get(prefix, "core")
                raise ValueError(f"module {module.name!r}: prefix {prefix!r} is {owner}'s already")
            taken[prefix] = module.name
            app.include_router(extra)


def create_app_from_settings() -> FastAPI:
    """App factory for ``vigil api --workers N``: every worker process calls it."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(Runtime.create(settings, role="api"))
