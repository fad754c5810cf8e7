"""Network jobs, declared here and registered with core through the module object."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from vigil.core.db import utcnow
from vigil.core.jobs import JobContext, JobResult, JobSpec
from vigil.core.notify import deliver
from vigil.core.queue import Trigger
from vigil.network import evaluation, icmp, polling, rollups, snmp_polling
from vigil.network.credentials import Vault
from vigil.network.rules import Source
from vigil.settings import Settings

ALERT_CHANGED = "network.alert.changed"


def _repeat(settings: Settings) -> timedelta | None:
    minutes = settings.network_alert_repeat_minutes
    return timedelta(minutes=minutes) if minutes > 0 else None


def _evaluate(
    ctx: JobContext, devices: Iterable[int] | None, sources: tuple[Source, ...]
) -> evaluation.Evaluated:
    """Runs the alert rules (one transaction) and publishes ``network.alert.changed`` per
    alert to notify."""
    with ctx.db.session(write=True) as session:
        done = evaluation.evaluate(
            session,
            polling.down_rule(ctx.settings),
            devices=devices,
            sources=sources,
            repeat=_repeat(ctx.settings),
        )
        notify = done.notify
    for alert_id, state in notify:
        ctx.events.publish(ALERT_CHANGED, {"id": alert_id, "state": state, "job_id": ctx.job_id})
    return done


def icmp_sweep(ctx: JobContext) -> JobResult:
    """Polls the devices that are due (``params["devices"]``: these ids, due or not), stores
    the samples, runs the ICMP alert rules over them, publishes ``network.alert.changed``
    per alert that fired or was resolved."""
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
    done = _evaluate(ctx, [t.id for t in targets], ("icmp",))
    changes = f"; {len(done.notify)} alert notices" if done.notify else ""
    return JobResult(
        "ok",
        applied.samples,
        f"{len(targets)} devices polled: {applied.ok} answered, {applied.failed} did not{changes}",
    )


def snmp_sweep(ctx: JobContext) -> JobResult:
    """Polls the devices due an SNMP poll (``params["devices"]``: these ids, due or not),
    stores their samples, interface rates included, and runs the SNMP alert rules over
    them."""
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
    # Every polled device: a failed poll is snmp_down's observation (the other SNMP kinds
    # read the last answered poll only, so for them a failed poll changes nothing).
    _evaluate(ctx, [r.target.id for r in results], ("snmp",))
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
        notices = evaluation.notices(session, requested)
    if not notices:
        return JobResult("skipped", 0, "nothing to send (acknowledged or deleted since)")
    deliver(notices, ctx.settings)
    return JobResult("ok", 0, f"{len(notices)} notices sent to {len(targets)} webhooks")


def evaluate_rules(ctx: JobContext) -> JobResult:
    """Runs the ICMP alert rules over every device's last poll (what the sweeps already saw
    is not counted twice: rule changes take effect, unacknowledged firing alerts are
    repeated). It shares the ICMP sweep's lock, so the two never evaluate at once; the SNMP
    kinds are evaluated by the SNMP sweep alone, under its own lock."""
    done = _evaluate(ctx, None, ("icmp",))
    return JobResult(
        "ok",
        done.changed,
        f"{done.devices} devices, {done.observations} observations, "
        f"{done.changed} alert changes, {len(done.notify)} notices",
    )


def rollup(ctx: JobContext) -> JobResult:
    """Rolls raw samples up into 5 min buckets and those into 1 h ones, then applies each
    tier's retention; one transaction per batch of buckets."""
    report = rollups.run(ctx.db, ctx.settings)
    ctx.rows_written += report.rows
    return JobResult("ok", report.rows, report.summary())


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
        name="network.alerts.evaluate",
        func=evaluate_rules,
        queue="analytics",
        interval_setting="network_alert_eval_seconds",
        lock="network.icmp",
        description="Run the ICMP alert rules over the last polls; repeat unacknowledged alerts.",
    ),
    JobSpec(
        name="network.rollup",
        func=rollup,
        queue="analytics",
        interval_setting="network_rollup_tick_seconds",
        description="Downsample samples (raw -> 5 min -> 1 h) and apply retention per tier.",
    ),
    JobSpec(
        name="network.alerts.notify",
        func=notify,
        queue="analytics",
        merge=_merge_notices,
        settle_seconds=0.25,
        max_delay_seconds=5.0,
        description="Send network alerts (firing, resolved, repeated) to the configured webhooks.",
    ),
)
