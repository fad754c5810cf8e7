"""Accounts, tokens, users and the audit log: /api/v1/auth/…, /api/v1/users, /api/v1/audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.orm import Session

from vigil.core.auth import audit, service
from vigil.core.auth.identity import Identity
from vigil.core.auth.policy import public, require
from vigil.core.auth.schemas import (
    AuditOut,
    AuditPage,
    MeOut,
    PasswordIn,
    RefreshIn,
    RegisterIn,
    ServiceTokenCreated,
    ServiceTokenIn,
    ServiceTokenOut,
    TokenOut,
    UserOut,
    UserPage,
    UserPatch,
)
from vigil.core.auth.service import AuthService, Forbidden, TokenPair
from vigil.core.deps import db_session, runtime_of
from vigil.core.modules import API_PREFIX
from vigil.core.paging import next_offset

router = APIRouter(prefix=API_PREFIX)

SessionDep = Annotated[Session, Depends(db_session)]
LimitQ = Annotated[int, Query(ge=1, le=1000, description="Page size (default 100).")]
MAX_ID = 2_147_483_647  # ids and offsets past this are refused (422), never a database error
OffsetQ = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip (default 0).")]
IdP = Annotated[int, Path(ge=1, le=MAX_ID)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
Responses = dict[int | str, dict[str, Any]]
UNAUTHORIZED: Responses = {401: {"description": "Not signed in, or the credentials are not valid."}}
FORBIDDEN: Responses = {403: {"description": "Signed in, without the permission this needs."}}


async def auth_service(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


AuthDep = Annotated[AuthService, Depends(auth_service)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _tokens(pair: TokenPair, response: Response) -> TokenOut:
    response.headers.update(NO_STORE)
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    tags=["auth"],
    summary="Sign in: OAuth2 password form (username = email) → access and refresh tokens",
    dependencies=[Depends(public)],
    responses={
        401: {"description": "Wrong email or password (the same answer for both)."},
        429: {"description": "Too many attempts for this account or address; see Retry-After."},
    },
)
def token(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    auth: AuthDep,
) -> TokenOut:
    pair = auth.login(runtime_of(request).db, form.username, form.password, client_ip(request))
    return _tokens(pair, response)


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    tags=["auth"],
    summary="Trade a refresh token (single use) for a new token pair",
    dependencies=[Depends(public)],
    responses=UNAUTHORIZED,
)
def refresh(request: Request, response: Response, body: RefreshIn, auth: AuthDep) -> TokenOut:
    pair = auth.refresh(runtime_of(request).db, body.refresh_token, client_ip(request))
    return _tokens(pair, response)


@router.post(
    "/auth/logout",
    status_code=204,
    tags=["auth"],
    summary="Sign out: ends this session (its refresh and access tokens stop working)",
    responses=UNAUTHORIZED,
)
def logout(
    request: Request, identity: Annotated[Identity, Depends(require("account"))], auth: AuthDep
) -> Response:
    auth.logout(runtime_of(request).db, identity)
    return Response(status_code=204)


@router.post(
    "/auth/register",
    response_model=UserOut,
    status_code=201,
    tags=["auth"],
    summary="Create an account (the first one becomes Admin); VIGIL_REGISTRATION_ENABLED",
    dependencies=[Depends(public)],
    responses={
        403: {"description": "Registration is switched off."},
        409: {"description": "The email is taken."},
    },
)
def register(body: RegisterIn, session: SessionDep, auth: AuthDep) -> UserOut:
    if not auth.settings.registration_enabled:
        raise Forbidden(
            "registration is switched off (VIGIL_REGISTRATION_ENABLED=false): ask an Admin"
        )
    user = service.create_user(
        session, auth.passwords, body.email, body.password, body.display_name
    )
    return UserOut.model_validate(user)


@router.get(
    "/auth/me",
    response_model=MeOut,
    tags=["auth"],
    summary="Who I am, and what I may do",
    responses={**UNAUTHORIZED, **FORBIDDEN},
)
def me(identity: Annotated[Identity, Depends(require("account"))], session: SessionDep) -> MeOut:
    assert identity.user_id is not None  # "account" is a user's permission only
    user = service.get_user(session, identity.user_id)
    return MeOut(user=UserOut.model_validate(user), permissions=sorted(identity.permissions))


@router.post(
    "/auth/password",
    status_code=204,
    tags=["auth"],
    summary="Change my password (my other sessions end)",
    responses={**UNAUTHORIZED, 403: {"description": "The current password is wrong."}},
)
def change_password(
    body: PasswordIn,
    identity: Annotated[Identity, Depends(require("account"))],
    session: SessionDep,
    auth: AuthDep,
) -> Response:
    assert identity.user_id is not None
    service.change_password(
        session,
        auth.passwords,
        auth.revocations,
        auth.settings,
        identity.user_id,
        body.current_password,
        body.new_password,
        keep_session=identity.session_id,
    )
    return Response(status_code=204)


# --- user management (Admin) -------------------------------------------------------------------


@router.get(
    "/users",
    response_model=UserPage,
    tags=["users"],
    summary="Every account",
    dependencies=[Depends(require("users.manage"))],
    responses={**UNAUTHORIZED, **FORBIDDEN},
)
def list_users(session: SessionDep, limit: LimitQ = 100, offset: OffsetQ = 0) -> UserPage:
    rows, total = service.list_users(session, limit, offset)
    return UserPage(
        items=[UserOut.model_validate(u) for u in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=next_offset(offset, limit, total),
    )


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    tags=["users"],
    summary="Change a user's role, name, or deactivate them (their sessions end)",
    dependencies=[Depends(require("users.manage"))],
    responses={
        **UNAUTHORIZED,
        **FORBIDDEN,
        404: {"description": "No such user."},
        409: {"description": "That would leave no active Admin."},
    },
)
def update_user(
    user_id: IdP,
    body: UserPatch,
    session: SessionDep,
    auth: AuthDep,
) -> UserOut:
    user = service.update_user(
        session,
        auth.revocations,
        auth.settings,
        user_id,
        role=body.role,
        active=body.active,
        display_name=body.display_name,
    )
    return UserOut.model_validate(user)


# --- service tokens (Admin) --------------------------------------------------------------------


@router.get(
    "/auth/service-tokens",
    response_model=list[ServiceTokenOut],
    tags=["auth"],
    summary="Service tokens (their hashes only; revoked ones included)",
    dependencies=[Depends(require("tokens.manage"))],
    responses={**UNAUTHORIZED, **FORBIDDEN},
)
def list_service_tokens(session: SessionDep) -> list[ServiceTokenOut]:
    return [ServiceTokenOut.model_validate(t) for t in service.list_service_tokens(session)]


@router.post(
    "/auth/service-tokens",
    response_model=ServiceTokenCreated,
    status_code=201,
    tags=["auth"],
    summary="Create a long-lived token for a machine, limited to the given permissions",
    responses={**UNAUTHORIZED, **FORBIDDEN, 409: {"description": "The name is taken."}},
)
def create_service_token(
    body: ServiceTokenIn,
    identity: Annotated[Identity, Depends(require("tokens.manage"))],
    session: SessionDep,
) -> ServiceTokenCreated:
    row, secret = service.create_service_token(
        session, body.name, body.scopes, identity.user_id, body.expires_at, identity.permissions
    )
    return ServiceTokenCreated(**ServiceTokenOut.model_validate(row).model_dump(), token=secret)


@router.delete(
    "/auth/service-tokens/{token_id}",
    status_code=204,
    tags=["auth"],
    summary="Revoke a service token (it stops working at once)",
    dependencies=[Depends(require("tokens.manage"))],
    responses={**UNAUTHORIZED, **FORBIDDEN, 404: {"description": "No such token."}},
)
def revoke_service_token(token_id: IdP, session: SessionDep) -> Response:
    service.revoke_service_token(session, token_id)
    return Response(status_code=204)


# --- the audit log (Admin) ---------------------------------------------------------------------


@router.get(
    "/audit",
    response_model=AuditPage,
    tags=["audit"],
    summary="The audit log, newest first",
    dependencies=[Depends(require("audit.read"))],
    responses={**UNAUTHORIZED, **FORBIDDEN},
)
def audit_log(
    session: SessionDep,
    user_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this user's actions.")
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=320, description="Only this actor (email, service:…).")
    ] = None,
    entity: Annotated[
        str | None, Query(max_length=60, description="Only this entity, e.g. markets.asset.")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=40, description="Only this action, e.g. login.failed.")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> AuditPage:
    rows, total = audit.entries(
        session,
        user_id=user_id,
        actor=actor,
        entity=entity,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        items=[AuditOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=next_offset(offset, limit, total),
    )
