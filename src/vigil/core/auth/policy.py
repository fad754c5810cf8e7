"""Authorization declared on every route, as a dependency:

    @router.get("/rates", dependencies=[Depends(public)])
    @router.post("/assets", dependencies=[Depends(require("markets.write"))])
    def me(identity: Annotated[Identity, Depends(require("account"))]) -> ...

``public`` lets anyone in (and marks the request so that ``CachedAnswerMiddleware`` may
answer the URL again before routing); ``require(p)`` resolves the caller's identity (401
without valid credentials, 403 without the permission). A route that is not a FastAPI
APIRoute (a static files mount, the API docs) declares its policy with :func:`declare`.
``tests/integration/test_route_policies.py`` fails for any route of the app without one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from starlette.routing import BaseRoute

from vigil.core.auth.audit import Actor, actor_var
from vigil.core.auth.identity import Identity, IdentityResolver, Unauthenticated
from vigil.core.auth.permissions import check_permission

POLICY_SCOPE = "vigil.policy"  # the policy that let the request in
POLICY_ATTR = "__vigil_policy__"
TOKEN_URL = "/api/v1/auth/token"


@dataclass(frozen=True)
class Policy:
    permission: str | None  # None: public

    @property
    def is_public(self) -> bool:
        return self.permission is None

    def __str__(self) -> str:
        return "public" if self.permission is None else f"require({self.permission!r})"


PUBLIC = Policy(None)

# Gives the OpenAPI schema its OAuth2 password flow (the docs' Authorize button); it only
# reads the header, the resolver below does the work. auto_error=False: no header is a 401
# problem from us, not FastAPI's plain error.
bearer_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def public(request: Request) -> None:
    """Anyone may call the route."""
    request.scope[POLICY_SCOPE] = PUBLIC
    client = request.scope.get("client")
    actor_var.set(Actor("anonymous", None, client[0] if client else None))


setattr(public, POLICY_ATTR, PUBLIC)


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def resolver_of(request: Request) -> IdentityResolver | None:
    return getattr(request.app.state, "identity_resolver", None)


async def identify(request: Request) -> Identity | None:
    """The caller's identity, None when the request carries no credentials; raises 401 when
    it carries invalid ones."""
    resolver = resolver_of(request)
    if resolver is None:
        return None
    try:
        return await resolver.resolve(request)
    except Unauthenticated as exc:
        raise _unauthenticated(str(exc)) from None


Dependency = Callable[..., Coroutine[Any, Any, Identity]]


@cache
def require(permission: str) -> Dependency:
    """A dependency that lets in callers holding ``permission`` and returns their identity.
    The same function for the same permission, so FastAPI resolves it once per request even
    when it is both in ``dependencies=`` and a parameter."""
    policy = Policy(check_permission(permission))

    async def dependency(request: Request, _token: str | None = Depends(bearer_scheme)) -> Identity:
        identity = await identify(request)
        if identity is None:
            raise _unauthenticated(
                "Sign in first: send 'Authorization: Bearer <access token>' (POST "
                f"{TOKEN_URL} gives one) or a service token."
            )
        if not identity.can(permission):
            raise HTTPException(
                403, f"Your account may not do this: it needs the permission {permission!r}."
            )
        request.scope[POLICY_SCOPE] = policy
        client = request.scope.get("client")
        actor_var.set(Actor(identity.subject, identity.user_id, client[0] if client else None))
        return identity

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    setattr(dependency, POLICY_ATTR, policy)
    return dependency


def declare(route: BaseRoute, policy: Policy = PUBLIC) -> BaseRoute:
    """Declares the policy of a route that takes no dependencies (a Mount of static files,
    the API docs). Only public routes can be declared this way: nothing would enforce
    anything else."""
    if not policy.is_public:
        raise ValueError(
            "only a public policy can be declared on a plain route; use an APIRoute with "
            "Depends(require(...)) for anything else"
        )
    setattr(route, POLICY_ATTR, policy)
    return route


def _policies(declared_on: object, dependant: Dependant | None) -> list[Policy]:
    declared = getattr(declared_on, POLICY_ATTR, None)
    found: list[Policy] = [declared] if isinstance(declared, Policy) else []
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dep = stack.pop()
        policy = getattr(dep.call, POLICY_ATTR, None)
        if isinstance(policy, Policy):
            found.append(policy)
        stack.extend(dep.dependencies)
    return found


def policies_of(route: BaseRoute) -> list[Policy]:
    """The policies declared on ``route`` (its dependencies or :func:`declare`)."""
    return _policies(route, route.dependant if isinstance(route, APIRoute) else None)


@dataclass(frozen=True)
class RoutePolicy:
    path: str
    methods: frozenset[str]
    policies: tuple[Policy, ...]
    route: Any  # the effective route (an APIRoute, a Mount, FastAPI's included-route context)
    original: BaseRoute


def route_policies(routes: Sequence[BaseRoute]) -> Iterator[RoutePolicy]:
    """Every route the app serves, included routers and mounts too, with its policies (the
    dependencies of the route as included, its router's among them)."""
    for route, original in _effective_routes(routes):
        dependant = getattr(route, "dependant", None)
        path = getattr(route, "path", None) or getattr(original, "path", "") or ""
        methods = getattr(route, "methods", None) or set()
        yield RoutePolicy(
            path,
            frozenset(methods),
            tuple(_policies(original, dependant if isinstance(dependant, Dependant) else None)),
            route,
            original,
        )


def _effective_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[Any, BaseRoute]]:
    try:  # FastAPI >= 0.13x keeps included routers as such and builds their routes lazily
        from fastapi.routing import iter_route_contexts  # noqa: PLC0415
    except ImportError:  # older FastAPI copies every included route into app.routes
        for route in routes:
            yield route, route
        return
    for context in iter_route_contexts(routes):
        yield context, context.original_route
