"""Access tokens (short-lived JWTs), refresh tokens and service tokens.

An access token is an HS256 JWT whose header names its key (``kid``) and whose claims are
``sub`` (the user id), ``email``, ``role``, ``sid`` (the login session: the refresh-token
family), ``iat``, ``exp`` and ``typ: access``. Refresh and service tokens are opaque random
strings (``vrt_…``, ``vst_…``); the database keeps only their SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from vigil.core.auth.keys import KeyRing

ALGORITHM = "HS256"
REFRESH_PREFIX = "vrt_"
SERVICE_PREFIX = "vst_"
LEEWAY_SECONDS = 5  # clock skew between the API's hosts


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    email: str
    role: str
    session_id: str
    expires_at: datetime


def issue_access(
    keys: KeyRing,
    user_id: int,
    email: str,
    role: str,
    session_id: str,
    now: datetime,
    lifetime: timedelta,
) -> str:
    claims = {
        "sub": str(user_id),
        "email": email,
        "role": role,
        "sid": session_id,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(
        claims, keys.signing_key, algorithm=ALGORITHM, headers={"kid": keys.signing_kid}
    )


def decode_access(keys: KeyRing, token: str) -> AccessClaims:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = keys.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("the token was signed with a key this server does not know")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "sid"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the access token has expired: refresh it or sign in again") from None
    except jwt.PyJWTError:
        raise InvalidToken("the access token is not valid") from None
    if claims.get("typ") != "access":
        raise InvalidToken("not an access token")
    try:
        return AccessClaims(
            user_id=int(claims["sub"]),
            email=str(claims.get("email", "")),
            role=str(claims["role"]),
            session_id=str(claims["sid"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"])).astimezone(),
        )
    except (KeyError, ValueError, TypeError):
        raise InvalidToken("the access token is not valid") from None


def new_opaque(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_hex(16)
