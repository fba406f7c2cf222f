"""Shared fixtures.

- `server`: the application of `tidings serve`, in this test's event loop (`AppServer`):
  REST through `httpx.ASGITransport`, the WebSocket through uvicorn on a loopback port.
  On SQLite and (parametrized) on PostgreSQL + Redis. Most API tests use it.
- `world`: users, tokens and conversations on a server in a few lines (`World`).
- `live_server`: the real `tidings serve` process, for what needs one (kill -9, restart,
  TLS, the CLI, clusters, the browser).
- `container`: the services in-process on a real database, without the transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from tests import processes
from tests.blob_servers import SeaweedFS, blob_backends, blob_settings_for, require_weed
from tests.helpers import TRANSPORTS, Api, Ws, http_client, make_user
from tidings.app.container import Container
from tidings.app.http_protocol import GuardedHttpProtocol
from tidings.app.server import bootstrap, build, uvicorn_config
from tidings.app.settings import Settings
from tidings.core.clock import Clock, IdGenerator

ADMIN_PASSWORD = "owner-password-for-tests"
ARTIFACTS = Path(os.environ.get("TIDINGS_TEST_ARTIFACTS", "test-artifacts"))
_STARTED = time.time()
IN_PROCESS_LOG = ARTIFACTS / f"in-process-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"


def pytest_configure(config: pytest.Config) -> None:
    """In-process servers log like a real one (JSON lines, secrets dropped), to a file of
    this test process beside the real servers' logs: the secret scan reads them all."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_in_process()


