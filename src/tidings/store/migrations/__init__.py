"""Alembic migrations, written to run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from tidings.store.sql import engines

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head", *, create: bool = True) -> None:
    """Bring the database at `url` to `revision`. With `create` it is made on first
    start; without it (every command but `serve` and `migrate`) a database that is not
    there is refused. Raises UnusableDatabase (one line for the operator) for an
    unsupported URL, a missing database, or a known misconfiguration."""
    engine = engines.engine_class(url)
    missing = None if create else engine.missing(url)
    if missing is not None:
        raise engines.UnusableDatabase(
            f"{missing}: check --data-dir (or database_url); `tidings migrate` creates one"
        )
    engine.prepare(url)
    try:
        command.upgrade(alembic_config(url), revision)
    except Exception as exc:
        reason = engine.explain(exc)
        if reason is None:
            raise
        raise engines.UnusableDatabase(reason) from exc


def revisions() -> set[str]:
    """Every revision this version of Tidings knows (its migrations)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(""))
    return {s.revision for s in script.walk_revisions()}


def head() -> str:
    """The newest revision this version of Tidings migrates to."""
    from alembic.script import ScriptDirectory

    (newest,) = ScriptDirectory.from_config(alembic_config("")).get_heads()
    return str(newest)


def current(url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
    from sqlalchemy.ext.asyncio import create_async_engine

    async def read() -> str | None:
        engine = create_async_engine(engines.async_url(url))
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
                return None if row is None else str(row[0])
        except (OperationalError, ProgrammingError, DBAPIError):
            return None
        finally:
            await engine.dispose()

    return asyncio.run(read())
