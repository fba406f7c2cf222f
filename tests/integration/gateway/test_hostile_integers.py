"""The WebSocket: integers the store cannot hold (64-bit signed) in a client frame get
an `invalid_request` error frame and the connection stays open; a `since` out of that
range closes with 4009 like any position never given out. On both backends."""

from __future__ import annotations

import pytest

from tests.conftest import AppServer, World
from tests.helpers import resume_refused

HOSTILE = [str(2**63), str(2**64 - 1), str(2**64), str(-(2**63) - 1), "9" * 40]


async def test_integers_out_of_range_in_frames_are_invalid_requests(
    server: AppServer, world: World
) -> None:
    admin = await world.admin()
    cid = await world.conversation(admin, kind="channel", name="ints")
    ws = await world.ws(admin)
    for n, value in enumerate(HOSTILE):
        for frame in (
            f'{{"type": "read", "conversation_id": "{cid}", "seq": {value}, "ref": "r{n}"}}',
            f'{{"type": "send", "conversation_id": "{cid}", "client_msg_id": "m{n}",'
            f' "body": "x", "reply_to_seq": {value}, "ref": "s{n}"}}',
        ):
            await ws.send_raw(frame)
            reply = await ws.recv_type("error", "ack")
            assert reply["type"] == "error", (frame, reply)
            assert reply["error"]["code"] == "invalid_request", (frame, reply)
    # the connection stays open and works
    assert (await ws.request({"type": "ping"}))["type"] == "ack"
    ack = await ws.request({"type": "read", "conversation_id": cid, "seq": 0})
    assert ack["type"] == "ack", ack


@pytest.mark.parametrize("since", [str(2**63), "9" * 19, str(2**64)])
async def test_a_since_out_of_range_closes_4009(
    server: AppServer, world: World, since: str
) -> None:
    admin = await world.admin()
    frames, code = await resume_refused(server.ws_url, admin.token or "", since)
    errors = [f for f in frames if f["type"] == "error"]
    assert errors and errors[0]["error"]["code"] == "invalid_position", frames
    assert code == 4009
