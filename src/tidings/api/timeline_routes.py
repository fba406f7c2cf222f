"""REST around the timeline (issue 17, docs/protocol.md "Saved messages", "Forwarding",
"Scheduled messages"): a user's saved messages; forwarding a message; scheduling one.
Thin: every check is the service's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.api.routes import ERRORS, Auth, SeqPath, Svc, client_ip, json, no_content
from tidings.api.thread_routes import _cursor
from tidings.protocol.wire import forward_origin_json, message_json, saved_json, scheduled_json
from tidings.services.ratelimit import Action

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["messages"])
ScheduledPath = Annotated[str, Path(min_length=1, max_length=32)]


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


@router.post(
    "/conversations/{cid}/messages/{seq}/forward",
    status_code=201,
    responses={200: {"model": s.MessageEnvelope, "description": "a retry: the original"}},
    response_model=s.MessageEnvelope,
)
async def forward_message(
    cid: str, seq: SeqPath, body: s.ForwardIn, svc: Svc, me: Auth, request: Request
) -> Response:
    """Forward a message one may read into a conversation one may post in: a new message
    there (the normal send: its checks, idempotent on `client_msg_id`) with the
    original's body and files and `forwarded_from`."""
    await svc.limiter.check(Action.SEND, me.user.id, client_ip(request))
    message, created = await svc.messages.forward(
        me.user, cid, seq, body.conversation_id, body.client_msg_id
    )
    return json({"message": message_json(message)}, 201 if created else 200)


@router.get(
    "/conversations/{cid}/messages/{seq}/forwarded-from", response_model=s.ForwardOriginEnvelope
)
async def forwarded_from(cid: str, seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """Where a forwarded message comes from (conversation, its name, seq, sender), for
    one who may read the original; anyone else: `404` (they see only "forwarded")."""
    origin = await svc.messages.forward_origin(me.user, cid, seq)
    return json({"origin": forward_origin_json(origin)})


# --- scheduled messages ------------------------------------------------------------------
@router.post(
    "/conversations/{cid}/scheduled", status_code=201, response_model=s.ScheduledEnvelope
)
async def schedule_message(cid: str, body: s.ScheduleIn, svc: Svc, me: Auth) -> Response:
    """Schedule a message to send later, in a conversation one may post in now:
    `scheduled_message_created` to one's own connections; a job sends it at `send_at`
    through the normal send path."""
    scheduled = await svc.scheduled.create(
        me.user,
        cid,
        body.body,
        body.send_at,
        reply_to_seq=body.reply_to_seq,
        thread_root_seq=body.thread_root_seq,
        also_to_conversation=body.also_to_conversation,
        attachments=body.attachments,
    )
    return json({"scheduled": scheduled_json(scheduled)}, 201)


@router.get("/scheduled", response_model=s.ScheduledListOut)
async def list_scheduled(
    svc: Svc,
    me: Auth,
    conversation_id: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
) -> Response:
    """One's own scheduled messages not sent yet, and the failed ones, soonest first."""
    found = await svc.scheduled.list(me.user, conversation_id=conversation_id)
    return json({"scheduled": [scheduled_json(x) for x in found]})


@router.get("/scheduled/{sid}", response_model=s.ScheduledEnvelope)
async def get_scheduled(sid: ScheduledPath, svc: Svc, me: Auth) -> Response:
    """One of one's own scheduled messages (not sent nor cancelled)."""
    return json({"scheduled": scheduled_json(await svc.scheduled.get(me.user, sid))})


@router.patch("/scheduled/{sid}", response_model=s.ScheduledEnvelope)
async def edit_scheduled(
    sid: ScheduledPath, body: s.ScheduleEditIn, svc: Svc, me: Auth
) -> Response:
    """Change a pending one's body and/or send_at: `scheduled_message_updated`."""
    scheduled = await svc.scheduled.edit(me.user, sid, body=body.body, send_at=body.send_at)
    return json({"scheduled": scheduled_json(scheduled)})


@router.delete("/scheduled/{sid}", status_code=204)
async def cancel_scheduled(sid: ScheduledPath, svc: Svc, me: Auth) -> Response:
    """Cancel a pending one, or dismiss a failed one: `scheduled_message_deleted`."""
    await svc.scheduled.cancel(me.user, sid)
    return no_content()
