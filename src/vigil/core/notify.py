"""Notifications to webhooks: generic JSON, Slack or Discord, retried with backoff.

Any module can notify: it builds a :class:`Notice` (a title, one line of text and the
details as a flat mapping) and :func:`send` posts it to every configured target in the
target's format. Targets come from ``VIGIL_WEBHOOKS`` (a JSON list of
``{"url": …, "format": "generic" | "slack" | "discord"}``).

- generic: ``{"event", "title", "text", "details"}``: for scripts and tests.
- alertmanager: the JSON Prometheus' Alertmanager posts to its webhook receivers
  (``version`` 4, ``status``, ``alerts`` with ``labels``, ``annotations``, ``startsAt``,
  ``endsAt``, ``fingerprint``), so tools written for Alertmanager take Vigil's alerts as
  they are. The notice's ``event`` is the ``alertname`` label.
- slack: an incoming-webhook message, ``{"text": …}``.
- discord: a webhook message, ``{"content": …}`` (Discord refuses content over 2,000
  characters, so it is cut there).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import BaseModel, HttpUrl
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from vigil import __version__

if TYPE_CHECKING:  # settings import this module (WebhookTarget)
    from vigil.settings import Settings

log = logging.getLogger(__name__)

DISCORD_LIMIT = 2000
USER_AGENT = f"Vigil/{__version__} (webhook notifications)"


class WebhookTarget(BaseModel):
    url: HttpUrl
    format: Literal["generic", "slack", "discord", "alertmanager"] = "generic"


@dataclass(frozen=True)
class Notice:
    event: str  # e.g. "alert"
    title: str
    text: str
    details: Mapping[str, Any] = field(default_factory=dict)
    #: For receivers that track alerts (alertmanager): a resolved notice closes the alert
    #: that the firing one with the same labels opened.
    status: Literal["firing", "resolved"] = "firing"
    labels: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class DeliveryError(Exception):
    """A webhook refused or did not take a notice after every attempt."""


class _Retryable(Exception):
    pass


ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended yet"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alertmanager_payload(notice: Notice) -> dict[str, Any]:
    labels = {"alertname": notice.event, **notice.labels}
    annotations = {"summary": notice.title, "description": notice.text}
    fingerprint = hashlib.sha256(
        "\x00".join(f"{k}={v}" for k, v in sorted(labels.items())).encode()
    ).hexdigest()[:16]
    alert = {
        "status": notice.status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(notice.starts_at or datetime.now(UTC)),
        "endsAt": _rfc3339(notice.ends_at) if notice.ends_at else ZERO_TIME,
        "generatorURL": "",
        "fingerprint": fingerprint,
    }
    group = {"alertname": notice.event}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{notice.event}"}}',
        "truncatedAlerts": 0,
        "status": notice.status,
        "receiver": "vigil",
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [alert],
    }


def payload(notice: Notice, fmt: str) -> dict[str, Any]:
    line = f"{notice.title}: {notice.text}"
    if fmt == "alertmanager":
        return alertmanager_payload(notice)
    if fmt == "slack":
        return {"text": line}
    if fmt == "discord":
        return {"content": line[:DISCORD_LIMIT]}
    return {
        "event": notice.event,
        "title": notice.title,
        "text": notice.text,
        "details": dict(notice.details),
    }


def _post_once(client: httpx.Client, target: WebhookTarget, body: dict[str, Any]) -> None:
    try:
        response = client.post(str(target.url), json=body)
    except httpx.TransportError as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise _Retryable(f"answered {response.status_code}")
    if response.status_code >= 400:  # the receiver refuses this body: retrying won't help
        raise DeliveryError(
            f"webhook {target.url.host} refused the {target.format} notice with "
            f"{response.status_code}: {response.text[:200]}"
        )


def send(
    targets: Sequence[WebhookTarget],
    notice: Notice,
    *,
    max_attempts: int = 5,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
    timeout: float = 10.0,
    sleep: Callable[[float], None] | None = None,
) -> list[str]:
    """Posts ``notice`` to every target; returns the errors of the targets that failed
    after their retries (the others got it)."""
    errors: list[str] = []
    with httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT}) as client:
        for target in targets:
            body = payload(notice, target.format)

            def warn(state: RetryCallState, target: WebhookTarget = target) -> None:
                exc = state.outcome.exception() if state.outcome else None
                log.warning(
                    "webhook %s: attempt %d of %d failed (%s)",
                    target.url.host,
                    state.attempt_number,
                    max_attempts,
                    exc,
                )

            retrying = Retrying(
                stop=stop_after_attempt(max_attempts),
                wait=wait_exponential_jitter(multiplier=backoff_initial, max=backoff_max),
                retry=retry_if_exception_type(_Retryable),
                before_sleep=warn,
                reraise=True,
                sleep=sleep or time.sleep,
            )
            try:
                retrying(_post_once, client, target, body)
            except (_Retryable, DeliveryError) as exc:
                errors.append(f"{target.url.host}: {exc}")
    return errors


def deliver(notices: Sequence[Notice], settings: Settings) -> None:
    """Sends every notice to every webhook of ``VIGIL_WEBHOOKS`` with the configured
    retries; raises :class:`DeliveryError` naming the webhooks that refused, if any did
    (the others got every notice)."""
    errors: list[str] = []
    for notice in notices:
        errors += send(
            settings.webhooks,
            notice,
            max_attempts=settings.webhook_max_attempts,
            backoff_initial=settings.webhook_backoff_initial_seconds,
            backoff_max=settings.webhook_backoff_max_seconds,
        )
    if errors:
        raise DeliveryError("; ".join(sorted(set(errors))))
