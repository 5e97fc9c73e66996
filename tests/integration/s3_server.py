"""A real S3-compatible server for the shared-storage tests: moto's standalone server on
loopback (``moto_server -H 127.0.0.1 -p PORT``), one per session, and a fresh bucket per test
with the standard AWS environment pointing at it (offered by conftest.py).

When the server cannot start the tests are skipped with the reason, or fail under CI=true.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"  # moto refuses a bucket's LocationConstraint elsewhere (STACK_NOTES)
KEY = "testing-key"
SECRET = "testing-secret"  # noqa: S105 - moto accepts any credentials
START_TIMEOUT_S = 60.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"S3 test server unavailable: {reason}")
    pytest.skip(f"S3 test server unavailable: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_server() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def env(self) -> dict[str, str]:
        """The AWS environment a process needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
        )


@dataclass(frozen=True)
class S3Bucket:
    server: S3Server
    name: str

    def url(self, prefix: str) -> str:
        return f"s3://{self.name}/{prefix.strip('/')}"

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix``, read with boto3 (not through the code under test)."""
        pages = self.server.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in pages.paginate(Bucket=self.name, Prefix=prefix)
            for item in page.get("Contents", [])
        )

    def get(self, key: str) -> bytes:
        return bytes(self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        self.server.client().put_object(Bucket=self.name, Key=key, Body=data)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> str | None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"moto_server exited with {proc.returncode}: {log.read_text()[-500:]}"
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback http
                return None
        except urllib.error.HTTPError:
            return None  # it answers (an error status is still an answer)
        except OSError:
            time.sleep(0.2)
    return f"moto_server did not answer at {url} within {START_TIMEOUT_S:.0f} s"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port for the whole session; stopped at the end."""
    binary = _moto_server()
    if binary is None:
        _unavailable("moto_server not installed (pip install 'moto[server]')")
        raise AssertionError("unreachable")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        problem = _wait_ready(proc, endpoint, log)
        if problem is not None:
            _unavailable(problem)
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A fresh bucket on the session's server, and the AWS environment of this test set to it
    (the stores find the endpoint and credentials the way they do in production)."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    name = f"engine-test-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    yield S3Bucket(s3_server, name)
