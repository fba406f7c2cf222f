"""REST: an unexpected failure is `500 internal`, logged with its context on the server
and never shown to the client; Starlette's own HTTP errors use codes of `ErrorCode`.
On the application in-process (tests/conftest.py `server`)."""

from __future__ import annotations

import pytest
import structlog

from tests.conftest import AppServer, World

SECRET_DETAIL = "boom-detail-that-must-stay-on-the-server"


def boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError(SECRET_DETAIL)


async def test_an_unexpected_exception_in_a_route_answers_500_internal(
    server: AppServer, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await world.admin()
    monkeypatch.setattr(server.container.services.users, "search", boom)
    with structlog.testing.capture_logs() as logs:
        r = await admin.http.get("/users", params={"query": "secret-query"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "internal"
    assert body["error"]["details"] == {}
    assert body["error"]["message"]
    assert SECRET_DETAIL not in r.text and "Traceback" not in r.text
    (failed,) = [e for e in logs if e["event"] == "request_failed"]
    assert failed["log_level"] == "error"
    assert (failed["method"], failed["path"]) == ("GET", "/api/v1/users")
    assert failed["error_type"] == "RuntimeError"
    assert "secret-query" not in str(failed) and str(admin.token) not in str(failed)
    # the server goes on serving
    assert (await admin.get("/users/me"))["user"]["username"] == "admin"


async def test_starlette_http_errors_use_codes_of_the_enum(server: AppServer) -> None:
    async with server.client() as client:
        r = await client.put("/api/v1/auth/login")
        assert r.status_code == 405
        assert r.json()["error"]["code"] == "method_not_allowed"
        r = await client.get("/api/v1/no-such-route")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
