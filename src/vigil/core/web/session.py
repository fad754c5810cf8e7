"""The web UI's sign-in session: the same tokens as the API, kept in HttpOnly cookies.

* ``vigil_access`` holds the short-lived JWT access token (SameSite=Lax, so following a
  link from elsewhere keeps the user signed in); ``vigil_refresh`` the refresh token
  (SameSite=Strict, HttpOnly, sent only to this site). When the access token has expired,
  :class:`SessionRefreshMiddleware` trades the refresh token for a new pair before the
  request is routed (rotation and reuse detection are the auth service's), so a session
  lasts as long as its refresh token.
* CSRF: every form carries ``csrf_token`` (HTMX sends it as ``X-CSRF-Token``), an HMAC of
  the session (or, before signing in, of a random ``vigil_presession`` cookie) with the
  token signing key. A write authenticated by the cookie without the right token is
  refused with 403. Bearer-authenticated API calls need none: a browser never adds that
  header by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.auth.api import client_ip
from vigil.core.auth.identity import Identity, Resolver, Unauthenticated
from vigil.core.auth.service import AuthService, user_identity
from vigil.core.auth.tokens import InvalidToken, decode_access

if TYPE_CHECKING:
    from vigil.core.auth.service import TokenPair
    from vigil.core.db import Database

log = logging.getLogger(__name__)

ACCESS_COOKIE = "vigil_access"
REFRESH_COOKIE = "vigil_refresh"
PRESESSION_COOKIE = "vigil_presession"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_SCOPE = "vigil.web_session"  # the session id the CSRF token is bound to
ENDED_SCOPE = "vigil.web_session_ended"  # the refresh cookie could not renew the session


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookies(
    response: Response, request: Request, auth: AuthService, pair: TokenPair
) -> None:
    secure = _secure(request)
    refresh_age = int(auth.refresh_lifetime.total_seconds())
    # The access cookie lives as long as the session: an expired token inside it is what
    # tells the refresh middleware to renew it.
    response.set_cookie(
        ACCESS_COOKIE, pair.access_token, max_age=refresh_age, httponly=True,
        samesite="lax", secure=secure, path="/",
    )  # fmt: skip
    response.set_cookie(
        REFRESH_COOKIE, pair.refresh_token, max_age=refresh_age, httponly=True,
        samesite="strict", secure=secure, path="/",
    )  # fmt: skip


def clear_session_cookies(response: Response) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/")


def session_identity(request: Request) -> Identity | None:
    """The signed-in user of the cookie session, None without a valid one (no I/O beyond
    the revocation check: templates call it to show who is signed in)."""
    auth: AuthService | None = getattr(request.app.state, "auth", None)
    token = request.cookies.get(ACCESS_COOKIE)
    if auth is None or not token:
        return None
    try:
        claims = decode_access(auth.keys, token)
    except InvalidToken:
        return None
    if auth.revocations.is_revoked(claims.session_id):
        return None
    return user_identity(claims.user_id, claims.email, claims.role, claims.session_id, "cookie")


# --- CSRF ------------------------------------------------------------------------------------


def _session_key(request: Request) -> str | None:
    identity = session_identity(request)
    if identity is not None and identity.session_id:
        return f"session:{identity.session_id}"
    presession = request.scope.get(SESSION_SCOPE) or request.cookies.get(PRESESSION_COOKIE)
    return f"pre:{presession}" if presession else None


def csrf_token(request: Request) -> str:
    """The token forms of this page must send back. Before signing in it is bound to a
    random pre-session cookie, which :func:`ensure_presession` sets."""
    key = _session_key(request)
    if key is None:
        key = f"pre:{ensure_presession(request)}"
    auth: AuthService = request.app.state.auth
    mac = hmac.new(auth.keys.signing_key, f"csrf:{key}".encode(), hashlib.sha256)
    return mac.hexdigest()


def ensure_presession(request: Request) -> str:
    value = request.cookies.get(PRESESSION_COOKIE) or request.scope.get(SESSION_SCOPE)
    if not value:
        value = secrets.token_urlsafe(24)
        request.scope[SESSION_SCOPE] = value  # set on the response by PresessionCookie
    return str(value)


async def check_csrf(request: Request) -> None:
    """403 unless the request carries this session's CSRF token (form field or header)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    key = _session_key(request)
    if not sent or key is None or not hmac.compare_digest(sent, csrf_token(request)):
        raise HTTPException(
            403,
            "The form's security token is missing or out of date (CSRF check): reload the "
            "page and send the form again.",
        )


