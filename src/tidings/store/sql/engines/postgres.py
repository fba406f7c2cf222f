"""PostgreSQL, the scale-out engine: one pool for reads and writes, replicas for reads,
every node writing to the same primary.

A write waits for a lock another session holds (the stream counter's row that every
write transaction locks first, or any other row or table) at most
`write_lock_timeout` seconds: PostgreSQL's `lock_timeout`, set once per connection
(no statement per transaction), then SQLSTATE 55P03 -> WriteLockTimeout's answer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.store.sql.engines.base import (
    WRITE_LOCK_TIMEOUT_S,
    BatchRunner,
    DriverSqlRunner,
    Engine,
    numbered,
    timestamp_processor,
    timestamp_reader,
)
from tidings.store.sql.engines.dumps import (
    FACT_QUERIES,
    KEY_ID_QUERY,
    DumpCheck,
    DumpFacts,
    DumpFailed,
    Progress,
)
from tidings.store.sql.schema import counters

# The key of the advisory lock that nodes starting together migrate under.
_MIGRATION_LOCK = 7135024051
# SQLSTATE lock_not_available: `lock_timeout` passed while another session held a lock.
_LOCK_NOT_AVAILABLE = "55P03"


def _with_sqlstate(exc: BaseException) -> BaseException | None:
    """asyncpg's error (or the wrapper that copies its SQLSTATE) under SQLAlchemy's
    wrappers (None: none)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(getattr(seen, "sqlstate", None), str):
            return seen
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return None


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(_with_sqlstate(exc), "sqlstate", None)


