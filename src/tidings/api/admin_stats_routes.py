"""Admin REST of usage statistics (the admin console's Usage page). Thin: the checks
are the usage service's (admins only; days capped by usage_stats_max_days)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.responses import Response

from tidings.api.routes import ERRORS, Auth, Svc, json

router = APIRouter(prefix="/api/v1/admin/stats", responses=ERRORS, tags=["administration"])


class DayUsageOut(BaseModel):
    day: str  # YYYY-MM-DD, a UTC day
    messages: int
    active_users: int  # distinct people (not bots) who sent a message that day


class StorageOut(BaseModel):
    database_bytes: int
    blob_bytes: int


class UsageOut(BaseModel):
    days: list[DayUsageOut]
    storage: StorageOut


@router.get("/usage", response_model=UsageOut)
async def usage_stats(
    svc: Svc,
    me: Auth,
    days: Annotated[int, Query(ge=1, le=3660, description="the last N UTC days")] = 30,
) -> Response:
    """Messages and active users per day (oldest first, today last) and storage.
    Admins only; `days` at most the setting usage_stats_max_days."""
    stats = await svc.usage.usage(me.user, days)
    return json(
        {
            "days": [
                {"day": d.day.isoformat(), "messages": d.messages, "active_users": d.active_users}
                for d in stats.days
            ],
            "storage": {"database_bytes": stats.database_bytes, "blob_bytes": stats.blob_bytes},
        }
    )
