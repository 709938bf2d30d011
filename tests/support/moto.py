"""A real S3 endpoint for tests: moto's server in its own process on a free loopback port.

A subprocess rather than ``ThreadedMotoServer`` so that the server neither shares the test
process's GIL and warning filters nor dies with a test's thread; a LiveServer can reach it too.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from mediagate.storage.s3 import S3Storage
from tests.conftest import free_port

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"


@dataclass
class MotoServer:
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited: {self.log_path.read_text()[-3000:]}")
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"moto did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def env(self, bucket: str, *, prefix: str = "") -> dict[str, str]:
        """MEDIAGATE_* variables that point a mediagate process at this server."""
        return {
            "MEDIAGATE_STORAGE": "s3",
            "MEDIAGATE_S3_ENDPOINT_URL": self.url,
            "MEDIAGATE_S3_BUCKET": bucket,
            "MEDIAGATE_S3_REGION": REGION,
            "MEDIAGATE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "MEDIAGATE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "MEDIAGATE_S3_PREFIX": prefix,
        }


def new_bucket_name() -> str:
    return f"t{uuid.uuid4().hex[:20]}"


def s3_client(moto: MotoServer) -> Any:
    """A plain boto3 client on the server, for looking behind the backend's back."""
    return boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )


def make_s3_storage(
    moto: MotoServer,
    *,
    bucket: str | None = None,
    prefix: str = "",
    part_size: int = 5 * 1024 * 1024,
    create_bucket: bool = True,
) -> S3Storage:
    """An S3Storage on a fresh bucket (created on first use) with a small multipart threshold."""
    return S3Storage(
        s3_client(moto),
        bucket or new_bucket_name(),
        prefix=prefix,
        region=REGION,
        create_bucket=create_bucket,
        part_size=part_size,
        multipart_threshold=part_size,
    )
