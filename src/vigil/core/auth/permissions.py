"""Roles and the named permissions they grant. Routes ask for a permission, never a role:
``Depends(require("markets.write"))``. A module's permissions are listed here too (core
names them, it does not import the module)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, user management, the audit log
    OPERATOR = "operator"  # changes devices, rules and sources; runs on-demand actions
    VIEWER = "viewer"  # reads operational data
    USER = "user"  # an ordinary user of the reading app: their own data only


#: Every permission a route may require, with what it allows.
PERMISSIONS: dict[str, str] = {
    "account": "see and change one's own account (profile, password, logout)",
    "ops.read": "read operational data that is not public",
    "markets.write": "add assets, change alert rules and configured sources",
    "network.write": "add, change and import network devices",
    "network.delete": "delete network devices",
    "reading.own": "keep one's own books, lists and reading sessions",
    "users.manage": "list users, change their role, deactivate them",
    "tokens.manage": "create, list and revoke service tokens",
    "audit.read": "read the audit log",
    # For a service token (Alertmanager's webhook); of the roles, only Admin holds it.
    "alerts.receive": "deliver Alertmanager notifications (POST /api/v1/alerts/alertmanager)",
}

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(PERMISSIONS),
    Role.OPERATOR: frozenset({"account", "ops.read", "markets.write", "network.write"}),
    Role.VIEWER: frozenset({"account", "ops.read"}),
    Role.USER: frozenset({"account", "reading.own"}),
}


def permissions_of(role: Role | str) -> frozenset[str]:
    return ROLE_PERMISSIONS[Role(role)]


def check_permission(name: str) -> str:
    if name not in PERMISSIONS:
        raise ValueError(f"unknown permission {name!r}; known: {', '.join(sorted(PERMISSIONS))}")
    return name
