"""/api/v1/alerts: Alertmanager's webhook receiver (a service token with ``alerts.receive``)
and the list of what it delivered (``ops.read``)."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vigil.core.auth.policy import require
from vigil.core.deps import db_session, runtime_of
from vigil.core.modules import API_PREFIX
from vigil.core.ops_alerts import service
from vigil.core.ops_alerts.schemas import (
    MAX_ALERTNAME,
    MAX_SEVERITY,
    Notification,
    OpsAlertOut,
    OpsAlertPage,
    ReceiveResult,
)
from vigil.core.paging import next_offset
from vigil.core.problems import Problem

PREFIX = f"{API_PREFIX}/alerts"
#: A notification larger than this is refused (413) before it is parsed. Alertmanager's
#: JSON for 1,000 alerts with a dozen labels and a few annotations is about 2 MB.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_OFFSET = 2_147_483_647

router = APIRouter(prefix=PREFIX, tags=["alerts"])


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` put in place (the OpenAPI document has no
    room for a request body's own definitions)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Problem(413, f"The notification is larger than {MAX_BODY_BYTES // 2**20} MB.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:  # a chunked body, counted as it comes
            raise Problem(413, f"The notification is larger than {MAX_BODY_BYTES // 2**20} MB.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/alertmanager",
    response_model=ReceiveResult,
    summary="Alertmanager's webhook: store the notification's alerts by fingerprint",
    description='The body is what Alertmanager\'s `webhook_configs` send (`version` "4", '
    "`status`, `receiver`, `alerts` with `status`, `labels`, `annotations`, `startsAt`, "
    "`endsAt`, `generatorURL`, `fingerprint`). Each alert is inserted or updated by its "
    "fingerprint, all in one transaction; delivering the same notification again changes "
    "nothing but the receive count. Needs a service token with the scope `alerts.receive`.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(Notification.model_json_schema())}},
        }
    },
    responses={
        413: {"description": f"Larger than {MAX_BODY_BYTES // 2**20} MB."},
        422: {"description": "Not a valid Alertmanager notification; nothing stored."},
    },
    dependencies=[Depends(require("alerts.receive"))],
)
async def receive_alertmanager(request: Request) -> ReceiveResult:
    raw = await _body(request)
    try:
        notification = Notification.model_validate_json(raw)
    except ValidationError as exc:
        # Answered like FastAPI's own body errors: a 422 problem naming each field.
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    db = runtime_of(request).db

    def store() -> int:
        with db.session(write=True) as session:
            return service.receive(session, notification)

    stored = await run_in_threadpool(store)
    received = len({a.fingerprint for a in notification.alerts})
    return ReceiveResult(received=received, stored=stored)


@router.get(
    "",
    response_model=OpsAlertPage,
    summary="Alerts Alertmanager delivered: firing first, then by severity, newest first",
    dependencies=[Depends(require("ops.read"))],
)
def list_alerts(
    session: Annotated[Session, Depends(db_session)],
    status: Annotated[Literal["firing", "resolved"] | None, Query()] = None,
    alertname: Annotated[str | None, Query(max_length=MAX_ALERTNAME)] = None,
    severity: Annotated[str | None, Query(max_length=MAX_SEVERITY)] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (default 100).")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")] = 0,
) -> OpsAlertPage:
    rows, total = service.list_alerts(
        session, status=status, alertname=alertname, severity=severity, limit=limit, offset=offset
    )
    return OpsAlertPage(
        items=[OpsAlertOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=next_offset(offset, limit, total),
    )
