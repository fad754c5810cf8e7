"""`vigil markets …` commands."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from vigil.core.runtime import boot

console = Console(stderr=True)


class BarProgress:
    """A Rich progress bar fed by the miner."""

    def __init__(self) -> None:
        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: TaskID | None = None

    def start(self, description: str, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, note="")

    def advance(self, steps: int = 1, note: str = "") -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=steps, note=note)

    def finish(self) -> None:
        self._bar.stop()


def _run(name: str, params: dict[str, str]) -> None:
    runtime = boot(log_format="console")
    run = runtime.runner.run(name, params, progress=BarProgress())
    if runtime.queue.pending():  # follow-up work the run triggered (signals for new prices)
        with console.status("computing signals for the new prices"):
            runtime.queue.drain()
    color = {"ok": "green", "skipped": "yellow"}.get(run.status, "red")
    console.print(
        f"[{color}]{name}: {run.status}[/] - {run.rows_written} rows. "
        f"{run.message or ''}{run.error or ''}"
    )
    runtime.close()
    if run.status == "failed":
        raise typer.Exit(1)


def _parse_day(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; use YYYY-MM-DD", param_hint=option
        ) from None


def build() -> typer.Typer:
    app = typer.Typer(help="Charon: NBP currency rates and gold.", no_args_is_help=True)

    @app.command()
    def backfill(
        start: Annotated[str | None, typer.Option("--from", help="First date, YYYY-MM-DD.")] = None,
        end: Annotated[str | None, typer.Option("--to", help="Last date, YYYY-MM-DD.")] = None,
    ) -> None:
        """Load the missing part of the history (default: everything NBP has)."""
        params = {
            k: v
            for k, v in (("from", _parse_day(start, "--from")), ("to", _parse_day(end, "--to")))
            if v
        }
        if "from" in params and "to" in params and params["from"] > params["to"]:
            raise typer.BadParameter("--from is after --to", param_hint="--from")
        _run("markets.backfill", params)

    @app.command()
    def sync() -> None:
        """Fetch what NBP published since the last stored date."""
        _run("markets.sync", {})

    return app
