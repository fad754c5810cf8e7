"""`vigil network …` commands."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.network import icmp, snmp_polling
from vigil.network.polling import ping_settings
from vigil.network.schemas import SnmpV2c, SnmpV3, credential_secret
from vigil.network.snmp import OCTETS_BITS, SnmpPoll
from vigil.settings import get_settings

console = Console()
#: ifAdminStatus / ifOperStatus values (IF-MIB).
IF_STATUS = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}


def _credentials(
    community: str | None,
    user: str | None,
    auth: str | None,
    auth_key: str | None,
    priv: str | None,
    priv_key: str | None,
) -> dict[str, Any]:
    """The secret document the collector polls with, checked as the API checks it; the
    refusal names the field, never its value."""
    if (community is None) == (user is None):
        raise ValueError("give either --community (v2c) or --v3-user (v3)")
    try:
        if community is not None:
            return credential_secret(SnmpV2c(version="2c", community=SecretStr(community)))
        v3 = SnmpV3(
            version="3",
            user=user or "",
            auth_protocol=auth,
            auth_key=SecretStr(auth_key) if auth_key is not None else None,
            priv_protocol=priv,
            priv_key=SecretStr(priv_key) if priv_key is not None else None,
        )
        return credential_secret(v3)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'credentials'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ValueError(reasons) from None


def _status(value: float | None) -> str:
    if value is None:
        return "-"
    return IF_STATUS.get(int(value), f"{value:g}")


def _print_poll(target: str, poll: SnmpPoll) -> None:
    console.print(f"[green]{escape(target)}[/]: {escape(poll.name) or '(no sysName)'}")
    console.print(f"  sysDescr  {escape(poll.descr)}")
    console.print(f"  uptime    {timedelta(seconds=int(poll.uptime_s))}")
    cpu = f"{poll.cpu_pct:.1f} %" if poll.cpu_pct is not None else "- (no hrProcessorLoad)"
    mem = f"{poll.mem_pct:.1f} %" if poll.mem_pct is not None else "- (no RAM row in hrStorage)"
    console.print(f"  CPU       {cpu}")
    console.print(f"  memory    {mem}")
    table = Table("interface", "admin", "oper", "in octets", "out octets", "counters")
    for name, values in poll.interfaces.items():
        octets = [values.get(k) for k in ("in_octets", "out_octets")]
        table.add_row(
            escape(name),
            _status(values.get("admin")),
            _status(values.get("oper")),
            *(f"{int(v):,}" if v is not None else "-" for v in octets),
            "32-bit" if values.get(OCTETS_BITS) == 32 else "64-bit",
        )
    console.print(table)


def build() -> typer.Typer:
    app = typer.Typer(help="Network devices: inventory and collectors.", no_args_is_help=True)

    @app.command()
    def ping(
        hosts: Annotated[list[str], typer.Argument(help="Addresses or DNS names.")],
        count: Annotated[int | None, typer.Option(min=1, max=100, help="Echo requests.")] = None,
        timeout: Annotated[
            float | None, typer.Option(min=0.01, max=30, help="Seconds to wait per reply.")
        ] = None,
    ) -> None:
        """Ping HOSTS once with the collector's settings (VIGIL_NETWORK_ICMP_*) and print
        sent, received, loss and RTTs; exit 1 when one did not answer."""
        base = ping_settings(get_settings())
        settings = icmp.PingSettings(
            count=count or base.count,
            interval=base.interval,
            timeout=timeout or base.timeout,
            concurrency=base.concurrency,
            raw=base.raw,
        )
        results = icmp.poll(list(enumerate(hosts)), settings)
        sockets = "raw" if settings.raw else "unprivileged (datagram)"
        console.print(f"[dim]{sockets} ICMP sockets, {settings.count} requests per host[/]")
        for r in results:
            if r.ok:
                console.print(
                    f"[green]{r.address}[/]: {r.received}/{r.sent} replies, loss "
                    f"{r.loss_pct:g} %, rtt min/avg/max {r.rtt_min_ms}/{r.rtt_avg_ms}/"
                    f"{r.rtt_max_ms} ms, jitter {r.jitter_ms} ms"
                )
            else:
                console.print(f"[red]{r.address}[/]: {r.error} ({r.sent} sent)")
        if not all(r.ok for r in results):
            raise typer.Exit(1)

    @app.command()
    def snmp(
        host: Annotated[str, typer.Argument(help="Address or DNS name of the agent.")],
        port: Annotated[int, typer.Option(min=1, max=65535, help="UDP port.")] = 161,
        community: Annotated[
            str | None,
            typer.Option(envvar="VIGIL_SNMP_COMMUNITY", show_default=False, help="v2c community."),
        ] = None,
        v3_user: Annotated[str | None, typer.Option(help="v3 (USM) user name.")] = None,
        auth: Annotated[
            str | None,
            typer.Option(help="v3 authentication: MD5, SHA, SHA224, SHA256, SHA384, SHA512."),
        ] = None,
        auth_key: Annotated[
            str | None,
            typer.Option(
                envvar="VIGIL_SNMP_AUTH_KEY", show_default=False, help="v3 authentication key."
            ),
        ] = None,
        priv: Annotated[
            str | None, typer.Option(help="v3 privacy: DES, AES, AES192, AES256.")
        ] = None,
        priv_key: Annotated[
            str | None,
            typer.Option(envvar="VIGIL_SNMP_PRIV_KEY", show_default=False, help="v3 privacy key."),
        ] = None,
        timeout: Annotated[
            float | None, typer.Option(min=0.01, max=60, help="Seconds to wait per request.")
        ] = None,
        retries: Annotated[
            int | None, typer.Option(min=0, max=5, help="Retries per request.")
        ] = None,
    ) -> None:
        """Poll HOST's SNMP agent once, as the collector does (same client, the
        VIGIL_NETWORK_SNMP_* settings), and print its system group, CPU, memory and
        interfaces; exit 1 when it does not answer. Secrets are best given by environment
        (VIGIL_SNMP_COMMUNITY, VIGIL_SNMP_AUTH_KEY, VIGIL_SNMP_PRIV_KEY): options show in
        the process list. They are never printed."""
        try:
            secret = _credentials(
                community, v3_user, auth and auth.upper(), auth_key, priv and priv.upper(), priv_key
            )
        except ValueError as exc:
            console.print(f"[red]refused[/]: {escape(str(exc))}")
            raise typer.Exit(2) from None
        base = get_settings()
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["network_snmp_timeout_seconds"] = timeout
        if retries is not None:
            changes["network_snmp_retries"] = retries
        settings = base.model_copy(update=changes)
        target = snmp_polling.SnmpTarget(0, host, port, secret)
        [result] = snmp_polling.poll([target], settings)
        where = f"{host}:{port}"
        if result.poll is None:
            version = "v2c" if secret["version"] == "2c" else "v3"
            console.print(
                f"[red]{escape(where)}[/]: SNMP poll failed "
                f"({escape(result.error or 'unknown error')}); "
                f"check the address, the port and the {version} credentials",
                soft_wrap=True,
            )
            raise typer.Exit(1)
        _print_poll(where, result.poll)

    return app
