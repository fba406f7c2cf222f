"""REST for server plugins (admins): which are loaded, their hooks and counts. Thin."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from tidings.api.routes import ERRORS, Auth, Svc, json

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class HookCountsOut(BaseModel):
    calls: int
    refused: int
    replaced: int
    errors: int
    timeouts: int


class PluginOut(BaseModel):
    name: str
    source: str
    hooks: list[str]
    fail_closed: bool
    before_message: HookCountsOut


class PluginsOut(BaseModel):
    plugins: list[PluginOut]
    timeout_seconds: float


@router.get("/admin/plugins", response_model=PluginsOut, tags=["admin"])
async def plugins(svc: Svc, me: Auth) -> Response:
    """The server plugins this node loaded (the `plugins` setting), in the order their
    hooks run, with counts since the node started: admins only."""
    return json(
        {"plugins": svc.plugins.enabled(me.user), "timeout_seconds": svc.plugins.timeout}
    )
