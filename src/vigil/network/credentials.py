"""Device credentials (SNMP v2c community, SNMP v3 user/auth/priv), encrypted at rest.

The secret part of a device's credentials is one Fernet token (AES-128-CBC + HMAC-SHA256)
in ``network_devices.credentials``; the API only ever says which kind a device has. The key
is ``VIGIL_NETWORK_SECRET_KEY`` (or ``VIGIL_NETWORK_SECRET_KEY_FILE``): any string, stretched
to a Fernet key with SHA-256 unless it is one already. Empty (the embedded default): a key is
generated on first use and kept in ``<data_dir>/network_secret_key`` (mode 0600). Earlier keys
in ``VIGIL_NETWORK_PREVIOUS_SECRET_KEYS`` still decrypt, so the key can be rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from vigil.settings import Settings

log = logging.getLogger(__name__)

GENERATED_KEY_FILE = "network_secret_key"
CredentialKind = Literal["snmp-v2c", "snmp-v3"]


class CredentialsError(Exception):
    """Stored credentials that no configured key decrypts."""


def fernet_key(secret: str) -> bytes:
    """``secret`` itself when it is a Fernet key (32 bytes, url-safe base64), else its
    SHA-256 as one."""
    raw = secret.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def _generated(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    key = Fernet.generate_key().decode()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    log.warning(
        "no VIGIL_NETWORK_SECRET_KEY set: generated the key that encrypts device credentials "
        "and stored it in %s (keep it private and back it up: without it the stored "
        "credentials cannot be read)",
        path,
    )
    return key


@dataclass(frozen=True)
class Vault:
    fernet: MultiFernet

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        current = settings.network_secret_key.get_secret_value().strip()
        if not current:
            current = _generated(settings.data_dir / GENERATED_KEY_FILE)
        previous = [
            p.strip()
            for p in settings.network_previous_secret_keys.get_secret_value()
            .replace("\n", ",")
            .split(",")
            if p.strip()
        ]
        return cls(MultiFernet([Fernet(fernet_key(k)) for k in [current, *previous]]))

    def seal(self, secret: dict[str, Any]) -> str:
        return self.fernet.encrypt(json.dumps(secret, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.fernet.decrypt(token.encode()))
        except InvalidToken:
            raise CredentialsError(
                "stored device credentials do not decrypt with VIGIL_NETWORK_SECRET_KEY (or "
                "VIGIL_NETWORK_PREVIOUS_SECRET_KEYS): was the key changed?"
            ) from None
        return data
