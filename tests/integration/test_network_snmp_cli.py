"""`vigil network snmp HOST` against Debian's snmpd (tests/support/snmpd.py) on a free high
loopback port: v2c and v3 authPriv, secrets from the environment and never printed, exit 1
when the agent does not answer, exit 2 for credentials refused before any request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.support.snmpd import AUTH_KEY, COMMUNITY, PRIV_KEY, USER, Snmpd, snmpd, snmpget
from vigil.cli import app as cli_app


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with snmpd() as running:
        yield running


def test_the_snmp_command_polls_one_agent_v2c_and_v3(agent: Snmpd) -> None:
    """`vigil network snmp` on the collector's code path: v2c with the community from the
    environment, v3 authPriv with the keys from the environment; the secrets never appear
    in the output; a failed poll (wrong community: no answer; wrong v3 key: refused) exits 1
    saying so."""
    sys_name = snmpget(agent.port, "1.3.6.1.2.1.1.5.0").strip('"')
    runner = CliRunner()
    base = ["network", "snmp", "127.0.0.1", "--port", str(agent.port), "--timeout", "0.5"]
    v2c = runner.invoke(cli_app, base, env={"VIGIL_SNMP_COMMUNITY": COMMUNITY})
    v3 = runner.invoke(
        cli_app,
        [*base, "--v3-user", USER, "--auth", "SHA256", "--priv", "aes"],
        env={"VIGIL_SNMP_AUTH_KEY": AUTH_KEY, "VIGIL_SNMP_PRIV_KEY": PRIV_KEY},
    )
    for result in (v2c, v3):
        assert result.exit_code == 0, result.output
        assert f"127.0.0.1:{agent.port}: {sys_name}" in result.output
        assert "uptime" in result.output
        assert "memory" in result.output
        lo = [line for line in result.output.splitlines() if " lo " in line]
        assert len(lo) == 1, result.output
        assert [c.strip() for c in lo[0].split("│")[1:4]] == ["lo", "up", "up"]  # admin, oper
        assert "64-bit" in lo[0]
        for secret in (COMMUNITY, AUTH_KEY, PRIV_KEY):
            assert secret not in result.output

    wrong = runner.invoke(cli_app, [*base, "--retries", "0"], env={"VIGIL_SNMP_COMMUNITY": "no"})
    assert wrong.exit_code == 1
    assert f"127.0.0.1:{agent.port}: SNMP poll failed" in wrong.output
    assert "v2c credentials" in wrong.output
    bad_key = runner.invoke(
        cli_app,
        [*base, "--retries", "0", "--v3-user", USER, "--auth", "SHA256", "--priv", "AES"],
        env={"VIGIL_SNMP_AUTH_KEY": "not-the-key", "VIGIL_SNMP_PRIV_KEY": PRIV_KEY},
    )
    assert bad_key.exit_code == 1
    assert "SNMP poll failed" in bad_key.output
    assert "v3 credentials" in bad_key.output
    assert "not-the-key" not in bad_key.output
    assert PRIV_KEY not in bad_key.output
    # Refused before any request, naming the field but not the value.
    short = runner.invoke(cli_app, [*base, "--v3-user", USER, "--auth", "SHA", "--auth-key", "7c"])
    assert short.exit_code == 2
    assert "auth_key" in short.output
    assert "7c" not in short.output
    neither = runner.invoke(cli_app, base)
    assert neither.exit_code == 2
    assert "give either --community (v2c) or --v3-user (v3)" in neither.output
