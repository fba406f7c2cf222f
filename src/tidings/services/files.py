"""Files: upload (streamed into the blob store, hashed and sniffed on the way), who may
read one, signed links, a conversation's files, per-user usage, and the collection of
what nothing references.

An upload is never held whole: its chunks go to a BlobWriter as they come, hashed
(SHA-256) and counted; over `max_upload_bytes` (or the user's quota) it stops at once,
the writer is aborted and nothing is left. The first SNIFF_BYTES say the content type
(core/files.py), checked against the allowed and blocked lists before more is stored.
The metadata row, the blob's row (content addressing: when the same bytes are stored
already, the new blob is dropped and the stored one shared), the outbox job
`file_uploaded` and the audit entry commit in one transaction.

Access: the uploader, and the members of a conversation where a message (not recalled)
carries the file and who may read that message; everyone else gets `not_found`, like a
file that does not exist."""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from tidings.blobs.ports import BlobMissing, BlobStore
from tidings.core.audit import AuditAction
from tidings.core.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from tidings.core.events import FileUpdated
from tidings.core.files import (
    INLINE_TYPES,
    SNIFF_BYTES,
    TAIL_BYTES,
    derived_keys,
    ends_cleanly,
    parse_types,
    riff_size_matches,
    sanitize_file_name,
    sniff,
    type_allowed,
)
from tidings.core.jobs import Job, JobPolicy
from tidings.core.models import FileId, FileInfo, FileStatus, User
from tidings.core.rules import check_admin, visible_seq_limit
from tidings.services.access import access_conversation
from tidings.services.audit import record
from tidings.services.context import Deps, FileLimits
from tidings.services.events import EventBatch
from tidings.services.jobs import JobService
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import ConversationFile, FileUsage, StoredBlob

log = structlog.get_logger(__name__)

FILE_UPLOADED_JOB = "file_uploaded"
FILES_GC_JOB = "files_gc"
BLOB_PREFIX = "f/"  # uploads' blobs; derived ones (thumbnails) are the media job's
LINK_PURPOSE = "file"
VARIANTS = ("original", "thumbnail", "preview")
GC_BATCH = 500

