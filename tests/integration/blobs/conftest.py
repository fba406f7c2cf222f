"""The blob store contract tests run on both stores: the data directory and SeaweedFS
through its S3 API (tests/blob_servers.py)."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.blob_servers import blob_backends, blob_store_for
from tidings.blobs.ports import BlobStore


@pytest.fixture(params=blob_backends())
def blob_kind(request: pytest.FixtureRequest) -> str:
    kind = str(request.param)
    if kind == "local" and importlib.util.find_spec("tidings.blobs.local") is None:
        pytest.skip("the data-directory blob store (blobs/local.py) is not on this branch")
    return kind


@pytest.fixture
async def blobs(
    blob_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BlobStore]:
    store = await blob_store_for(blob_kind, tmp_path, request)
    try:
        yield store
    finally:
        await store.close()
