"""`vigil reading …` commands."""

from __future__ import annotations

import math
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import typer
from sqlalchemy import func, select

from vigil.core.auth.models import User
from vigil.core.runtime import boot
from vigil.reading.analytics.forecast import MODELS, backtest
from vigil.reading.predictions import finished_books, load_history


def build() -> typer.Typer:
    app = typer.Typer(
        help="ChronoBook: books, reading sessions, predictions.", no_args_is_help=True
    )

    @app.command("backtest")
    def backtest_command(
        email: Annotated[str, typer.Option("--user", help="The reader's email.")],
        tz: Annotated[str | None, typer.Option(help="IANA time zone of their days.")] = None,
    ) -> None:
        """Predict each finished book of the log from what was known at its start; mean
        absolute error in days per model against a naive baseline (the median duration of
        the books finished before)."""
        runtime = boot(log_format="console")
        try:
            zone = ZoneInfo(tz or runtime.settings.reading_timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise typer.BadParameter(
                f"{tz!r} is not an IANA time zone", param_hint="--tz"
            ) from None
        with runtime.db.session() as session:
            user_id = session.scalar(
                select(User.id).where(func.lower(User.email) == email.strip().lower())
            )
            if user_id is None:
                typer.echo(f"no user {email!r}", err=True)
                raise typer.Exit(1)
            history = load_history(session, user_id, zone, window_days=None)
            starts, ends, pages = finished_books(session, user_id)
        runtime.close()
        result = backtest(
            history,
            np.array(starts, dtype=np.int64),
            np.array(ends, dtype=np.int64),
            np.array(pages, dtype=np.float64),
        )
        typer.echo(
            f"{len(starts)} finished books in the log, {result.books} predicted by every model"
        )
        if result.books == 0:
            typer.echo("nothing to compare yet: the backtest needs finished books after the first")
            return
        for name in (*MODELS, "baseline"):
            mae = result.mae_days[name]
            shown = "-" if math.isnan(mae) else f"{mae:.2f}"
            typer.echo(f"{name:12} mean absolute error {shown} days")

    return app
