"""Signing keys: from the settings or a file, several accepted, generated once and kept."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from vigil.core.auth.keys import KeyRing, key_id
from vigil.core.auth.tokens import InvalidToken, decode_access, issue_access
from vigil.settings import Settings


def token(keys: KeyRing) -> str:
    now = datetime.now(UTC)
    return issue_access(keys, 7, "a@example.org", "viewer", "sid", now, timedelta(minutes=5))


def test_the_kid_names_the_signing_key_and_previous_keys_still_verify() -> None:
    old, new = b"o" * 40, b"n" * 40
    signed_with_old = token(KeyRing.of(old))
    assert jwt.get_unverified_header(signed_with_old)["kid"] == key_id(old)
    rotated = KeyRing.of(new, [old])
    assert rotated.signing_kid == key_id(new)
    assert decode_access(rotated, signed_with_old).user_id == 7
    with pytest.raises(InvalidToken, match="does not know"):
        decode_access(KeyRing.of(new), signed_with_old)


def test_keys_come_from_settings_and_files(tmp_path: Path) -> None:
    (tmp_path / "current").write_text("c" * 40 + "\n")
    (tmp_path / "previous").write_text("p" * 40 + "\n" + "q" * 40 + "\n")
    settings = Settings(
        jwt_secret_file=tmp_path / "current", jwt_previous_secrets_file=tmp_path / "previous"
    )
    keys = KeyRing.from_settings(settings)
    assert keys.signing_key == b"c" * 40
    assert set(keys.keys) == {key_id(b"c" * 40), key_id(b"p" * 40), key_id(b"q" * 40)}
    with pytest.raises(ValidationError, match="not both"):
        Settings(jwt_secret="x" * 40, jwt_secret_file=tmp_path / "current")
    with pytest.raises(ValidationError, match="cannot read"):
        Settings(jwt_secret_file=tmp_path / "missing")


def test_without_a_key_one_is_generated_once_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        first = KeyRing.from_settings(settings)
    assert "generated a signing key" in caplog.text
    path = tmp_path / "jwt_secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert KeyRing.from_settings(settings).signing_key == first.signing_key  # a restart
    assert len(first.signing_key) >= 32


def test_a_refresh_or_other_token_type_is_not_an_access_token() -> None:
    keys = KeyRing.of(b"k" * 40)
    claims = {"sub": "1", "sid": "s", "typ": "refresh", "iat": 1, "exp": 2**40, "role": "admin"}
    other = jwt.encode(
        claims, keys.signing_key, algorithm="HS256", headers={"kid": keys.signing_kid}
    )
    with pytest.raises(InvalidToken, match="not an access token"):
        decode_access(keys, other)
    none_alg = jwt.encode(
        {**claims, "typ": "access"}, None, algorithm="none", headers={"kid": keys.signing_kid}
    )
    with pytest.raises(InvalidToken):
        decode_access(keys, none_alg)
