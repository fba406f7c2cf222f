"""No token, password or second-factor secret in any log line: a full security flow
against a server logging at debug level, then its log is searched for every secret the
flow used. (tests/e2e/conftest.py also scans every server log of the whole run.)"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
import websockets

from tests.e2e.secret_scan import leaks
from tests.helpers import Ws, login, make_user
from tests.security_helpers import api_from, code_for, enrol_totp, raw_login, server_with

pytestmark = pytest.mark.e2e


async def test_a_security_flow_logs_no_secret(tmp_path: Path) -> None:
    env = {"TIDINGS_LOG_LEVEL": "debug", "TIDINGS_LOG_FORMAT": "json"}
    secrets: list[str] = []
    with server_with(tmp_path, env) as server:
        admin = await login(server.url, "admin", server.admin_password)
        secrets.append(admin.token or "")
        lena = await make_user(admin, "lena", password="lumen-secret-pw-1")
        secrets += [lena.token or "", "lumen-secret-pw-1"]
        # failed logins, with passwords typed in the wrong box too
        for username, password in (("lena", "wrong-secret-pw-2"), ("wrong-secret-pw-3", "x")):
            await raw_login(server.url, username, password)
            secrets.append(password if password != "x" else username)
        secret, codes, step = await enrol_totp(lena, "lumen-secret-pw-1")
        secrets += [secret, *codes]
        r = await raw_login(server.url, "lena", "lumen-secret-pw-1", totp=code_for(secret, step))
        phone = api_from(server.url, r)
        secrets.append(phone.token or "")
        await raw_login(server.url, "lena", "lumen-secret-pw-1", totp=codes[0])
        await phone.post(
            "/auth/password",
            {"current_password": "lumen-secret-pw-1", "new_password": "lumen-secret-pw-4"},
            expect=204,
        )
        secrets.append("lumen-secret-pw-4")
        reset = {"password": "lumen-secret-pw-5"}
        await admin.post(f"/users/{lena.id}/password", reset, expect=204)
        secrets.append("lumen-secret-pw-5")
        # WebSocket: a good token, then a bad one
        ws = await Ws.connect(server.ws_url, admin.token or "")
        await ws.request({"type": "ping"})
        await ws.close()
        bogus = uuid.uuid4().hex + uuid.uuid4().hex
        secrets.append(bogus)
        conn = await websockets.connect(server.ws_url)
        await conn.send(orjson.dumps({"type": "auth", "token": bogus}).decode())
        try:
            await conn.recv()
        finally:
            await conn.close()
        # REST with a bad bearer token
        r = await admin.http.get("/users/me", headers={"authorization": f"Bearer {bogus}x"})
        assert r.status_code == 401
        await admin.post("/auth/logout", expect=204)
        for api in (admin, lena, phone):
            await api.close()
    log = server.logs()
    assert '"level": "debug"' in log or '"level": "info"' in log  # it did log
    found = leaks(log, [s for s in secrets if s])
    assert not found, "\n".join(found[:20])
