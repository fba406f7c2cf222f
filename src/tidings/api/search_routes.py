"""REST of search (issue 16, docs/search.md): GET /api/v1/search, and the admins' index
status and reindex. Thin: every check (sizes, visibility, rate, roles) is the search
service's."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.api.routes import ERRORS, Auth, Svc, json
from tidings.core.clock import rfc3339
from tidings.core.search import IndexStatus, SearchPage
from tidings.protocol.wire import message_json

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["search"])
# hard bounds of the wire (the settings' own limits are the service's, field-named)
MAX_Q_WIRE = 100_000
MAX_ID_WIRE = 1_000


class SearchResultOut(BaseModel):
    message: s.MessageOut
    highlights: list[tuple[int, int]] = Field(
        description="code-point ranges [start, end) of message.body that matched: sorted, "
        "not overlapping"
    )


class SearchCountOut(BaseModel):
    conversation_id: str
    count: int = Field(description="matches in the conversation, capped at search_count_limit")


class SearchOut(BaseModel):
    results: list[SearchResultOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: none")
    counts: list[SearchCountOut] = Field(
        description="matches per conversation over the whole query, biggest first"
    )
    counts_capped: bool = Field(
        description="some count is capped (search_count_limit) or not every match was counted"
    )


class IndexStatusOut(BaseModel):
    documents: int = Field(description="messages in the index")
    pending_jobs: int = Field(description="search.index jobs waiting or running")
    last_indexed_at: str | None


class ReindexOut(BaseModel):
    started: bool = Field(description="false: a reindex is running already on this node")


def page_json(page: SearchPage) -> dict[str, object]:
    return {
        "results": [
            {"message": message_json(r.message), "highlights": [list(h) for h in r.highlights]}
            for r in page.results
        ],
        "next_cursor": page.next_cursor,
        "counts": [{"conversation_id": c.conversation_id, "count": c.count} for c in page.counts],
        "counts_capped": page.counts_capped,
    }


def status_json(status: IndexStatus) -> dict[str, object]:
    last = status.last_indexed_at
    return {
        "documents": status.documents,
        "pending_jobs": status.pending_jobs,
        "last_indexed_at": None if last is None else rfc3339(last),
    }


@router.get("/search", response_model=SearchOut)
async def search(
    svc: Svc,
    me: Auth,
    q: Annotated[str, Query(max_length=MAX_Q_WIRE, description="the query (docs/search.md)")],
    conversation_id: Annotated[str | None, Query(max_length=MAX_ID_WIRE)] = None,
    order: Literal["newest", "relevance"] = "newest",
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_ID_WIRE)] = None,
) -> Response:
    """Messages the caller may see that match `q`, newest first or by relevance."""
    page = await svc.search.search(
        me.user, q, conversation_id=conversation_id, order=order, limit=limit, cursor=cursor
    )
    return json(page_json(page))


@router.get("/admin/search/status", response_model=IndexStatusOut)
async def search_status(svc: Svc, me: Auth) -> Response:
    """The index: its documents, the index jobs waiting, its last write (admins)."""
    return json(status_json(await svc.search.status(me.user)))


@router.post("/admin/search/reindex", response_model=ReindexOut, status_code=202)
async def search_reindex(svc: Svc, me: Auth) -> Response:
    """Rebuild the index from the messages, online, in the background of this node
    (admins; `tidings search reindex` does it with a progress bar; status shows the
    documents as they come)."""
    return json({"started": svc.search.start_reindex(me.user)}, 202)
