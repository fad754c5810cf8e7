"""Accounts, roles, tokens and the audit log (issue #7). Routes declare their policy with
:mod:`vigil.core.auth.policy` (``public``, ``require(permission)``)."""

from vigil.core.auth.identity import Identity
from vigil.core.auth.permissions import Role
from vigil.core.auth.policy import PUBLIC, Policy, declare, public, require

__all__ = ["PUBLIC", "Identity", "Policy", "Role", "declare", "public", "require"]
