"""Fixtures shared by the integration tests."""

from tests.support.rabbitmq import rabbitmq_url  # noqa: F401  (registers the fixture)
from tests.support.redis_server import (  # noqa: F401  (registers the fixtures)
    private_redis,
    shared_redis,
)