class PostgresEngine(Engine):
    name = "postgresql"
    search_index = "postgres"  # the search index adapter (search/postgres.py)
    database_size_sql = "SELECT pg_database_size(current_database())"

    @classmethod
    def handles(cls, url: str) -> bool:
        return url.startswith(("postgresql:", "postgres:", "postgresql+"))

    @classmethod
    def async_url(cls, url: str) -> str:
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    @classmethod
    def explain(cls, exc: BaseException) -> str | None:
        error = _with_sqlstate(exc)
        if _sqlstate(exc) != "3D000":  # invalid_catalog_name
            return None
        return (
            f"PostgreSQL: {error}: create it first (createdb, or CREATE DATABASE)"
            " or fix database_url"
        )

    @classmethod
    def migration_lock(cls, connection: Connection) -> None:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    @classmethod
    def create(
        cls,
        url: str,
        *,
        pool_size: int,
        synchronous: str,
        write_lock_timeout: float = WRITE_LOCK_TIMEOUT_S,
    ) -> PostgresEngine:
        engine = cls._pool(url, pool_size, write_lock_timeout)
        return cls(engine, engine, write_lock_timeout=write_lock_timeout)

    @classmethod
    def _pool(cls, url: str, pool_size: int, write_lock_timeout: float) -> AsyncEngine:
        return create_async_engine(
            cls.async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # a connection lost with the server is replaced, not reused
            pool_recycle=1800,
            connect_args={
                "timeout": 5,
                "command_timeout": 30,
                "server_settings": {"lock_timeout": f"{_millis(write_lock_timeout)}ms"},
            },
            hide_parameters=True,  # bodies, hashes: never in an error text or a log
        )

    @contextlib.asynccontextmanager
    async def write_transaction(self, deadline: float) -> AsyncIterator[AsyncConnection]:
        async with self.write.connect() as conn, conn.begin():
            left = deadline - asyncio.get_running_loop().time()
            if left < 0.9 * self.write_lock_timeout:
                # Waited long for the slot (the writer ahead waited for a lock): what is
                # left of this write's bound, for this transaction only (one statement
                # more, only then); past it, a lock free now is still taken.
                await conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_millis(left)}ms'")
            yield conn

    async def lock_writes(self, conn: AsyncConnection) -> None:
        """Each write transaction first locks the stream counter row, so positions and
        seqs commit in order across nodes and no two writers can deadlock over rows
        taken in different orders."""
        await conn.execute(
            select(counters.c.value).where(counters.c.name == "events").with_for_update()
        )

    def is_outage(self, exc: BaseException) -> bool:
        return self.is_lock_timeout(exc) or super().is_outage(exc)

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return super().is_lock_timeout(exc) or _sqlstate(exc) == _LOCK_NOT_AVAILABLE

    def send_batch(self, conn: AsyncConnection) -> BatchRunner:
        """asyncpg numbers its placeholders ($1, $2, …); it binds datetimes itself."""
        dialect = conn.dialect
        return DriverSqlRunner(
            conn, numbered, timestamp_processor(dialect), timestamp_reader(dialect)
        )

    # --- backups -------------------------------------------------------------------
    dump_name = "tidings.pgdump"

    @classmethod
    async def dump(cls, url: str, dest: Path, progress: Progress) -> DumpFacts:
        """pg_dump in its custom format (compressed, restored by pg_restore, tables in
        parallel with --jobs) on a snapshot this connection exports from a repeatable-
        read transaction: the facts are read in the very snapshot pg_dump copies. The
        progress is the dump's size against the database's (an estimate: the dump is
        compressed). Large sites back up with pgBackRest instead (docs/operations.md)."""
        tool = _tool("pg_dump")
        conn = await _connect(url)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                try:
                    values = {n: await conn.fetchval(q) for n, q in FACT_QUERIES.items()}
                    keys = [str(r[0]) for r in await conn.fetch(KEY_ID_QUERY)]
                except Exception as exc:
                    raise DumpFailed(f"not a Tidings database: {exc}") from exc
                facts = DumpFacts.of(values, keys)
                size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
                await _run(
                    [tool, "--format=custom", f"--snapshot={snapshot}", "--file", str(dest)],
                    url,
                    watch=dest,
                    total=size,
                    progress=progress,
                )
        finally:
            await conn.close()
        return facts

    @classmethod
    async def check_dump(cls, path: Path) -> DumpCheck:
        """`pg_restore --list`: the archive's table of contents reads back whole."""
        out = await _run([_tool("pg_restore"), "--list", str(path)], None)
        entries = [line for line in out.splitlines() if line and not line.startswith(";")]
        data = [line for line in entries if " TABLE DATA " in line]
        missing = [
            t
            for t in ("events", "messages", "alembic_version", "audit_log")
            if not any(line.split()[-2:-1] == [t] for line in data)
        ]
        if missing:
            raise DumpFailed(f"pg_restore --list: no data of {', '.join(missing)}")
        return DumpCheck(
            f"pg_dump custom-format archive, pg_restore --list ok: {len(entries)} entries, "
            f"{len(data)} tables with data"
        )

    @classmethod
    async def contents(cls, url: str) -> str | None:
        conn = await _connect(url)
        try:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
            name = await conn.fetchval("SELECT current_database()")
        finally:
            await conn.close()
        if not tables:
            return None
        return f"the database {name} holds {len(tables)} tables"

    @classmethod
    async def load_dump(cls, url: str, path: Path, *, replace: bool, progress: Progress) -> None:
        """pg_restore in ONE transaction (all or nothing), without the source's owners
        and grants (the target's user owns what it restores). `replace` first drops the
        tables of the current schema."""
        tool = _tool("pg_restore")
        if replace:
            conn = await _connect(url)
            try:
                async with conn.transaction():
                    for row in await conn.fetch(
                        "SELECT quote_ident(table_name) FROM information_schema.tables "
                        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                    ):
                        await conn.execute(f"DROP TABLE IF EXISTS {row[0]} CASCADE")
            finally:
                await conn.close()
        progress(0, 1)
        await _run(
            [
                tool,
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                *(["--clean", "--if-exists"] if replace else []),  # functions, triggers too
                str(path),
            ],
            url,
        )
        progress(1, 1)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DumpFailed(
            f"{name} is not installed: install PostgreSQL's client tools (Debian: "
            "postgresql-client), of the server's major version or newer"
        )
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for the tools, and the environment with the password (never on the
    command line, where `ps` shows it)."""
    parsed = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


async def _connect(url: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]

    uri, env = _libpq(url)
    try:
        return await asyncpg.connect(uri, password=env.get("PGPASSWORD"), timeout=10)
    except Exception as exc:
        raise DumpFailed(f"PostgreSQL: cannot connect: {exc}") from exc


async def _run(
    argv: list[str],
    url: str | None,
    *,
    watch: Path | None = None,
    total: int = 0,
    progress: Progress | None = None,
) -> str:
    """Run a client tool (on `url`'s database); its stdout, or DumpFailed with the
    first line of its stderr."""
    env = dict(os.environ)
    if url is not None:
        uri, extra = _libpq(url)
        argv = [*argv, f"--dbname={uri}"]
        env.update(extra)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    waiting = asyncio.ensure_future(proc.communicate())
    while watch is not None and progress is not None and not waiting.done():
        with contextlib.suppress(OSError):
            progress(os.stat(watch).st_size, total)
        await asyncio.wait([waiting], timeout=0.2)
    out, err = await waiting
    if proc.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        tool = Path(argv[0]).name
        first = lines[0].removeprefix(f"{tool}: ") if lines else "failed"
        raise DumpFailed(f"{tool}: {first}")
    if watch is not None and progress is not None:
        progress(total, total)
    return out.decode(errors="replace")


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))  # 0 would mean no timeout at all


async def execute_outside_transaction(url: str, statement: str) -> None:
    """Run one statement that PostgreSQL refuses inside a transaction (CREATE DATABASE,
    DROP DATABASE) on the server of `url` (a plain postgresql:// URL, as libpq takes
    it): for tools that make throw-away databases (`tidings bench search`)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
