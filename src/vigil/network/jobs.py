"""Network jobs, declared here and registered with core through the module object."""

from __future__ import annotations

from typing import Any

from vigil.core.db import utcnow
from vigil.core.jobs import JobContext, JobResult, JobSpec
from vigil.core.notify import deliver
from vigil.core.queue import Trigger
from vigil.network import icmp, polling, snmp_polling
from vigil.network.credentials import Vault

ALERT_CHANGED = "network.alert.changed"


def icmp_sweep(ctx: JobContext) -> JobResult:
    """Polls the devices that are due (``params["devices"]``: these ids, due or not), stores
    the samples, moves the down alerts, publishes ``network.alert.changed`` per alert that
    fired or was resolved."""
    only = ctx.params.get("devices")
    now = utcnow()
    with ctx.db.session() as session:
        targets = polling.due_targets(session, now, only)
    if not targets:
        return JobResult("skipped", 0, "no device due a poll")
    results = icmp.poll([(t.id, t.address) for t in targets], polling.ping_settings(ctx.settings))
    with ctx.db.session(write=True) as session:
        applied = polling.store_results(session, results, polling.down_rule(ctx.settings))
    ctx.rows_written += applied.samples
    for alert_id, state in applied.notify:
        ctx.events.publish(ALERT_CHANGED, {"id": alert_id, "state": state, "job_id": ctx.job_id})
    changes = f"; {len(applied.notify)} alerts changed" if applied.notify else ""
    return JobResult(
        "ok",
        applied.samples,
        f"{len(targets)} devices polled: {applied.ok} answered, {applied.failed} did not{changes}",
    )


def snmp_sweep(ctx: JobContext) -> JobResult:
    """Polls the devices due an SNMP poll (``params["devices"]``: these ids, due or not) and
    stores their samples, interface rates included."""
    only = ctx.params.get("devices")
    vault = Vault.from_settings(ctx.settings)
    with ctx.db.session() as session:
        targets = snmp_polling.due_targets(session, utcnow(), vault, only)
    if not targets:
        return JobResult("skipped", 0, "no device due an SNMP poll")
    results = snmp_polling.poll(targets, ctx.settings)
    with ctx.db.session(write=True) as session:
        samples, ok, failed = snmp_polling.store_results(session, results)
    ctx.rows_written += samples
    errors = "; ".join(f"{r.target.address}: {r.error}" for r in results if r.error)
    return JobResult(
        "ok",
        samples,
        f"{len(targets)} devices polled: {ok} answered, {failed} did not"
        + (f" ({errors[:500]})" if errors else ""),
    )


def _merge_notices(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"alerts": [*first.get("alerts", []), *second.get("alerts", [])]}


def notify(ctx: JobContext) -> JobResult:
    """Sends ``params["alerts"]`` ([alert id, state] pairs) to every webhook of
    ``VIGIL_WEBHOOKS``, each retried with backoff; fails naming the refusing webhooks."""
    targets = ctx.settings.webhooks
    if not targets:
        return JobResult("skipped", 0, "no webhook configured (VIGIL_WEBHOOKS)")
    requested = [(int(i), str(s)) for i, s in ctx.params.get("alerts", [])]
    with ctx.db.session() as session:
        notices = polling.notices(session, requested)
    deliver(notices, ctx.settings)
    return JobResult("ok", 0, f"{len(notices)} notices sent to {len(targets)} webhooks")


TRIGGERS = (
    Trigger(
        topic=ALERT_CHANGED,
        job="network.alerts.notify",
        params=lambda event: {"alerts": [[event["id"], event["state"]]]},
    ),
)

JOBS = (
    JobSpec(
        name="network.icmp",
        func=icmp_sweep,
        queue="collect",
        interval_setting="network_icmp_tick_seconds",
        description="Ping the devices due a poll; store RTT and loss; move down alerts.",
    ),
    JobSpec(
        name="network.snmp",
        func=snmp_sweep,
        queue="collect",
        interval_setting="network_snmp_tick_seconds",
        description="SNMP: uptime, CPU, memory, interface status, counters and rates.",
    ),
    JobSpec(
        name="network.alerts.notify",
        func=notify,
        queue="analytics",
        merge=_merge_notices,
        settle_seconds=0.25,
        max_delay_seconds=5.0,
        description="Send device alerts (firing, resolved) to the configured webhooks.",
    ),
)
