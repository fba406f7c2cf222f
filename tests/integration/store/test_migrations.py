"""Data migrations, on SQLite and PostgreSQL: 0005 rewrites the reaction events stored
with the whole message (issue 13, item 3) to the shape they have now."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
from alembic import command

from tests.conftest import Backend
from tidings.store import migrations

AT = "2026-11-28T12:00:00Z"
MESSAGE = {
    "id": "m1", "conversation_id": "c1", "seq": 3, "client_msg_id": "x", "sender_id": "ann",
    "body": "hi", "reply_to_seq": None, "mentions": [],
    "reactions": {"👍": ["ann", "ben"], "🎉": ["ben"]},
    "created_at": AT, "edited_at": None, "deleted": False,
}
HEAD = {"conversation_id": "c1", "at": AT}
OLD = {"kind": "reaction", **HEAD, "seq": 3, "emoji": "👍", "user_id": "ben", "added": True,
       "message": MESSAGE}
TAKEN_BACK = {"kind": "reaction", **HEAD, "seq": 3, "emoji": "🚀", "user_id": "ann",
              "added": False, "message": MESSAGE}
NEW = {"kind": "reaction", **HEAD, "seq": 3, "emoji": "🎉", "user_id": "ben", "added": True,
       "count": 1}
SENT = {"kind": "message", **HEAD, "message": MESSAGE}


def run(url: str, sql: str, rows: list[tuple[Any, ...]] | None = None) -> list[tuple[Any, ...]]:
    """One statement (`?` placeholders) on the test's database, outside Tidings."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            if rows is not None:
                db.executemany(sql, rows)
                return []
            return list(db.execute(sql).fetchall())
    import asyncpg

    async def on_postgres() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            numbered = sql
            for i in range(sql.count("?")):
                numbered = numbered.replace("?", f"${i + 1}", 1)
            if rows is not None:
                await conn.executemany(numbered, rows)
                return []
            return [tuple(r) for r in await conn.fetch(numbered)]
        finally:
            await conn.close()

    return asyncio.run(on_postgres())


async def test_0005_slims_the_reaction_events_stored_before(
    tmp_path: Path, backend: Backend
) -> None:
    url = backend.database_url or f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0004")
    stamp = "2026-11-28 12:00:00" if url.startswith("sqlite") else None
    payloads = [SENT, OLD, TAKEN_BACK, NEW]
    rows = [(i + 1, "c1", p["kind"], orjson.dumps(p).decode()) for i, p in enumerate(payloads)]
    created = "?" if stamp else "now()"
    insert = (
        "INSERT INTO events (position, conversation_id, kind, payload, created_at) "
        f"VALUES (?, ?, ?, ?, {created})"
    )
    await asyncio.to_thread(run, url, insert, [(*r, stamp) if stamp else r for r in rows])

    await asyncio.to_thread(migrations.upgrade, url)
    stored = await asyncio.to_thread(run, url, "SELECT payload FROM events ORDER BY position")
    sent, old, taken_back, new = (orjson.loads(r[0]) for r in stored)
    assert sent == SENT  # other kinds are left alone
    assert list(old) == ["kind", "conversation_id", "at", "seq", "emoji", "user_id", "added",
                         "count"]
    assert old == {**{k: v for k, v in OLD.items() if k != "message"}, "count": 2}
    assert taken_back["count"] == 0 and "message" not in taken_back
    assert new == NEW


async def test_0006_keeps_second_factors_and_recovery_codes(
    tmp_path: Path, backend: Backend
) -> None:
    """0006 widens the columns that now hold sealed secrets and argon2id hashes: what
    was stored before stays (secrets as is, key_id NULL, until the server seals them at
    start: tests/integration/services/test_secrets.py), and the signed head table is
    there, empty."""
    url = backend.database_url or f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0005")
    stamp = "2026-11-28 12:00:00" if url.startswith("sqlite") else None
    at = "?" if stamp else "now()"
    await asyncio.to_thread(
        run,
        url,
        f"INSERT INTO second_factors (user_id, secret, created_at, enabled_at, last_step) "
        f"VALUES (?, ?, {at}, {at}, ?)",
        [("u1", "JBSWY3DPEHPK3PXP", stamp, stamp, 7) if stamp else ("u1", "JBSWY3DPEHPK3PXP", 7)],
    )
    old_hash = "a" * 64
    add_code = "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)"
    await asyncio.to_thread(run, url, add_code, [("u1", old_hash)])
    await asyncio.to_thread(migrations.upgrade, url)
    factors = await asyncio.to_thread(
        run, url, "SELECT user_id, secret, key_id, last_step FROM second_factors"
    )
    assert factors == [("u1", "JBSWY3DPEHPK3PXP", None, 7)]
    codes = await asyncio.to_thread(run, url, "SELECT code_hash FROM recovery_codes")
    assert codes == [(old_hash,)]
    assert await asyncio.to_thread(run, url, "SELECT * FROM audit_head") == []
    long_hash = "$argon2id$v=19$m=65536,t=3,p=4$" + "s" * 22 + "$" + "h" * 43
    await asyncio.to_thread(run, url, add_code, [("u1", long_hash)])  # fits now


