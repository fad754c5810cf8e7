"""deploy/alertmanager/alertmanager.yml run by a real Alertmanager (Debian's
prometheus-alertmanager) on loopback: its secret files and Vigil's URL are pointed at a local
webhook receiver, the timings shortened, and alerts posted to its API are delivered where the
routes say: every alert to Vigil's webhook (Alertmanager's JSON), critical ones also to Discord
and Slack, warnings to Slack only; a resolved alert is sent again as resolved. And Vigil's
receiver for real: Alertmanager delivers to a Vigil API on loopback (uvicorn, a fresh database
of each backend) with a service token read from its credentials file, and Vigil stores the
alert, then its resolution."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from tests.conftest import service_unavailable, throwaway_postgres
from tests.support.auth import PASSWORD, TEST_AUTH_SETTINGS
from tests.support.redis_server import free_port
from tests.support.webhook import Receiver
from vigil.core.api import create_app
from vigil.core.auth import service as auth_service
from vigil.core.auth.permissions import Role
from vigil.core.db import Database
from vigil.core.migrate import upgrade_to_head
from vigil.core.runtime import Runtime
from vigil.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
SECRETS = "/etc/alertmanager/secrets/alertmanager-vigil-webhooks/"
VIGIL_URL = "http://vigil-api.vigil.svc.cluster.local/api/v1/alerts/alertmanager"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        service_unavailable(f"{name} is not installed (Debian package prometheus-alertmanager)")
        raise AssertionError
    return path


def local_config(
    tmp: Path, receiver: Receiver, vigil_url: str | None = None, vigil_token: str = "test-token"
) -> Path:
    """The shipped config with its secret files in ``tmp`` (holding loopback URLs), Vigil's
    URL on the receiver (or ``vigil_url``: a real Vigil) and group timings of a second;
    everything else as shipped."""
    secrets = tmp / "secrets"
    secrets.mkdir()
    (secrets / "discord-url").write_text(receiver.url("/discord/slack") + "\n")
    (secrets / "slack-url").write_text(receiver.url("/slack") + "\n")
    (secrets / "vigil-token").write_text(vigil_token + "\n")
    text = (
        CONFIG.read_text()
        .replace(SECRETS, f"{secrets}/")
        .replace(VIGIL_URL, vigil_url or receiver.url("/vigil"))
    )
    config = yaml.safe_load(text)
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class Alertmanager:
    def __init__(self, tmp: Path, config: Path) -> None:
        self.port = free_port()
        self.log = tmp / "alertmanager.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary("prometheus-alertmanager"),
                    f"--config.file={config}",
                    f"--storage.path={tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",  # no gossip: one instance, no port opened
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)
        self.wait(lambda: self.ready() or None, "Alertmanager to be ready")

    def ready(self) -> bool:
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def post(self, alerts: list[dict[str, Any]]) -> None:
        response = self.http.post("/api/v2/alerts", json=alerts)
        assert response.status_code == 200, response.text

    def wait(self, probe: Any, what: str, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"alertmanager exited\n{self.log.read_text()[-3000:]}")
            result = probe()
            if result is not None:
                return result
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}\n{self.log.read_text()[-3000:]}")

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[Alertmanager]:
    manager = Alertmanager(tmp_path, local_config(tmp_path, receiver))
    yield manager
    manager.close()


def alert(name: str, severity: str, *, ends: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": {"alertname": name, "severity": severity, "device": "core-sw1"},
        "annotations": {"summary": f"{name} on core-sw1"},
        "startsAt": (datetime.now(UTC) - timedelta(minutes=6)).isoformat(),
    }
    if ends is not None:
        body["endsAt"] = ends.isoformat()
    return body


def test_the_config_is_valid_for_amtool() -> None:
    done = subprocess.run(
        [binary("amtool"), "check-config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 receivers" in done.stdout
    # No chat webhook URL is written in the file: each comes from a secret file.
    config = yaml.safe_load(CONFIG.read_text())
    slacks = [c for r in config["receivers"] for c in r.get("slack_configs", [])]
    assert slacks
    assert all("api_url" not in c and c["api_url_file"].startswith(SECRETS) for c in slacks)


def test_a_critical_alert_reaches_vigil_discord_and_slack(
    alertmanager: Alertmanager, receiver: Receiver
) -> None:
    alertmanager.post([alert("VigilNetworkDeviceDown", "critical")])
    paths = {"/vigil", "/discord/slack", "/slack"}
    alertmanager.wait(
        lambda: True if paths <= {p for p, _ in receiver.received} else None,
        f"deliveries to {sorted(paths)}",
    )
    (vigil,) = receiver.on("/vigil")
    # Alertmanager's webhook JSON, as Vigil's receiver reads it.
    assert vigil["version"] == "4"
    assert vigil["status"] == "firing"
    assert vigil["receiver"] == "vigil"
    assert vigil["groupLabels"] == {"alertname": "VigilNetworkDeviceDown", "severity": "critical"}
    (firing,) = vigil["alerts"]
    assert firing["labels"]["device"] == "core-sw1"
    assert firing["annotations"]["summary"] == "VigilNetworkDeviceDown on core-sw1"
    assert firing["status"] == "firing"
    assert firing["fingerprint"]
    (discord,) = receiver.on("/discord/slack")
    assert discord["attachments"][0]["title"] == "FIRING: VigilNetworkDeviceDown"
    assert "VigilNetworkDeviceDown on core-sw1" in discord["attachments"][0]["text"]
    (slack,) = receiver.on("/slack")
    assert slack["channel"] == "#vigil-alerts"


def test_a_warning_goes_to_vigil_and_slack_only_and_resolves(
    alertmanager: Alertmanager, receiver: Receiver
) -> None:
    alertmanager.post([alert("VigilNetworkPollingDegraded", "warning")])
    alertmanager.wait(
        lambda: True if receiver.on("/vigil") and receiver.on("/slack") else None,
        "the warning's deliveries",
    )
    assert receiver.on("/discord/slack") == []
    # Resolved: Vigil hears it too (send_resolved), with the alert's end time.
    alertmanager.post([alert("VigilNetworkPollingDegraded", "warning", ends=datetime.now(UTC))])
    resolved = alertmanager.wait(
        lambda: next((b for b in receiver.on("/vigil") if b["status"] == "resolved"), None),
        "the resolved notice",
    )
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert receiver.on("/discord/slack") == []


def test_the_gitops_monitoring_stack_deploys_this_config() -> None:
    app = yaml.safe_load((REPO / "deploy/argocd/monitoring/kube-prometheus-stack.yaml").read_text())
    values = app["spec"]["source"]["helm"]["valuesObject"]["alertmanager"]
    assert values["config"] == yaml.safe_load(CONFIG.read_text())
    # The Prometheus Operator mounts each listed Secret at /etc/alertmanager/secrets/<name>/.
    (secret,) = values["alertmanagerSpec"]["secrets"]
    assert f"/etc/alertmanager/secrets/{secret}/" == SECRETS
    files = re.findall(r"_file: (\S+)", CONFIG.read_text())
    assert len(files) == 4
    assert all(f.startswith(SECRETS) for f in files), files


# --- Alertmanager -> a real Vigil API --------------------------------------------------------


class VigilApi:
    """Vigil's API (create_app, as ``vigil api`` serves it) under uvicorn on a loopback port,
    in a thread of this process, over a freshly migrated database."""

    def __init__(self, database_url: str) -> None:
        self.db = Database.from_url(database_url)
        upgrade_to_head(self.db.engine)
        settings = Settings(
            **TEST_AUTH_SETTINGS, database_url=database_url, redis_url="", cache_ttl=0,
            rate_limit="",
        )  # fmt: skip
        self.runtime = Runtime.create(settings, db=self.db, role="api")
        port = free_port()
        self.app = create_app(self.runtime)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning",
            lifespan="on", access_log=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=5)
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                pytest.fail("the Vigil API did not start")
            time.sleep(0.05)

    def admin_token(self) -> str:
        """Signs in a new Admin through the API; its access token."""
        with self.db.session(write=True) as session:
            auth_service.create_user(
                session,
                self.app.state.auth.passwords,
                "admin@example.org",
                PASSWORD,
                role=Role.ADMIN,
            )
        answer = self.http.post(
            "/api/v1/auth/token", data={"username": "admin@example.org", "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(20)
        self.runtime.close()
        self.db.engine.dispose()


@contextmanager
def database_url(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'vigil.db'}"
        return
    with throwaway_postgres("vigil_am") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def vigil(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VigilApi]:
    with database_url(request.param, tmp_path) as url:
        server = VigilApi(url)
        try:
            yield server
        finally:
            server.close()


def test_alertmanager_delivers_to_a_real_vigil_which_stores_the_alert_and_its_resolution(
    tmp_path: Path, receiver: Receiver, vigil: VigilApi
) -> None:
    # The operator's steps (docs/observability.md): an Admin makes a service token with the
    # scope alerts.receive; it goes into the Secret's key vigil-token, a file for Alertmanager.
    admin = {"Authorization": f"Bearer {vigil.admin_token()}"}
    made = vigil.http.post(
        "/api/v1/auth/service-tokens",
        json={"name": "alertmanager", "scopes": ["alerts.receive"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    config = local_config(
        tmp_path, receiver, f"{vigil.url}/api/v1/alerts/alertmanager", made.json()["token"]
    )
    manager = Alertmanager(tmp_path, config)
    try:
        starts = datetime.now(UTC) - timedelta(minutes=6)
        firing = {
            "labels": {"alertname": "VigilApiErrorRate", "severity": "critical", "pod": "api-1"},
            "annotations": {"summary": "5xx above 2 % on vigil-api"},
            "startsAt": starts.isoformat(),
            "generatorURL": "http://prometheus-0:9090/graph?g0.expr=up",
        }
        manager.post([firing])

        def listed(status: str) -> dict[str, Any] | None:
            page = vigil.http.get("/api/v1/alerts", params={"status": status}, headers=admin)
            assert page.status_code == 200, page.text
            items = page.json()["items"]
            return items[0] if items else None

        stored = manager.wait(lambda: listed("firing"), "Vigil to store the firing alert")
        (am_view,) = manager.http.get("/api/v2/alerts").json()
        assert stored["fingerprint"] == am_view["fingerprint"]
        assert stored["alertname"] == "VigilApiErrorRate"
        assert stored["severity"] == "critical"
        assert stored["labels"] == firing["labels"]
        assert stored["annotations"] == firing["annotations"]
        assert stored["receiver"] == "vigil"
        assert stored["generator_url"] == firing["generatorURL"]
        assert stored["ends_at"] is None
        assert datetime.fromisoformat(stored["starts_at"]) == starts

        manager.post([{**firing, "endsAt": datetime.now(UTC).isoformat()}])
        resolved = manager.wait(lambda: listed("resolved"), "Vigil to store the resolution")
        assert resolved["fingerprint"] == stored["fingerprint"]
        assert resolved["ends_at"] is not None
        assert resolved["times_received"] >= 2
        everything = vigil.http.get("/api/v1/alerts", headers=admin).json()
        assert everything["total"] == 1  # one row per fingerprint, updated in place
        # The chat routes still got theirs (critical: Discord and Slack).
        assert receiver.on("/discord/slack")
        assert receiver.on("/vigil") == []  # nothing went to the stand-in
    finally:
        manager.close()
