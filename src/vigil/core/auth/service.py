"""Accounts, login sessions and service tokens. The API, the CLI and the web UI call only
this. Functions that take a ``Session`` flush and leave the commit to the caller; the
login, refresh and logout flows take the ``Database`` and own their transaction, because a
refused login must still commit its audit row."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from vigil.core.auth import audit
from vigil.core.auth.audit import Actor
from vigil.core.auth.identity import Identity
from vigil.core.auth.keys import KeyRing
from vigil.core.auth.models import RefreshToken, ServiceToken, User
from vigil.core.auth.passwords import Passwords, check_password_rules
from vigil.core.auth.permissions import PERMISSIONS, Role, permissions_of
from vigil.core.auth.revocations import Revocations
from vigil.core.auth.tokens import (
    REFRESH_PREFIX,
    SERVICE_PREFIX,
    InvalidToken,
    decode_access,
    digest,
    issue_access,
    new_opaque,
    new_session_id,
)
from vigil.core.db import Database
from vigil.core.problems import BadRequest, Conflict, NotFound, Problem
from vigil.core.ratelimit import RateLimiter
from vigil.settings import Settings

log = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
USER_FIELDS = ("email", "display_name", "role", "active")
WRONG_CREDENTIALS = "Wrong email or password."
FIRST_ADMIN_LOCK = 7_000_007  # PostgreSQL advisory lock: one first account at a time


class Unauthorized(HTTPException):
    """401 with ``WWW-Authenticate: Bearer`` (a problem document, like every error)."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


class TooManyAttempts(HTTPException):
    """429 with ``Retry-After``."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(429, detail, headers={"Retry-After": str(retry_after)})


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    session_id: str
    user_id: int


# --- users ------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not EMAIL.match(email):
        raise BadRequest(f"{email!r} is not an email address (name@example.org)")
    return email


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}; GET /api/v1/users lists them")
    return user


def _lock_first_account(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FIRST_ADMIN_LOCK})


def create_user(
    session: Session,
    passwords: Passwords,
    email: str,
    password: str,
    display_name: str | None = None,
    role: Role | None = None,
    now: datetime | None = None,
) -> User:
    """A new account; ``role=None`` gives the first account of the installation Admin and
    every later one the ordinary ``user`` role. 409 when the email is taken (any case)."""
    now = now or datetime.now(UTC)
    email = normalize_email(email)
    if why := check_password_rules(password):
        raise BadRequest(why)
    _lock_first_account(session)
    if find_user(session, email) is not None:
        raise Conflict(f"an account with the email {email} exists already; sign in instead")
    if role is None:
        first = not session.scalar(select(func.count()).select_from(User))
        role = Role.ADMIN if first else Role.USER
    user = User(
        email=email,
        password_hash=passwords.hash(password),
        display_name=(display_name or email.split("@", 1)[0]).strip()[:100],
        role=Role(role).value,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(session, "create", "auth.user", user.id, after=audit.snapshot(user, USER_FIELDS))
    return user


def list_users(session: Session, limit: int, offset: int) -> tuple[list[User], int]:
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.id).limit(limit).offset(offset)).all()
    return list(rows), total


def _active_admins(session: Session) -> int:
    stmt = select(func.count()).where(User.role == Role.ADMIN.value, User.active.is_(True))
    return session.scalar(stmt) or 0


def update_user(
    session: Session,
    revocations: Revocations,
    settings: Settings,
    user_id: int,
    *,
    role: Role | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    now: datetime | None = None,
) -> User:
    """Changes a user's role, active flag or name. A new role or a deactivation ends the
    user's sessions (their next request signs them out). The last active Admin stays one."""
    now = now or datetime.now(UTC)
    user = get_user(session, user_id)
    before = audit.snapshot(user, USER_FIELDS)
    if role is not None:
        user.role = Role(role).value
    if active is not None:
        user.active = active
    if display_name is not None:
        user.display_name = display_name.strip()[:100]
    was_admin = before["role"] == Role.ADMIN.value and before["active"]
    still_admin = user.role == Role.ADMIN.value and user.active
    session.flush()
    if was_admin and not still_admin and _active_admins(session) == 0:
        raise Conflict("this is the last active Admin: make another user Admin first")
    after = audit.snapshot(user, USER_FIELDS)
    if before != after:
        audit.record(session, "update", "auth.user", user.id, before=before, after=after)
    if before["role"] != after["role"] or not user.active:
        end_sessions(session, revocations, settings, user.id, now=now)
    return user


def change_password(
    session: Session,
    passwords: Passwords,
    revocations: Revocations,
    settings: Settings,
    user_id: int,
    current: str,
    new: str,
    keep_session: str | None,
    now: datetime | None = None,
) -> None:
    """Sets a new password after checking the current one; every other session ends."""
    now = now or datetime.now(UTC)
    user = get_user(session, user_id)
    if not passwords.verify(user.password_hash, current):
        raise Forbidden("the current password is wrong")
    if why := check_password_rules(new):
        raise BadRequest(why)
    user.password_hash = passwords.hash(new)
    audit.record(session, "password.change", "auth.user", user.id)
    end_sessions(session, revocations, settings, user.id, keep=keep_session, now=now)
    session.flush()


