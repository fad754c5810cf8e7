"""The page envelope every list answer of the API shares: ``items``, ``total``, ``limit``,
``offset`` and ``next_offset`` (None on the last page)."""

from __future__ import annotations

from typing import Any


def next_offset(offset: int, limit: int, total: int) -> int | None:
    return offset + limit if offset + limit < total else None


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": next_offset(offset, limit, total),
    }
