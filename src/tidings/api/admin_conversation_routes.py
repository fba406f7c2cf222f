"""Admin REST of every conversation: the list (filters, pages) and any one's members.
Thin, like routes.py: the checks are the conversation service's (admins only).
Archiving is `PUT`/`DELETE /conversations/{cid}/archive` (owners too), in routes.py."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from starlette.responses import Response

from tidings.api.routes import ERRORS, Auth, Svc, json
from tidings.api.schemas import ConversationOut, MemberOut
from tidings.core.models import ConversationKind
from tidings.core.rules import MAX_NAME_CHARS
from tidings.protocol.wire import conversation_json, member_json
from tidings.services.conversations import MAX_ADMIN_PAGE

router = APIRouter(prefix="/api/v1/admin/conversations", responses=ERRORS, tags=["administration"])
CidPath = Annotated[str, Path(min_length=1, max_length=64)]


class AdminConversationsOut(BaseModel):
    conversations: list[ConversationOut]
    total: int  # how many match the filters in all
    next_offset: int | None  # the next page's offset; null on the last page


class AdminMembersOut(BaseModel):
    conversation: ConversationOut
    members: list[MemberOut]


@router.get("", response_model=AdminConversationsOut)
async def list_all_conversations(
    svc: Svc,
    me: Auth,
    query: Annotated[
        str, Query(max_length=MAX_NAME_CHARS, description="part of the name (any case)")
    ] = "",
    kind: Annotated[Literal["direct", "group", "channel"] | None, Query()] = None,
    archived: Annotated[
        bool | None, Query(description="true: only archived; false: only live; unset: both")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ADMIN_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Every conversation of the organization (admins only), newest activity first."""
    found, total = await svc.conversations.list_all(
        me.user,
        query=query,
        kind=None if kind is None else ConversationKind(kind),
        archived=archived,
        limit=limit,
        offset=offset,
    )
    after = offset + len(found)
    return json(
        {
            "conversations": [conversation_json(c) for c in found],
            "total": total,
            "next_offset": after if after < total else None,
        }
    )


@router.get("/{cid}/members", response_model=AdminMembersOut)
async def conversation_members(cid: CidPath, svc: Svc, me: Auth) -> Response:
    """Any conversation with its current members (admins only)."""
    conv, members = await svc.conversations.members_of(me.user, cid)
    return json(
        {"conversation": conversation_json(conv), "members": [member_json(m) for m in members]}
    )