# --- sessions ---------------------------------------------------------------------------------


def end_sessions(
    session: Session,
    revocations: Revocations,
    settings: Settings,
    user_id: int,
    keep: str | None = None,
    now: datetime | None = None,
) -> int:
    """Revokes every login session of the user (but ``keep``); returns how many."""
    now = now or datetime.now(UTC)
    stmt = select(RefreshToken.family_id).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
    )
    families = {f for f in session.scalars(stmt.distinct()) if f != keep}
    for family in families:
        _revoke_family(session, revocations, settings, family, now)
    return len(families)


def _revoke_family(
    session: Session, revocations: Revocations, settings: Settings, family: str, now: datetime
) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    revocations.revoke(family, settings.access_token_minutes * 60 + 60)


class AuthService:
    """What the login flows need, built once per process from the settings. The key ring
    and the password hasher (whose dummy hash costs one argon2 run) are made on first use,
    so a process that never signs anyone in pays nothing for them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.revocations = Revocations(settings.redis_url)
        self.account_limiter = RateLimiter(
            settings.login_rate_limit_account, settings.redis_url, key_prefix="vigil:login:account"
        )
        self.ip_limiter = RateLimiter(
            settings.login_rate_limit_ip, settings.redis_url, key_prefix="vigil:login:ip"
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthService:
        return cls(settings)

    @cached_property
    def passwords(self) -> Passwords:
        return Passwords.from_settings(self.settings)

    @cached_property
    def keys(self) -> KeyRing:
        return KeyRing.from_settings(self.settings)

    @property
    def access_lifetime(self) -> timedelta:
        return timedelta(minutes=self.settings.access_token_minutes)

    @property
    def refresh_lifetime(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_days)

    def _issue(self, session: Session, user: User, family: str | None, now: datetime) -> TokenPair:
        family = family or new_session_id()
        refresh = new_opaque(REFRESH_PREFIX)
        session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family,
                token_hash=digest(refresh),
                issued_at=now,
                expires_at=now + self.refresh_lifetime,
            )
        )
        session.flush()
        access = issue_access(
            self.keys, user.id, user.email, user.role, family, now, self.access_lifetime
        )
        return TokenPair(access, refresh, family, user.id)

    def _throttle(self, email: str, ip: str | None) -> None:
        for limiter, key, what in (
            (self.ip_limiter, ip or "unknown", "from your address"),
            (self.account_limiter, email.strip().lower(), "for this account"),
        ):
            verdict = limiter.hit(key)
            if not verdict.allowed:
                retry = verdict.retry_after
                raise TooManyAttempts(
                    f"Too many sign-in attempts {what}: the limit is {verdict.limit}. "
                    f"Retry in {retry} second{'s' if retry != 1 else ''}.",
                    retry,
                )

    def login(
        self,
        db: Database,
        email: str,
        password: str,
        ip: str | None,
        now: datetime | None = None,
    ) -> TokenPair:
        """Tokens for a right email and password. An unknown email, a wrong password and a
        deactivated account get the same 401 after the same argon2 work; every attempt is
        audited (``login`` or ``login.failed``), and attempts are rate limited per address
        and per account (429)."""
        now = now or datetime.now(UTC)
        attempted = Actor(email.strip()[:320] or "anonymous", None, ip)
        try:
            self._throttle(email, ip)
        except TooManyAttempts:
            with db.session(write=True) as session:
                audit.record(
                    session, "login.failed", "auth.user", detail="rate limited", actor=attempted
                )
            raise
        with db.session(write=True) as session:
            user = find_user(session, email) if email.strip() else None
            ok = self.passwords.verify(user.password_hash if user else None, password)
            if user is None or not ok or not user.active:
                why = (
                    "unknown email" if user is None else "wrong password" if not ok else "inactive"
                )
                who = Actor(attempted.name, user.id if user else None, ip)
                audit.record(
                    session, "login.failed", "auth.user", user and user.id, detail=why, actor=who
                )
                pair = None
            else:
                if self.passwords.needs_rehash(user.password_hash):
                    user.password_hash = self.passwords.hash(password)
                user.last_login = now
                pair = self._issue(session, user, None, now)
                who = Actor(user.email, user.id, ip)
                audit.record(session, "login", "auth.user", user.id, actor=who)
        if pair is None:
            raise Unauthorized(WRONG_CREDENTIALS)
        return pair

    def refresh(
        self, db: Database, token: str, ip: str | None, now: datetime | None = None
    ) -> TokenPair:
        """The next token pair of the session (the refresh token is single-use). A used
        refresh token presented again means it leaked: the whole session is revoked."""
        now = now or datetime.now(UTC)
        refused: str | None = None
        pair: TokenPair | None = None
        with db.session(write=True) as session:
            row = session.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == digest(token))
            )
            user = session.get(User, row.user_id) if row is not None else None
            if row is None or user is None:
                refused = "the refresh token is not valid: sign in again"
            elif row.revoked_at is not None:
                refused = "the session has ended (signed out): sign in again"
            elif row.used_at is not None:
                _revoke_family(session, self.revocations, self.settings, row.family_id, now)
                audit.record(
                    session,
                    "token.reuse",
                    "auth.session",
                    row.family_id,
                    detail="a used refresh token was presented again; session revoked",
                    actor=Actor(user.email, user.id, ip),
                )
                refused = (
                    "the refresh token was used already: the session is revoked, sign in again"
                )
            elif row.expires_at <= now:
                refused = "the refresh token has expired: sign in again"
            elif not user.active:
                refused = "the account is deactivated"
            else:
                row.used_at = now
                pair = self._issue(session, user, row.family_id, now)
        if pair is None:
            raise Unauthorized(refused or "the refresh token is not valid")
        return pair

    def logout(self, db: Database, identity: Identity, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        with db.session(write=True) as session:
            if identity.session_id is not None:
                _revoke_family(session, self.revocations, self.settings, identity.session_id, now)
            audit.record(session, "logout", "auth.user", identity.user_id)

    # --- identities ----------------------------------------------------------------------

    def identity_of_access_token(self, token: str) -> Identity:
        claims = decode_access(self.keys, token)
        if self.revocations.is_revoked(claims.session_id):
            raise InvalidToken("the session has ended (signed out): sign in again")
        return user_identity(claims.user_id, claims.email, claims.role, claims.session_id)

    def identity_of_service_token(
        self, db: Database, token: str, now: datetime | None = None
    ) -> Identity:
        now = now or datetime.now(UTC)
        with db.session() as session:
            row = session.scalar(
                select(ServiceToken).where(ServiceToken.token_hash == digest(token))
            )
            if row is None:
                raise InvalidToken("the service token is not valid")
            if row.revoked_at is not None:
                raise InvalidToken("the service token has been revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise InvalidToken("the service token has expired")
            scopes = frozenset(s for s in row.scopes if s in PERMISSIONS)
            return Identity(
                kind="service",
                subject=f"service:{row.name}",
                permissions=scopes,
                token_id=row.id,
                via="service_token",
            )


def user_identity(
    user_id: int, email: str, role: str, session_id: str | None, via: str = "jwt"
) -> Identity:
    """The identity of a signed-in user (the web UI's cookie session builds one too)."""
    return Identity(
        kind="user",
        subject=email,
        permissions=permissions_of(role),
        user_id=user_id,
        role=role,
        session_id=session_id,
        via=via,  # type: ignore[arg-type]
    )


# --- service tokens ---------------------------------------------------------------------------


def create_service_token(
    session: Session,
    name: str,
    scopes: list[str],
    created_by: int | None,
    expires_at: datetime | None = None,
    allowed: frozenset[str] | None = None,
    now: datetime | None = None,
) -> tuple[ServiceToken, str]:
    """A new service token; the token itself is returned once and never stored. Its scopes
    must be among ``allowed`` (its creator's permissions) when given."""
    now = now or datetime.now(UTC)
    name = name.strip()
    unknown = sorted(set(scopes) - set(PERMISSIONS))
    if unknown:
        raise BadRequest(
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(PERMISSIONS))}"
        )
    if allowed is not None and not set(scopes) <= allowed:
        raise Forbidden("a service token cannot have permissions its creator lacks")
    if expires_at is not None and expires_at <= now:
        raise BadRequest("expires_at must be in the future")
    if session.scalar(select(ServiceToken.id).where(ServiceToken.name == name)) is not None:
        raise Conflict(f"a service token named {name!r} exists already; pick another name")
    token = new_opaque(SERVICE_PREFIX)
    row = ServiceToken(
        name=name,
        token_hash=digest(token),
        prefix=token[:12],
        scopes=sorted(set(scopes)),
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "create",
        "auth.service_token",
        row.id,
        after={"name": name, "scopes": row.scopes, "expires_at": audit._plain(expires_at)},
    )
    return row, token


def list_service_tokens(session: Session) -> list[ServiceToken]:
    return list(session.scalars(select(ServiceToken).order_by(ServiceToken.id)))


def revoke_service_token(session: Session, token_id: int, now: datetime | None = None) -> None:
    row = session.get(ServiceToken, token_id)
    if row is None:
        raise NotFound(f"no service token {token_id}; GET /api/v1/auth/service-tokens lists them")
    if row.revoked_at is None:
        row.revoked_at = now or datetime.now(UTC)
        audit.record(session, "delete", "auth.service_token", row.id, before={"name": row.name})
    session.flush()
