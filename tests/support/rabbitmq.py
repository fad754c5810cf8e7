"""A virtual host of a test's own on the machine's RabbitMQ (port 5672): nothing another run
left in its queues reaches the test, and it is deleted afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import service_unavailable


@pytest.fixture
def rabbitmq_url() -> Iterator[str]:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        service_unavailable(f"RabbitMQ unreachable at 127.0.0.1:5672: {exc}")
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        service_unavailable("rabbitmqctl is not installed (needed for a private vhost)")
    vhost = f"vigil_test_{uuid.uuid4().hex[:8]}"

    def rabbitmqctl(*args: str) -> None:
        subprocess.run([str(ctl), *args], check=True, capture_output=True, timeout=30)

    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)
