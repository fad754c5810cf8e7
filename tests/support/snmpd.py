"""Debian's snmpd on a high loopback port for tests: a v2c community and a v3 user
(SHA-256 authentication, AES privacy), its own config and state in a temporary directory,
stopped (and its files removed) when the block ends."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import service_unavailable

COMMUNITY = "vigil-test"
USER, AUTH_KEY, PRIV_KEY = "vigilv3", "auth-pass-123", "priv-pass-123"
SNMPD = "/usr/sbin/snmpd"
#: More v3 users, one per security level and protocol pair the collector offers:
#: name -> (authentication, privacy); passphrases AUTH_KEY and PRIV_KEY.
V3_USERS: dict[str, tuple[str | None, str | None]] = {
    "md5des": ("MD5", "DES"),
    "shaaes": ("SHA", "AES"),
    "sha224aes192": ("SHA224", "AES192"),
    "sha512aes256": ("SHA512", "AES256"),
    "sha384auth": ("SHA384", None),
    "noauth": (None, None),
}


@dataclass(frozen=True)
class Snmpd:
    port: int
    pid: int = 0  # the agent's process (the benchmarks read its CPU time)

    @property
    def v2c(self) -> dict[str, Any]:
        return {"version": "2c", "community": COMMUNITY}

    @property
    def v3(self) -> dict[str, Any]:
        return {
            "version": "3",
            "user": USER,
            "auth_protocol": "SHA256",
            "auth_key": AUTH_KEY,
            "priv_protocol": "AES",
            "priv_key": PRIV_KEY,
        }

    def v3_user(self, name: str) -> dict[str, Any]:
        """The credentials of one of :data:`V3_USERS`."""
        auth, priv = V3_USERS[name]
        secret: dict[str, Any] = {"version": "3", "user": name}
        if auth:
            secret.update(auth_protocol=auth, auth_key=AUTH_KEY)
        if priv:
            secret.update(priv_protocol=priv, priv_key=PRIV_KEY)
        return secret


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(port: int, address: str = "127.0.0.1") -> bool:
    done = subprocess.run(
        [
            "snmpget",
            "-v2c",
            "-c",
            COMMUNITY,
            "-t",
            "0.3",
            "-r",
            "0",
            _endpoint(address, port),
            "1.3.6.1.2.1.1.3.0",
        ],
        capture_output=True,
        check=False,
        timeout=5,
    )
    return done.returncode == 0


def snmpget(port: int, name: str) -> str:
    """net-snmp's own ``snmpget`` (v2c, on 127.0.0.1) of one OID: its value as it prints it
    (strings quoted), the reference the collector's answers are compared with."""
    done = subprocess.run(
        ["snmpget", "-v2c", "-c", COMMUNITY, "-On", "-Oqv", f"127.0.0.1:{port}", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return done.stdout.strip()


def _endpoint(address: str, port: int) -> str:
    """net-snmp's transport address: ``udp:127.0.0.1:161``, ``udp6:[::1]:161``."""
    return f"udp6:[{address}]:{port}" if ":" in address else f"udp:{address}:{port}"


def _user_lines(name: str, auth: str | None, priv: str | None, view: str) -> str:
    create = f"createUser {name}"
    if auth:
        create += f' {auth} "{AUTH_KEY}"'
    if priv:
        create += f' {priv} "{PRIV_KEY}"'
    level = "priv" if priv else "auth" if auth else "noauth"
    return f"{create}\nrouser {name} {level}{view}\n"


@contextmanager
def snmpd(
    addresses: Sequence[str] = ("127.0.0.1",),
    port: int | None = None,
    *,
    exclude: Sequence[str] = (),
    namespace: str | None = None,
) -> Iterator[Snmpd]:
    """The agent, listening on ``port`` (default: a free one) of each loopback address in
    ``addresses`` (the benchmarks give one agent many addresses). ``exclude``: subtrees the
    agent does not show (a view, for v2c and v3 alike: e.g. IF-MIB's ifXTable, as an old
    agent lacks it). ``namespace``: run it in that network namespace (``addresses`` are
    then the namespace's, reached from here through its veth; see tests/support/netns.py)."""
    if shutil.which(SNMPD) is None and shutil.which("snmpd") is None:
        service_unavailable("Debian's snmpd is not installed (apt-get install snmpd snmp)")
    if shutil.which("snmpget") is None:
        service_unavailable("net-snmp's snmpget is not installed (apt-get install snmp)")
    folder = Path(tempfile.mkdtemp(prefix="vigil-snmpd-"))
    port = port or _free_udp_port()
    config, log = folder / "snmpd.conf", folder / "snmpd.log"
    view = ""
    if exclude:
        view = " -V vigil"
        config_view = "view vigil included .1\n" + "".join(
            f"view vigil excluded .{subtree}\n" for subtree in exclude
        )
    else:
        config_view = ""
    sources = "10.254.0.0/16" if namespace else "127.0.0.0/8"  # netns.py's test subnets
    config.write_text(
        "dontLogTCPWrappersConnects yes\n"  # no log line per request
        + config_view
        + f"rocommunity {COMMUNITY} {sources}{view}\n"
        + f"rocommunity6 {COMMUNITY} ::1/128{view}\n"
        + f'createUser {USER} SHA256 "{AUTH_KEY}" AES "{PRIV_KEY}"\n'
        + f"rouser {USER} priv{view}\n"
        + "".join(_user_lines(name, auth, priv, view) for name, (auth, priv) in V3_USERS.items())
    )
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    proc = subprocess.Popen(
        [
            *prefix,
            shutil.which("snmpd") or SNMPD,
            "-f",
            "-Lf",
            str(log),
            "-C",
            "-c",
            str(config),
            ",".join(_endpoint(address, port) for address in addresses),
        ],
        env={
            "SNMP_PERSISTENT_DIR": str(folder / "state"),
            "MIBS": "",
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        },
        stdout=subprocess.DEVNULL,  # a pipe nobody reads would stop the agent when full
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _answers(port, addresses[0]):
            if proc.poll() is not None or time.monotonic() > deadline:
                output = log.read_text(errors="replace") if log.exists() else ""
                service_unavailable(f"snmpd did not start on port {port}: {output[-500:]}")
            time.sleep(0.1)
        yield Snmpd(port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
