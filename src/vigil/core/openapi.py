"""The OpenAPI document says what clients really get: every error answer (4xx, 5xx) is an
RFC 9457 problem document, ``application/problem+json`` (see ``core.problems``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status", "detail"],
}
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
#: Answers any operation may give, whatever it documents itself.
COMMON = {
    "404": "Nothing found for what the request names (or no such path).",
    "422": "Invalid input; the problem lists each field.",
    "429": "Too many requests (rate limit); see Retry-After.",
    "500": "Unexpected error; logged with the request id.",
}


def problem_errors(app: FastAPI) -> None:
    """Replaces ``app.openapi`` so that the schema documents problem+json error answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in COMMON.items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = PROBLEM_CONTENT
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
