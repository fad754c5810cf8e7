"""The keys that sign and verify access tokens (HS256).

The current key signs; it and every previous key verify, so a key can be rotated without
signing everyone out: set the new key as ``VIGIL_JWT_SECRET``, move the old one to
``VIGIL_JWT_PREVIOUS_SECRETS`` until the access tokens it signed have expired. Each key's id
(``kid``, in every token's header) is derived from the key itself (the first 16 hex digits of
its SHA-256), so no id has to be configured and a token names the key to check it with.

Without a configured key (the embedded default) one is generated on first start and kept in
``<data_dir>/jwt_secret`` (mode 0600), so restarts keep sessions; a log line says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from vigil.settings import Settings

log = logging.getLogger(__name__)

GENERATED_KEY_FILE = "jwt_secret"
MIN_KEY_BYTES = 32


def key_id(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRing:
    signing_kid: str
    keys: dict[str, bytes]  # kid -> secret; the signing key and the previous ones

    @property
    def signing_key(self) -> bytes:
        return self.keys[self.signing_kid]

    @classmethod
    def of(cls, current: bytes, previous: list[bytes] | tuple[bytes, ...] = ()) -> KeyRing:
        keys = {key_id(k): k for k in previous}
        keys[key_id(current)] = current
        return cls(key_id(current), keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        configured = settings.jwt_secret.get_secret_value().strip()
        previous = [
            p.strip().encode()
            for p in settings.jwt_previous_secrets.get_secret_value().replace("\n", ",").split(",")
            if p.strip()
        ]
        if configured:
            current = configured.encode()
            if len(current) < MIN_KEY_BYTES:
                log.warning(
                    "VIGIL_JWT_SECRET is shorter than %d bytes: use a longer random key "
                    "(e.g. `openssl rand -base64 48`)",
                    MIN_KEY_BYTES,
                )
        else:
            current = generated_key(settings.data_dir / GENERATED_KEY_FILE)
        return cls.of(current, previous)


def generated_key(path: Path) -> bytes:
    """The key kept in ``path``, created (random, mode 0600) if it does not exist yet. Several
    processes starting at once agree: only one creates the file (O_EXCL), the others read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            key = path.read_bytes().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it or set VIGIL_JWT_SECRET") from None
    key = secrets.token_urlsafe(48).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    log.warning(
        "no VIGIL_JWT_SECRET set: generated a signing key for access tokens and stored it in "
        "%s (keep that file private; set VIGIL_JWT_SECRET or VIGIL_JWT_SECRET_FILE when more "
        "than one host serves the API)",
        path,
    )
    return key
