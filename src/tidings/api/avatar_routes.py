"""REST routes of avatars (services/avatars.py; docs/protocol.md "Avatars"): set and
remove one's own, an admin's removal, and the images. An image is served as the files'
are (nosniff, a sandbox CSP), always as image/jpeg or image/webp (our own re-encoding),
with the content address as its ETag; by its URL (no token: an <img> sends none) it is
immutable and cached for a year, since the URL changes with the avatar."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from tidings.api import schemas as s
from tidings.api.file_routes import FILE_CSP
from tidings.api.routes import ERRORS, Auth, Svc, json
from tidings.core.models import User
from tidings.protocol.wire import user_json
from tidings.services.avatars import SIZES, check_size

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["users"])

_IMAGE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"image/jpeg": {}, "image/webp": {}}, "description": "the image"},
    304: {"description": "not modified (If-None-Match)"},
}
_SIZE = Query(description=f"pixels: one of {', '.join(map(str, SIZES))}")


@router.put("/users/me/avatar", response_model=s.UserEnvelope)
async def set_avatar(body: s.AvatarIn, svc: Svc, me: Auth) -> Response:
    """Make your avatar from one of your image uploads, once processed (`conflict`
    before). Square renditions of 256 and 64 px, center-cropped, without metadata.
    Others see it as `user_updated` events."""
    user = await svc.avatars.set(me, body.file_id)
    return json({"user": user_json(user, svc.deps.clock.now())})


@router.delete("/users/me/avatar", response_model=s.UserEnvelope)
async def remove_my_avatar(svc: Svc, me: Auth) -> Response:
    user = await svc.avatars.remove(me.user, me.user.id)
    return json({"user": user_json(user, svc.deps.clock.now())})


@router.delete("/users/{uid}/avatar", response_model=s.UserEnvelope)
async def remove_avatar(uid: str, svc: Svc, me: Auth) -> Response:
    """An admin removes someone's avatar (moderation; audited as `avatar_removed`)."""
    user = await svc.avatars.remove(me.user, uid)
    return json({"user": user_json(user, svc.deps.clock.now())})


@router.get("/users/{uid}/avatar", response_class=Response, responses=_IMAGE_RESPONSES)
async def get_avatar(
    uid: str,
    request: Request,
    svc: Svc,
    me: Auth,
    size: Annotated[int, _SIZE] = SIZES[0],
) -> Response:
    """The user's avatar: members and admins see anyone's, a guest those of people it
    shares a conversation with; others, and a user without one, `not_found`."""
    px = check_size(size)
    user = await svc.avatars.visible(me.user, uid)
    return await _serve(request, svc, user, px, "private, no-cache")


@router.get("/users/{uid}/avatar/{avatar_id}", response_class=Response, responses=_IMAGE_RESPONSES)
async def get_avatar_by_url(
    uid: str,
    avatar_id: str,
    request: Request,
    svc: Svc,
    size: Annotated[int, _SIZE] = SIZES[0],
) -> Response:
    """The avatar's URL (the user object's `avatar.url`): no token; `not_found` once the
    avatar has changed or been removed."""
    px = check_size(size)
    user = await svc.avatars.by_id(uid, avatar_id[:64])
    return await _serve(request, svc, user, px, "private, max-age=31536000, immutable")


async def _serve(request: Request, svc: Svc, user: User, px: int, cache: str) -> Response:
    avatar = user.avatar
    assert avatar is not None  # the service answers only users with one
    etag = f'"{avatar.sha256}.{px}"'
    headers = {
        "etag": etag,
        "cache-control": cache,
        "x-content-type-options": "nosniff",
        "content-security-policy": FILE_CSP,
        "cross-origin-resource-policy": "same-site",
        "content-disposition": "inline",
    }
    wanted = {
        t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")
    }
    if etag in wanted:
        return Response(status_code=304, headers=headers)
    size = await svc.avatars.size_of(avatar, px)
    headers["content-length"] = str(size)
    content_type = "image/webp" if avatar.content_type == "image/webp" else "image/jpeg"
    return StreamingResponse(svc.avatars.read(avatar, px), headers=headers, media_type=content_type)
