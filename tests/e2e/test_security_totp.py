"""Second factor with the real server process: the CLI resets a lost second factor on
the server's database. Enrolment, login and policy run in-process:
tests/integration/api/test_security_totp.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests import processes
from tests.conftest import LiveServer
from tests.helpers import login
from tests.security_helpers import enrol_totp, raw_login

pytestmark = pytest.mark.e2e
PASSWORD = "plum-orbit-123"


def test_cli_can_reset_a_lost_second_factor(live_server: LiveServer, tmp_path: Path) -> None:
    """The operator's way back in when the owner lost the phone."""

    async def enrol() -> None:
        admin = await login(live_server.url, "admin", live_server.admin_password)
        await enrol_totp(admin, live_server.admin_password)
        await admin.close()

    asyncio.run(enrol())
    r = asyncio.run(raw_login(live_server.url, "admin", live_server.admin_password))
    assert r.json()["error"]["code"] == "totp_required"
    done = processes.run(
        [
            "--data-dir",
            str(live_server.data_dir),
            "user",
            "reset-totp",
            "admin",
        ],
        timeout=60,
        env={**os.environ, **live_server.extra_env},  # the same database (PostgreSQL too)
    )
    assert done.returncode == 0, done.stderr
    r = asyncio.run(raw_login(live_server.url, "admin", live_server.admin_password))
    assert r.status_code == 200, r.text
