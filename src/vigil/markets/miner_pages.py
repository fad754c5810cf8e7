"""The Miner page, /markets/miner (public): the markets jobs' recent runs, rows written per
run, the upcoming schedule and the last success per job and per source. The panel refreshes
itself; the job and run-count picks travel with every refresh."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from vigil.core.auth.policy import public
from vigil.core.deps import db_session, job_registry, settings_dep
from vigil.core.jobs import JobRegistry
from vigil.core.problems import BadRequest
from vigil.core.web import render
from vigil.markets.board_charts import rows_per_run_chart
from vigil.markets.miner_board import DEFAULT_RUNS, RUN_COUNTS, job_names, miner_board
from vigil.settings import Settings

router = APIRouter(prefix="/markets", include_in_schema=False, dependencies=[Depends(public)])

PATH = "/markets/miner"


@router.get("/miner", response_class=HTMLResponse)
def miner(
    request: Request,
    session: Annotated[Session, Depends(db_session)],
    registry: Annotated[JobRegistry, Depends(job_registry)],
    settings: Annotated[Settings, Depends(settings_dep)],
    job: Annotated[str, Query(max_length=100, description="One job's runs; empty: all.")] = "",
    runs: Annotated[int, Query(description="Runs listed: 20, 50, 100 or 200.")] = DEFAULT_RUNS,
) -> HTMLResponse:
    names = job_names(registry)
    if job and job not in names:
        raise BadRequest(f"no markets job {job!r}: pick one of {', '.join(names)}")
    if runs not in RUN_COUNTS:
        raise BadRequest(f"runs must be one of {', '.join(map(str, RUN_COUNTS))}, not {runs}")
    board = miner_board(session, registry, settings, job or None, runs)
    context: dict[str, Any] = {
        "title": "Miner",
        "path": PATH,
        "job_names": names,
        "run_counts": RUN_COUNTS,
        "runs_shown": runs,
        "board": board,
        "rows_chart": rows_per_run_chart(board.chart_runs),
        "now": board.now,
    }
    return render(request, "markets/miner.html", context, partial="markets/_miner_panel.html")
