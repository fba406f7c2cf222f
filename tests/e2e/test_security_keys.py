"""The server keys with the real server and command line (issue 13, item 18): the key
file made at first start (0600), TOTP secrets sealed under it, a new key added and
everything rotated to it while the server runs, the old key removed, and TOTP login
working at every step; a server started with the wrong key stops with one line."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from tests import processes
from tests.conftest import ARTIFACTS, LiveServer, free_port
from tests.e2e.test_cli import one_error_line, tidings
from tests.helpers import login, make_user
from tests.security_helpers import code_for, enrol_totp, raw_login

pytestmark = pytest.mark.e2e
PASSWORD = "plum-orbit-123"


def _keys(path: Path) -> list[str]:
    return [k for k in path.read_text().splitlines() if k and not k.startswith("#")]


async def _enrol_alice(server: LiveServer) -> tuple[str, int]:
    admin = await login(server.url, "admin", server.admin_password)
    alice = await make_user(admin, "alice", password=PASSWORD)
    secret, _codes, step = await enrol_totp(alice, PASSWORD)
    for api in (admin, alice):
        await api.close()
    return secret, step


def _logs_in(server: LiveServer, code: str) -> None:
    r = asyncio.run(raw_login(server.url, "alice", PASSWORD, totp=code))
    assert r.status_code == 200, r.text


def test_key_file_rotation_and_a_wrong_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = LiveServer(data, free_port())
    key_file = data / "secret.key"
    try:
        server.start()
        secret, step = asyncio.run(_enrol_alice(server))
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        [first] = _keys(key_file)
        assert first not in server.logs()

        # a new key, first in the file; the server restarts with both
        added = tidings(data, "secrets", "generate", "--key-file")
        assert added.returncode == 0, added.stderr
        assert "restart the server, then run `tidings secrets rotate`" in added.stdout
        newest, old = _keys(key_file)
        assert old == first and newest not in added.stdout
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        server.restart()
        _logs_in(server, code_for(secret, step))  # still sealed under the old key

        # rotate while it runs: everything moves to the newest key
        status = tidings(data, "secrets", "status")
        assert status.returncode == 0, status.stderr
        rotated = tidings(data, "secrets", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert "1 TOTP secrets resealed, the audit head signed" in rotated.stdout
        assert "no longer used, may be removed: key " in rotated.stdout
        verified = tidings(data, "audit", "verify")
        assert verified.returncode == 0 and "signed head" in verified.stdout, verified

        # the old key removed: the server starts, alice logs in, the log verifies
        server.stop()
        key_file.write_text(newest + "\n")
        server.start()
        _logs_in(server, code_for(secret, step + 1))
        assert tidings(data, "audit", "verify").returncode == 0
    finally:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"server-{server.port}.log").write_text(server.logs())

    # a server with another key refuses to start, in one line, and names the key
    wrong = processes.run(
        ["serve", "--data-dir", str(data), "--port", "0"],
        timeout=60,
        env={
            **os.environ,
            "TIDINGS_SECRET_KEYS": "a key that never sealed anything on this server",
            "TIDINGS_LOG_LEVEL": "warning",
        },
    )
    line = one_error_line(wrong)
    assert "TOTP secrets are sealed under key" in line and "which this server does not" in line
    # and so do the admin commands (all but `secrets` and `audit`)
    refused = tidings(
        data, "user", "list", env={"TIDINGS_SECRET_KEYS": "another key that sealed nothing here"}
    )
    assert "does not hold" in one_error_line(refused)
