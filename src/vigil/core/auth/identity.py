"""Who is calling: an :class:`Identity`, resolved from the request by the app's
:class:`IdentityResolver` (a Bearer JWT, a service token, or any resolver added later, such
as the web UI's session cookie)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from starlette.requests import Request

IDENTITY_SCOPE = "vigil.identity"  # the resolved identity, kept in the request's scope


@dataclass(frozen=True)
class Identity:
    kind: Literal["user", "service"]
    subject: str  # a user's email, or "service:<token name>"
    permissions: frozenset[str]
    user_id: int | None = None
    role: str | None = None
    session_id: str | None = None  # the login session (refresh-token family) of a JWT
    token_id: int | None = None  # the service token's id
    via: Literal["jwt", "service_token", "cookie"] = "jwt"

    def can(self, permission: str) -> bool:
        return permission in self.permissions


#: A resolver looks at the request and returns an identity, None when its credentials are
#: absent, or raises ``Unauthenticated`` when they are present but invalid.
Resolver = Callable[[Request], Awaitable[Identity | None]]


class Unauthenticated(Exception):
    """Credentials were given but are not valid (expired, revoked, malformed)."""


@dataclass
class IdentityResolver:
    """Tries its resolvers in order; the first identity wins. Core adds the Bearer resolver
    (JWT access tokens and service tokens); the web UI adds its cookie session with
    :meth:`add` (and owns its CSRF check, which only cookie-authenticated writes need)."""

    resolvers: list[Resolver] = field(default_factory=list)

    def add(self, resolver: Resolver) -> None:
        self.resolvers.append(resolver)

    async def resolve(self, request: Request) -> Identity | None:
        cached = request.scope.get(IDENTITY_SCOPE)
        if cached is not None:
            assert isinstance(cached, Identity)
            return cached
        for resolver in self.resolvers:
            identity = await resolver(request)
            if identity is not None:
                request.scope[IDENTITY_SCOPE] = identity
                return identity
        return None
