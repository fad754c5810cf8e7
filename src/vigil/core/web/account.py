"""Sign-in pages of the web UI: sign in, register, sign out, own account and password.
They use the API's auth service; the session lives in cookies (see ``session.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from vigil.core.auth import service as accounts
from vigil.core.auth.api import client_ip
from vigil.core.auth.audit import Actor, acting_as
from vigil.core.auth.identity import Identity
from vigil.core.auth.policy import public, require
from vigil.core.auth.service import AuthService
from vigil.core.deps import runtime_of
from vigil.core.problems import Problem
from vigil.core.web.rendering import flash, render
from vigil.core.web.session import (
    check_csrf,
    clear_session_cookies,
    session_identity,
    set_session_cookies,
)

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form()]
Account = Annotated[Identity, Depends(require("account"))]


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


def _form_page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, template, context, status_code=status)


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public)])
def login_page(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if session_identity(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _form_page(request, "login.html", title="Sign in", next=target, email="")


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(public)])
async def login(
    request: Request,
    email: Text = "",
    password: Text = "",
    next: Text = "/",
) -> Response:
    await check_csrf(request)
    target, auth = safe_next(next), _auth(request)
    db = runtime_of(request).db
    try:
        pair = await run_in_threadpool(auth.login, db, email, password, client_ip(request))
    except HTTPException as exc:  # 401 wrong credentials, 429 too many attempts
        return _form_page(
            request, "login.html", exc.status_code, title="Sign in", next=target,
            email=email, error=exc.detail,
        )  # fmt: skip
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(response, request, auth, pair)
    return flash(response, f"Signed in as {email.strip().lower()}.", "success")


@router.post("/logout", dependencies=[Depends(public)])
async def logout(request: Request) -> Response:
    """Ends the session (also when it has expired already: signing out always works)."""
    identity = session_identity(request)
    if identity is not None:
        await check_csrf(request)
        with acting_as(Actor(identity.subject, identity.user_id, client_ip(request))):
            await run_in_threadpool(_auth(request).logout, runtime_of(request).db, identity)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookies(response)
    return flash(response, "Signed out.", "info")


@router.get("/register", response_class=HTMLResponse, dependencies=[Depends(public)])
def register_page(request: Request) -> HTMLResponse:
    return _form_page(
        request, "register.html", title="Create an account", email="", display_name="",
        closed=not _auth(request).settings.registration_enabled,
    )  # fmt: skip


@router.post("/register", response_class=HTMLResponse, dependencies=[Depends(public)])
async def register(
    request: Request, email: Text = "", password: Text = "", display_name: Text = ""
) -> Response:
    await check_csrf(request)
    auth = _auth(request)
    if not auth.settings.registration_enabled:
        return _form_page(request, "register.html", 403, title="Create an account", closed=True)
    db = runtime_of(request).db

    def create() -> None:
        with db.session(write=True) as session:
            accounts.create_user(session, auth.passwords, email, password, display_name or None)

    try:
        await run_in_threadpool(create)
    except Problem as exc:  # 409 taken, 422 a password that breaks the rules
        return _form_page(
            request, "register.html", exc.status, title="Create an account", email=email,
            display_name=display_name, error=exc.detail,
        )  # fmt: skip
    response = RedirectResponse("/login", status_code=303)
    return flash(response, "Account created: sign in with your email and password.", "success")


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, identity: Account) -> HTMLResponse:
    return _form_page(request, "account.html", title="Your account", identity=identity)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(
    request: Request, identity: Account, current_password: Text = "", new_password: Text = ""
) -> Response:
    auth, db = _auth(request), runtime_of(request).db
    user_id = identity.user_id
    assert user_id is not None  # "account" is a user's permission only

    def change() -> None:
        with db.session(write=True) as session:
            accounts.change_password(
                session, auth.passwords, auth.revocations, auth.settings, user_id,
                current_password, new_password, keep_session=identity.session_id,
            )  # fmt: skip

    try:
        await run_in_threadpool(change)
    except Problem as exc:
        return _form_page(
            request, "account.html", exc.status, title="Your account", identity=identity,
            error=exc.detail,
        )  # fmt: skip
    response = RedirectResponse("/account", status_code=303)
    return flash(response, "Password changed; your other sessions have ended.", "success")