def cookie_resolver() -> Resolver:
    async def resolve(request: Request) -> Identity | None:
        if ACCESS_COOKIE not in request.cookies:
            return None
        identity = session_identity(request)
        if identity is None:
            raise Unauthenticated("your session has ended: sign in again")
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        return identity

    return resolve


# --- middleware ------------------------------------------------------------------------------


class SessionCookieMiddleware:
    """Before routing: renews an expired access cookie with the refresh cookie (the request
    then carries the new token). After: sets the renewed cookies, or the pre-session cookie
    a page's CSRF token was bound to."""

    def __init__(self, app: ASGIApp, auth: AuthService, db: Database) -> None:
        self.app, self.auth, self.db = app, auth, db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _has_cookie(scope, REFRESH_COOKIE):
            await self._pass(scope, receive, send, renewed=None)
            return
        request = Request(scope)
        renewed = None
        if self._expired(request.cookies.get(ACCESS_COOKIE)):
            renewed = await self._renew(request)
        await self._pass(scope, receive, send, renewed)

    def _expired(self, token: str | None) -> bool:
        if not token:
            return True
        try:
            decode_access(self.auth.keys, token)
        except InvalidToken as exc:
            return "expired" in str(exc)
        return False

    async def _renew(self, request: Request) -> TokenPair | None:
        refresh = request.cookies.get(REFRESH_COOKIE)
        if not refresh:
            return None
        try:
            pair: TokenPair = await run_in_threadpool(
                self.auth.refresh, self.db, refresh, client_ip(request)
            )
        except HTTPException as exc:
            # Revoked, reused or expired: drop the cookies, so the browser stops sending a
            # session that cannot come back (and the next page offers to sign in).
            log.info("web session not renewed: %s", exc.detail)
            request.scope[ENDED_SCOPE] = True
            return None
        _replace_cookie(request.scope, ACCESS_COOKIE, pair.access_token)
        _replace_cookie(request.scope, REFRESH_COOKIE, pair.refresh_token)
        return pair

    async def _pass(
        self, scope: Scope, receive: Receive, send: Send, renewed: TokenPair | None
    ) -> None:
        async def sending(message: Message) -> None:
            # Most answers set no cookie: only a renewal or a new pre-session costs work.
            if message["type"] == "http.response.start" and (
                renewed is not None or scope.get(SESSION_SCOPE) or scope.get(ENDED_SCOPE)
            ):
                request = Request(scope)
                headers = MutableHeaders(scope=message)
                cookies = Response()
                if renewed is not None:
                    set_session_cookies(cookies, request, self.auth, renewed)
                elif scope.get(ENDED_SCOPE):
                    clear_session_cookies(cookies)
                presession = scope.get(SESSION_SCOPE)
                if presession and PRESESSION_COOKIE not in request.cookies:
                    cookies.set_cookie(
                        PRESESSION_COOKIE, presession, httponly=True, samesite="lax",
                        secure=_secure(request), path="/",
                    )  # fmt: skip
                for key, value in cookies.raw_headers:
                    if key == b"set-cookie":
                        headers.append("set-cookie", value.decode("latin-1"))
            await send(message)

        await self.app(scope, receive, sending)


def _has_cookie(scope: Scope, name: str) -> bool:
    return any(key == b"cookie" and name.encode() in value for key, value in scope["headers"])


def _replace_cookie(scope: Scope, name: str, value: str) -> None:
    """Rewrites the request's Cookie header so the app sees the renewed token."""
    jar = SimpleCookie()
    for key, raw in scope["headers"]:
        if key == b"cookie":
            jar.load(raw.decode("latin-1"))
    jar[name] = value
    cookie = "; ".join(f"{k}={m.value}" for k, m in jar.items())
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
    scope["headers"].append((b"cookie", cookie.encode("latin-1")))
