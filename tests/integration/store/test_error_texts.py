"""A failed statement's error carries no statement parameters: message bodies, password
and token hashes must never reach an error text, and so never a logged traceback."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tidings.app.container import Container

SECRET = "argon2-hash-that-must-not-leak"


@pytest.mark.parametrize("pool", ["write", "read"])
async def test_a_failed_statement_does_not_show_its_parameters(
    container: Container, pool: str
) -> None:
    engine = getattr(container.store.engine, pool)
    with pytest.raises(SQLAlchemyError) as failed:
        async with engine.connect() as conn:
            # A NOT NULL column left empty: the statement fails with its parameters bound.
            await conn.execute(
                text("INSERT INTO users (id, username) VALUES (:id, :username)"),
                {"id": SECRET, "username": SECRET},
            )
    assert SECRET not in str(failed.value)
    assert "hidden due to hide_parameters" in str(failed.value)
