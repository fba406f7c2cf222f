"""The audit log through the real server and the command line: admins page through it
over the API, `tidings audit verify` checks the chain, `tidings audit export --since`
writes JSON lines, and tampering with the database file is found. The commands run
in-process (typer's CliRunner) on the stopped server's data directory."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson
import pytest

from tests.helpers import login, make_user
from tests.integration.cli.conftest import cli_at
from tests.security_helpers import raw_login, server_with

pytestmark = pytest.mark.e2e


tidings = cli_at


async def test_audit_over_api_and_cli(tmp_path: Path) -> None:
    with server_with(tmp_path, {}) as server:
        admin = await login(server.url, "admin", server.admin_password)
        jane = await make_user(admin, "jane")
        await admin.call("PATCH", f"/users/{jane.id}", json={"role": "admin"}, expect=200)
        await raw_login(server.url, "jane", "wrong-password", address="203.0.113.5")
        await admin.call("PATCH", "/settings", json={"second_factor_policy": "none"}, expect=200)
        await jane.post("/auth/logout", expect=204)

        page = await admin.get("/audit", params={"limit": 3})
        assert len(page["entries"]) == 3 and page["next"] == 3
        rest = await admin.get("/audit", params={"after": page["next"], "limit": 500})
        entries = page["entries"] + rest["entries"]
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        actions = [e["action"] for e in entries]
        for expected in (
            "login",
            "user_created",
            "role_changed",
            "login_failed",
            "settings_changed",
            "logout",
        ):
            assert expected in actions
        failed = next(e for e in entries if e["action"] == "login_failed")
        assert failed["address"] == "203.0.113.5" and failed["target_id"] == jane.id
        assert failed["details"]["username"] == "jane"
        assert "wrong-password" not in str(entries)

        other = await make_user(admin, "kyle")
        denied = await other.call("GET", "/audit")
        assert denied["error"]["code"] == "forbidden"
        for api in (admin, jane, other):
            await api.close()

    data = server.data_dir
    ok = await asyncio.to_thread(tidings, data, "audit", "verify")
    assert ok.exit_code == 0, ok.stderr
    assert "intact" in ok.stdout

    out = tmp_path / "audit.jsonl"
    done = await asyncio.to_thread(
        tidings, data, "audit", "export", "--since", "2000-01-01", "--output", str(out)
    )
    assert done.exit_code == 0, done.stderr
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["seq"] for e in lines][: len(entries)] == [e["seq"] for e in entries]
    assert lines[0]["hash"] == entries[0]["hash"]
    stdout = await asyncio.to_thread(
        tidings, data, "audit", "export", "--since", "2999-01-01T00:00:00Z"
    )
    assert stdout.exit_code == 0 and stdout.stdout == ""
    bad = await asyncio.to_thread(tidings, data, "audit", "export", "--since", "yesterday")
    assert bad.exit_code != 0 and "--since" in bad.stderr

    # tamper with the file: the trigger stops a plain UPDATE; dropping it does not help
    db = sqlite3.connect(data / "tidings.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET address = '10.0.0.1' WHERE seq = 2")
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET address = '10.0.0.1' WHERE seq = 2")
    db.commit()
    db.close()
    broken = await asyncio.to_thread(tidings, data, "audit", "verify")
    assert broken.exit_code == 1
    assert "BROKEN at entry 2" in broken.stderr


def test_cli_finds_the_newest_entries_removed(tmp_path: Path) -> None:
    """Delete the newest entries in the file (and wind the counter back): every entry
    left still chains, but `audit verify` says the log was truncated, exit 1; a head
    moved back by hand is found too (its signature no longer matches)."""
    with server_with(tmp_path, {}) as server:
        for _ in range(3):
            server.login()  # audited
    data = server.data_dir
    ok = tidings(data, "audit", "verify")
    assert ok.exit_code == 0, ok.stderr
    assert "intact" in ok.stdout and "signed head (key " in ok.stdout

    db = sqlite3.connect(data / "tidings.db")
    (newest,) = db.execute("SELECT max(seq) FROM audit_log").fetchone()
    db.execute("DROP TRIGGER audit_log_no_delete")
    db.execute("DELETE FROM audit_log WHERE seq > ?", (newest - 2,))
    db.execute("UPDATE counters SET value = ? WHERE name = 'audit'", (newest - 2,))
    db.commit()
    truncated = tidings(data, "audit", "verify")
    assert truncated.exit_code == 1, truncated.stdout
    assert "audit log TRUNCATED" in truncated.stderr
    assert "the newest 2 entries were removed" in truncated.stderr

    (kept_hash,) = db.execute("SELECT hash FROM audit_log WHERE seq = ?", (newest - 2,)).fetchone()
    db.execute("UPDATE audit_head SET seq = ?, hash = ?", (newest - 2, kept_hash))
    db.commit()
    db.close()
    forged = tidings(data, "audit", "verify")
    assert forged.exit_code == 1
    assert "signature does not match" in forged.stderr
