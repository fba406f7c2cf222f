"""An unexpected failure is answered `internal` on both transports (500 over REST, an
`error` frame on the WebSocket, which stays open), logged with its context on the server
and never shown to the client. The app is the one `tidings serve` builds, in-process on
a migrated SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import structlog
from starlette.testclient import TestClient

from tidings.app.container import Container
from tidings.app.server import bootstrap, build
from tidings.app.settings import Settings
from tidings.store import migrations

ADMIN_PASSWORD = "owner-password-for-tests"
SECRET_DETAIL = "boom-detail-that-must-stay-on-the-server"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Container, str]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_password=ADMIN_PASSWORD,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    settings.data_dir.mkdir(parents=True)

    def prepare() -> None:  # Alembic and the first owner, on a loop of their own
        migrations.upgrade(settings.db_url)
        setup = Container(settings)

        async def owner() -> None:
            await bootstrap(setup)
            await setup.close()

        asyncio.run(owner())

    with ThreadPoolExecutor(1) as pool:
        pool.submit(prepare).result()
    app, container, _hub, _gateway = build(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert r.status_code == 200, r.text
        yield client, container, r.json()["token"]


def boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError(SECRET_DETAIL)


def test_an_unexpected_exception_in_a_route_answers_500_internal(
    served: tuple[TestClient, Container, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, container, token = served
    monkeypatch.setattr(container.services.users, "search", boom)
    with structlog.testing.capture_logs() as logs:
        r = client.get(
            "/api/v1/users?query=secret-query", headers={"Authorization": f"Bearer {token}"}
        )
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
    assert "secret-query" not in str(failed) and token not in str(failed)
    # the process goes on serving
    r = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_starlette_http_errors_use_codes_of_the_enum(
    served: tuple[TestClient, Container, str],
) -> None:
    client, _container, _token = served
    r = client.put("/api/v1/auth/login")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = client.get("/api/v1/no-such-route")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_an_unexpected_exception_on_the_websocket_is_an_internal_error_frame(
    served: tuple[TestClient, Container, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, container, token = served
    monkeypatch.setattr(container.services.messages, "mark_read", boom)
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"type": "auth", "token": token})
        assert ws.receive_json()["type"] == "ready"
        with structlog.testing.capture_logs() as logs:
            ws.send_json({"type": "read", "conversation_id": "c1", "seq": 1, "ref": 7})
            frame = ws.receive_json()
        assert frame["type"] == "error" and frame["ref"] == 7
        assert frame["error"]["code"] == "internal"
        assert frame["error"]["details"] == {}
        assert SECRET_DETAIL not in str(frame)
        (failed,) = [e for e in logs if e["event"] == "frame_failed"]
        assert failed["frame_type"] == "read" and failed["log_level"] == "error"
        # the connection stays open
        ws.send_json({"type": "ping", "ref": 8})
        assert ws.receive_json() == {"type": "ack", "ref": 8}


def test_a_send_that_fails_unexpectedly_is_answered_internal(
    served: tuple[TestClient, Container, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, container, token = served
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post(
        "/api/v1/conversations", json={"kind": "channel", "name": "c", "member_ids": []},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    cid = r.json()["conversation"]["id"]

    async def failing_commit(_batch: object) -> None:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(container.services.messages, "_commit", failing_commit)
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"type": "auth", "token": token})
        assert ws.receive_json()["type"] == "ready"
        ws.send_json(
            {"type": "send", "conversation_id": cid, "client_msg_id": "m1", "body": "hi",
             "ref": "s1"}
        )
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["ref"] == "s1"
        assert frame["error"]["code"] == "internal"
        assert SECRET_DETAIL not in str(frame)
