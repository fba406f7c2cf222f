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
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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
        self.started_once = False
        self.port_retries = 0
        self.set_port(port)
        self.extra_env = env or {}
        self.log_path = data_dir.parent / f"server-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def set_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/api/v1/ws"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        env = {
            **os.environ,
            "TIDINGS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "TIDINGS_LOG_LEVEL": "info",
            # Cheap password hashing: tests log in hundreds of times (argon2id still).
            "TIDINGS_ARGON2_TIME_COST": "1",
            "TIDINGS_ARGON2_MEMORY_KIB": "1024",
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
                taken = "address already in use" in self.logs().lower()
                if not self.started_once and taken and self.port_retries < 3:
                    # Another test (another xdist worker) took the free port first.
                    self.port_retries += 1
                    self.log_path.write_text("")
                    self.set_port(free_port())
                    return self.start(timeout)
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    self.started_once = True
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


REQUIRE_SERVICES = os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get("TIDINGS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]


def require(service: str, url: str) -> None:
    """Skip (or, under TIDINGS_REQUIRE_SERVICES=1, fail) when a service is unreachable."""
    parsed = urlsplit(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), 2).close()
    except OSError as exc:
        message = f"{service} is not reachable at {parsed.hostname}:{parsed.port} ({exc})"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)


def _pg(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # never inside the test's own event loop
        pool.submit(asyncio.run, run()).result()


def _pg_url(database: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """One migrated database per test run; each test gets a copy of it."""
    require("PostgreSQL", PG_URL)
    from tidings.store import migrations

    name = f"tidings_tpl_{RUN_ID}"
    _pg(f"CREATE DATABASE {name}")
    try:
        migrations.upgrade(_pg_url(name))
        yield name
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class Backend:
    """Where a test's server keeps its state: the embedded default, or PostgreSQL and
    Redis (a fresh database and key prefix for each test)."""

    name: str
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "tidings"

    @property
    def env(self) -> dict[str, str]:
        if self.database_url is None:
            return {}
        env = {"TIDINGS_DATABASE_URL": self.database_url, "TIDINGS_REDIS_PREFIX": self.redis_prefix}
        if self.redis_url:
            env["TIDINGS_REDIS_URL"] = self.redis_url
        return env


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    require("Redis", REDIS_URL)
    template = request.getfixturevalue("pg_template")
    name = f"tidings_t_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {name} TEMPLATE {template}")
    prefix = f"tidings-test-{name}"
    try:
        yield Backend("postgres", _pg_url(name), REDIS_URL, prefix)
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _redis_clear(prefix)


def _redis_clear(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def live_server(tmp_path: Path, backend: Backend) -> Iterator[LiveServer]:
    """The real server process, on SQLite and (parametrized) on PostgreSQL + Redis."""
    server = LiveServer(tmp_path / "data", free_port(), env=backend.env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())


@pytest.fixture
async def container(tmp_path: Path, backend: Backend) -> AsyncIterator[object]:
    """Every service, in-process, on a real SQLite file or (parametrized) a fresh
    PostgreSQL database, migrated like production. The bus is the in-process one."""
    from tidings.app.container import Container
    from tidings.app.settings import Settings
    from tidings.store import migrations

    settings = Settings(
        data_dir=tmp_path / "data",
        edit_window_seconds=60,
        database_url=backend.database_url,
        argon2_time_cost=1,  # cheap argon2id: tests hash hundreds of passwords
        argon2_memory_kib=1024,
    )
    settings.data_dir.mkdir(parents=True)
    if backend.database_url is None:
        await asyncio.to_thread(migrations.upgrade, settings.db_url)
    c = Container(settings)
    try:
        yield c
    finally:
        await c.close()
