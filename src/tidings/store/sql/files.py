"""The files aggregate: uploads, the blobs they share (one per sha256), and the files
messages carry (message_attachments, written with the messages by messages.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, false, func, insert, or_, select, update

from tidings.core.models import ConversationId, FileId, FileInfo, FileStatus, UserId
from tidings.store.ports import ConversationFile, FileUsage, StoredBlob
from tidings.store.sql import schema as t
from tidings.store.sql.tx import TxBase, utc

IN_CHUNK = 500
F = t.files.c
A = t.message_attachments.c
M = t.messages.c


def file_of(row: Any) -> FileInfo:
    return FileInfo(
        id=FileId(row.id),
        uploader_id=UserId(row.uploader_id),
        name=row.name,
        size=int(row.size),
        content_type=row.content_type,
        sha256=row.sha256,
        blob_key=row.blob_key,
        created_at=utc(row.created_at),
        status=FileStatus(row.status),
        inline_safe=bool(row.inline_safe),
        width=None if row.width is None else int(row.width),
        height=None if row.height is None else int(row.height),
        thumb_key=row.thumb_key,
        preview_key=row.preview_key,
    )


def _carried() -> Any:
    """Attachment rows whose message is not recalled."""
    return and_(M.conversation_id == A.conversation_id, M.seq == A.seq, M.deleted == false())


class FileQueries(TxBase):
    async def blob_by_sha256(self, sha256: str) -> StoredBlob | None:
        b = t.blobs.c
        row = (await self.conn.execute(select(t.blobs).where(b.sha256 == sha256))).first()
        return None if row is None else StoredBlob(row.sha256, row.blob_key, int(row.size))

    async def insert_blob(self, blob: StoredBlob, now: datetime) -> None:
        await self.conn.execute(
            insert(t.blobs).values(
                sha256=blob.sha256, blob_key=blob.blob_key, size=blob.size, created_at=now
            )
        )

    async def insert_file(self, file: FileInfo) -> None:
        await self.conn.execute(
            insert(t.files).values(
                id=file.id,
                uploader_id=file.uploader_id,
                name=file.name,
                size=file.size,
                content_type=file.content_type,
                sha256=file.sha256,
                blob_key=file.blob_key,
                status=file.status.value,
                inline_safe=file.inline_safe,
                width=file.width,
                height=file.height,
                thumb_key=file.thumb_key,
                preview_key=file.preview_key,
                created_at=file.created_at,
            )
        )

    async def get_file(self, file_id: str) -> FileInfo | None:
        row = (await self.conn.execute(select(t.files).where(F.id == file_id))).first()
        return None if row is None else file_of(row)

    async def files_by_ids(self, file_ids: Sequence[str]) -> dict[str, FileInfo]:
        found: dict[str, FileInfo] = {}
        unique = list(dict.fromkeys(file_ids))
        for start in range(0, len(unique), IN_CHUNK):
            chunk = unique[start : start + IN_CHUNK]
            for row in await self.conn.execute(select(t.files).where(F.id.in_(chunk))):
                found[row.id] = file_of(row)
        return found

    async def uploaded_bytes(self, user_id: str) -> int:
        total = (
            await self.conn.execute(
                select(func.coalesce(func.sum(F.size), 0)).where(F.uploader_id == user_id)
            )
        ).scalar()
        return int(total or 0)

    async def can_see_file(self, file_id: str, user_id: str) -> bool:
        mb = t.members.c
        stmt = (
            select(A.seq)
            .select_from(
                t.message_attachments.join(t.messages, _carried()).join(
                    t.members,
                    and_(mb.conversation_id == A.conversation_id, mb.user_id == user_id),
                )
            )
            .where(
                A.file_id == file_id,
                or_(mb.left_seq.is_(None), A.seq <= mb.left_seq),
                A.seq >= mb.first_seq,
            )
            .limit(1)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def conversation_files(
        self,
        conversation_id: str,
        *,
        before_seq: int | None,
        max_seq: int | None,
        limit: int,
        min_seq: int = 1,
    ) -> list[ConversationFile]:
        stmt = (
            select(t.files, A.seq.label("at_seq"), M.sender_id, M.created_at.label("sent_at"))
            .select_from(
                t.message_attachments.join(t.messages, _carried()).join(t.files, F.id == A.file_id)
            )
            .where(A.conversation_id == conversation_id)
        )
        if before_seq is not None:
            stmt = stmt.where(A.seq < before_seq)
        if max_seq is not None:
            stmt = stmt.where(A.seq <= max_seq)
        if min_seq > 1:
            stmt = stmt.where(A.seq >= min_seq)
        stmt = stmt.order_by(A.seq.desc(), A.position).limit(limit)
        return [
            ConversationFile(file_of(r), int(r.at_seq), UserId(r.sender_id), utc(r.sent_at))
            for r in await self.conn.execute(stmt)
        ]

    async def messages_with_file(self, file_id: str) -> list[tuple[ConversationId, int]]:
        stmt = (
            select(A.conversation_id, A.seq)
            .select_from(t.message_attachments.join(t.messages, _carried()))
            .where(A.file_id == file_id)
            .order_by(A.conversation_id, A.seq)
        )
        rows = await self.conn.execute(stmt)
        return [(ConversationId(r.conversation_id), int(r.seq)) for r in rows]

    async def update_file(
        self,
        file_id: str,
        *,
        status: FileStatus,
        width: int | None = None,
        height: int | None = None,
        thumb_key: str | None = None,
        preview_key: str | None = None,
    ) -> bool:
        done = await self.conn.execute(
            update(t.files)
            .where(F.id == file_id)
            .values(
                status=status.value,
                width=width,
                height=height,
                thumb_key=thumb_key,
                preview_key=preview_key,
            )
        )
        return bool(done.rowcount)

    async def file_usage(self) -> list[FileUsage]:
        total = func.sum(F.size)
        stmt = (
            select(F.uploader_id, func.count(), total)
            .group_by(F.uploader_id)
            .order_by(total.desc(), F.uploader_id)
        )
        return [
            FileUsage(UserId(uid), int(count), int(size or 0))
            for uid, count, size in await self.conn.execute(stmt)
        ]

    async def collectable_files(self, created_before: datetime, limit: int) -> list[FileInfo]:
        carried = exists(
            select(A.seq)
            .select_from(t.message_attachments.join(t.messages, _carried()))
            .where(A.file_id == F.id)
        )
        s, w = t.scheduled_attachments.c, t.scheduled_messages.c
        scheduled = exists(  # named by a scheduled message not sent yet
            select(s.position)
            .select_from(
                t.scheduled_attachments.join(
                    t.scheduled_messages,
                    and_(w.sender_id == s.sender_id, w.id == s.scheduled_id),
                )
            )
            .where(s.file_id == F.id, w.state.in_(("pending", "sending")))
        )
        stmt = (
            select(t.files)
            .where(F.created_at < created_before, ~carried, ~scheduled)
            .order_by(F.created_at)
            .limit(limit)
        )
        return [file_of(r) for r in await self.conn.execute(stmt)]

    async def delete_files(self, file_ids: Sequence[str]) -> None:
        ids = list(file_ids)
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            await self.conn.execute(delete(t.message_attachments).where(A.file_id.in_(chunk)))
            await self.conn.execute(delete(t.files).where(F.id.in_(chunk)))

    async def derived_keys_in_use(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            rows = await self.conn.execute(
                select(F.thumb_key, F.preview_key).where(
                    or_(F.thumb_key.in_(chunk), F.preview_key.in_(chunk))
                )
            )
            for thumb, preview in rows:
                found.update(k for k in (thumb, preview) if k in chunk)
        return found

    async def orphan_blobs(self, limit: int) -> list[StoredBlob]:
        b = t.blobs.c
        used = exists(select(F.id).where(F.sha256 == b.sha256))
        stmt = select(t.blobs).where(~used).order_by(b.created_at).limit(limit)
        return [
            StoredBlob(r.sha256, r.blob_key, int(r.size)) for r in await self.conn.execute(stmt)
        ]

    async def delete_blob_rows(self, sha256s: Sequence[str]) -> None:
        shas = list(sha256s)
        for start in range(0, len(shas), IN_CHUNK):
            chunk = shas[start : start + IN_CHUNK]
            await self.conn.execute(delete(t.blobs).where(t.blobs.c.sha256.in_(chunk)))


async def attachments_of(
    conn_tx: TxBase, conversation_id: str, seqs: Sequence[int]
) -> dict[int, list[FileInfo]]:
    """The files of these messages of one conversation, each message's in its order."""
    if not seqs:
        return {}
    found: dict[int, list[FileInfo]] = {}
    stmt = (
        select(t.files, A.seq.label("at_seq"))
        .select_from(t.message_attachments.join(t.files, F.id == A.file_id))
        .where(A.conversation_id == conversation_id, A.seq.in_(list(seqs)))
        .order_by(A.seq, A.position)
    )
    for row in await conn_tx.conn.execute(stmt):
        found.setdefault(int(row.at_seq), []).append(file_of(row))
    return found
