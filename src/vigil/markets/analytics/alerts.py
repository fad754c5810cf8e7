"""Price alerts, "N % in M minutes": the change over a window, and a rule that fires once
per move. Pure functions over a price series, no I/O; the job that runs them per asset and
rule persists each :class:`RuleState` between ticks (``to_dict`` / ``from_dict``).

The change (:func:`change_pct`) compares the latest price at or before ``now`` with the
price *as of* the window's start, ``now - window``: the last point at or before that
moment (the price in force then). Without one, when the series begins inside the
window, the first point of the series is the start, so a new asset can alert before it
has a full window of history (the move still happened within ``window``).
The as-of rule is what makes daily series work: on a Monday the 1d change of an NBP rate
is taken from Friday's rate. Across a gap in the data the start is the last price before
the gap, so the change may span more than ``window``; ``start_at`` says so.

Percentages are ``Decimal``, computed exactly from the ``Decimal`` prices (34 digits, not
the ambient context) and rounded half-even to 4 decimal places (:data:`PCT_QUANTUM`,
0.0001 %, a hundredth of a basis point): plenty for thresholds like 0.5 % or 5 %, and
what is compared with the threshold is the value an alert reports, so an alert never
shows a change below its own threshold.

The rule (:func:`evaluate`), for a rule of threshold N and direction d:

* it fires when the change reaches the threshold in a direction d allows: ``pct >= N``
  is a move up, ``pct <= -N`` a move down (reaching it exactly counts);
* it then disarms: the same move does not fire again on the following ticks while the
  change stays past the threshold. It re-arms once the change, in the direction it last
  fired, falls below ``N * rearm_fraction`` (default half the threshold: a move must
  really fade, not wobble around N, before a new one counts; ``rearm_fraction=1`` re-arms
  as soon as the change is below N);
* a still-running move fires again once ``cooldown`` has passed since the last alert (a
  reminder during a long rally at most once per cooldown, never on every tick);
* a move the other way is a new move: +5 % then -5 % fires twice, whatever the cooldown.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from operator import itemgetter
from typing import Any, Literal, get_args

from vigil.markets.analytics.windows import Point

__all__ = [
    "PCT_QUANTUM",
    "Alert",
    "AlertRule",
    "ChangeResult",
    "Direction",
    "Move",
    "RuleState",
    "change_pct",
    "evaluate",
]

Direction = Literal["up", "down", "both"]
"""Which moves a rule watches."""
Move = Literal["up", "down"]
"""Which way a price moved."""

PCT_QUANTUM = Decimal("0.0001")
"""Percentages are rounded (half-even) to this: 4 decimal places of a percent."""

# Exact enough for any price ratio (a NUMERIC price has far fewer digits) and independent
# of whatever decimal context the caller has set.
_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)
_HUNDRED = Decimal(100)
_time = itemgetter(0)


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _positive(name: str, value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class ChangeResult:
    """The change of a price over a window, ending at the latest point at or before the
    evaluation time."""

    change_pct: Decimal
    """``(end_price / start_price - 1) * 100``, rounded to :data:`PCT_QUANTUM`."""
    window: timedelta
    start_at: datetime
    start_price: Decimal
    end_at: datetime
    end_price: Decimal

    @property
    def direction(self) -> Move | None:
        """``"up"`` or ``"down"``, None when the (rounded) change is zero."""
        if self.change_pct > 0:
            return "up"
        return "down" if self.change_pct < 0 else None


def _pct(start: Decimal, end: Decimal) -> Decimal:
    ratio = _CONTEXT.divide(_CONTEXT.subtract(end, start), start)
    pct = _CONTEXT.multiply(ratio, _HUNDRED).quantize(PCT_QUANTUM, context=_CONTEXT)
    # A tiny fall rounds to -0.0000: report it as 0.0000, no sign on "no change".
    return pct.copy_abs() if pct.is_zero() else pct


def change_pct(points: Sequence[Point], window: timedelta, now: datetime) -> ChangeResult | None:
    """The percentage change of ``points`` over ``window`` as of ``now`` (module docstring:
    which points are the start and the end).

    ``points``: ``(time, price)`` in time order, times timezone-aware. The order is not
    checked: both ends are found by binary search (O(log n), so a job can call this for
    thousands of assets per tick), which is only right on sorted input. Points after
    ``now`` are ignored.

    Returns None when there is not enough data: no point at or before ``now``, or the start
    and the end are the same point (a single point, or no new point since the window's
    start), or the start price is not positive (a change from zero is undefined).
    Raises ``ValueError`` for a naive ``now`` or a window that is not positive.
    """
    _aware("now", now)
    _positive("window", window)
    end = bisect_right(points, now, key=_time) - 1
    if end < 0:
        return None
    # The last point at or before the window's start, else the series' first point.
    start = max(bisect_right(points, now - window, key=_time, hi=end + 1) - 1, 0)
    if start == end:
        return None
    start_at, start_price = points[start]
    end_at, end_price = points[end]
    if not start_price > 0:
        return None
    return ChangeResult(
        change_pct=_pct(start_price, end_price),
        window=window,
        start_at=start_at,
        start_price=start_price,
        end_at=end_at,
        end_price=end_price,
    )


@dataclass(frozen=True)
class AlertRule:
    """Fire when the price moves by ``threshold_pct`` % or more within ``window``.

    ``direction``: ``"up"``, ``"down"`` or ``"both"``. ``cooldown``: how long a move that
    keeps going stays quiet after its alert (> 0). ``rearm_fraction`` (0..1): the change
    must fall below ``threshold_pct * rearm_fraction`` before the same direction can fire
    again as a new move (the hysteresis; 1 means just below the threshold). Invalid values
    raise ``ValueError``.
    """

    threshold_pct: Decimal
    window: timedelta
    direction: Direction = "both"
    cooldown: timedelta = timedelta(hours=1)
    rearm_fraction: Decimal = Decimal("0.5")

    def __post_init__(self) -> None:
        for name in ("threshold_pct", "rearm_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Decimal | int):
                raise ValueError(f"{name} must be a Decimal, got {value!r}")
            if not Decimal(value).is_finite():
                raise ValueError(f"{name} must be a finite number, got {value}")
            object.__setattr__(self, name, Decimal(value))
        if self.threshold_pct <= 0:
            raise ValueError(f"threshold_pct must be positive, got {self.threshold_pct}")
        if not 0 <= self.rearm_fraction <= 1:
            raise ValueError(f"rearm_fraction must be between 0 and 1, got {self.rearm_fraction}")
        _positive("window", self.window)
        _positive("cooldown", self.cooldown)
        if self.direction not in get_args(Direction):
            raise ValueError(f"direction must be up, down or both, got {self.direction!r}")

    @property
    def rearm_pct(self) -> Decimal:
        """Below this change (in the direction last fired) the rule is armed again."""
        return self.threshold_pct * self.rearm_fraction


@dataclass(frozen=True)
class RuleState:
    """What a rule remembers about one asset between ticks.

    ``armed``: whether a move in ``last_direction``'s direction may fire as a new move (always
    True before the first alert). ``last_direction`` and ``last_fired_at``: the direction and
    time of the last alert, None before the first.
    """

    armed: bool = True
    last_direction: Move | None = None
    last_fired_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.last_direction not in (None, *get_args(Move)):
            raise ValueError(
                f"last_direction must be up, down or None, got {self.last_direction!r}"
            )
        if (self.last_direction is None) != (self.last_fired_at is None):
            raise ValueError("last_direction and last_fired_at are set together")
        if not self.armed and self.last_direction is None:
            raise ValueError("a rule that never fired is armed")
        if self.last_fired_at is not None:
            _aware("last_fired_at", self.last_fired_at)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"armed": bool, "last_direction": str | None, "last_fired_at": ISO
        8601 str | None}``."""
        return {
            "armed": self.armed,
            "last_direction": self.last_direction,
            "last_fired_at": None if self.last_fired_at is None else self.last_fired_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleState:
        """The inverse of :meth:`to_dict`; raises ``ValueError`` on anything else."""
        try:
            armed, last_direction, fired = (
                data["armed"],
                data["last_direction"],
                data["last_fired_at"],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a rule state: {data!r}") from exc
        if not isinstance(armed, bool) or not isinstance(fired, str | None):
            raise ValueError(f"not a rule state: {data!r}")
        return cls(
            armed=armed,
            last_direction=last_direction,
            last_fired_at=None if fired is None else datetime.fromisoformat(fired),
        )


@dataclass(frozen=True)
class Alert:
    """One firing of a rule, without the asset (the caller knows it)."""

    direction: Move
    change_pct: Decimal
    threshold_pct: Decimal
    window: timedelta
    start_at: datetime
    start_price: Decimal
    end_at: datetime
    end_price: Decimal
    triggered_at: datetime


def _crossed(rule: AlertRule, pct: Decimal) -> Move | None:
    if pct >= rule.threshold_pct and rule.direction != "down":
        return "up"
    if pct <= -rule.threshold_pct and rule.direction != "up":
        return "down"
    return None


def evaluate(
    rule: AlertRule, change: ChangeResult, state: RuleState | None, now: datetime
) -> tuple[Alert | None, RuleState]:
    """Whether ``rule`` fires on ``change`` at ``now``, and the state to keep for the next
    tick (module docstring: the rule). ``state`` is the one returned for the previous tick
    of the same asset and rule, None the first time. ``change`` should be computed over
    ``rule.window``.

    Re-running a tick with the state it produced does not fire twice (the cooldown is
    counted from the alert's ``now``). Raises ``ValueError`` for a naive ``now``.
    """
    _aware("now", now)
    state = RuleState() if state is None else state
    pct = change.change_pct
    armed = state.armed
    if not armed and state.last_direction is not None:
        toward_last = pct if state.last_direction == "up" else -pct
        armed = toward_last < rule.rearm_pct
    kept = state if armed == state.armed else replace(state, armed=armed)
    move = _crossed(rule, pct)
    if move is None:
        return None, kept
    # Still disarmed means the change stayed past the re-arm level in the direction last
    # fired (a move the other way re-arms above), so this is the same move: it stays quiet
    # until the cooldown has passed.
    if not armed and state.last_fired_at is not None and now - state.last_fired_at < rule.cooldown:
        return None, kept
    alert = Alert(
        direction=move,
        change_pct=pct,
        threshold_pct=rule.threshold_pct,
        window=change.window,
        start_at=change.start_at,
        start_price=change.start_price,
        end_at=change.end_at,
        end_price=change.end_price,
        triggered_at=now,
    )
    return alert, RuleState(armed=False, last_direction=move, last_fired_at=now)
