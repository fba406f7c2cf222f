"""Avatars: a user's picture, cut from an image they uploaded (POST /files).

Set: only one's own upload, once the job after the upload (workers/files.py) has made
its preview: that job has already done the work on hostile bytes (the sniffed type,
the decompression-bomb check before any pixel is decoded, EXIF orientation, the
re-encoding from pixels only), so an avatar is cut from the preview (at most
`image_preview_px`, our own bytes) and not from the original. That costs a few
milliseconds in the image thread (the same pool, at a lower priority than the event
loop), so it is done in the request and the answer is the user with the new avatar:
no pending state for clients to show. A file still processing is `conflict` (try again
in a moment), a file without a preview (no image, an SVG, a bomb, a truncated file) is
`unsupported_media_type`, over `avatar_max_bytes` is `too_large`.

Two square renditions (256 and 64 px, center-cropped) are stored content-addressed
(`a/<sha256 of the large one>/<px>`: the same picture set twice, or by two users, is
one pair of blobs). The avatar's `id` is opaque and new at every change: it is in the
avatar's URL, which is therefore immutable (cached for a year) and changes when the
avatar does; it is a capability handed out only with the user object, and it stops
working the moment the avatar changes or is removed.

Who sees it: the user object carries it (`user_updated` to every conversation of the
user, as a rename); `GET /users/{uid}/avatar` with a token: members and admins see
anyone's (as they see presence and the directory); a guest its own and those of
people it shares a conversation with (whose user objects and events it gets there);
others `not_found`, and the user
objects a guest looks up of anyone else carry `avatar: null` (`shown_to`).

Audit: one's own change is `user_updated` with `fields: ["avatar"]`, as every profile
change; an admin's removal of someone's avatar is `avatar_removed`."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace

import structlog

from tidings.blobs.ports import BlobMissing, BlobStore
from tidings.core.audit import AuditAction
from tidings.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from tidings.core.models import Avatar, FileStatus, Session, User
from tidings.core.rules import check_admin, sees_everyones_presence
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.profile import announce
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)

SIZES = (256, 64)  # px: the large and the small rendition (?size=)
PREVIEW_READ_LIMIT = 32 * 1024 * 1024  # a preview is at most image_preview_px: far less

# (data, content_type) of the preview -> [(data, content_type)] per SIZES; Pillow in a
# thread (workers/files.py: MediaProcessor.avatar)
Renderer = Callable[[bytes, str, Sequence[int]], Awaitable[list[tuple[bytes, str]]]]


def avatar_key(sha256: str, px: int) -> str:
    return f"a/{sha256}/{px}"


def check_size(size: int) -> int:
    if size not in SIZES:
        raise InvalidRequest(f"size is one of {', '.join(map(str, SIZES))}", field="size")
    return size


class AvatarService:
    def __init__(self, deps: Deps, blobs: BlobStore | None, limiter: RateLimiter) -> None:
        self.d = deps
        self.blobs = blobs
        self.limiter = limiter
        self._renderer: Renderer | None = None

    def set_renderer(self, renderer: Renderer) -> None:
        self._renderer = renderer

    def _store(self) -> BlobStore:
        if self.blobs is None:
            raise Unavailable("this server stores no files (no blob store)")
        return self.blobs

    # --- set and remove ------------------------------------------------------------------
    async def set(self, session: Session, file_id: str) -> User:
        """Make the caller's avatar from their upload `file_id`."""
        user = session.user
        await self.limiter.check(Action.MEMBERSHIP, user.id, None)  # fans out as a rename
        store = self._store()
        async with self.d.store.read() as tx:
            file = await tx.get_file(file_id)
        if file is None or file.uploader_id != user.id or file.status is FileStatus.QUARANTINED:
            raise NotFound("file not found", file_id=file_id)
        limit = self.d.files.avatar_max_bytes
        if file.size > limit:
            raise TooLarge(f"an avatar's image is at most {limit} bytes", limit=limit)
        if file.status is FileStatus.PROCESSING:
            raise Conflict("this upload is still being processed: try again in a moment")
        if not file.preview_key or self._renderer is None:
            raise UnsupportedMediaType(
                "an avatar is made from a PNG, JPEG, GIF or WebP image this server can show"
            )
        try:
            preview = await _read_all(store.read(file.preview_key), PREVIEW_READ_LIMIT)
        except BlobMissing:
            raise NotFound("file not found", file_id=file_id) from None
        kind = "image/webp" if file.preview_key.endswith(".webp") else "image/jpeg"
        renditions = await self._renderer(preview, kind, SIZES)
        sha256 = hashlib.sha256(renditions[0][0]).hexdigest()
        for px, (data, _type) in zip(SIZES, renditions, strict=True):
            await store.put(avatar_key(sha256, px), data)
        now = self.d.clock.now()
        avatar = Avatar(secrets.token_hex(16), now, sha256, renditions[0][1])
        async with self.d.store.write() as tx:
            before = await tx.get_user(user.id)
            if before is None:
                raise NotFound("user not found", user_id=user.id)
            await tx.set_avatar(user.id, avatar)
            after = await tx.get_user(user.id)
            assert after is not None
            await record(
                tx,
                self.d.clock,
                AuditAction.USER_UPDATED,
                actor_id=user.id,
                target_id=user.id,
                details={"fields": ["avatar"], "file_id": file_id},
            )
            await announce(tx, self.d.bus, after, now)
        await self._drop_unused(before.avatar, avatar)
        log.info("avatar_set", user_id=user.id, file_id=file_id)
        return after

    async def remove(self, actor: User, user_id: str) -> User:
        """Remove `user_id`'s avatar: one's own, or anyone's by an admin (moderation,
        audited as `avatar_removed`). No avatar: the user as they are."""
        if actor.id != user_id:
            check_admin(actor, "remove someone's avatar")
        await self.limiter.check(Action.MEMBERSHIP, actor.id, None)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            before = await tx.get_user(user_id)
            if before is None:
                raise NotFound("user not found", user_id=user_id)
            if before.avatar is None:
                return before
            await tx.set_avatar(user_id, None)
            after = await tx.get_user(user_id)
            assert after is not None
            own = actor.id == user_id
            await record(
                tx,
                self.d.clock,
                AuditAction.USER_UPDATED if own else AuditAction.AVATAR_REMOVED,
                actor_id=actor.id,
                target_id=user_id,
                details={"fields": ["avatar"]} if own else {"username": before.username},
            )
            await announce(tx, self.d.bus, after, now)
        await self._drop_unused(before.avatar, None)
        return after

    async def _drop_unused(self, old: Avatar | None, new: Avatar | None) -> None:
        """The blobs of an avatar no user has any more (after the commit). A user who
        sets the very same picture at this instant puts its blobs again before their
        commit, so at worst their avatar misses its bytes until set again."""
        if old is None or (new is not None and new.sha256 == old.sha256) or self.blobs is None:
            return
        async with self.d.store.read() as tx:
            if await tx.avatar_in_use(old.sha256):
                return
        for px in SIZES:
            await self.blobs.delete(avatar_key(old.sha256, px))

    # --- read ----------------------------------------------------------------------------
    async def visible(self, viewer: User, user_id: str) -> User:
        """The user, when `viewer` may see their avatar and they have one; else NotFound
        (as for a user that does not exist)."""
        async with self.d.store.read() as tx:
            target = await tx.get_user(user_id)
            seen = target is not None and user_id in await _seen(tx, viewer, [user_id])
        if target is None or not seen or target.avatar is None:
            raise NotFound("no avatar", user_id=user_id)
        return target

    async def shown_to(self, viewer: User, users: Sequence[User]) -> list[User]:
        """`users` as `viewer` may see them: the avatar left out of those whose avatar it
        may not see (a guest looking up a stranger), so that its URL is not handed out."""
        if sees_everyones_presence(viewer) or not any(u.avatar for u in users):
            return list(users)
        async with self.d.store.read() as tx:
            seen = await _seen(tx, viewer, [u.id for u in users if u.avatar is not None])
        return [u if u.id in seen or u.avatar is None else replace(u, avatar=None) for u in users]

    async def by_id(self, user_id: str, avatar_id: str) -> User:
        """The user whose current avatar `avatar_id` is (its URL: no token); an old or
        made-up id is NotFound."""
        async with self.d.store.read() as tx:
            target = await tx.get_user(user_id)
        if (
            target is None
            or target.avatar is None
            or not secrets.compare_digest(target.avatar.id.encode(), avatar_id.encode())
        ):
            raise NotFound("no avatar", user_id=user_id)
        return target

    async def size_of(self, avatar: Avatar, px: int) -> int:
        try:
            return await self._store().size(avatar_key(avatar.sha256, px))
        except BlobMissing:
            raise NotFound("no avatar") from None

    async def read(self, avatar: Avatar, px: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._store().read(avatar_key(avatar.sha256, px)):
                yield chunk
        except BlobMissing:
            raise NotFound("no avatar") from None


async def _seen(tx: Tx, viewer: User, user_ids: Sequence[str]) -> set[str]:
    """Which of `user_ids` `viewer` may see the avatar of: members and admins anyone's
    (as they see presence and the directory), a guest its own and those of the people
    it shares a conversation with (whose user objects, with their `user_updated`
    events, it is given there)."""
    if sees_everyones_presence(viewer):
        return set(user_ids)
    others = [u for u in user_ids if u != viewer.id]
    shared = await tx.sharing_a_conversation(viewer.id, others)
    return shared | ({viewer.id} & set(user_ids))


async def _read_all(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise UnsupportedMediaType("this image's preview is too large")
    return bytes(data)
