"""Backups proven to restore (issue 19): a real `tidings serve` backed up while senders
run, restored into a fresh place, a server started there; every message, event,
membership and the audit chain up to the backup's position compared with the original;
clients that saw positions after the backup told invalid_position, then a clean resync.
On SQLite and on PostgreSQL (pg_dump / pg_restore)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    REDIS_URL,
    Backend,
    LiveServer,
    World,
    _pg,
    _pg_url,
    _redis_clear,
    free_port,
)
from tests.e2e.test_cli import tidings
from tests.helpers import Ws, resume_refused

pytestmark = pytest.mark.e2e

LOAD_ENV = {"TIDINGS_RATE_SEND_PER_USER": "0", "TIDINGS_RATE_SEND_PER_ADDRESS": "0"}
GAP = 1_000_000_000  # backup_restore_position_gap's default


@dataclass
class Place:
    """Where a server keeps its state: a data dir, and for PostgreSQL its database."""

    data_dir: Path
    backend: Backend

    @property
    def url(self) -> str:
        return self.backend.database_url or f"sqlite:///{self.data_dir / 'tidings.db'}"

    @property
    def env(self) -> dict[str, str]:
        return {**LOAD_ENV, **self.backend.env}


@pytest.fixture
def fresh_place(tmp_path: Path, backend: Backend) -> Iterator[Place]:
    """An empty place to restore into: a new data dir; on PostgreSQL an empty database
    and a Redis prefix of its own (the restored server must not hear the original)."""
    data = tmp_path / "restored"
    if backend.database_url is None:
        yield Place(data, Backend("sqlite"))
        return
    name = f"tidings_r_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {name}")
    prefix = f"tidings-test-{name}"
    try:
        yield Place(data, Backend("postgres", _pg_url(name), REDIS_URL, prefix))
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _redis_clear(prefix)


TABLES = {
    "events": "SELECT position, conversation_id, user_id, kind, payload FROM events "
    "ORDER BY position",
    "messages": "SELECT conversation_id, seq, id, client_msg_id, sender_id, body, deleted "
    "FROM messages ORDER BY conversation_id, seq",
    "members": "SELECT conversation_id, user_id, role, joined_pos, left_pos, read_seq "
    "FROM members ORDER BY conversation_id, user_id",
    "conversations": "SELECT id, kind, name, last_seq FROM conversations ORDER BY id",
    "users": "SELECT id, username, role, disabled FROM users ORDER BY id",
    "audit": "SELECT seq, action, actor_id, target_id, details, prev_hash, hash "
    "FROM audit_log ORDER BY seq",
}


async def rows_of(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that matters, read straight from the database (both backends)."""
    if url.startswith("sqlite"):

        def read() -> dict[str, list[tuple[Any, ...]]]:
            db = sqlite3.connect(url.removeprefix("sqlite:///"))
            try:
                return {k: [tuple(r) for r in db.execute(q)] for k, q in TABLES.items()}
            finally:
                db.close()

        found = await asyncio.to_thread(read)
    else:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            found = {k: [tuple(r) for r in await conn.fetch(q)] for k, q in TABLES.items()}
        finally:
            await conn.close()
    # booleans and JSON text alike on both engines
    return {
        k: [tuple(bool(v) if isinstance(v, bool) else v for v in row) for row in rs]
        for k, rs in found.items()
    }


