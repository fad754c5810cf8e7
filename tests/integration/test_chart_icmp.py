"""The collect worker's ICMP in the chart (icmp.mode): its pod gets the sysctl
net.ipv4.ping_group_range for its own group and no capability, and that is what the ICMP
collector needs: applied in a fresh network namespace, a process of the chart's user and
group, with every capability dropped, pings with Vigil's collector; without the sysctl (the
kernel's default range) the same process cannot."""

from __future__ import annotations

import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_unavailable
from tests.support import netns
from tests.support.chart import load_chart_tool, pod_spec, require_tool, workloads

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
CHART = load_chart_tool()

PING = """
from vigil.network import icmp
settings = icmp.PingSettings(count=1, interval=0, timeout=1, raw=icmp.use_raw_sockets("{mode}"))
try:
    print(icmp.poll([(1, "127.0.0.1")], settings)[0].ok)
except Exception as exc:  # the collector's refusal, whatever its kind
    print("refused:", type(exc).__name__)
"""


def collect_worker(values: dict[str, Any]) -> dict[str, Any]:
    (worker,) = [
        w
        for w in workloads(CHART.render(values))
        if w["metadata"]["name"] == "vigil-worker-collect"
    ]
    return worker


@pytest.fixture
def namespace() -> Iterator[str]:
    reason = netns.available()
    if reason:
        service_unavailable(reason)
    name = f"vigil-icmp-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True, timeout=10
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def host_range() -> str:
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        return " ".join(f.read().split())


def _closed_ancestor(path: Path) -> Path | None:
    """The first directory above ``path`` that other users cannot enter, if any."""
    for parent in path.resolve().parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def ping_as(namespace: str, uid: int, gid: int, mode: str) -> str:
    """Vigil's collector pinging loopback in ``namespace`` as uid/gid with no capabilities."""
    setpriv = require_tool("setpriv", "Debian package util-linux")
    # The child, another user, imports Vigil and icmplib from this checkout and its venv.
    closed = _closed_ancestor(Path(__file__))
    assert closed is None, (
        f"{closed} is closed to other users (mode {oct(closed.stat().st_mode & 0o777)}): uid "
        f"{uid} cannot import Vigil from this checkout; clone it where others may enter "
        "(e.g. chmod o+x on that directory)"
    )
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            setpriv,
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            sys.executable,
            "-c",
            PING.format(mode=mode),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_collect_worker_gets_the_sysctl_and_no_capability() -> None:
    full = CHART.CASES["full"]
    worker = collect_worker(full)
    spec = pod_spec(worker)
    group = spec["securityContext"]["runAsGroup"]
    assert spec["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ping_group_range", "value": f"{group} {group}"}
    ]
    (container,) = spec["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIGIL_NETWORK_ICMP_PRIVILEGED"] == "unprivileged"
    # Only the collect worker: no other pod gets a sysctl.
    for workload in workloads(CHART.render(full)):
        if workload is not worker and workload["metadata"]["name"] != "vigil-worker-collect":
            assert "sysctls" not in pod_spec(workload)["securityContext"]
    # mode none: nothing added, Vigil picks by itself.
    bare = collect_worker(full | {"icmp": {"mode": "none"}})
    assert "sysctls" not in pod_spec(bare)["securityContext"]
    names = {e["name"] for e in pod_spec(bare)["containers"][0]["env"]}
    assert "VIGIL_NETWORK_ICMP_PRIVILEGED" not in names
    with pytest.raises(helm.HelmValuesError):
        CHART.render(full | {"icmp": {"mode": "netRaw"}})


def test_what_the_chart_gives_is_what_ping_needs(namespace: str) -> None:
    spec = pod_spec(collect_worker(CHART.CASES["full"]))
    uid, gid = spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]
    (sysctl,) = spec["securityContext"]["sysctls"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    mode = env["VIGIL_NETWORK_ICMP_PRIVILEGED"]
    # The kernel's default in a new namespace admits no group: the chart's user cannot ping.
    assert ping_as(namespace, uid, gid, mode) != "True"
    # What the kubelet does for the pod: write the sysctl in the pod's network namespace.
    path = "/proc/sys/" + sysctl["name"].replace(".", "/")
    write = f'echo "$1" > {path}'
    host_before = host_range()
    subprocess.run(
        ["ip", "netns", "exec", namespace, "sh", "-c", write, "sh", sysctl["value"]],
        check=True,
        timeout=10,
    )
    assert host_range() == host_before  # only the namespace changed, not the host
    assert ping_as(namespace, uid, gid, mode) == "True"
    # Only that group: another unprivileged group still cannot.
    assert ping_as(namespace, uid, gid + 1, mode) != "True"