# What the job after an upload does (files-media plugs its own: image sizes,
# thumbnails, a scan); the default marks the file ready.
Processor = Callable[[FileInfo], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SignedLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Collected:
    files: int
    blobs: int
    bytes: int


class FileService:
    def __init__(
        self, deps: Deps, jobs: JobService, blobs: BlobStore | None, limiter: RateLimiter
    ) -> None:
        self.d = deps
        self.jobs = jobs
        self.blobs = blobs
        self.limiter = limiter
        self._processor: Processor = self._mark_ready
        jobs.register(FILE_UPLOADED_JOB, self._on_uploaded, JobPolicy(timeout_seconds=300))
        jobs.register(FILES_GC_JOB, self._on_gc, JobPolicy(max_attempts=3, timeout_seconds=1800))

    @property
    def limits(self) -> FileLimits:
        """The file limits in force (an admin may change them at run time:
        Deps.put_limits), read at each check."""
        return self.d.files

    # --- the job after an upload ----------------------------------------------------------
    def set_processor(self, processor: Processor) -> None:
        """What the `file_uploaded` job does with a new file (files-media: sizes,
        thumbnails, scans); it records its outcome with `mark_processed`."""
        self._processor = processor

    async def _on_uploaded(self, job: Job) -> None:
        file_id = str(job.payload.get("file_id", ""))
        async with self.d.store.read() as tx:
            file = await tx.get_file(file_id)
        if file is None:  # collected meanwhile
            return
        await self._processor(file)

    async def _mark_ready(self, file: FileInfo) -> None:
        """The default processor: a file still processing is ready (what another
        writer recorded meanwhile is kept)."""
        async with self.d.store.write() as tx:
            now = await tx.get_file(file.id)
            if now is not None and now.status is FileStatus.PROCESSING:
                await tx.update_file(
                    now.id,
                    status=FileStatus.READY,
                    width=now.width,
                    height=now.height,
                    thumb_key=now.thumb_key,
                    preview_key=now.preview_key,
                )

    async def mark_processed(
        self,
        file_id: str,
        status: FileStatus,
        *,
        width: int | None = None,
        height: int | None = None,
        thumb_key: str | None = None,
        preview_key: str | None = None,
        if_processing: bool = False,
    ) -> FileInfo | None:
        """Record what the job after an upload found and made; the file as it is now.
        Every message (not recalled) that carries it gets a `file_updated` event in the
        same transaction, so a client that holds the message shows its thumbnail (or
        its quarantine) without fetching it again. `if_processing`: only while the file
        is still `processing` (what another writer recorded meanwhile is kept, and
        nothing is told)."""
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            if if_processing:
                current = await tx.get_file(file_id)
                if current is None or current.status is not FileStatus.PROCESSING:
                    return current
            await tx.update_file(
                file_id,
                status=status,
                width=width,
                height=height,
                thumb_key=thumb_key,
                preview_key=preview_key,
            )
            file = await tx.get_file(file_id)
            if file is not None:
                carriers = await tx.messages_with_file(file_id)
                if carriers:
                    batch = EventBatch(tx, self.d.bus, now)
                    for conversation_id, seq in carriers:
                        batch.add(FileUpdated(conversation_id, seq, file, now))
                    await batch.flush()
            return file

    # --- upload ---------------------------------------------------------------------------
    def _store(self) -> BlobStore:
        if self.blobs is None:
            raise Unavailable("this server stores no files (no blob store)")
        return self.blobs

    async def upload(
        self,
        user: User,
        name: str,
        declared_type: str | None,
        chunks: AsyncIterable[bytes],
        *,
        address: str | None = None,
    ) -> FileInfo:
        """Store the bytes of `chunks` as a new upload of `user` named `name`. Refused
        (TooLarge, UnsupportedMediaType, RateLimited) with nothing left behind; a
        failure of `chunks` itself (the client went away) leaves nothing either."""
        await self.limiter.check(Action.UPLOAD, user.id, address)
        store = self._store()
        limits = self.limits
        clean_name = sanitize_file_name(name, limits.max_file_name_chars)
        quota = limits.upload_quota_bytes
        used = 0
        if quota:
            async with self.d.store.read() as tx:
                used = await tx.uploaded_bytes(user.id)
            if used >= quota:
                raise TooLarge(
                    f"your upload quota of {quota} bytes is used up", limit=quota, used=used
                )
        writer = await store.writer(prefix=BLOB_PREFIX)
        digest = hashlib.sha256()
        size = 0
        head = bytearray()
        tail = b""
        content_type: str | None = None
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limits.max_upload_bytes:
                    raise TooLarge(
                        f"file over {limits.max_upload_bytes} bytes (max_upload_bytes)",
                        limit=limits.max_upload_bytes,
                    )
                if quota and used + size > quota:
                    raise TooLarge(
                        f"this file would go over your upload quota of {quota} bytes",
                        limit=quota,
                        used=used,
                    )
                if content_type is None:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        content_type = self._check_type(bytes(head), declared_type)
                digest.update(chunk)
                tail = (tail + chunk)[-TAIL_BYTES:]
                await writer.write(chunk)
            if content_type is None:
                content_type = self._check_type(bytes(head), declared_type)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        sha256 = digest.hexdigest()
        inline = content_type in INLINE_TYPES and (
            riff_size_matches(bytes(head), size)
            if content_type == "image/webp"
            else ends_cleanly(content_type, tail)
        )
        file_id = FileId(self.d.ids.new_id())
        now = self.d.clock.now()
        shared = False
        try:
            async with self.d.store.write() as tx:
                if quota and await tx.uploaded_bytes(user.id) + size > quota:
                    # uploads of this user that committed meanwhile
                    raise TooLarge(
                        f"this file would go over your upload quota of {quota} bytes",
                        limit=quota,
                    )
                blob = await tx.blob_by_sha256(sha256)
                if blob is None:
                    await tx.insert_blob(StoredBlob(sha256, writer.key, size), now)
                    key = writer.key
                else:
                    key, shared = blob.blob_key, True
                file = FileInfo(
                    id=file_id,
                    uploader_id=user.id,
                    name=clean_name,
                    size=size,
                    content_type=content_type,
                    sha256=sha256,
                    blob_key=key,
                    created_at=now,
                    status=FileStatus.PROCESSING,
                    inline_safe=inline,
                )
                await tx.insert_file(file)
                await self.jobs.enqueue(
                    tx, FILE_UPLOADED_JOB, {"file_id": file_id}, job_id=f"file_uploaded:{file_id}"
                )
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.FILE_UPLOADED,
                    actor_id=user.id,
                    target_id=file_id,
                    details={
                        "name": clean_name,
                        "size": size,
                        "content_type": content_type,
                        "sha256": sha256,
                        "deduplicated": shared,
                    },
                )
        except BaseException:
            await store.delete(writer.key)
            raise
        if shared:  # the same bytes were stored already: keep one copy
            await store.delete(writer.key)
        log.info("file_uploaded", file_id=file_id, size=size, content_type=content_type)
        return file

    def _check_type(self, head: bytes, declared: str | None) -> str:
        content_type = sniff(head, declared)
        limits = self.limits  # the lists in force (an admin may change them)
        allowed = parse_types(limits.upload_allowed_types)
        if not type_allowed(content_type, allowed, parse_types(limits.upload_blocked_types)):
            raise UnsupportedMediaType(
                f"files of type {content_type} may not be uploaded here "
                "(upload_allowed_types, upload_blocked_types)"
            )
        return content_type

    # --- access ---------------------------------------------------------------------------
    async def get(self, user: User, file_id: str) -> FileInfo:
        """The file, when `user` may see it; else NotFound (as for a missing one)."""
        async with self.d.store.read() as tx:
            file = await tx.get_file(file_id)
            if file is not None and (
                file.uploader_id == user.id or await tx.can_see_file(file_id, user.id)
            ):
                return file
        raise NotFound("file not found", file_id=file_id)

    def key_of(self, file: FileInfo, variant: str) -> str:
        """The blob key of one variant of a file; NotFound when it has none (yet)."""
        if file.status is FileStatus.QUARANTINED:
            raise NotFound("file not found", file_id=file.id)
        if variant == "original":
            return file.blob_key
        key = file.thumb_key if variant == "thumbnail" else file.preview_key
        if variant not in VARIANTS or not key:
            raise NotFound(f"this file has no {variant} (yet)", file_id=file.id)
        return key

    async def size_of(self, key: str) -> int:
        try:
            return await self._store().size(key)
        except BlobMissing:
            raise NotFound("file not found") from None

    async def read(self, key: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of a blob, in chunks (BlobMissing: NotFound)."""
        try:
            async for chunk in self._store().read(key, start, end):
                yield chunk
        except BlobMissing:
            raise NotFound("file not found") from None

    # --- signed links ---------------------------------------------------------------------
    async def link(self, user: User, file_id: str, variant: str = "original") -> SignedLink:
        """A URL that reads this file (variant) without a token until it expires. The
        expiry is rounded up to the minute, so that links made within one minute are
        the same URL (one entry in a CDN's cache)."""
        if variant not in VARIANTS:
            raise InvalidRequest("variant is original, thumbnail or preview", field="variant")
        file = await self.get(user, file_id)
        self.key_of(file, variant)  # NotFound when there is none (yet)
        now = self.d.clock.now().timestamp()
        expires = math.ceil((now + self.limits.file_link_ttl_seconds) / 60) * 60
        signature = self.d.keyring.sign_link(LINK_PURPOSE, _link_subject(file.id, variant, expires))
        url = f"/api/v1/files/{file.id}/signed?variant={variant}&expires={expires}&sig={signature}"
        return SignedLink(url, datetime.fromtimestamp(expires, tz=UTC))

    async def open_signed(
        self, file_id: str, variant: str, expires: int, signature: str
    ) -> tuple[FileInfo, int]:
        """The file a signed link names, and the seconds its link still works. A link
        altered in any part, or expired, is NotFound (nothing told apart)."""
        now = self.d.clock.now().timestamp()
        subject = _link_subject(file_id, variant, expires)
        if (
            variant not in VARIANTS
            or not self.d.keyring.link_is_signed(LINK_PURPOSE, subject, signature)
        ):
            raise NotFound("file not found (this link is not valid)", file_id=file_id)
        if expires <= now:
            raise Forbidden("this file link has expired: ask for a new one")
        async with self.d.store.read() as tx:
            file = await tx.get_file(file_id)
        if file is None:
            raise NotFound("file not found", file_id=file_id)
        return file, int(expires - now)

    # --- lists and usage ------------------------------------------------------------------
    async def conversation_files(
        self, user: User, conversation_id: str, *, before_seq: int | None, limit: int
    ) -> tuple[list[ConversationFile], int | None]:
        """The files of a conversation's messages, newest first; the cursor of the next
        page (a seq: the files of messages before it), None when this is the last. A
        message's files are never split across pages."""
        limit = max(limit, self.limits.max_attachments_per_message, 1)
        async with self.d.store.read() as tx:
            _conv, member = await access_conversation(tx, user, conversation_id, allow_left=True)
            rows = await tx.conversation_files(
                conversation_id,
                before_seq=before_seq,
                max_seq=visible_seq_limit(member),
                limit=limit + 1,
                min_seq=member.first_seq,
            )
        if len(rows) <= limit:
            return rows, None
        last_seq = rows[limit].seq  # the first row left out: its message goes whole
        page = [r for r in rows[:limit] if r.seq != last_seq]
        if not page:
            page = rows[:limit]
        return page, page[-1].seq

    async def usage(self, actor: User | None) -> list[tuple[FileUsage, str | None]]:
        """Every uploader's files and bytes with their username (None: deleted), the
        most bytes first (admins; None: the command line)."""
        check_admin(actor, "see storage usage")
        async with self.d.store.read() as tx:
            usage = await tx.file_usage()
            users = await tx.get_users([u.user_id for u in usage])
        names = {u.id: u.username for u in users}
        return [(u, names.get(u.user_id)) for u in usage]

    # --- collection -----------------------------------------------------------------------
    async def _on_gc(self, job: Job) -> None:
        await self.collect(None)

    async def collect(self, actor: User | None) -> Collected:
        """Delete the uploads that no message (not recalled) carries, older than
        `files_gc_grace_seconds`, then the blobs no upload references (their bytes
        after the commit). Admins (None: the worker or the command line)."""
        check_admin(actor, "collect files")
        store = self._store()
        before = self.d.clock.now() - timedelta(seconds=self.limits.files_gc_grace_seconds)
        files = blobs = freed = 0
        while True:
            async with self.d.store.write() as tx:
                gone = await tx.collectable_files(before, GC_BATCH)
                await tx.delete_files([f.id for f in gone])
                derived = [k for f in gone for k in (f.thumb_key, f.preview_key) if k]
                # a thumbnail another upload of the same bytes still names stays
                shared = await tx.derived_keys_in_use(derived) if derived else set()
            for key in derived:
                if key not in shared:
                    await store.delete(key)
            files += len(gone)
            if len(gone) < GC_BATCH:
                break
        while True:
            async with self.d.store.write() as tx:
                orphans = await tx.orphan_blobs(GC_BATCH)
                await tx.delete_blob_rows([b.sha256 for b in orphans])
            for blob in orphans:  # no row names it any more: no upload can share it now
                await store.delete(blob.blob_key)
                for key in derived_keys(blob.sha256):  # its thumbnails, if any
                    await store.delete(key)
                freed += blob.size
            blobs += len(orphans)
            if len(orphans) < GC_BATCH:
                break
        if files or blobs:
            async with self.d.store.write() as tx:
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.FILES_COLLECTED,
                    actor_id=None if actor is None else actor.id,
                    details={"files": files, "blobs": blobs, "bytes": freed},
                )
            log.info("files_collected", files=files, blobs=blobs, bytes=freed)
        return Collected(files, blobs, freed)


def _link_subject(file_id: str, variant: str, expires: int) -> str:
    return f"{file_id}\n{variant}\n{expires}"

