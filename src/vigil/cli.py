"""The `vigil` command: process roles and module commands."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer
import uvicorn

from vigil.core.api import create_app
from vigil.core.modules import load_modules
from vigil.core.runtime import Runtime, boot
from vigil.core.scheduling import Scheduler
from vigil.settings import get_settings

app = typer.Typer(
    help="Vigil: collect time series and turn them into signals, alerts and dashboards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("vigil")

HostOpt = Annotated[str | None, typer.Option(help="Listen address (default VIGIL_HOST).")]
PortOpt = Annotated[int | None, typer.Option(help="Listen port (default VIGIL_PORT).")]


def _uvicorn(app_or_factory: Any, host: str | None, port: int | None, **options: Any) -> None:
    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    log.info("Vigil serving on http://%s:%d", host, port)
    # Our logging config stays in charge; access lines come from our middleware.
    uvicorn.run(app_or_factory, host=host, port=port, log_config=None, access_log=False, **options)


def _serve(with_scheduler: bool, host: str | None, port: int | None) -> None:
    runtime = boot()
    scheduler = None
    if with_scheduler:
        runtime.close_interrupted_runs()
        scheduler = Scheduler(runtime.runner, runtime.settings)
    log.info("database: %s", runtime.db.dialect)
    _uvicorn(create_app(runtime, scheduler), host, port)


@app.command()
def up(host: HostOpt = None, port: PortOpt = None) -> None:
    """Everything in one process: migrate, API + UI, scheduler and jobs (embedded mode)."""
    _serve(True, host, port)


@app.command()
def api(
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (one per core is typical).")
    ] = 1,
) -> None:
    """The API alone (no scheduler): scale it out with --workers or behind a load balancer."""
    if workers == 1:
        _serve(False, host, port)
        return
    boot().close()  # migrate once, here, not in every worker
    # Each worker process builds its own app (and database pool) from the settings.
    _uvicorn("vigil.core.api:create_app_from_settings", host, port, factory=True, workers=workers)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    runtime = boot(log_format="console")
    typer.echo(f"database migrated to head ({runtime.db.dialect})")
    runtime.close()


@app.command()
def scheduler() -> None:
    """The clock alone: runs scheduled jobs in this process (no API)."""
    runtime = boot()
    settings = runtime.settings
    runtime.close_interrupted_runs()
    clock = Scheduler(runtime.runner, settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime.queue.start()
    clock.start(run_on_start=settings.run_jobs_on_start)
    stop.wait()
    clock.shutdown(wait=True)
    runtime.close()


@app.command("jobs")
def jobs_list() -> None:
    """List the registered jobs and their schedules."""
    runtime = Runtime.create()
    for spec in runtime.registry:
        cron = spec.cron(runtime.settings) or "on demand"
        typer.echo(f"{spec.name:24} {cron:16} {spec.description}")


for _module in load_modules():
    if _module.cli is not None:
        app.add_typer(_module.cli(), name=_module.name, help=_module.title)


def main() -> None:
    app()
