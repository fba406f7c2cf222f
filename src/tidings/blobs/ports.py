"""The BlobStore port: where the bytes of uploaded files live. The database holds what a
file is (name, type, sha256, who may see it); a blob store holds only bytes under opaque
keys. Content addressing (the same bytes stored once per organization) is the files
service's work: it hashes while streaming, then keeps the new blob or drops it for the
one already stored under that sha256.

Streaming both ways: a writer takes chunks and never holds the whole upload; a read
yields chunks of a byte range. Adapters: blobs/local.py (the data directory) and
blobs/s3.py (any S3-compatible store; SeaweedFS in the tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class BlobMissing(Exception):
    """No blob is stored under that key."""


class BlobWriter(Protocol):
    """One blob being written. Nothing is visible under its key before `commit`; `abort`
    (or a failure before commit) leaves nothing behind."""

    @property
    def key(self) -> str:
        """The key this blob will be stored under (chosen by the adapter)."""
        ...

    async def write(self, chunk: bytes) -> None: ...

    async def commit(self) -> None:
        """Make the blob readable under `key`. Idempotent is not required: call once."""
        ...

    async def abort(self) -> None:
        """Drop what was written. Safe to call after a failed write, and more than once."""
        ...


class BlobStore(Protocol):
    async def writer(self, *, prefix: str = "") -> BlobWriter:
        """A writer for a new blob under a new unique key (`prefix` + random)."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Store small derived bytes (a thumbnail) under a key the caller chose;
        an existing blob under that key is replaced."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the blob (end None: to its end), in chunks.
        BlobMissing when there is none (raised on first iteration)."""
        ...

    async def size(self, key: str) -> int:
        """The blob's size in bytes; BlobMissing when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; no error when there is none."""
        ...

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Every stored key under `prefix` (for collection of orphans and backups)."""
        ...

    async def close(self) -> None: ...
