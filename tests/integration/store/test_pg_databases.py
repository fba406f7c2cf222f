"""The tests' PostgreSQL databases (tests/conftest.py:PgDatabases) are reused only
when nothing of a test can reach the next: rows emptied and the template's put back,
a changed schema never handed out again."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import PgDatabases, _pg_url


def _sql(name: str, statement: str, *args: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(_pg_url(name))
        try:
            return await conn.fetchval(statement, *args)
        finally:
            await conn.close()

    return PgDatabases._run(run())


def test_a_reused_database_has_the_templates_rows_only(pg_databases: PgDatabases) -> None:
    name = pg_databases.take()
    before = _sql(name, "SELECT count(*) FROM counters")
    _sql(name, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    _sql(name, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    _sql(name, "DELETE FROM counters")
    version = _sql(name, "SELECT version_num FROM alembic_version")
    _sql(name, "UPDATE alembic_version SET version_num = '0001'")
    _sql(name, "INSERT INTO job_cursors SELECT 'x' || name, position FROM job_cursors")
    pg_databases.give_back(name)
    assert name in pg_databases.free  # the same schema as the template: reused
    again = pg_databases.take()
    assert again == name
    assert _sql(again, "SELECT count(*) FROM counters") == before
    assert _sql(again, "SELECT count(*) FROM job_cursors WHERE name LIKE 'x%'") == 0
    assert _sql(again, "SELECT version_num FROM alembic_version") == version
    pg_databases.give_back(again)


def test_a_changed_schema_is_never_handed_out_again(pg_databases: PgDatabases) -> None:
    for change in (
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "CREATE TABLE leftover (id int)",
        "CREATE INDEX leftover_index ON counters (name)",
        "CREATE FUNCTION leftover() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA leftover",
    ):
        name = pg_databases.take()
        _sql(name, change)
        pg_databases.give_back(name)
        assert name not in pg_databases.free and name not in pg_databases.made, change
        exists = _sql("postgres", "SELECT count(*) FROM pg_database WHERE datname = $1", name)
        assert exists == 0, change
