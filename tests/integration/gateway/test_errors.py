"""The WebSocket: a frame the server fails to handle (an unexpected exception) gets an
`internal` error frame, logged with its context, and the connection stays open; so does
a send whose commit fails so. On the application in-process (tests/conftest.py
`server`, the gateway on uvicorn's protocol over loopback)."""

from __future__ import annotations

import pytest
import structlog

from tests.conftest import AppServer, World

SECRET_DETAIL = "boom-detail-that-must-stay-on-the-server"


def boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError(SECRET_DETAIL)


async def test_an_unexpected_exception_on_a_frame_is_an_internal_error_frame(
    server: AppServer, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await world.admin()
    ws = await world.ws(admin)
    monkeypatch.setattr(server.container.services.messages, "mark_read", boom)
    with structlog.testing.capture_logs() as logs:
        frame = await ws.request({"type": "read", "conversation_id": "c1", "seq": 1})
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "internal"
    assert frame["error"]["details"] == {}
    assert SECRET_DETAIL not in str(frame)
    (failed,) = [e for e in logs if e["event"] == "frame_failed"]
    assert failed["frame_type"] == "read" and failed["log_level"] == "error"
    # the connection stays open
    assert (await ws.request({"type": "ping"}))["type"] == "ack"


async def test_a_send_that_fails_unexpectedly_is_answered_internal(
    server: AppServer, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await world.admin()
    cid = await world.conversation(admin, kind="channel", name="c")
    ws = await world.ws(admin)

    async def failing_commit(_batch: object) -> None:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(server.container.services.messages, "_commit", failing_commit)
    frame = await ws.request(
        {"type": "send", "conversation_id": cid, "client_msg_id": "m1", "body": "hi"}
    )
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "internal"
    assert SECRET_DETAIL not in str(frame)
    assert (await ws.request({"type": "ping"}))["type"] == "ack"
