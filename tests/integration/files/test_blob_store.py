"""The BlobStore port's contract (blobs/ports.py), on every blob store
(`blob_store_kind`; the data directory here, the S3 adapter adds its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidings.app.settings import Settings
from tidings.blobs.factory import open_blob_store
from tidings.blobs.local import CHUNK_BYTES, LocalBlobStore
from tidings.blobs.ports import BlobMissing, BlobStore


@pytest.fixture
async def store(
    tmp_path: Path, blob_settings: dict[str, object]
) -> AsyncIterator[BlobStore]:
    made = open_blob_store(Settings(data_dir=tmp_path, **blob_settings))  # type: ignore[arg-type]
    try:
        yield made
    finally:
        await made.close()


async def all_keys(store: BlobStore, prefix: str = "") -> list[str]:
    found = store.keys(prefix)
    return [k async for k in found]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


async def test_a_blob_is_readable_only_after_commit(store: BlobStore) -> None:
    writer = await store.writer(prefix="f/")
    assert writer.key.startswith("f/")
    await writer.write(b"hello ")
    await writer.write(b"world")
    with pytest.raises(BlobMissing):
        await store.size(writer.key)
    await writer.commit()
    assert await store.size(writer.key) == 11
    assert await read_all(store, writer.key) == b"hello world"
    assert await read_all(store, writer.key, 6) == b"world"
    assert await read_all(store, writer.key, 2, 5) == b"llo"
    assert writer.key in await all_keys(store, "f/")


async def test_abort_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    writer = await store.writer()
    await writer.write(b"x" * 1000)
    await writer.abort()
    await writer.abort()  # twice is fine
    with pytest.raises(BlobMissing):
        await store.size(writer.key)
    assert await all_keys(store) == []
    if isinstance(store, LocalBlobStore):
        assert files_under(tmp_path) == []


async def test_missing_blobs_and_hostile_keys(store: BlobStore) -> None:
    for key in ("nope", "../../etc/passwd", "/etc/passwd", "a/../../b", "tmp/x"):
        with pytest.raises(BlobMissing):
            await read_all(store, key)
        with pytest.raises(BlobMissing):
            await store.size(key)
        await store.delete(key)  # no error


async def test_put_replace_delete_and_large_reads(store: BlobStore) -> None:
    await store.put("t/thumb.webp", b"one")
    await store.put("t/thumb.webp", b"two")
    assert await read_all(store, "t/thumb.webp") == b"two"
    await store.delete("t/thumb.webp")
    with pytest.raises(BlobMissing):
        await store.size("t/thumb.webp")
    writer = await store.writer()
    big = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)
    for start in range(0, len(big), 65536):
        await writer.write(big[start : start + 65536])
    await writer.commit()
    chunks = [c async for c in store.read(writer.key)]
    assert b"".join(chunks) == big and max(len(c) for c in chunks) <= CHUNK_BYTES
    assert await read_all(store, writer.key, CHUNK_BYTES - 3, CHUNK_BYTES + 5) == big[
        CHUNK_BYTES - 3 : CHUNK_BYTES + 5
    ]


async def test_crashed_writers_temporary_files_are_swept(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    writer = await store.writer()
    await writer.write(b"left by a crash")  # never committed nor aborted
    assert await store.sweep_temporary(3600) == 0
    assert await store.sweep_temporary(-1) == 1
    assert await all_keys(store) == []
    await writer.abort()
