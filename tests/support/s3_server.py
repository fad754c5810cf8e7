"""A local S3-compatible server for the backup tests: moto's (PyPI moto[server]) on a free
loopback port, and a client of it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.support.redis_server import free_port

ACCESS_KEY, SECRET_KEY = "testing", "t3st"


@contextmanager
def moto_s3(log_dir: Path) -> Iterator[str]:
    """Runs moto_server on 127.0.0.1 and a free port; yields its endpoint URL."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    with (log_dir / "moto.log").open("w") as log:
        process = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(endpoint, timeout=1)
                    break
                except httpx.HTTPError:
                    assert process.poll() is None, "moto_server exited"
                    assert time.monotonic() < deadline, "moto_server did not start"
                    time.sleep(0.2)
            yield endpoint
        finally:
            process.terminate()
            process.wait(timeout=10)


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))
