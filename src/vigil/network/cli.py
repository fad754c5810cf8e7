"""`vigil network …` commands."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from vigil.network import icmp
from vigil.network.polling import ping_settings
from vigil.settings import get_settings

console = Console()


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

    return app
