"""REST around the timeline (issue 17, docs/protocol.md "Saved messages"): a user's
saved messages. Thin: every check is the service's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.api.routes import ERRORS, Auth, SeqPath, Svc, json, no_content
from tidings.api.thread_routes import _cursor
from tidings.protocol.wire import saved_json

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["messages"])


@router.get("/saved", response_model=s.SavedListOut)
async def list_saved(
    svc: Svc,
    me: Auth,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The caller's saved messages they may still read, the newest save first."""
    page, after = await svc.saved.list(me.user, before=_cursor(cursor), limit=limit)
    return json(
        {
            "saved": [saved_json(saved, message) for saved, message in page],
            "next_cursor": None if after is None else str(after),
        }
    )


@router.put("/conversations/{cid}/messages/{seq}/saved", response_model=s.SavedEnvelope)
async def save_message(cid: str, seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """Save a message one may read (private): `message_saved` to one's own connections."""
    saved, message = await svc.saved.save(me.user, cid, seq)
    return json({"saved": saved_json(saved, message)})


@router.delete("/conversations/{cid}/messages/{seq}/saved", status_code=204)
async def unsave_message(cid: str, seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """Unsave a message: `message_unsaved` to one's own connections (none if it was not
    saved)."""
    await svc.saved.unsave(me.user, cid, seq)
    return no_content()