async def test_0008_existing_accounts_are_local_and_downgrade_drops_the_links(
    tmp_path: Path, backend: Backend
) -> None:
    """0008 (identity base): every account from before is `local`, without an email; the
    links table is there; a downgrade to 0007 removes both again."""
    url = backend.database_url or f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0007")
    stamp = "2026-11-28 12:00:00" if url.startswith("sqlite") else None
    at = "?" if stamp else "now()"
    await asyncio.to_thread(
        run,
        url,
        "INSERT INTO users (id, username, display_name, role, disabled, password_hash, "
        f"search_key, created_at) VALUES (?, ?, ?, ?, FALSE, ?, ?, {at})",
        [("u1", "kate", "Kate", "member", "x", "kate kate", *([stamp] if stamp else []))],
    )
    await asyncio.to_thread(migrations.upgrade, url)
    users = await asyncio.to_thread(run, url, "SELECT username, email, origin FROM users")
    assert users == [("kate", None, "local")]
    assert await asyncio.to_thread(run, url, "SELECT * FROM identity_links") == []
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0007")
    cols = await asyncio.to_thread(run, url, "SELECT * FROM users")
    assert len(cols[0]) == 9  # email and origin gone, the account kept


async def test_0010_existing_links_were_not_disabled_by_their_provider(
    tmp_path: Path, backend: Backend
) -> None:
    url = backend.database_url or f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0009")
    stamp = "2026-11-28 12:00:00" if url.startswith("sqlite") else None
    at = "?" if stamp else "now()"
    await asyncio.to_thread(
        run,
        url,
        f"INSERT INTO identity_links (provider, subject, user_id, created_at) "
        f"VALUES (?, ?, ?, {at})",
        [("ldap", "s1", "u1", *([stamp] if stamp else []))],
    )
    await asyncio.to_thread(migrations.upgrade, url)
    rows = await asyncio.to_thread(
        run, url, "SELECT subject, disabled_by_provider FROM identity_links"
    )
    assert [(r[0], bool(r[1])) for r in rows] == [("s1", False)]


async def test_0017_messages_from_before_are_no_replies_and_downgrade_drops_threads(
    tmp_path: Path, backend: Backend
) -> None:
    """0017 (threads): a message stored before is no thread reply (thread_root_seq
    NULL, not also to the conversation); the thread tables are there and empty; a
    downgrade to 0016 removes the columns and the tables again, the message kept."""
    url = backend.database_url or f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0016")
    stamp = "2026-11-28 12:00:00" if url.startswith("sqlite") else None
    at = "?" if stamp else "now()"
    await asyncio.to_thread(
        run,
        url,
        "INSERT INTO messages (conversation_id, seq, id, client_msg_id, sender_id, body, "
        "reply_to_seq, mentions, created_at, edited_at, deleted) VALUES "
        f"(?, ?, ?, ?, ?, ?, NULL, ?, {at}, NULL, FALSE)",
        [("c1", 1, "m1", "x", "ann", "before threads", "[]", *([stamp] if stamp else []))],
    )
    await asyncio.to_thread(migrations.upgrade, url)
    rows = await asyncio.to_thread(
        run, url, "SELECT body, thread_root_seq, also_to_conversation FROM messages"
    )
    assert [(r[0], r[1], bool(r[2])) for r in rows] == [("before threads", None, False)]
    assert await asyncio.to_thread(run, url, "SELECT * FROM threads") == []
    assert await asyncio.to_thread(run, url, "SELECT * FROM thread_members") == []
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0016")
    cols = await asyncio.to_thread(run, url, "SELECT * FROM messages")
    assert len(cols[0]) == 11 and cols[0][5] == "before threads"
    tables = (
        "SELECT name FROM sqlite_master WHERE name IN ('threads', 'thread_members')"
        if url.startswith("sqlite")
        else "SELECT tablename FROM pg_tables WHERE tablename IN ('threads', 'thread_members')"
    )
    assert await asyncio.to_thread(run, url, tables) == []


async def test_0018_existing_accounts_get_no_status_and_the_default_preferences(
    tmp_path: Path, backend: Backend
) -> None:
    """0018 (profile): an account from before has no custom status, the device's
    language and zone, the system's theme; a downgrade drops the columns, keeping it."""
    url = backend.database_url or f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0017")
    stamp = "2026-11-28 12:00:00" if url.startswith("sqlite") else None
    at = "?" if stamp else "now()"
    await asyncio.to_thread(
        run,
        url,
        "INSERT INTO users (id, username, display_name, role, disabled, password_hash, "
        f"search_key, created_at) VALUES (?, ?, ?, ?, FALSE, ?, ?, {at})",
        [("u1", "kate", "Kate", "member", "x", "kate kate", *([stamp] if stamp else []))],
    )
    before = len((await asyncio.to_thread(run, url, "SELECT * FROM users"))[0])
    await asyncio.to_thread(migrations.upgrade, url)
    users = await asyncio.to_thread(
        run,
        url,
        "SELECT username, status_text, status_emoji, status_until, language, time_zone, theme "
        "FROM users",
    )
    assert users == [("kate", None, None, None, None, None, "system")]
    await asyncio.to_thread(command.downgrade, migrations.alembic_config(url), "0017")
    cols = await asyncio.to_thread(run, url, "SELECT * FROM users")
    assert len(cols[0]) == before  # the profile columns gone, the account kept
