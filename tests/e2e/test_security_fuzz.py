"""Hostile input against the real server: the REST API fuzzed from its own OpenAPI
document (schemathesis: schema-valid and schema-violating requests) and the WebSocket
protocol fuzzed with hypothesis-generated frames. Neither may get a 5xx, a crash or a
dead connection. Bounded (max_examples) and derandomized, so a run is quick and repeats
exactly; raise TIDINGS_FUZZ_EXAMPLES for a longer search."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
import schemathesis
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.helpers import Ws, login, make_user
from tests.security_helpers import server_with
from tidings.core.errors import ErrorCode

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("TIDINGS_FUZZ_EXAMPLES", "10"))
WS_EXAMPLES = int(os.environ.get("TIDINGS_FUZZ_WS_EXAMPLES", "250"))
# operations that end the fuzzer's own session or lock it out: run last
LAST = {("POST", "/api/v1/auth/logout"), ("PATCH", "/api/v1/settings")}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


def _server_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r'"level": ?"(error|critical)"', line)]


def test_rest_api_from_its_openapi_document(tmp_path: Path) -> None:
    env = {"TIDINGS_RATE_LOGIN_PER_USER": "100000", "TIDINGS_RATE_LOGIN_PER_ADDRESS": "100000"}
    with server_with(tmp_path, env) as server:

        async def world() -> dict[str, str]:
            admin = await login(server.url, "admin", server.admin_password)
            bob = await make_user(admin, "bob")
            conv = await admin.post(
                "/conversations",
                {"kind": "group", "name": "g", "member_ids": [bob.id]},
                expect=201,
            )
            cid = conv["conversation"]["id"]
            await admin.send(cid, "hello")
            dep = await admin.post("/departments", {"name": "D"}, expect=201)
            return {
                "token": admin.token or "",
                "cid": cid,
                "uid": bob.id,
                "did": dep["department"]["id"],
                "seq": "1",
                "emoji": "👍",
                "sid": "nope",
            }

        ids = asyncio.run(world())
        token = ids["token"]
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        operations.sort(key=lambda op: (op.method.upper(), op.path) in LAST)
        assert len(operations) >= 40
        failures: list[str] = []
        checked = 0

        for op in operations:
            wanted = re.findall(r"\{(\w+)\}", op.path)
            real = {name: ids[name] for name in wanted if name in ids}
            for mode, path_parameters in (
                (schemathesis.GenerationMode.POSITIVE, real or None),
                (schemathesis.GenerationMode.NEGATIVE, None),
            ):
                try:
                    strategy = op.as_strategy(mode, path_parameters=path_parameters)
                except Exception as exc:
                    if "negative" in mode.value:
                        continue
                    raise AssertionError(f"{op.method} {op.path}: {exc}") from exc

                @FUZZ_SETTINGS
                @given(case=strategy)
                def run(case: schemathesis.Case) -> None:
                    nonlocal checked
                    headers = dict(case.headers or {})
                    headers.setdefault("Authorization", f"Bearer {token}")
                    response = case.call(base_url=server.url, headers=headers, timeout=30)
                    checked += 1
                    if response.status_code >= 500:
                        failures.append(
                            f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:200]}\n  {case.as_curl_command()}"
                        )
                    elif response.status_code >= 400 and response.headers.get("content-type", [""])[
                        0
                    ].startswith("application/json"):
                        body = response.json()
                        assert isinstance(body, dict) and set(body) == {"error"}, body

                try:
                    run()
                except Unsatisfiable:
                    # nothing in this operation can be made invalid (no parameters, no body)
                    assert mode is schemathesis.GenerationMode.NEGATIVE, (op.method, op.path)
        assert not failures, "\n".join(failures[:20])
        assert checked >= len(operations) * 2
        # still alive and well
        assert httpx.get(server.url + "/healthz").status_code == 200
        errors = _server_errors(server.logs())
        assert not errors, "\n".join(errors[:10])


# --- WebSocket --------------------------------------------------------------------------
FRAME_TYPES = ["auth", "send", "read", "typing", "presence", "ping", "command", "nope", ""]
FIELDS = [
    "type",
    "ref",
    "token",
    "since",
    "conversation_id",
    "client_msg_id",
    "body",
    "reply_to_seq",
    "seq",
    "state",
    "command",
    "text",
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# values of the right JSON type too, so that some frames pass parsing and reach the
# services (an unknown conversation, a body too long, a seq never given out ...)
typed_values = {
    "ref": st.text(max_size=8) | st.integers(),
    "token": st.text(max_size=40),
    "since": st.text(max_size=40),
    "conversation_id": st.text(max_size=70),
    "client_msg_id": st.text(max_size=70),
    "body": st.text(max_size=300),
    "reply_to_seq": st.integers(min_value=-2, max_value=2**40),
    "seq": st.integers(min_value=-2, max_value=2**40),
    "state": st.sampled_from(["online", "away", "busy"]),
    "command": st.text(max_size=40),
    "text": st.text(max_size=300),
}
shaped_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(FRAME_TYPES)},
    optional={name: json_values | typed_values[name] for name in FIELDS[1:]},
).map(lambda d: json.dumps(d, ensure_ascii=False))  # big ints too


def _typed(kind: str, *required: str, optional: tuple[str, ...] = ("ref",)) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {"type": st.just(kind), **{name: typed_values[name] for name in required}},
        optional={name: typed_values[name] for name in optional},
    )


# every field of its frame present and of its type: these pass parsing, and the
# services judge them
typed_frames = st.one_of(
    _typed("send", "conversation_id", "client_msg_id", "body",
           optional=("ref", "reply_to_seq")),
    _typed("read", "conversation_id", "seq"),
    _typed("typing", "conversation_id"),
    _typed("presence", "state"),
).map(lambda d: json.dumps(d, ensure_ascii=False))
wire_frames = st.one_of(
    shaped_frames,
    typed_frames,
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.text(max_size=200),
    st.binary(max_size=200),
)

# The codes a well-formed or malformed frame of a signed-in client may earn: the frame's
# own faults (invalid_*, too_large) and what it asks of the conversation (not_found, ...);
# never `internal` (a failure of the server), `unavailable` or `unauthenticated`.
BAD_FRAME_CODES = {
    ErrorCode.INVALID_REQUEST,
    ErrorCode.INVALID_BODY,
    ErrorCode.INVALID_POSITION,
    ErrorCode.INVALID_OPERATION,
    ErrorCode.NOT_FOUND,
    ErrorCode.FORBIDDEN,
    ErrorCode.TOO_LARGE,
}


def test_websocket_frames(tmp_path: Path) -> None:
    env = {
        "TIDINGS_RATE_SEND_PER_USER": "0",
        # hundreds of typing and presence frames: bad input is what is tested here
        "TIDINGS_RATE_TYPING_PER_CONVERSATION": "0",
        "TIDINGS_RATE_PRESENCE_PER_USER": "0",
        "TIDINGS_AUTH_TIMEOUT_SECONDS": "1",
    }
    with server_with(tmp_path, env) as server:
        refs = itertools.count(1)

        async def go() -> None:
            admin = await login(server.url, "admin", server.admin_password)
            conv = await admin.post("/conversations", {"kind": "group", "name": "g"}, expect=201)
            cid = conv["conversation"]["id"]
            frames_sent: list[str | bytes] = []

            @settings(
                max_examples=WS_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(frame=wire_frames, valid_cid=st.booleans())
            def collect(frame: str | bytes, valid_cid: bool) -> None:
                if valid_cid and isinstance(frame, str):
                    # the real conversation's id (json.dumps writes `"key": value`), the
                    # generated value moved to "x"
                    frame = frame.replace(
                        '"conversation_id": ', f'"conversation_id": "{cid}", "x": '
                    )
                frames_sent.append(frame)

            collect()
            ws = await Ws.connect(server.ws_url, admin.token or "")
            started = time.monotonic()
            codes: Counter[str] = Counter()
            for frame in frames_sent:
                await ws.send_raw(frame)
                # every frame is answered in order; a ping proves the connection is alive
                ref = f"probe-{next(refs)}"
                await ws.send_raw(orjson.dumps({"type": "ping", "ref": ref}).decode())
                async with asyncio.timeout(10):
                    while True:
                        reply = await ws.recv()
                        if reply["type"] == "error":
                            codes[reply["error"]["code"]] += 1
                        if reply.get("ref") == ref:
                            assert reply["type"] == "ack"
                            break
            await ws.close()
            assert time.monotonic() - started < 60
            # bad frames earn the codes of bad input, and nothing else (not `internal`)
            assert set(codes) <= BAD_FRAME_CODES, codes
            assert codes[ErrorCode.INVALID_REQUEST] > 0, codes  # the check above did run
            assert set(codes) - {ErrorCode.INVALID_REQUEST}, codes  # services answered too

            # the first frame too: anything but a valid auth is refused (at once, or when
            # the auth timeout, 1 s here, runs out), and the server lives on
            for frame in frames_sent[:12]:
                conn = await websockets.connect(server.ws_url)
                await conn.send(frame)
                try:
                    async with asyncio.timeout(15):
                        while True:
                            got = orjson.loads(await conn.recv())
                            assert got["type"] == "error", got
                except websockets.ConnectionClosed as exc:
                    assert exc.rcvd is not None and exc.rcvd.code == 4001
                finally:
                    await conn.close()
            # a normal client still works
            ws = await Ws.connect(server.ws_url, admin.token or "")
            reply = await ws.request(
                {
                    "type": "send",
                    "conversation_id": cid,
                    "client_msg_id": uuid.uuid4().hex,
                    "body": "still here",
                }
            )
            assert reply["type"] == "ack"
            await ws.close()
            await admin.close()

        asyncio.run(go())
        errors = _server_errors(server.logs())
        assert not errors, "\n".join(errors[:10])
