"""Alert rules and alerts: "N % in M minutes", for every asset whatever its source.

Rules live in ``alert_rules``; a rule without an asset is a default that applies to every
asset with no rule of its own. After each ingest the job ``markets.alerts`` evaluates the
rules of the assets that changed: the move over each rule's window (``analytics.alerts``),
fired or not according to the rule's state (armed, last fired: one long rally fires once,
not every tick), kept per (asset, rule) in ``alert_states``. A fired alert is a row in
``alerts``, one JSON log line with every detail, and ``alerts_total{asset,direction}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from vigil.core.auth import audit
from vigil.core.notify import Notice
from vigil.core.problems import BadRequest, NotFound
from vigil.markets.analytics.alerts import AlertRule, RuleState, change_pct, evaluate
from vigil.markets.models import AlertRow, AlertRuleRow, AlertStateRow, Asset, Price

log = logging.getLogger(__name__)

# The seed's own metric names.
ALERTS_TOTAL = Counter(
    "alerts_total", "Alerts fired, by asset and direction.", ["asset", "direction"]
)
ALERT_COMPUTE = Histogram(
    "alert_compute_seconds",
    "Time to evaluate the alert rules of the assets of one ingest.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


@dataclass(frozen=True)
class RuleInput:
    asset: str | None  # None: the default rule of every asset
    threshold_pct: Decimal
    window_minutes: int
    direction: str
    cooldown_minutes: int
    enabled: bool = True


# --- rules: create, read, update, delete ------------------------------------------------------


def _known_asset(session: Session, code: str | None) -> str | None:
    if code is None:
        return None
    code = code.upper()
    if session.scalar(select(Asset.id).where(Asset.code == code)) is None:
        raise BadRequest(
            f"no asset {code!r} to watch: add it first (POST /api/v1/markets/assets) or leave "
            "asset empty for a default rule of every asset"
        )
    return code


def _apply(session: Session, row: AlertRuleRow, rule: RuleInput, now: datetime) -> None:
    row.asset_code = _known_asset(session, rule.asset)
    row.threshold_pct = rule.threshold_pct
    row.window_minutes = rule.window_minutes
    row.direction = rule.direction
    row.cooldown_minutes = rule.cooldown_minutes
    row.enabled = rule.enabled
    row.updated_at = now


def _forget_states(session: Session, rule_id: int) -> None:
    session.query(AlertStateRow).filter(AlertStateRow.rule_id == rule_id).delete()


RULE_FIELDS = (
    "asset_code",
    "threshold_pct",
    "window_minutes",
    "direction",
    "cooldown_minutes",
    "enabled",
)
AUDIT_ENTITY = "markets.alert_rule"


def create_rule(session: Session, rule: RuleInput, now: datetime | None = None) -> AlertRuleRow:
    now = now or datetime.now(UTC)
    row = AlertRuleRow(created_at=now)
    _apply(session, row, rule, now)
    session.add(row)
    session.flush()
    audit.record(session, "create", AUDIT_ENTITY, row.id, after=audit.snapshot(row, RULE_FIELDS))
    return row


def get_rule(session: Session, rule_id: int) -> AlertRuleRow:
    row = session.get(AlertRuleRow, rule_id)
    if row is None:
        raise NotFound(f"no alert rule {rule_id}; GET /api/v1/markets/alert-rules lists them")
    return row


def update_rule(
    session: Session, rule_id: int, rule: RuleInput, now: datetime | None = None
) -> AlertRuleRow:
    row = get_rule(session, rule_id)
    before = audit.snapshot(row, RULE_FIELDS)
    _apply(session, row, rule, now or datetime.now(UTC))
    # A changed rule starts afresh: its old memory was about another threshold or window.
    _forget_states(session, rule_id)
    session.flush()
    audit.record(
        session,
        "update",
        AUDIT_ENTITY,
        row.id,
        before=before,
        after=audit.snapshot(row, RULE_FIELDS),
    )
    return row


def delete_rule(session: Session, rule_id: int) -> None:
    row = get_rule(session, rule_id)
    before = audit.snapshot(row, RULE_FIELDS)
    session.delete(row)
    _forget_states(session, rule_id)
    session.flush()
    audit.record(session, "delete", AUDIT_ENTITY, rule_id, before=before)


Row = TypeVar("Row", AlertRuleRow, AlertRow)


def _page_of(
    session: Session, model: type[Row], asset: str | None, order: Any, limit: int, offset: int
) -> tuple[list[Row], int]:
    """One page of ``model`` rows (of one asset, if given) and the total."""
    stmt = select(model)
    if asset is not None:
        stmt = stmt.where(model.asset_code == asset.upper())
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(order).limit(limit).offset(offset)).all()
    return list(rows), total


def list_rules(
    session: Session, asset: str | None, limit: int, offset: int
) -> tuple[list[AlertRuleRow], int]:
    return _page_of(session, AlertRuleRow, asset, AlertRuleRow.id, limit, offset)


def list_alerts(
    session: Session, asset: str | None, limit: int, offset: int
) -> tuple[list[AlertRow], int]:
    """Newest first."""
    return _page_of(session, AlertRow, asset, AlertRow.id.desc(), limit, offset)


# --- evaluation ---------------------------------------------------------------------------------


def rules_for(session: Session, code: str) -> list[AlertRuleRow]:
    """The asset's own enabled rules, or else the enabled default rules."""
    stmt = select(AlertRuleRow).where(
        AlertRuleRow.enabled.is_(True),
        or_(AlertRuleRow.asset_code == code, AlertRuleRow.asset_code.is_(None)),
    )
    rows = list(session.scalars(stmt.order_by(AlertRuleRow.id)))
    own = [r for r in rows if r.asset_code == code]
    return own or [r for r in rows if r.asset_code is None]


