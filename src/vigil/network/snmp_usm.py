"""SNMPv3's user-based security model (USM): the keys a user's passphrases localise to an
agent (RFC 3414 A.2, RFC 7860 for SHA-2), message authentication (HMAC, truncated) and
privacy (DES-CBC, RFC 3414 8; AES-CFB, RFC 3826; AES-192/256 with Blumenthal's key
extension, as net-snmp and most agents do them). Hashing and ciphers are ``hashlib``,
``hmac`` and ``cryptography`` (OpenSSL): microseconds per message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

#: Authentication protocol -> (hash, octets of the message's authentication parameter).
AUTH: dict[str, tuple[Callable[..., Any], int]] = {
    "MD5": (hashlib.md5, 12),
    "SHA": (hashlib.sha1, 12),
    "SHA224": (hashlib.sha224, 16),
    "SHA256": (hashlib.sha256, 24),
    "SHA384": (hashlib.sha384, 32),
    "SHA512": (hashlib.sha512, 48),
}
#: Privacy protocol -> key octets.
PRIV = {"DES": 16, "AES": 16, "AES192": 24, "AES256": 32}

#: Report OIDs (SNMP-USM-MIB usmStats…, RFC 3414) -> what they mean for the user.
USM_REPORTS: dict[tuple[int, ...], str] = {
    (1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0): "unsupported security level",
    (1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0): "not in time window",
    (1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0): "unknown user name",
    (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0): "unknown engine id",
    (1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0): "wrong digest (check the authentication key)",
    (1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0): "decryption error (check the privacy key)",
}
NOT_IN_TIME_WINDOW = (1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0)
UNKNOWN_ENGINE_ID = (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0)


def passphrase_key(passphrase: str | bytes, hash_: Callable[..., Any]) -> bytes:
    """Ku: the hash of a megabyte of the passphrase repeated (RFC 3414 A.2.1)."""
    raw = passphrase.encode() if isinstance(passphrase, str) else passphrase
    if not raw:
        raise ValueError("an empty passphrase")
    return bytes(hash_((raw * (1_048_576 // len(raw) + 1))[:1_048_576]).digest())


def localise(key: bytes, engine_id: bytes, hash_: Callable[..., Any]) -> bytes:
    """Kul: Ku localised to one agent's engine id (RFC 3414 A.2.2)."""
    return bytes(hash_(key + engine_id + key).digest())


@dataclass(frozen=True)
class User:
    """A v3 user's names and passphrases (a device's decrypted credentials)."""

    name: bytes
    auth: str | None = None
    auth_key: bytes = b""  # Ku, not the passphrase: the megabyte is hashed once per user
    priv: str | None = None
    priv_key: bytes = b""

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any]) -> User:
        auth, priv = secret.get("auth_protocol"), secret.get("priv_protocol")
        if auth and auth not in AUTH:
            raise ValueError(f"unknown authentication protocol {auth!r}")
        if priv and priv not in PRIV:
            raise ValueError(f"unknown privacy protocol {priv!r}")
        if priv and not auth:
            raise ValueError("privacy needs authentication (authPriv)")
        hash_ = AUTH[auth][0] if auth else None
        return cls(
            name=str(secret["user"]).encode(),
            auth=auth or None,
            auth_key=passphrase_key(secret["auth_key"], hash_) if hash_ else b"",
            priv=priv or None,
            priv_key=passphrase_key(secret["priv_key"], hash_) if hash_ and priv else b"",
        )

    @property
    def flags(self) -> int:
        """msgFlags' security bits: 0 noAuthNoPriv, 1 authNoPriv, 3 authPriv."""
        return (1 if self.auth else 0) | (2 if self.priv else 0)


class LocalKeys:
    """A user's keys localised to one agent, and the message operations with them."""

    def __init__(self, user: User, engine_id: bytes) -> None:
        self.user = user
        self.auth_len = 0
        self._auth_key = b""
        self._hash: Callable[..., Any] | None = None
        self._priv_key = b""
        if user.auth:
            self._hash, self.auth_len = AUTH[user.auth]
            self._auth_key = localise(user.auth_key, engine_id, self._hash)
        if user.priv and self._hash is not None:
            key = localise(user.priv_key, engine_id, self._hash)
            while len(key) < PRIV[user.priv]:  # Blumenthal: append H(key so far)
                key += self._hash(key).digest()
            self._priv_key = key[: PRIV[user.priv]]
        self._salt = int.from_bytes(os.urandom(8), "big")

    def digest(self, message: bytes) -> bytes:
        """The authentication parameter of ``message`` (whose own is zeroed)."""
        assert self._hash is not None
        return hmac.new(self._auth_key, message, self._hash).digest()[: self.auth_len]

    def _next_salt(self) -> int:
        self._salt = (self._salt + 1) & 0xFFFF_FFFF_FFFF_FFFF
        return self._salt

    def encrypt(self, plain: bytes, boots: int, time: int) -> tuple[bytes, bytes]:
        """(ciphertext, privacy parameter) of a scoped PDU."""
        if self.user.priv == "DES":
            salt = boots.to_bytes(4, "big") + (self._next_salt() & 0xFFFF_FFFF).to_bytes(4, "big")
            iv = bytes(a ^ b for a, b in zip(self._priv_key[8:16], salt, strict=True))
            plain += b"\x00" * (-len(plain) % 8)  # the agent reads the PDU's own length
            enc = Cipher(TripleDES(self._priv_key[:8] * 3), modes.CBC(iv)).encryptor()
            return enc.update(plain) + enc.finalize(), salt
        salt = self._next_salt().to_bytes(8, "big")
        iv = boots.to_bytes(4, "big") + time.to_bytes(4, "big") + salt
        enc = Cipher(algorithms.AES(self._priv_key), CFB(iv)).encryptor()
        return enc.update(plain) + enc.finalize(), salt

    def decrypt(self, data: bytes, salt: bytes, boots: int, time: int) -> bytes:
        if len(salt) != 8:
            raise ValueError(f"a privacy parameter of {len(salt)} octets")
        if self.user.priv == "DES":
            if len(data) % 8:
                raise ValueError("DES ciphertext not a multiple of 8 octets")
            iv = bytes(a ^ b for a, b in zip(self._priv_key[8:16], salt, strict=True))
            dec = Cipher(TripleDES(self._priv_key[:8] * 3), modes.CBC(iv)).decryptor()
        else:
            iv = boots.to_bytes(4, "big") + time.to_bytes(4, "big") + salt
            dec = Cipher(algorithms.AES(self._priv_key), CFB(iv)).decryptor()
        return dec.update(data) + dec.finalize()
