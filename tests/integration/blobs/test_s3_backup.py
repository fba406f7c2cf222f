"""A backup of a server whose files live in an S3 store: the objects stay in the
bucket (its versioning keeps them), the archive lists every key with its size, and
that list is a checked part like any other (docs/operations.md)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import orjson
import pytest

from tests.blob_servers import blob_settings_for
from tidings.app.backup import S3_KEYS, create_backup, verify_backup
from tidings.app.container import Container


@pytest.fixture
def container_settings(request: pytest.FixtureRequest) -> dict[str, object]:
    return blob_settings_for("s3", request)


async def test_a_backup_lists_the_s3_stores_keys_and_sizes(
    container: Container, tmp_path: Path
) -> None:
    store = container.blobs
    await store.put("thumbs/a.small", b"x" * 10)
    writer = await store.writer(prefix="org/")
    await writer.write(b"y" * 1234)
    await writer.commit()
    archive = tmp_path / "b.tar.gz"
    made = await create_backup(container.settings, archive)
    blobs = made.manifest["blobs"]
    assert blobs["store"] == "s3" and blobs["copied"] is False
    assert (blobs["files"], blobs["bytes"]) == (2, 1244)
    assert S3_KEYS in made.manifest["parts"]
    with tarfile.open(archive) as tar:
        member = tar.extractfile(S3_KEYS)
        assert member is not None
        listed = [orjson.loads(line) for line in member.read().splitlines()]
    assert sorted(listed, key=lambda e: e["key"]) == [
        {"key": writer.key, "bytes": 1234},
        {"key": "thumbs/a.small", "bytes": 10},
    ]
    assert container.settings.blob_secret_key is not None
    secret = container.settings.blob_secret_key.get_secret_value().encode()
    with tarfile.open(archive) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info)
            assert data is None or secret not in data.read(), info.name
    verified = await verify_backup(archive)
    assert "every SHA-256 matches" in " ".join(verified.summary)
