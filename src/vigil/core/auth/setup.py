"""Wires accounts into the app: the auth service, the identity resolver (Bearer: JWT access
tokens and service tokens), the routes, and the public policy of the routes FastAPI adds
itself (the API docs)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from vigil.core.auth.api import router
from vigil.core.auth.identity import Identity, IdentityResolver, Resolver, Unauthenticated
from vigil.core.auth.policy import declare, route_policies
from vigil.core.auth.service import AuthService
from vigil.core.auth.tokens import SERVICE_PREFIX, InvalidToken
from vigil.core.db import Database


def bearer_resolver(auth: AuthService, db: Database) -> Resolver:
    async def resolve(request: Request) -> Identity | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("send the token as 'Authorization: Bearer <token>'")
        try:
            if token.startswith(SERVICE_PREFIX):
                # A database lookup: off the event loop.
                identity: Identity = await run_in_threadpool(
                    auth.identity_of_service_token, db, token
                )
                return identity
            return auth.identity_of_access_token(token)
        except InvalidToken as exc:
            raise Unauthenticated(str(exc)) from None

    return resolve


def install_auth(app: FastAPI, auth: AuthService, db: Database) -> IdentityResolver:
    resolver = IdentityResolver()
    resolver.add(bearer_resolver(auth, db))
    app.state.auth = auth
    app.state.identity_resolver = resolver
    app.include_router(router)
    return resolver


def declare_docs_public(app: FastAPI) -> None:
    """The schema and the docs pages are public (they describe the API, not its data)."""
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    for route in app.router.routes:
        if getattr(route, "path", None) in docs:
            declare(route)


def document_policies(app: FastAPI) -> None:
    """Adds the 401 and 403 answers to the OpenAPI description of every route that needs a
    permission (they come from the policy dependency, not from the route itself)."""
    problem = {"application/problem+json": {"schema": {"type": "object"}}}
    answers = {
        401: "Not signed in, or the credentials are not valid.",
        403: "Signed in, without the permission this needs.",
    }
    for found in route_policies(app.router.routes):
        if not any(not p.is_public for p in found.policies):
            continue
        for target in {id(found.route): found.route, id(found.original): found.original}.values():
            responses = getattr(target, "responses", None)
            if not isinstance(responses, dict):
                continue
            for status, description in answers.items():
                responses.setdefault(status, {"description": description, "content": problem})
