"""The data-directory blob store (the embedded default): each blob a file under
<data_dir>/blobs/, its key the path below that directory (`ab/cd/<random>` fanned out by
the random part, so that no directory holds millions of files).

A writer writes a temporary file in <root>/tmp/ (the same filesystem), flushed and
fsynced on commit, then `os.replace`d to its key: a blob is either whole under its key
or absent, whatever dies when. `abort` (or a crash, cleaned up by `sweep_temporary`)
leaves nothing under a key. File IO runs in worker threads (anyio.to_thread) in chunks of
CHUNK_BYTES: the event loop never blocks on the disk, and no read or write holds more
than one chunk."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from anyio import to_thread

from tidings.blobs.ports import BlobMissing

CHUNK_BYTES = 1024 * 1024  # one read from disk; a write is whatever the caller hands over
TMP_DIR = "tmp"
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-/.")


class LocalBlobWriter:
    def __init__(self, store: LocalBlobStore, key: str, tmp: Path, handle: BinaryIO) -> None:
        self._store = store
        self._key = key
        self._tmp = tmp
        self._handle: BinaryIO | None = handle
        self._done = False

    @property
    def key(self) -> str:
        return self._key

    async def write(self, chunk: bytes) -> None:
        if self._handle is None or self._done:
            raise RuntimeError("this blob writer is closed")
        if chunk:
            await to_thread.run_sync(self._handle.write, chunk)

    async def commit(self) -> None:
        if self._handle is None or self._done:
            raise RuntimeError("this blob writer is closed")
        handle, self._handle = self._handle, None
        self._done = True
        final = self._store.path_of(self._key)

        def finish() -> None:
            try:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._tmp, final)
            except BaseException:
                handle.close()
                with contextlib.suppress(FileNotFoundError):
                    self._tmp.unlink()
                raise

        await to_thread.run_sync(finish)

    async def abort(self) -> None:
        handle, self._handle = self._handle, None
        self._done = True

        def drop() -> None:
            if handle is not None:
                handle.close()
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

        await to_thread.run_sync(drop)


class LocalBlobStore:
    """Blobs under `root` (the container gives <data_dir>/blobs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / TMP_DIR

    def path_of(self, key: str) -> Path:
        """The file of `key`; a key that could leave the root is refused (BlobMissing)."""
        parts = key.split("/")
        if (
            not key
            or not set(key) <= _KEY_CHARS
            or any(p in ("", ".", "..") for p in parts)
            or parts[0] == TMP_DIR
        ):
            raise BlobMissing(key)
        return self.root.joinpath(*parts)

    async def writer(self, *, prefix: str = "") -> LocalBlobWriter:
        token = secrets.token_hex(16)
        key = f"{prefix}{token[:2]}/{token[2:4]}/{token}"
        self.path_of(key)  # a prefix must keep the key inside the root
        tmp = self.tmp / f"{token}.part"

        def open_tmp() -> BinaryIO:
            self.tmp.mkdir(parents=True, exist_ok=True)
            return tmp.open("xb")

        return LocalBlobWriter(self, key, tmp, await to_thread.run_sync(open_tmp))

    async def put(self, key: str, data: bytes) -> None:
        final = self.path_of(key)
        tmp = self.tmp / f"{secrets.token_hex(16)}.part"

        def write() -> None:
            self.tmp.mkdir(parents=True, exist_ok=True)
            try:
                with tmp.open("xb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise

        await to_thread.run_sync(write)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        try:
            handle = await to_thread.run_sync(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise BlobMissing(key) from None
        try:
            if start:
                await to_thread.run_sync(handle.seek, start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                want = CHUNK_BYTES if left is None else min(CHUNK_BYTES, left)
                chunk = await to_thread.run_sync(handle.read, want)
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def size(self, key: str) -> int:
        path = self.path_of(key)
        try:
            return (await to_thread.run_sync(path.stat)).st_size
        except (FileNotFoundError, NotADirectoryError):
            raise BlobMissing(key) from None

    async def delete(self, key: str) -> None:
        try:
            path = self.path_of(key)
        except BlobMissing:
            return

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()

        await to_thread.run_sync(remove)

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        def walk() -> list[str]:
            found: list[str] = []
            if not self.root.is_dir():
                return found
            for dirpath, dirnames, filenames in os.walk(self.root):
                here = Path(dirpath)
                if here == self.root:
                    dirnames[:] = [d for d in dirnames if d != TMP_DIR]
                for name in filenames:
                    key = (here / name).relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        found.append(key)
            return sorted(found)

        for key in await to_thread.run_sync(walk):
            yield key

    async def sweep_temporary(self, older_than_seconds: float) -> int:
        """Remove the temporary files of writers that died (a crashed process) and are
        older than `older_than_seconds`. Returns how many."""

        def sweep() -> int:
            if not self.tmp.is_dir():
                return 0
            cutoff = time.time() - older_than_seconds
            count = 0
            for entry in self.tmp.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        entry.unlink()
                        count += 1
            return count

        return await to_thread.run_sync(sweep)

    async def close(self) -> None:
        return None
