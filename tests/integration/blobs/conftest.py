"""The blob store contract tests run on both stores (`blob_store_kind` of
tests/conftest.py): the data directory and SeaweedFS through its S3 API
(tests/blob_servers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.blob_servers import blob_store_for
from tidings.blobs.ports import BlobStore


@pytest.fixture
async def blobs(
    blob_store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BlobStore]:
    store = await blob_store_for(blob_store_kind, tmp_path, request)
    try:
        yield store
    finally:
        await store.close()
