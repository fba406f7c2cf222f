"""With log_format=json every line a real server process writes is one JSON object:
structlog's own lines, uvicorn's and Alembic's (the standard library's records) alike;
and a request's lines carry its request id and, once its token is checked, its user."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests import processes
from tests.conftest import ADMIN_PASSWORD, LiveServer, free_port

pytestmark = pytest.mark.e2e


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(parsed, dict), line
        assert "event" in parsed and "level" in parsed and "timestamp" in parsed, line
        lines.append(parsed)
    return lines


def test_migrate_logs_alembic_as_json(tmp_path: Path) -> None:
    env = {**os.environ, "TIDINGS_LOG_FORMAT": "json", "TIDINGS_LOG_LEVEL": "info"}
    done = processes.run(["--data-dir", str(tmp_path / "data"), "migrate"], env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stderr)
    upgrades = [line for line in lines if line.get("logger") == "alembic.runtime.migration"]
    assert any(line["event"].startswith("Running upgrade") for line in upgrades), lines
    assert "database at revision" in done.stdout  # the command's answer, for the operator


def test_every_line_of_a_server_is_json_with_its_context(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", free_port(), env={"TIDINGS_LOG_FORMAT": "json"})
    server.start()
    try:
        r = httpx.post(
            server.url + "/api/v1/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
            headers={"x-request-id": "req-login-1"},
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-login-1"
        token, user_id = r.json()["token"], r.json()["user"]["id"]
        r = httpx.post(
            server.url + "/api/v1/auth/login", json={"username": "admin", "password": "wrong!"}
        )
        assert r.status_code == 401
        refused_id = r.headers["x-request-id"]
        assert len(refused_id) == 16  # made by the server
        r = httpx.post(
            server.url + "/api/v1/auth/logout",
            headers={"authorization": f"Bearer {token}", "x-request-id": "bad id\twith tab"},
        )
        assert r.status_code in (200, 204)
        logout_id = r.headers["x-request-id"]
        assert logout_id != "bad id\twith tab"
        assert httpx.get(server.url + "/metrics").status_code == 200
    finally:
        server.stop()
    text = server.logs()
    lines = json_lines(text)
    loggers = {line.get("logger") for line in lines}
    assert "alembic.runtime.migration" in loggers  # the first start migrates
    assert any(
        line.get("logger") == "uvicorn.error" and "Started server process" in line["event"]
        for line in lines
    )
    assert any(line["event"] == "Application shutdown complete." for line in lines)
    by_event = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    login = by_event["login"][0]
    assert login["request_id"] == "req-login-1" and login["user_id"] == user_id
    refused = by_event["login_refused"][0]
    assert refused["request_id"] == refused_id and refused["code"] == "invalid_credentials"
    assert "user_id" not in refused
    logout = by_event["logout"][0]
    assert logout["request_id"] == logout_id and logout["user_id"] == user_id
    # no request's context leaks into a line outside it
    for line in by_event["serving"] + by_event.get("draining", []):
        assert "request_id" not in line and "user_id" not in line
    assert token not in text and ADMIN_PASSWORD not in text
