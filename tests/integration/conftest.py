"""Fixtures shared by the integration tests."""

from tests.support.redis_server import (  # noqa: F401  (registers the fixtures)
    private_redis,
    shared_redis,
)
