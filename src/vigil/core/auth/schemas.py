"""Request and response models of the accounts, tokens and audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.core.auth.passwords import MAX_PASSWORD_LENGTH
from vigil.core.auth.permissions import Role


class TokenOut(BaseModel):
    """Exactly what OAuth2 password-flow clients (and the docs' Authorize button) expect."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class RegisterIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, examples=["ada@example.org"])
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    display_name: str | None = Field(None, max_length=100)


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    role: Role
    active: bool
    created_at: datetime
    last_login: datetime | None


class UserPatch(BaseModel):
    role: Role | None = None
    active: bool | None = None
    display_name: str | None = Field(None, min_length=1, max_length=100)


class MeOut(BaseModel):
    user: UserOut
    permissions: list[str]


class ServiceTokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    scopes: list[str] = Field(min_length=1, max_length=20, examples=[["markets.write"]])
    expires_at: datetime | None = Field(None, description="Never expires when omitted.")


class ServiceTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_by: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ServiceTokenCreated(ServiceTokenOut):
    token: str = Field(description="Shown once: only its hash is stored.")


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_user_id: int | None
    actor: str
    action: str
    entity: str
    entity_id: str | None
    changes: dict[str, Any] | None
    ip: str | None
    request_id: str | None
    detail: str | None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None