def manifest_of(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        f = tar.extractfile("manifest.json")
        assert f is not None
        return dict(json.loads(f.read()))


def cli(place: Place, *args: str) -> Any:
    return tidings(place.data_dir, *args, env=place.env)


async def test_backup_under_load_restores_every_message_event_membership_and_audit_entry(
    tmp_path: Path, backend: Backend, fresh_place: Place
) -> None:
    original = Place(tmp_path / "data", backend)
    server = LiveServer(original.data_dir, free_port(), env=original.env)
    server.start()
    restored_server: LiveServer | None = None
    world = World(server)
    try:
        ann, ben, cat, dan = await world.users("ann", "ben", "cat", "dan")
        group = await world.conversation(ann, ben, cat)
        pair = await world.conversation(ben, cat, name="pair")
        channel = await world.conversation(ann, dan, kind="channel", name="news")
        stop = asyncio.Event()
        sent: dict[str, int] = {}

        async def sender(api: Any, cid: str, tag: str) -> None:
            i = 0
            while not stop.is_set():
                await api.send(cid, f"{tag} {i}")
                i += 1
            sent[tag] = i

        senders = [
            asyncio.create_task(sender(ann, group, "ann")),
            asyncio.create_task(sender(ben, pair, "ben")),
            asyncio.create_task(sender(dan, channel, "dan")),
            asyncio.create_task(sender(cat, group, "cat")),
        ]
        await asyncio.sleep(1.0)  # the load is on
        archive = tmp_path / "backups" / "site.tar.gz"
        made = await asyncio.to_thread(cli, original, "backup", "create", "-o", str(archive))
        assert made.returncode == 0, made.stderr
        assert "backup written" in made.stdout
        await asyncio.sleep(0.5)  # and goes on after the snapshot
        stop.set()
        await asyncio.gather(*senders)
        # Written after the backup: none of it may come back.
        await ann.post(f"/conversations/{group}/members", {"user_ids": [dan.id]})
        lost_position = (await dan.get("/sync", params={"since": "0", "limit": 1}))["next"]
        ws_dan = await world.ws(dan)
        head_after = int(ws_dan.ready["position"])

        manifest = manifest_of(archive)
        backup_head = int(manifest["stream_head"])
        assert 0 < backup_head < head_after  # taken mid-load, and the load went on
        assert manifest["backend"] == ("sqlite" if backend.database_url is None else "postgresql")
        before = await rows_of(original.url)
        checked = await asyncio.to_thread(cli, original, "backup", "verify", str(archive))
        assert checked.returncode == 0, checked.stderr
        assert f"stream head {backup_head}" in checked.stdout
        server.stop()  # the original is lost

        # Restore into the fresh place, with the server key the operator kept apart.
        if backend.database_url is None:
            fresh_place.data_dir.mkdir(parents=True)
            shutil.copy(original.data_dir / "secret.key", fresh_place.data_dir / "secret.key")
        done = await asyncio.to_thread(cli, fresh_place, "backup", "restore", str(archive))
        assert done.returncode == 0, done.stderr
        assert f"new events from {backup_head + GAP + 1}" in done.stdout
        after = await rows_of(fresh_place.url)

        # Events: exactly the original's up to the backup's head, none after.
        assert after["events"] == [e for e in before["events"] if e[0] <= backup_head]
        # Messages: exactly those whose event is in the backup (a consistent snapshot).
        in_backup = {
            (json.loads(e[4])["message"]["conversation_id"], json.loads(e[4])["message"]["seq"])
            for e in after["events"]
            if e[3] == "message"
        }
        assert len(in_backup) > 20
        assert after["messages"] == [m for m in before["messages"] if (m[0], m[1]) in in_backup]
        assert len(after["messages"]) < len(before["messages"])
        last_seq = {}
        for cid, seq, *_ in after["messages"]:
            last_seq[cid] = max(last_seq.get(cid, 0), seq)
        for cid, _kind, _name, seq in after["conversations"]:
            assert seq == last_seq.get(cid, 0)
        # Memberships: those of the backup's time (dan's later join is not there).
        # (read positions move on with every send: the backup's are at most the original's)
        assert [m[:5] for m in after["members"]] == [
            m[:5] for m in before["members"] if m[3] <= backup_head
        ]
        later = {m[:2]: m[5] for m in before["members"]}
        assert all(m[5] <= later[m[:2]] and m[5] <= last_seq.get(m[0], 0) for m in after["members"])
        assert (group, dan.id) not in {(m[0], m[1]) for m in after["members"]}
        assert after["users"] == before["users"]
        # The audit chain: the original's, up to the backup, then the restore's entry.
        kept = int(manifest["audit_last_seq"])
        assert after["audit"][:kept] == before["audit"][:kept]
        assert [a[1] for a in after["audit"][kept:]] == ["backup_restored"]
        audit = await asyncio.to_thread(cli, fresh_place, "audit", "verify")
        assert audit.returncode == 0 and "audit log intact" in audit.stdout, audit.stderr

        # A server on the restored place.
        restored_server = LiveServer(fresh_place.data_dir, free_port(), env=fresh_place.env)
        restored_server.start()
        url = restored_server.url
        # Clients that saw the lost timeline: refused, on the socket and over REST.
        frames, code = await resume_refused(
            restored_server.ws_url, dan.token or "", str(head_after)
        )
        assert code == 4009
        assert frames[0]["error"]["code"] == "invalid_position"
        async with httpx.AsyncClient(base_url=url) as http:
            auth = {"authorization": f"Bearer {ann.token}"}
            r = await http.get("/api/v1/sync", params={"since": str(head_after)}, headers=auth)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_position"
            # A clean resync: connect without a position, load the state over REST.
            fresh = await Ws.connect(restored_server.ws_url, ann.token or "")
            assert int(fresh.ready["position"]) == backup_head + GAP
            r = await http.get(f"/api/v1/conversations/{group}/messages",
                               params={"limit": 200, "after_seq": 0}, headers=auth)
            assert r.status_code == 200, r.text
            page = r.json()["messages"]
            assert [(m["seq"], m["body"]) for m in page] == [
                (m[1], m[5]) for m in after["messages"] if m[0] == group
            ][: len(page)]
            assert page
            # New events continue after the gap, the conversation's seq after the backup's.
            r = await http.post(
                f"/api/v1/conversations/{group}/messages",
                json={"client_msg_id": "after-restore", "body": "we are back"},
                headers=auth,
            )
            assert r.status_code == 201, r.text
            assert r.json()["message"]["seq"] == last_seq[group] + 1
            event = await fresh.event("message")
            assert int(event["position"]) == backup_head + GAP + 1
            await fresh.close()
            # Still refused once the new timeline has passed the old position.
            frames, code = await resume_refused(
                restored_server.ws_url, dan.token or "", str(head_after)
            )
            assert code == 4009 and frames[0]["error"]["code"] == "invalid_position"
            r = await http.get("/api/v1/sync", params={"since": lost_position}, headers=auth)
            if int(lost_position) > backup_head:
                assert r.status_code == 400
            # A position of the common past resumes: exactly the new events follow.
            r = await http.get("/api/v1/sync", params={"since": str(backup_head)}, headers=auth)
            assert r.status_code == 200, r.text
            assert [int(e["position"]) for e in r.json()["events"]] == [backup_head + GAP + 1]
            resumed = await Ws.connect(restored_server.ws_url, ann.token or "",
                                       since=str(backup_head))
            replayed = await resumed.event("message")
            assert replayed["event"]["message"]["body"] == "we are back"
            await resumed.close()
    finally:
        await world.close()
        server.stop()
        if restored_server is not None:
            restored_server.stop()


def test_the_cli_refuses_a_tampered_archive_and_a_non_empty_target_in_one_line(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    place = Place(data, Backend("sqlite"))
    assert cli(place, "migrate").returncode == 0
    archive = tmp_path / "b.tar"
    made = cli(place, "backup", "create", "-o", str(archive))
    assert made.returncode == 0, made.stderr
    assert "not in it: the server keys" in made.stdout
    status = cli(place, "backup", "status")
    assert status.returncode == 0 and "ok; b.tar" in status.stdout
    # Into the data dir it came from: refused, one line, exit 1; --force replaces.
    refused = cli(place, "backup", "restore", str(archive))
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--force replaces what is there" in errors[0]
    forced = cli(place, "backup", "restore", "--force", str(archive))
    assert forced.returncode == 0, forced.stderr
    # One byte changed anywhere in the database part: verify and restore fail.
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"SQLite format 3") + 4096 + 17
    raw[at] ^= 0x01
    tampered = tmp_path / "t.tar"
    tampered.write_bytes(bytes(raw))
    bad = cli(place, "backup", "verify", str(tampered))
    assert bad.returncode == 1 and "SHA-256" in bad.stderr
    fresh = Place(tmp_path / "fresh", Backend("sqlite"))
    bad = cli(fresh, "backup", "restore", str(tampered))
    assert bad.returncode == 1 and "SHA-256" in bad.stderr
    assert not (fresh.data_dir / "tidings.db").exists()