def pytest_collection_finish(session: pytest.Session) -> None:
    """After collection the heap holds every test module, fixture and library: tens of
    thousands of objects that live until the end. Frozen out of the collector's sight
    (gc.freeze) and with full collections rarer, a test process no longer walks them
    every few hundred allocations: about a quarter less CPU for the in-process tests
    (tests/integration/services: 70 s -> 52 s user time). Only cyclic garbage waits
    longer; objects are still freed when their last reference goes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 50)


_IN_PROCESS_STREAM: list[Any] = []


def log_in_process() -> None:
    """Logging of this test process to IN_PROCESS_LOG (again: a command run in-process,
    such as the CLI's, configures logging for itself)."""
    from tidings.app.logging import configure_logging

    if not _IN_PROCESS_STREAM:
        _IN_PROCESS_STREAM.append(IN_PROCESS_LOG.open("a", buffering=1))
    configure_logging("info", "json", stream=_IN_PROCESS_STREAM[0])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After a test run: no server log of the run may hold a secret (issue 5), neither a
    real server's (kept in the artifacts directory) nor the in-process servers'. The run
    fails if one holds a password, a token, or a TOTP secret."""
    from tests.e2e.secret_scan import scan

    if not ARTIFACTS.is_dir():
        return
    logs = [p for p in ARTIFACTS.glob("*.log") if p.stat().st_mtime >= _STARTED - 1]
    found = scan(logs)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "SECRETS IN SERVER LOGS of this run", red=True)
            for line in found[:20]:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real `tidings serve` process, on loopback, with its own data directory."""

    admin_username = "admin"
    admin_password = ADMIN_PASSWORD

    def __init__(
        self,
        data_dir: Path,
        port: int,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.preexec = preexec  # run in the server's process before it starts (rlimits)
        self.started_once = False
        self.port_retries = 0
        self.set_port(port)
        self.extra_env = env or {}
        self.log_path = data_dir.parent / f"server-{port}.log"
        self.proc: subprocess.Popen[bytes] | processes.Process | None = None

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
        args = ["serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            if self.preexec is None:  # forked by the zygote, which imported Tidings once
                self.proc = processes.spawn(args, env, stdout=log)
            else:  # limits set before the interpreter starts
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "tidings", *args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=self.preexec,
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
SHARED_TEST_KEY = f"the server key of test run {RUN_ID} on PostgreSQL"


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


# What a database's schema is: tables, columns, indexes, constraints, triggers (and
# whether they are enabled), functions, sequences (with their values), views, schemas.
# Two databases with the same fingerprint differ only in their rows.
_FINGERPRINT = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT 'c:' || table_schema || '.' || table_name || '.' || column_name || ':' || data_type
         || ':' || coalesce(column_default, '') || is_nullable AS x
    FROM information_schema.columns
   WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'i:' || schemaname || indexdef FROM pg_indexes
   WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'k:' || conrelid::regclass::text || conname || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace,
                                                  'information_schema'::regnamespace)
  UNION ALL SELECT 't:' || tgrelid::regclass::text || tgname || tgenabled::text
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'f:' || proname || md5(prosrc) FROM pg_proc
   WHERE pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL SELECT 's:' || schemaname || sequencename || coalesce(last_value::text, '')
    FROM pg_sequences
  UNION ALL SELECT 'v:' || schemaname || viewname FROM pg_views
   WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'n:' || nspname FROM pg_namespace
  UNION ALL SELECT 'e:' || extname || extversion FROM pg_extension
) s
"""


class PgDatabases:
    """The test databases of this test process: copies of the template, each used by
    one test at a time and then emptied for the next, instead of a CREATE DATABASE
    (a third of a second, the template's every page written through the WAL) and a
    DROP for every test.

    Emptying is exact: the other connections to it are terminated, every table's rows
    deleted (triggers off, the audit log's append-only one too) and the template's own
    rows put back. A database whose schema a test changed (a downgrade, a disabled
    trigger, a sequence moved) no longer has the template's fingerprint: it is dropped
    and a fresh copy made."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.free: list[str] = []
        self.made: set[str] = set()
        self.fingerprint, self.seed = self._run(self._read_template())

    @staticmethod
    def _run(coro: Any) -> Any:
        with ThreadPoolExecutor(1) as pool:  # never inside the test's own event loop
            return pool.submit(asyncio.run, coro).result()

    async def _read_template(self) -> tuple[str, dict[str, tuple[list[str], list[Any]]]]:
        import asyncpg

        conn = await asyncpg.connect(_pg_url(self.template))
        try:
            fingerprint = str(await conn.fetchval(_FINGERPRINT))
            seed: dict[str, tuple[list[str], list[Any]]] = {}
            for (table,) in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ):
                rows = await conn.fetch(f'SELECT * FROM "{table}"')
                seed[table] = (list(rows[0].keys()) if rows else [], [tuple(r) for r in rows])
            return fingerprint, seed
        finally:
            await conn.close()

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"tidings_t_{uuid.uuid4().hex[:12]}"
        _pg(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        self.made.add(name)
        return name

    def give_back(self, name: str) -> None:
        if self._run(self._empty(name)):
            self.free.append(name)
        else:
            self.drop(name)

    def drop(self, name: str) -> None:
        self.made.discard(name)
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    async def _empty(self, name: str) -> bool:
        import asyncpg

        try:
            conn = await asyncpg.connect(_pg_url(name))
        except (OSError, asyncpg.PostgresError):
            return False  # dropped or broken by the test: a fresh copy next time
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await conn.execute("SELECT pg_advisory_unlock_all()")
            if await conn.fetchval(_FINGERPRINT) != self.fingerprint:
                return False
            if await conn.fetchval("SELECT count(*) FROM pg_prepared_xacts"):
                return False
            async with conn.transaction():
                await conn.execute("SET LOCAL session_replication_role = replica")
                for table, (columns, rows) in self.seed.items():
                    await conn.execute(f'DELETE FROM "{table}"')
                    if rows:
                        await conn.copy_records_to_table(table, records=rows, columns=columns)
            return True
        finally:
            await conn.close()

    def close(self) -> None:
        for name in list(self.made):
            self.drop(name)


@pytest.fixture(scope="session")
def pg_databases(pg_template: str) -> Iterator[PgDatabases]:
    databases = PgDatabases(pg_template)
    try:
        yield databases
    finally:
        databases.close()


@dataclass
class Backend:
    """Where a test's server keeps its state: the embedded default, or PostgreSQL and
    Redis (a fresh database and key prefix for each test)."""

    name: str
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "tidings"

    @property
    def secret_keys(self) -> list[str]:
        """Nodes on one PostgreSQL database share their server key (each would make its
        own key file otherwise); on SQLite the data directory's key file serves."""
        return [] if self.database_url is None else [SHARED_TEST_KEY]

    @property
    def env(self) -> dict[str, str]:
        if self.database_url is None:
            return {}
        env = {
            "TIDINGS_DATABASE_URL": self.database_url,
            "TIDINGS_REDIS_PREFIX": self.redis_prefix,
            "TIDINGS_SECRET_KEYS": ",".join(self.secret_keys),
        }
        if self.redis_url:
            env["TIDINGS_REDIS_URL"] = self.redis_url
        return env


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    require("Redis", REDIS_URL)
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    name = databases.take()
    prefix = f"tidings-test-{uuid.uuid4().hex[:12]}"
    try:
        yield Backend("postgres", _pg_url(name), REDIS_URL, prefix)
    finally:
        databases.give_back(name)
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
def live_server(tmp_path: Path, backend: Backend, sqlite_template: Path) -> Iterator[LiveServer]:
    """The real server process, on SQLite and (parametrized) on PostgreSQL + Redis, on a
    copy of the migrated database (a first start's migrations: tests/e2e/test_cli.py)."""
    data = tmp_path / "data"
    if backend.database_url is None:
        data.mkdir()
        shutil.copyfile(sqlite_template, data / "tidings.db")
    server = LiveServer(data, free_port(), env=backend.env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """SeaweedFS's S3 gateway on loopback, one per test process (tests/blob_servers.py:
    `blob_backends()`, `blob_settings()`, `blob_store_for()` run tests on it)."""
    require_weed()
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # not *.log: the secret scan reads Tidings' logs, this is SeaweedFS's own
        (ARTIFACTS / f"seaweedfs-{os.getpid()}.txt").write_text(server.logs()[-200_000:])


@pytest.fixture
def container_settings() -> dict[str, object]:
    """Settings of the `container` fixture beyond the test defaults: a test module
    overrides this fixture to run its services with other limits."""
    return {}


@pytest.fixture
def container_clock() -> Clock | None:
    """The `container` fixture's clock (None: the real one); a test module overrides
    this fixture with a clock it moves."""
    return None


@pytest.fixture
async def container(
    tmp_path: Path,
    backend: Backend,
    container_settings: dict[str, object],
    container_clock: Clock | None,
    sqlite_template: Path,
) -> AsyncIterator[object]:
    """Every service, in-process, on a real SQLite file or (parametrized) a fresh
    PostgreSQL database, migrated like production (a copy of the migrated template: the
    migrations themselves are tested in tests/integration/store). The bus is the
    in-process one."""
    from tidings.app.container import Container
    from tidings.app.settings import Settings
    from tidings.services.passwords import Passwords

    settings = Settings.model_validate(
        {
            "data_dir": tmp_path / "data",
            "edit_window_seconds": 60,
            "database_url": backend.database_url,
            **container_settings,
        }
    )
    settings.data_dir.mkdir(parents=True)
    if backend.database_url is None:
        shutil.copyfile(sqlite_template, settings.data_dir / "tidings.db")
    # argon2id cheaper than the settings allow: tests hash hundreds of passwords
    c = Container(
        settings,
        clock=container_clock,
        passwords=Passwords(time_cost=1, memory_kib=8, parallelism=1),
    )
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test process; each in-process server gets a copy."""
    from tidings.store import migrations

    path = tmp_path_factory.mktemp("sqlite-template") / "tidings.db"
    with ThreadPoolExecutor(1) as pool:  # Alembic's env runs its own event loop
        pool.submit(migrations.upgrade, f"sqlite:///{path}").result()
    return path


def settings_from_env(env: dict[str, str]) -> dict[str, str]:
    """`TIDINGS_AUTH_TIMEOUT_SECONDS=0.5` -> `auth_timeout_seconds="0.5"`: the settings a
    real server would read from its environment."""
    return {k.removeprefix("TIDINGS_").lower(): v for k, v in env.items()}


class _InProcessUvicorn(uvicorn.Server):
    """uvicorn inside pytest: the test process keeps its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AppServer:
    """The application of `tidings serve` (`app.server.build`, served by uvicorn with the
    same configuration, `app.server.uvicorn_config`), in the test's own event loop.

    REST from the test helpers (`tests.helpers.Api`, `login`, `http_client`) goes
    through `httpx.ASGITransport` straight into the application, inside uvicorn's own
    proxy-headers middleware; the WebSocket, the SDK and any other client reach the
    same application over a loopback socket that uvicorn serves, so the gateway runs on
    uvicorn's protocol (`app/ws_protocol.py`) as in production. The container gets
    `clock` and `ids` when given. Like `LiveServer` it has `url`, `ws_url` and the
    owner's login; unlike it, it cannot be killed (those tests keep the real process)."""

    admin_username = "admin"
    admin_password = ADMIN_PASSWORD

    def __init__(
        self,
        data_dir: Path,
        backend: Backend,
        *,
        sqlite_template: Path | None = None,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        **settings: object,
    ) -> None:
        self.data_dir = data_dir
        self.backend = backend
        self.sqlite_template = sqlite_template
        self.clock = clock
        self.ids = ids
        self.overrides = settings
        self.url = self.ws_url = ""
        self._log_from = 0
        self._uvicorn: _InProcessUvicorn | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from tidings.store import migrations

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_from = IN_PROCESS_LOG.stat().st_size if IN_PROCESS_LOG.exists() else 0
        backend = self.backend
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted sockets only when their
        # protocol says TCP, and without it every response waits for a delayed ACK (40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        settings = Settings(
            data_dir=self.data_dir,
            port=port,
            admin_password=ADMIN_PASSWORD,
            argon2_time_cost=1,  # cheap argon2id: tests log in hundreds of times
            argon2_memory_kib=1024,
            database_url=backend.database_url,
            redis_url=backend.redis_url,
            redis_prefix=backend.redis_prefix,
            **{"secret_keys": backend.secret_keys, **self.overrides},  # type: ignore[arg-type]
        )  # the overrides are checked by pydantic
        if settings.database_url is None and not (self.data_dir / "tidings.db").exists():
            if self.sqlite_template is not None:
                shutil.copyfile(self.sqlite_template, self.data_dir / "tidings.db")
            else:
                await asyncio.to_thread(migrations.upgrade, settings.db_url)
        self.settings = settings
        self.container = Container(settings, clock=self.clock, ids=self.ids)
        app, _container, _hub, gateway = build(settings, self.container)
        self.gateway = gateway
        config = uvicorn_config(app, settings, gateway)
        http = config.http
        assert isinstance(http, type) and issubclass(http, GuardedHttpProtocol)
        self.guard = http.guard  # the server's connection counts
        self._uvicorn = server = _InProcessUvicorn(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                sock.close()
                self._task.result()  # raises what stopped it
                raise RuntimeError("the in-process server stopped while starting")
            await asyncio.sleep(0.002)
        await bootstrap(self.container)
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/api/v1/ws"
        # What uvicorn serves HTTP with: the app inside its proxy-headers middleware.
        TRANSPORTS[self.url] = httpx.ASGITransport(app=config.loaded_app)

    async def stop(self) -> None:
        """uvicorn's own shutdown: WebSockets closed (1012), then the app's shutdown."""
        TRANSPORTS.pop(self.url, None)
        task, self._task = self._task, None
        if task is None or self._uvicorn is None:
            return
        self._uvicorn.should_exit = True
        await task

    async def __aenter__(self) -> AppServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def search_indexed(self, timeout: float = 15) -> None:
        """The search consumer is at the stream's head and no search.index job is pending
        or running: what was sent is searchable. `jobs.drain()` alone can return while
        the server's own worker still runs an index job it claimed first."""
        jobs = self.container.services.jobs
        async with asyncio.timeout(timeout):
            while True:
                await jobs.drain()
                async with self.container.store.read() as tx:
                    head = await tx.head_position()
                    cursors = await tx.job_cursors()
                    counts = await tx.job_counts()
                busy = any(
                    n
                    for (queue, state), n in counts.items()
                    if queue == "search" and state in ("pending", "running")
                )
                if not busy and cursors.get("search", head) >= head:
                    return
                await asyncio.sleep(0.05)

    async def run_due_jobs(self, timeout: float = 20) -> None:
        """Run every job due now (here, beside the server's own worker) until none is
        due, queued or running; jobs due later (a digest's delay, a scheduled message's
        time on the test's clock) wait."""
        jobs = self.container.services.jobs
        async with asyncio.timeout(timeout):
            while True:
                await jobs.drain()
                stats = await jobs.stats(None)
                busy = sum(
                    n
                    for states in stats.by_state.values()
                    for state, n in states.items()
                    if state in ("queued", "running")
                )
                due = await jobs.next_due_in()
                if not busy and (due is None or due > 0):
                    return
                await asyncio.sleep(0.02)

    async def counts_nothing(self, timeout: float = 5) -> None:
        """Once every socket of a test closed: neither the connection guard nor the
        gateway counts any (the counts do not leak)."""

        def counted() -> bool:
            by_address = {} if self.gateway is None else self.gateway.by_address
            return bool(self.guard.open or self.guard.by_address or by_address)

        async with asyncio.timeout(timeout):
            while counted():  # noqa: ASYNC110 - polls counts the server's protocols keep
                await asyncio.sleep(0.01)

    def logs(self) -> str:
        """What this server logged (the test process's log since this server started)."""
        if not IN_PROCESS_LOG.exists():
            return ""
        with IN_PROCESS_LOG.open("rb") as f:
            f.seek(self._log_from)
            return f.read().decode(errors="replace")

    def client(self, **kw: Any) -> httpx.AsyncClient:
        """An HTTP client of this server, in-process (no socket)."""
        return http_client(self.url, **kw)

    async def login(self, username: str | None = None, password: str | None = None) -> str:
        async with self.client() as c:
            r = await c.post(
                "/api/v1/auth/login",
                json={
                    "username": username or self.admin_username,
                    "password": password or self.admin_password,
                },
            )
        r.raise_for_status()
        return str(r.json()["token"])


MakeServer = Callable[..., contextlib.AbstractAsyncContextManager[AppServer]]


@pytest.fixture
def make_server(tmp_path: Path, backend: Backend, sqlite_template: Path) -> MakeServer:
    """`async with make_server(auth_timeout_seconds=0.5) as server:` an in-process server
    with these settings (and `clock=`, `ids=`), on the test's backend. One at a time:
    they would share the backend's database."""
    made = 0

    @contextlib.asynccontextmanager
    async def make(**settings: Any) -> AsyncIterator[AppServer]:
        nonlocal made
        made += 1
        data = tmp_path / f"data{made}"
        async with AppServer(data, backend, sqlite_template=sqlite_template, **settings) as s:
            yield s

    return make


@pytest.fixture
async def server(make_server: MakeServer) -> AsyncIterator[AppServer]:
    """The application in-process, on SQLite and (parametrized) on PostgreSQL + Redis."""
    async with make_server() as s:
        yield s


class World:
    """Users, their tokens and conversations on a server (in-process or a real process),
    in a few lines; closes every client it made.

        admin = await world.admin()
        ann, ben = await world.users("ann", "ben")
        cid = await world.conversation(ann, ben)            # a group "G" of ann and ben
        ws = await world.ws(ben)
    """

    def __init__(self, server: AppServer | LiveServer) -> None:
        self.server = server
        self._admin: Api | None = None
        self._apis: list[Api] = []
        self._sockets: list[Ws] = []

    async def admin(self) -> Api:
        if self._admin is None:
            from tests.helpers import login

            s = self.server
            self._admin = await login(s.url, s.admin_username, s.admin_password)
            self._apis.append(self._admin)
        return self._admin

    async def user(self, name: str, **kw: Any) -> Api:
        """A new user (`role=`, `display_name=`, `password=` as `make_user`), signed in."""
        api = await make_user(await self.admin(), name, **kw)
        self._apis.append(api)
        return api

    async def users(self, *names: str, **kw: Any) -> list[Api]:
        return [await self.user(n, **kw) for n in names]

    async def conversation(
        self, owner: Api, *members: Api, kind: str = "group", name: str | None = "G"
    ) -> str:
        body: dict[str, Any] = {"kind": kind, "member_ids": [m.id for m in members]}
        if kind != "direct":
            body["name"] = name
        created = await owner.post("/conversations", body, expect=None)
        return str(created["conversation"]["id"])

    async def ws(self, api: Api, since: str | None = None) -> Ws:
        ws = await Ws.connect(self.server.ws_url, api.token or "", since=since)
        self._sockets.append(ws)
        return ws

    async def close(self) -> None:
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for api in self._apis:
            await api.close()


@pytest.fixture
async def world(server: AppServer) -> AsyncIterator[World]:
    w = World(server)
    try:
        yield w
    finally:
        await w.close()


# --- blob stores (issue 15): the files tests run on each ------------------------------
@pytest.fixture(params=blob_backends())
def blob_store_kind(request: pytest.FixtureRequest) -> str:
    """Which blob store a files test's server keeps the bytes in: the data directory,
    or SeaweedFS through its S3 API (tests/blob_servers.py)."""
    return str(request.param)


@pytest.fixture
def blob_settings(blob_store_kind: str, request: pytest.FixtureRequest) -> dict[str, object]:
    """The settings of a server on that blob store ("local": the data directory; "s3":
    a key prefix of the test's own in the session's SeaweedFS)."""
    return blob_settings_for(blob_store_kind, request)
