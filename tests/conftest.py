"""Shared fixtures: a real server process on a free port (`live_server`), and the
services in-process on a real SQLite file (`container`)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

ADMIN_PASSWORD = "owner-password-for-tests"
ARTIFACTS = Path(os.environ.get("TIDINGS_TEST_ARTIFACTS", "test-artifacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real `tidings serve` process, on loopback, with its own data directory."""

    admin_username = "admin"
    admin_password = ADMIN_PASSWORD

    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/api/v1/ws"
        self.extra_env = env or {}
        self.log_path = data_dir.parent / f"server-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        env = {
            **os.environ,
            "TIDINGS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "TIDINGS_LOG_LEVEL": "info",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tidings",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not answer /healthz in {timeout}s:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> None:
        """A graceful restart: SIGTERM (drain), then start again on the same port."""
        self.stop(signal.SIGTERM)
        self.start()

    def kill(self) -> None:
        """A crash: SIGKILL, then start again on the same port and data directory."""
        self.stop(signal.SIGKILL)
        self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def login(self, username: str | None = None, password: str | None = None) -> str:
        r = httpx.post(
            self.url + "/api/v1/auth/login",
            json={
                "username": username or self.admin_username,
                "password": password or self.admin_password,
            },
        )
        r.raise_for_status()
        return str(r.json()["token"])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[object]:
    """Every service, in-process, on a real SQLite file (migrated like production)."""
    from tidings.app.container import Container
    from tidings.app.settings import Settings
    from tidings.store import migrations

    settings = Settings(data_dir=tmp_path / "data", edit_window_seconds=60)
    settings.data_dir.mkdir(parents=True)
    await asyncio.to_thread(migrations.upgrade, settings.db_url)
    c = Container(settings)
    try:
        yield c
    finally:
        await c.close()
