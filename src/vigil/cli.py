"""The `vigil` command: process roles and module commands."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer
import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError

from vigil.core.api import create_app
from vigil.core.auth import service as auth_service
from vigil.core.auth.passwords import Passwords
from vigil.core.auth.permissions import Role
from vigil.core.jobs import worker_id
from vigil.core.leader import LeaderLock
from vigil.core.logging import configure_logging
from vigil.core.metrics import multiprocess_metrics
from vigil.core.modules import load_modules
from vigil.core.problems import Problem
from vigil.core.runtime import Runtime, boot, job_queues
from vigil.core.scheduling import Scheduler
from vigil.core.worker import run_worker
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
    runtime = boot(role="embedded" if with_scheduler else "api")
    scheduler = None
    if with_scheduler:
        runtime.close_interrupted_runs()
        scheduler = Scheduler(runtime.runner, runtime.settings)
    log.info("database: %s", runtime.db.dialect)
    _uvicorn(create_app(runtime, scheduler), host, port)


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


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
    # The workers write their metrics to one directory and each scrape sums them all;
    # set before uvicorn spawns them, removed (if it is ours) when they are gone.
    with multiprocess_metrics() as metrics_dir:
        log.info("metrics of %d workers summed through %s", workers, metrics_dir)
        # Each worker process builds its own app (and database pool) from the settings.
        _uvicorn(
            "vigil.core.api:create_app_from_settings", host, port, factory=True, workers=workers
        )


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    runtime = boot(log_format="console")
    typer.echo(f"database migrated to head ({runtime.db.dialect})")
    runtime.close()


@app.command()
def scheduler() -> None:
    """The clock: with a broker (VIGIL_REDIS_URL or VIGIL_BROKER_URL) it sends due jobs to the
    workers, and only one scheduler, holding a lock in Redis, is active; without one it runs
    them in this process."""
    runtime = boot(role="scheduler")
    settings = runtime.settings
    if runtime.distributed:
        leader = None
        if settings.redis_url:
            leader = LeaderLock(
                settings.redis_url, identity=worker_id(), ttl_seconds=settings.scheduler_lock_ttl
            )
        else:
            log.warning("no VIGIL_REDIS_URL: run one scheduler only (nothing guards against two)")
        clock = Scheduler(
            runtime.runner,
            settings,
            submit=lambda name: runtime.dispatch.enqueue(name, {}),
            leader=leader,
        )
    else:
        runtime.close_interrupted_runs()
        runtime.queue.start()
        clock = Scheduler(runtime.runner, settings)
    clock.start(run_on_start=settings.run_jobs_on_start, overrides=runtime.schedule_overrides())
    _wait_for_signal()
    clock.shutdown(wait=True)
    runtime.close()


@app.command()
def worker(
    queues: Annotated[
        str | None,
        typer.Option("-Q", "--queues", help="Comma-separated queues (default: all of them)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("-c", "--concurrency", min=1, max=64, help="Jobs run at once.")
    ] = 2,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve /metrics on this port (default VIGIL_WORKER_METRICS_PORT; 0: off).",
        ),
    ] = None,
) -> None:
    """Runs the jobs that the scheduler, the API and events send (Celery; needs a broker)."""
    if not get_settings().effective_broker_url:
        typer.echo("vigil worker needs a broker: set VIGIL_REDIS_URL (or _BROKER_URL).", err=True)
        raise typer.Exit(2)
    wanted = frozenset(q.strip() for q in queues.split(",") if q.strip()) if queues else None
    runtime = boot(role="worker", queues=wanted)
    known = job_queues(runtime.registry)
    chosen = sorted(wanted or known)
    if unknown := set(chosen) - known:
        typer.echo(
            f"unknown queue(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}",
            err=True,
        )
        raise typer.Exit(2)
    port = runtime.settings.worker_metrics_port if metrics_port is None else metrics_port
    if port:
        # Job counts and durations, source fetch errors and last successes, for Prometheus.
        start_http_server(port, addr=runtime.settings.host)
        log.info("worker metrics on http://%s:%d/metrics", runtime.settings.host, port)
    runtime.close_interrupted_runs()
    runtime.start_listening()  # events that trigger jobs of these queues
    runtime.queue.start()
    try:
        code = run_worker(runtime, chosen, concurrency)
    finally:
        runtime.close()
    raise typer.Exit(code)


@app.command("jobs")
def jobs_list() -> None:
    """List the registered jobs and their schedules."""
    runtime = Runtime.create()
    for spec in runtime.registry:
        cron = spec.cron(runtime.settings) or "on demand"
        typer.echo(f"{spec.name:26} {spec.queue:10} {cron:16} {spec.description}")


def _backup_log(fmt: str) -> logging.Logger:
    """The backup commands' progress and errors as log lines (JSON in the chart's CronJob)."""
    settings = get_settings()
    configure_logging(settings.log_level, fmt)
    for noisy in ("boto3", "botocore", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger("vigil.backup")


@app.command()
def backup(
    list_: Annotated[
        bool, typer.Option("--list", help="List the stored dumps instead of taking one.")
    ] = False,
) -> None:
    """pg_dump the database (custom format) to S3-compatible storage, then apply retention
    (VIGIL_BACKUP_*; docs/DISASTER_RECOVERY.md). Progress and errors are log lines
    (VIGIL_LOG_FORMAT); exits 1 with the reason when a step fails."""
    from vigil.core import backup as backups  # noqa: PLC0415  # boto3 only for this command

    settings = get_settings()
    blog = _backup_log(settings.log_format)
    try:
        if list_:
            for dump in backups.stored_dumps(settings):
                typer.echo(f"{dump.key}  {dump.taken:%Y-%m-%d %H:%M:%S}Z  {dump.size} bytes")
            return
        result = backups.run_backup(settings, blog.info)
    except backups.BackupError as exc:
        blog.error("backup failed: %s", exc)
        raise typer.Exit(1) from None
    blog.info("backup: done: %s (%d bytes)", result.key, result.size)


@app.command()
def restore(
    into: Annotated[
        str,
        typer.Option(
            help="PostgreSQL URL of the database to restore into (best a new one); the "
            "password may come from PGPASSWORD instead."
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="The dump (key or file name); default: the newest.")
    ] = None,
    clean: Annotated[
        bool, typer.Option(help="Drop the dump's objects first (a database not empty).")
    ] = False,
) -> None:
    """Download a dump from S3-compatible storage and pg_restore it in one transaction; then
    run `vigil migrate` with the new database (docs/DISASTER_RECOVERY.md)."""
    from vigil.core import backup as backups  # noqa: PLC0415

    blog = _backup_log("console")  # run by a person, like `vigil migrate`
    try:
        key = backups.run_restore(get_settings(), into, blog.info, name=name, clean=clean)
    except backups.BackupError as exc:
        blog.error("restore failed: %s", exc)
        raise typer.Exit(1) from None
    blog.info("restore: %s restored; next: `vigil migrate` against that database", key)


users = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(users, name="users")


@users.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The new Admin's email (also their sign-in name).")],
    name: Annotated[
        str | None, typer.Option(help="Display name (default: from the email).")
    ] = None,
) -> None:
    """Create an Admin account. The password comes from VIGIL_ADMIN_PASSWORD (or
    VIGIL_ADMIN_PASSWORD_FILE), else it is asked for twice."""
    runtime = boot(log_format="console")
    password = runtime.settings.admin_password.get_secret_value()
    if not password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with runtime.db.session(write=True) as session:
            user = auth_service.create_user(
                session,
                Passwords.from_settings(runtime.settings),
                email,
                password,
                display_name=name,
                role=Role.ADMIN,
            )
    except Problem as exc:
        typer.echo(f"not created: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(f"Admin {user.email} created (id {user.id})")


for _module in load_modules():
    if _module.cli is not None:
        app.add_typer(_module.cli(), name=_module.name, help=_module.title)


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # Bad settings (a secret file or Vault that cannot be read, a wrong value): say what,
        # without a traceback and without the values (they may be secrets).
        typer.echo("vigil: the settings are not valid:", err=True)
        for error in exc.errors(include_input=False):
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            typer.echo(f"  - {where + ': ' if where else ''}{message}", err=True)
        raise SystemExit(2) from None