def _point(
    session: Session, asset_id: int, where: Any, newest: bool
) -> tuple[datetime, Decimal] | None:
    order = Price.ts.desc() if newest else Price.ts
    stmt = select(Price.ts, Price.price).where(Price.asset_id == asset_id, where)
    row = session.execute(stmt.order_by(order).limit(1)).first()
    return (row[0], Decimal(row[1])) if row is not None else None


def _window_ends(
    session: Session, asset_id: int, window: timedelta, now: datetime
) -> list[tuple[datetime, Decimal]]:
    """The two points ``change_pct`` reads (the last at or before the window's start, else the
    first inside it; and the latest), found by two indexed lookups instead of loading the
    whole series."""
    end = _point(session, asset_id, Price.ts <= now, newest=True)
    if end is None:
        return []
    start = _point(session, asset_id, Price.ts <= now - window, newest=True) or _point(
        session, asset_id, Price.ts > now - window, newest=False
    )
    return sorted({p for p in (start, end) if p is not None})


@dataclass(frozen=True)
class Evaluation:
    checked: int  # (asset, rule) pairs with enough data to compute a move
    fired: list[AlertRow]


def evaluate_assets(session: Session, codes: list[str], now: datetime | None = None) -> Evaluation:
    """Evaluates the rules of ``codes`` at ``now``; stores fired alerts and every rule's
    new state."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    fired: list[AlertRow] = []
    checked = 0
    for code in sorted(set(codes)):
        asset_id = session.scalar(select(Asset.id).where(Asset.code == code))
        if asset_id is None:
            continue
        for row in rules_for(session, code):
            rule = AlertRule(
                threshold_pct=Decimal(row.threshold_pct),
                window=timedelta(minutes=row.window_minutes),
                direction=row.direction,  # type: ignore[arg-type]
                cooldown=timedelta(minutes=row.cooldown_minutes),
            )
            change = change_pct(_window_ends(session, asset_id, rule.window, now), rule.window, now)
            if change is None:
                continue
            checked += 1
            stored = session.get(AlertStateRow, (code, row.id))
            state = RuleState.from_dict(stored.state) if stored is not None else None
            alert, new_state = evaluate(rule, change, state, now)
            if stored is None:
                session.add(
                    AlertStateRow(
                        asset_code=code, rule_id=row.id, state=new_state.to_dict(), updated_at=now
                    )
                )
            elif new_state != state:
                stored.state, stored.updated_at = new_state.to_dict(), now
            if alert is not None:
                fired.append(_record(session, code, row, alert))
    session.flush()
    ALERT_COMPUTE.observe(time.perf_counter() - started)
    return Evaluation(checked, fired)


def _record(session: Session, code: str, rule: AlertRuleRow, alert: Any) -> AlertRow:
    row = AlertRow(
        asset_code=code,
        rule_id=rule.id,
        direction=alert.direction,
        change_pct=alert.change_pct,
        threshold_pct=alert.threshold_pct,
        window_minutes=rule.window_minutes,
        start_at=alert.start_at,
        start_price=alert.start_price,
        end_at=alert.end_at,
        end_price=alert.end_price,
        triggered_at=alert.triggered_at,
    )
    session.add(row)
    ALERTS_TOTAL.labels(code, alert.direction).inc()
    log.warning(
        "alert: %s %s %s%% in %d min (threshold %s%%)",
        code,
        alert.direction,
        alert.change_pct,
        rule.window_minutes,
        alert.threshold_pct,
        extra={
            "alert": {
                "asset": code,
                "rule_id": rule.id,
                "direction": alert.direction,
                "change_pct": str(alert.change_pct),
                "threshold_pct": str(alert.threshold_pct),
                "window_minutes": rule.window_minutes,
                "start_at": alert.start_at.isoformat(),
                "start_price": str(alert.start_price),
                "end_at": alert.end_at.isoformat(),
                "end_price": str(alert.end_price),
                "triggered_at": alert.triggered_at.isoformat(),
            }
        },
    )
    return row


# --- notifications ------------------------------------------------------------------------------


def notice_of(alert: AlertRow) -> Notice:
    sign = "+" if alert.direction == "up" else ""
    return Notice(
        event="alert",
        title=f"Vigil alert: {alert.asset_code} {alert.direction}",
        text=(
            f"{alert.asset_code} moved {sign}{alert.change_pct} % in {alert.window_minutes} "
            f"min ({alert.start_price} at {alert.start_at:%Y-%m-%d %H:%M} UTC → "
            f"{alert.end_price} at {alert.end_at:%Y-%m-%d %H:%M} UTC; "
            f"threshold {alert.threshold_pct} %)"
        ),
        details={
            "id": alert.id,
            "asset": alert.asset_code,
            "rule_id": alert.rule_id,
            "direction": alert.direction,
            "change_pct": str(alert.change_pct),
            "threshold_pct": str(alert.threshold_pct),
            "window_minutes": alert.window_minutes,
            "start_at": alert.start_at.isoformat(),
            "start_price": str(alert.start_price),
            "end_at": alert.end_at.isoformat(),
            "end_price": str(alert.end_price),
            "triggered_at": alert.triggered_at.isoformat(),
        },
    )


def alerts_by_id(session: Session, ids: list[int]) -> list[AlertRow]:
    stmt = select(AlertRow).where(AlertRow.id.in_(ids)).order_by(AlertRow.id)
    return list(session.scalars(stmt))
