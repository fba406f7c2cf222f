"""Which blob store a process uses, from its settings (called once, by app/container.py).

`blob_url` unset: the data directory (<data_dir>/blobs). Other schemes (s3://) come with
their adapters (blobs/s3.py extends this function)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidings.blobs.local import LocalBlobStore
from tidings.blobs.ports import BlobStore

if TYPE_CHECKING:
    from tidings.app.settings import Settings


def open_blob_store(settings: Settings) -> BlobStore:
    url = settings.blob_url
    if not url:
        return LocalBlobStore(settings.data_dir / "blobs")
    if url.startswith("file://"):
        from pathlib import Path

        return LocalBlobStore(Path(url.removeprefix("file://")))
    scheme = url.split(":", 1)[0]
    raise ValueError(f"blob_url: no blob store for the scheme {scheme!r} (unset: the data dir)")
