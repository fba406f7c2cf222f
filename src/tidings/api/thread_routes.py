"""REST of threads (issue 17, docs/protocol.md "Threads"): the thread list of a
conversation, one thread, following and reading it. Replies are sent with
POST /conversations/{cid}/messages (`thread_root_seq`) and read with its history
(`?thread_root_seq=`). Thin: every check is the thread service's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.api.routes import ERRORS, Auth, SeqPath, Svc, json
from tidings.core.errors import InvalidInput
from tidings.core.models import MAX_STORED_INT
from tidings.protocol.wire import thread_json, thread_state_json

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["threads"])


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isascii() or not cursor.isdigit() or not 0 < int(cursor) <= MAX_STORED_INT:
        raise InvalidInput("cursor is not one this server gave", field="cursor")
    return int(cursor)


@router.get("/conversations/{cid}/threads", response_model=s.ThreadsOut)
async def list_threads(
    cid: str,
    svc: Svc,
    me: Auth,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The conversation's threads (roots with at least one visible reply), newest
    activity first, each with its summary and the caller's state."""
    views, after = await svc.threads.list(me.user, cid, before=_cursor(cursor), limit=limit)
    return json(
        {
            "threads": [thread_json(v) for v in views],
            "next_cursor": None if after is None else str(after),
        }
    )


@router.get("/conversations/{cid}/threads/{root_seq}", response_model=s.ThreadEnvelope)
async def get_thread(cid: str, root_seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """One root's thread (a root without replies yet: an empty summary)."""
    view = await svc.threads.get(me.user, cid, root_seq)
    return json({"thread": thread_json(view)})


@router.put("/conversations/{cid}/threads/{root_seq}/follow", response_model=s.ThreadStateEnvelope)
async def follow_thread(cid: str, root_seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """Follow the thread (its unread replies are counted for the caller)."""
    state = await svc.threads.follow(me.user, cid, root_seq, True)
    return json({"thread": thread_state_json(state)})


@router.delete(
    "/conversations/{cid}/threads/{root_seq}/follow", response_model=s.ThreadStateEnvelope
)
async def unfollow_thread(cid: str, root_seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """Stop following the thread (kept until followed again, replies included)."""
    state = await svc.threads.follow(me.user, cid, root_seq, False)
    return json({"thread": thread_state_json(state)})


@router.post("/conversations/{cid}/threads/{root_seq}/read", response_model=s.ThreadStateEnvelope)
async def mark_thread_read(
    cid: str, root_seq: SeqPath, body: s.ReadIn, svc: Svc, me: Auth
) -> Response:
    """Move the caller's read position in the thread (a reply's seq) forward."""
    state = await svc.threads.mark_read(me.user, cid, root_seq, body.seq)
    return json({"thread": thread_state_json(state)})
