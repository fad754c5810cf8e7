"""Where secret settings come from besides the environment: mounted files (the ``*_FILE``
convention of Docker and Kubernetes secrets) and HashiCorp Vault / OpenBao (KV v2, token or
Kubernetes auth, through hvac). ``vigil.settings`` calls these once, when the settings are
built at start-up; nothing here logs a value.

Errors are :class:`SecretSourceError` (a ``ValueError``, so pydantic reports it as a settings
error) whose message says what failed and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SecretSourceError(ValueError):
    """A secret could not be read from where the settings say it is."""


def read_secret_file(path: Path, variable: str) -> str:
    """The content of a mounted secret file, less its final newline (what ``echo`` and most
    editors add); other whitespace is part of the secret."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretSourceError(f"{variable}: cannot read {path}: {exc}") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


@dataclass(frozen=True)
class VaultConfig:
    """Where the settings' KV v2 secret is and how to log in (the VIGIL_VAULT_* settings)."""

    addr: str
    mount: str = "secret"
    path: str = "vigil"
    auth: str = "token"  # "token" | "kubernetes"
    token: str = field(default="", repr=False)  # never in a repr or a traceback
    role: str = ""
    kubernetes_mount: str = "kubernetes"
    kubernetes_token_path: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    namespace: str = ""
    ca_cert: Path | None = None
    timeout: float = 5.0

    @property
    def where(self) -> str:
        return f"{self.mount}/{self.path} at {self.addr}"


_HINT_ADDR = (
    "check VIGIL_VAULT_ADDR, that Vault is running, unsealed and reachable from here "
    "(and VIGIL_VAULT_CA_CERT for a private CA), or unset VIGIL_VAULT_ADDR to read no "
    "secrets from Vault"
)


def read_vault(config: VaultConfig) -> dict[str, Any]:
    """The key/value pairs of the KV v2 secret ``config.mount``/``config.path`` (latest
    version), after logging in with a token or a Kubernetes service account."""
    import hvac  # noqa: PLC0415  # only processes configured for Vault pay for the import
    import requests  # noqa: PLC0415
    from hvac import exceptions as hv  # noqa: PLC0415

    verify: bool | str = str(config.ca_cert) if config.ca_cert else True
    client = hvac.Client(
        url=config.addr,
        namespace=config.namespace or None,
        verify=verify,
        timeout=config.timeout,
    )
    try:
        _log_in(client, config)
        answer = client.secrets.kv.v2.read_secret_version(
            path=config.path, mount_point=config.mount, raise_on_deleted_version=True
        )
    except requests.exceptions.RequestException as exc:
        raise SecretSourceError(
            f"Vault at {config.addr} is unreachable ({type(exc).__name__}): {_HINT_ADDR}"
        ) from None
    except hv.VaultDown:
        raise SecretSourceError(f"Vault at {config.addr} is sealed or down: {_HINT_ADDR}") from None
    except hv.InvalidPath:
        raise SecretSourceError(
            f"Vault has no secret {config.where} (KV v2 mount {config.mount!r}, path "
            f"{config.path!r}, or its latest version is deleted): write it, e.g. `vault kv put "
            f"-mount={config.mount} {config.path} jwt_secret=…` (or `bao kv put …`), or fix "
            "VIGIL_VAULT_MOUNT / VIGIL_VAULT_PATH"
        ) from None
    except hv.Forbidden:
        raise SecretSourceError(
            f"Vault refused to read {config.where}: the {config.auth} login's policies must "
            f'allow `read` on "{config.mount}/data/{config.path}" (or the token is invalid or '
            "expired)"
        ) from None
    except hv.VaultError as exc:
        raise SecretSourceError(
            f"Vault could not read {config.where}: {type(exc).__name__}: {exc}"
        ) from None
    data = answer.get("data", {}).get("data")
    if not isinstance(data, dict):
        raise SecretSourceError(
            f"Vault's answer for {config.where} holds no KV v2 data: is {config.mount!r} a KV "
            "version 2 mount? (VIGIL_VAULT_MOUNT)"
        )
    return data


def _log_in(client: Any, config: VaultConfig) -> None:
    from hvac import exceptions as hv  # noqa: PLC0415

    if config.auth == "token":
        if not config.token:
            raise SecretSourceError(
                "VIGIL_VAULT_ADDR is set but no token: set VIGIL_VAULT_TOKEN (or "
                "VIGIL_VAULT_TOKEN_FILE), or VIGIL_VAULT_AUTH=kubernetes with VIGIL_VAULT_ROLE"
            )
        client.token = config.token
        return
    if not config.role:
        raise SecretSourceError("VIGIL_VAULT_AUTH=kubernetes needs VIGIL_VAULT_ROLE")
    jwt = read_secret_file(config.kubernetes_token_path, "VIGIL_VAULT_KUBERNETES_TOKEN_PATH")
    try:
        client.auth.kubernetes.login(
            role=config.role, jwt=jwt.strip(), mount_point=config.kubernetes_mount
        )
    except (hv.InvalidRequest, hv.Forbidden, hv.Unauthorized, hv.InternalServerError) as exc:
        raise SecretSourceError(
            f"Vault's Kubernetes login (auth mount {config.kubernetes_mount!r}, role "
            f"{config.role!r}) at {config.addr} failed: {_first_line(exc)}. Check that the role "
            "exists and binds this pod's service account and namespace, and that Vault can "
            "reach the Kubernetes API to review the token"
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
