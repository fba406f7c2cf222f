"""The BlobStore contract (blobs/ports.py), the same for both stores: what the files
service relies on when it streams an upload in, serves ranges out, and collects
orphans."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest

from tidings.blobs.ports import BlobMissing, BlobStore

MiB = 1024 * 1024


async def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


async def keys_of(store: BlobStore, prefix: str = "") -> set[str]:
    return {key async for key in store.keys(prefix)}


async def pending(store: BlobStore) -> list[str]:
    """Multipart uploads an S3 store still holds (none for the data directory)."""
    from tidings.blobs.s3 import S3BlobStore

    return await store.pending_uploads() if isinstance(store, S3BlobStore) else []


async def write_blob(
    store: BlobStore, data: bytes, chunk: int = 64 * 1024, prefix: str = ""
) -> str:
    writer = await store.writer(prefix=prefix)
    for i in range(0, len(data), chunk):
        await writer.write(data[i : i + chunk])
    await writer.commit()
    return writer.key


async def test_a_committed_blob_reads_back_whole(blobs: BlobStore) -> None:
    data = os.urandom(300_000)
    key = await write_blob(blobs, data, chunk=7001)
    assert await read_all(blobs, key) == data
    assert await blobs.size(key) == len(data)
    assert key in await keys_of(blobs)


async def test_an_empty_blob_is_a_blob(blobs: BlobStore) -> None:
    writer = await blobs.writer()
    await writer.commit()
    assert await blobs.size(writer.key) == 0
    assert await read_all(blobs, writer.key) == b""


async def test_nothing_is_visible_before_commit(blobs: BlobStore) -> None:
    writer = await blobs.writer(prefix="up/")
    await writer.write(b"x" * 1000)
    assert writer.key.startswith("up/")
    assert await keys_of(blobs) == set()
    with pytest.raises(BlobMissing):
        await blobs.size(writer.key)
    await writer.commit()
    assert await keys_of(blobs) == {writer.key}


async def test_every_writer_gets_its_own_key(blobs: BlobStore) -> None:
    first, second = await blobs.writer(), await blobs.writer()
    assert first.key != second.key
    await first.abort()
    await second.abort()


async def test_ranges(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 1000
    key = await write_blob(blobs, data)
    assert await read_all(blobs, key, 1000) == data[1000:]
    assert await read_all(blobs, key, 10, 20) == data[10:20]
    assert await read_all(blobs, key, 0, 1) == data[:1]
    assert await read_all(blobs, key, len(data) - 5, len(data) + 100) == data[-5:]
    assert await read_all(blobs, key, len(data)) == b""
    assert await read_all(blobs, key, len(data) + 10) == b""
    assert await read_all(blobs, key, 50, 50) == b""


async def test_a_missing_blob_is_blob_missing(blobs: BlobStore) -> None:
    with pytest.raises(BlobMissing):
        await blobs.size("no/such/blob")
    with pytest.raises(BlobMissing):
        await read_all(blobs, "no/such/blob")
    with pytest.raises(BlobMissing):
        await read_all(blobs, "no/such/blob", 10, 20)


async def test_delete_is_idempotent(blobs: BlobStore) -> None:
    key = await write_blob(blobs, b"short-lived")
    await blobs.delete(key)
    await blobs.delete(key)
    await blobs.delete("never/stored")
    with pytest.raises(BlobMissing):
        await read_all(blobs, key)
    assert await keys_of(blobs) == set()


async def test_put_stores_and_replaces_under_the_callers_key(blobs: BlobStore) -> None:
    await blobs.put("thumbs/abc.small", b"first")
    await blobs.put("thumbs/abc.small", b"second, longer")
    assert await read_all(blobs, "thumbs/abc.small") == b"second, longer"
    assert await keys_of(blobs, "thumbs/") == {"thumbs/abc.small"}


async def test_keys_lists_under_a_prefix(blobs: BlobStore) -> None:
    a = {await write_blob(blobs, b"a", prefix="org-a/") for _ in range(3)}
    b = {await write_blob(blobs, b"b", prefix="org-b/") for _ in range(2)}
    await blobs.put("thumbs/x", b"t")
    assert await keys_of(blobs, "org-a/") == a
    assert await keys_of(blobs, "org-b/") == b
    assert await keys_of(blobs) == a | b | {"thumbs/x"}
    assert await keys_of(blobs, "org-c/") == set()


async def test_abort_leaves_nothing(blobs: BlobStore) -> None:
    """Aborted after more than one S3 part: no object, no multipart upload left over."""
    writer = await blobs.writer(prefix="up/")
    chunk = os.urandom(MiB)
    for _ in range(11):  # past the 8 MiB part: a multipart upload has begun
        await writer.write(chunk)
    assert await pending(blobs) in ([], [writer.key])
    await writer.abort()
    await writer.abort()  # more than once is safe
    assert await keys_of(blobs) == set()
    assert await pending(blobs) == []
    with pytest.raises(BlobMissing):
        await blobs.size(writer.key)


async def test_an_upload_that_fails_half_way_leaves_nothing(blobs: BlobStore) -> None:
    """The caller's stream breaks (a client hangs up mid-upload): the service aborts."""

    class Disconnected(Exception):
        pass

    async def upload() -> None:
        writer = await blobs.writer()
        try:
            for i in range(20):
                if i == 13:
                    raise Disconnected
                await writer.write(os.urandom(MiB))
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise

    with pytest.raises(Disconnected):
        await upload()
    assert await keys_of(blobs) == set()
    assert await pending(blobs) == []


@pytest.mark.parametrize("size", [0, 1, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 16 * MiB + 12345])
async def test_sizes_around_the_part_size(blobs: BlobStore, size: int) -> None:
    data = os.urandom(size)
    key = await write_blob(blobs, data, chunk=100_003)
    assert await blobs.size(key) == size
    got = hashlib.sha256()
    async for chunk in blobs.read(key):
        got.update(chunk)
    assert got.hexdigest() == hashlib.sha256(data).hexdigest()
    assert await pending(blobs) == []


async def test_a_large_blob_streams_through_in_bounded_memory(blobs: BlobStore) -> None:
    """64 MiB in, and out again, with neither side holding the blob: Python's
    allocations peak far below its size (S3: about three 8 MiB parts at most)."""
    total, chunk = 64 * MiB, os.urandom(64 * 1024)
    tracemalloc.start()
    try:
        writer = await blobs.writer()
        for _ in range(total // len(chunk)):
            await writer.write(chunk)
        await writer.commit()
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got, digest = 0, hashlib.sha256()
        async for part in blobs.read(writer.key):
            got += len(part)
            digest.update(part)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == total
    assert digest.hexdigest() == hashlib.sha256(chunk * (total // len(chunk))).hexdigest()
    assert written_peak < 30 * MiB, written_peak
    assert read_peak < 4 * MiB, read_peak
