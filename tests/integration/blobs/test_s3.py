"""What only the S3 store has: keys and permissions the store checks, a bucket made at
start-up, a connection that breaks half-way through a multipart upload. On a real
SeaweedFS with authentication on (tests/blob_servers.py)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.blob_servers import (
    ACCESS_KEY,
    BUCKET,
    READER_KEY,
    READER_SECRET,
    SECRET_KEY,
    SeaweedFS,
    open_s3,
)
from tests.tcp_proxy import TcpProxy
from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.blobs.s3 import BlobStoreUnavailable, S3BlobStore

MiB = 1024 * 1024


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


async def test_wrong_keys_are_refused_saying_what_to_check(seaweed: SeaweedFS) -> None:
    with pytest.raises(BlobStoreUnavailable) as refused:
        await open_s3(seaweed.blob_url(BUCKET, _prefix()), ACCESS_KEY, "not-the-secret-key")
    message = str(refused.value)
    assert "blob_access_key, blob_secret_key" in message
    assert "not-the-secret-key" not in message
    with pytest.raises(BlobStoreUnavailable, match="refused"):
        await open_s3(seaweed.blob_url(BUCKET, _prefix()), "no-such-access-key", SECRET_KEY)


async def test_a_key_that_may_only_read_cannot_write(seaweed: SeaweedFS) -> None:
    prefix = _prefix()
    writer_store = await open_s3(seaweed.blob_url(BUCKET, prefix))
    await writer_store.put("kept", b"readable")
    store = await open_s3(seaweed.blob_url(BUCKET, prefix), READER_KEY, READER_SECRET)
    try:
        assert b"".join([c async for c in store.read("kept")]) == b"readable"
        with pytest.raises(BlobStoreUnavailable, match="permissions"):
            await store.put("thumb", b"x")
        writer = await store.writer()
        with pytest.raises(BlobStoreUnavailable):
            await writer.write(os.urandom(9 * MiB))  # the multipart upload is refused
            await writer.commit()
        await writer.abort()
    finally:
        await store.close()
        await writer_store.close()


async def test_a_missing_bucket_is_made_at_start_up_unless_told_not_to(seaweed: SeaweedFS) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    with pytest.raises(BlobStoreUnavailable, match="blob_s3_create_bucket"):
        await open_s3(seaweed.blob_url(bucket), blob_s3_create_bucket=False)
    store = await open_s3(seaweed.blob_url(bucket))
    try:
        await store.put("first", b"1")
        assert [key async for key in store.keys("")] == ["first"]
        await store.delete("first")
    finally:
        await store.close()


async def test_an_unreachable_store_says_so() -> None:
    from tests.conftest import free_port

    url = f"s3://{BUCKET}?endpoint=http://127.0.0.1:{free_port()}"
    with pytest.raises(BlobStoreUnavailable, match="not reachable"):
        await open_s3(url)


async def test_a_connection_lost_mid_upload_leaves_no_parts(seaweed: SeaweedFS) -> None:
    """The store goes away after the first part: the write fails, and the caller's
    abort, once the store is back, drops the multipart upload (nothing kept)."""
    proxy = await TcpProxy("127.0.0.1", seaweed.s3_port).start()
    prefix = _prefix()
    url = f"s3://{BUCKET}/{prefix}?endpoint=http://127.0.0.1:{proxy.port}"
    store = await open_s3(url)
    direct = await open_s3(seaweed.blob_url(BUCKET, prefix))
    assert isinstance(store, S3BlobStore) and isinstance(direct, S3BlobStore)
    try:
        writer = await store.writer()
        await writer.write(os.urandom(9 * MiB))  # the first part is on its way
        await proxy.cut()
        with pytest.raises(BlobStoreUnavailable):
            for _ in range(3):
                await writer.write(os.urandom(8 * MiB))
            await writer.commit()
        await proxy.restore()
        await writer.abort()
        assert await direct.pending_uploads() == []
        assert [key async for key in direct.keys("")] == []
    finally:
        await store.close()
        await direct.close()
        await proxy.close()


async def test_the_server_does_not_start_with_wrong_keys(
    seaweed: SeaweedFS, tmp_path: Path
) -> None:
    """Container.start (the server's start-up, before it serves) opens the store."""
    settings = Settings(
        data_dir=tmp_path,
        blob_url=seaweed.blob_url(BUCKET, _prefix()),
        blob_access_key=ACCESS_KEY,
        blob_secret_key="a-wrong-secret-key",
    )
    container = Container(settings)
    try:
        with pytest.raises(BlobStoreUnavailable, match="blob_secret_key") as refused:
            await container.start()
        assert "a-wrong-secret-key" not in str(refused.value)
    finally:
        await container.close()


async def test_readiness_names_the_store_when_it_is_out_of_reach(
    seaweed: SeaweedFS, tmp_path: Path, sqlite_template: Path
) -> None:
    """/readyz of a node on an S3 store: ready while the store answers, `blobs` named
    while it does not, ready again when it is back."""
    proxy = await TcpProxy("127.0.0.1", seaweed.s3_port).start()
    settings = Settings(
        data_dir=tmp_path,
        blob_url=f"s3://{BUCKET}/{_prefix()}?endpoint=http://127.0.0.1:{proxy.port}",
        blob_access_key=ACCESS_KEY,
        blob_secret_key=SECRET_KEY,
    )
    shutil.copyfile(sqlite_template, tmp_path / "tidings.db")  # migrated
    container = Container(settings)
    try:
        await container.start()
        assert "blobs" not in await container.readiness()
        await proxy.cut()
        problems = await container.readiness()
        assert "blobs" in problems
        assert SECRET_KEY not in problems["blobs"]
        await proxy.restore()
        assert "blobs" not in await container.readiness()
    finally:
        await container.close()
        await proxy.close()
