"""Which blob store a process uses, chosen once at start-up from `blob_url`
(TIDINGS_BLOB_URL):

    unset                                    the data directory (blobs/local.py)
    file:///PATH                             a directory of its own (blobs/local.py)
    s3://BUCKET[/PREFIX]?endpoint=URL&region=R&addressing=path|virtual
                                             an S3-compatible object store (blobs/s3.py)

`endpoint` is the store's base URL (http://127.0.0.1:8333 for SeaweedFS, :9000 for
MinIO); without it, AWS S3 itself. `region` defaults to us-east-1 (what SeaweedFS and
MinIO accept). `addressing` defaults to `path` (bucket in the path, what SeaweedFS and
MinIO need); `virtual` puts it in the host name. PREFIX, if any, is put before every
key, so that several deployments can share a bucket. The keys are never in the URL:
they come from blob_access_key / blob_secret_key (or, both unset, from the S3 client's
own chain: AWS_ACCESS_KEY_ID and friends, an instance role)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tidings.blobs.local import LocalBlobStore
from tidings.blobs.location import S3Location, parse_blob_url
from tidings.blobs.ports import BlobStore

__all__ = [
    "S3Location",
    "blob_store_ping",
    "open_blob_store",
    "parse_blob_url",
    "start_blob_store",
]

if TYPE_CHECKING:
    from pydantic import SecretStr

    from tidings.app.settings import Settings


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store of these settings (called once, by app/container.py). Nothing is
    contacted here: an S3 store connects and checks its bucket in `open()` (the
    container's start calls it, so wrong keys stop the start-up with what to check;
    every operation would call it first anyway)."""
    url = settings.blob_url
    if not url:
        return LocalBlobStore(settings.data_dir / "blobs")
    if url.startswith("file://"):
        return LocalBlobStore(Path(url.removeprefix("file://")))
    from tidings.blobs.s3 import S3BlobStore

    return S3BlobStore(
        parse_blob_url(url),
        access_key=_secret(settings.blob_access_key),
        secret_key=_secret(settings.blob_secret_key),  # never logged: only the client has it
        part_bytes=settings.blob_s3_part_bytes,
        create_bucket=settings.blob_s3_create_bucket,
    )


async def start_blob_store(store: BlobStore) -> None:
    """Before serving (Container.start): an S3 store connects and checks its bucket, so
    wrong keys or an unreachable store stop the start-up, saying what to check
    (BlobStoreUnavailable); the data directory needs nothing."""
    if type(store).__module__ == "tidings.blobs.s3":  # no aiobotocore import otherwise
        from tidings.blobs.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        await store.open()


def blob_store_ping(store: BlobStore) -> Callable[[], Awaitable[None]] | None:
    """What the node's readiness asks of its blob store: an S3 store must answer for
    its bucket; the data directory is the node's own disk (None: nothing to ask)."""
    if type(store).__module__ == "tidings.blobs.s3":
        from tidings.blobs.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        return store.ping
    return None


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
