"""The BlobStore on any S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph RGW),
through aiobotocore: the client chosen by measurement (docs/benchmarks.md, "Blob store
client": it is the one whose multipart calls are public API, so a writer can push
parts as they come and never hold the whole upload).

Writing: chunks gather in a buffer of `part_bytes` (8 MiB by default). A blob that
never fills one part is stored with one PutObject at commit; a larger one becomes a
multipart upload, begun when the first part is full, each part sent while the next one
fills (one part in flight, one filling and its copy: an upload holds at most three
parts in memory, 24 MiB by default), the rest sent and the upload completed at commit.
Nothing is visible under the key before CompleteMultipartUpload; abort (or any failure
of a write or of the commit) aborts the multipart upload, so the store keeps no parts
of it.

Reading: GetObject with a Range header, the body streamed in chunks of 64 KiB.
Listing: ListObjectsV2, page by page. A missing key is BlobMissing; a refusal (wrong
keys, no permission) or an unreachable store is BlobStoreUnavailable, with what to
check (never the secret key: it lives only inside the client).

Checksums: the client sends the new flexible checksums only where an operation needs
them (`when_required`): several S3-compatible stores reject or mishandle the
aws-chunked trailers that `when_supported` sends by default. Over http the SigV4
signature covers each request's SHA-256 anyway."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from tidings.blobs.location import S3Location
from tidings.blobs.ports import BlobMissing, BlobStore, BlobWriter

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

READ_CHUNK = 64 * 1024
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset(
    {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
)


def _valid_key(key: str) -> bool:
    return (
        0 < len(key) <= 512
        and not key.startswith("/")
        and "\\" not in key
        and all(c >= " " and c != "\x7f" for c in key)
        and all(part not in ("", ".", "..") for part in key.split("/"))
    )


class BlobStoreUnavailable(Exception):
    """The object store refused (keys, permissions) or could not be reached."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3BlobStore(BlobStore):
    def __init__(
        self,
        location: S3Location,
        *,
        access_key: str | None,
        secret_key: str | None,
        part_bytes: int = 8 * 1024 * 1024,
        create_bucket: bool = True,
    ) -> None:
        self.location = location
        self.bucket = location.bucket
        self.part_bytes = part_bytes
        self._create_bucket = create_bucket
        self._access_key = access_key
        self._secret_key = secret_key
        self._stack = AsyncExitStack()
        self._client: S3Client | None = None
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:  # never the keys
        return f"S3BlobStore(bucket={self.bucket!r}, endpoint={self.location.endpoint!r})"

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.location.prefix} at {self.location.endpoint or 'AWS'}"

    async def open(self) -> None:
        """Connect and check the bucket (created when missing, if allowed); at most once
        (every operation calls it first). BlobStoreUnavailable says what to check."""
        if self._client is not None:
            return
        async with self._opening:
            if self._client is not None:
                return
            config = AioConfig(
                signature_version="s3v4",
                s3={"addressing_style": self.location.addressing},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                max_pool_connections=64,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            stack = AsyncExitStack()
            client = await stack.enter_async_context(
                get_session().create_client(
                    "s3",
                    endpoint_url=self.location.endpoint,
                    region_name=self.location.region,
                    aws_access_key_id=self._access_key,
                    aws_secret_access_key=self._secret_key,
                    config=config,
                )
            )
            try:
                await self._ensure_bucket(client)
            except BaseException:
                await stack.aclose()
                raise
            self._stack, self._client = stack, client

    async def _ensure_bucket(self, client: S3Client) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._unavailable(exc) from None
        except BotoCoreError as exc:
            raise self._unavailable(exc) from None
        if not self._create_bucket:
            raise BlobStoreUnavailable(
                f"the bucket {self.bucket!r} does not exist at {self.where} (create it, or "
                "set blob_s3_create_bucket=true)"
            )
        try:
            await client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._unavailable(exc) from None
        except BotoCoreError as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: Exception) -> BlobStoreUnavailable:
        if isinstance(exc, ClientError):
            s3_code = _code(exc)
            if s3_code in _DENIED:
                return BlobStoreUnavailable(
                    f"the object store {self.where} refused the request ({s3_code}): check "
                    "blob_access_key, blob_secret_key and the key's permissions on the bucket"
                )
            return BlobStoreUnavailable(f"the object store {self.where} answered {s3_code}")
        return BlobStoreUnavailable(
            f"the object store {self.where} is not reachable: {type(exc).__name__}"
        )

    async def client(self) -> S3Client:
        await self.open()
        assert self._client is not None
        return self._client

    def _key(self, key: str) -> str:
        """The object's name for a key; ValueError for a key no blob can have (what the
        data directory refuses too: a path that climbs, an absolute one, control
        characters), which reads and deletes take as a missing blob."""
        if not _valid_key(key):
            raise ValueError(f"not a blob key: {key[:80]!r}")
        return self.location.prefix + key

    def _fail(self, exc: Exception, key: str | None = None) -> Exception:
        """BlobMissing for a missing key, BlobStoreUnavailable for a refusal or an
        unreachable store, else the error itself."""
        if isinstance(exc, ClientError):
            s3_code = _code(exc)
            if s3_code in _MISSING and key is not None:
                return BlobMissing(key)
            if s3_code in _DENIED:
                return self._unavailable(exc)
            return exc
        if isinstance(exc, BotoCoreError):
            return self._unavailable(exc)
        return exc

    async def writer(self, *, prefix: str = "") -> BlobWriter:
        return S3Writer(self, prefix + secrets.token_hex(16))

    async def put(self, key: str, data: bytes) -> None:
        client = await self.client()
        try:
            await client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc) from None

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if start < 0 or (end is not None and end < 0):
            raise ValueError("a byte range starts and ends at 0 or later")
        if not _valid_key(key):
            raise BlobMissing(key)
        if end is not None and end <= start:
            await self.size(key)  # BlobMissing if there is none; else nothing to read
            return
        client, s3_key = await self.client(), self._key(key)
        try:
            if start == 0 and end is None:
                answer = await client.get_object(Bucket=self.bucket, Key=s3_key)
            else:
                last = "" if end is None else str(end - 1)
                answer = await client.get_object(
                    Bucket=self.bucket, Key=s3_key, Range=f"bytes={start}-{last}"
                )
        except ClientError as exc:
            if _code(exc) == "InvalidRange":  # starts at or past the end: nothing
                return
            raise self._fail(exc, key) from None
        except BotoCoreError as exc:
            raise self._fail(exc, key) from None
        body = answer["Body"]
        try:
            async for chunk in body.iter_chunks(READ_CHUNK):
                yield chunk
        except BotoCoreError as exc:
            raise self._fail(exc, key) from None
        finally:
            body.close()

    async def size(self, key: str) -> int:
        if not _valid_key(key):
            raise BlobMissing(key)
        client = await self.client()
        try:
            head = await client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, key) from None
        return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        if not _valid_key(key):
            return  # none can be stored there
        client = await self.client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise self._fail(exc) from None
        except BotoCoreError as exc:
            raise self._fail(exc) from None

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        async for key, _size in self.entries(prefix):
            yield key

    async def entries(self, prefix: str = "") -> AsyncIterator[tuple[str, int]]:
        """Every stored key under `prefix` with its size (the backup's manifest)."""
        base = self.location.prefix
        client = await self.client()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + prefix
        )
        try:
            async for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(base) :], int(item.get("Size", 0))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc) from None

    async def pending_uploads(self) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted (what an
        interrupted upload would leave behind; the tests check there is none)."""
        base = self.location.prefix
        found: list[str] = []
        client = await self.client()
        try:
            pages = client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=base
            )
            async for page in pages:
                found.extend(u["Key"][len(base) :] for u in page.get("Uploads", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc) from None
        return found

    async def ping(self) -> None:
        """The store answers for the bucket (the node's readiness, /readyz)."""
        client = await self.client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(exc) from None

    async def close(self) -> None:
        self._client = None
        stack, self._stack = self._stack, AsyncExitStack()
        await stack.aclose()


class S3Writer(BlobWriter):
    """One blob on its way: a PutObject at commit, or a multipart upload (see the
    module's docstring)."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._s3_key = store._key(key)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._sending: asyncio.Task[None] | None = None
        self._done = False

    @property
    def key(self) -> str:
        return self._key

    async def write(self, chunk: bytes) -> None:
        if self._done:
            raise RuntimeError("this blob writer is committed or aborted")
        self._buffer += chunk
        try:
            while len(self._buffer) >= self._store.part_bytes:
                part = bytes(memoryview(self._buffer)[: self._store.part_bytes])
                del self._buffer[: self._store.part_bytes]
                await self._send(part)
        except BaseException:
            await self.abort()
            raise

    async def _send(self, part: bytes) -> None:
        """Send one part while the next fills: wait for the one before (its failure is
        this write's), then start this one."""
        client = await self._store.client()
        if self._upload_id is None:
            try:
                begun = await client.create_multipart_upload(
                    Bucket=self._store.bucket, Key=self._s3_key
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._store._fail(exc) from None
            self._upload_id = begun["UploadId"]
        await self._wait_sending()
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number, "ETag": ""})
        self._sending = asyncio.create_task(self._upload_part(number, part))

    async def _upload_part(self, number: int, part: bytes) -> None:
        assert self._upload_id is not None
        client = await self._store.client()
        try:
            sent = await client.upload_part(
                Bucket=self._store.bucket,
                Key=self._s3_key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._store._fail(exc) from None
        self._parts[number - 1] = {"PartNumber": number, "ETag": sent["ETag"]}

    async def _wait_sending(self) -> None:
        sending, self._sending = self._sending, None
        if sending is not None:
            await sending

    async def commit(self) -> None:
        if self._done:
            raise RuntimeError("this blob writer is committed or aborted")
        client = await self._store.client()
        try:
            if self._upload_id is None:
                await client.put_object(
                    Bucket=self._store.bucket, Key=self._s3_key, Body=bytes(self._buffer)
                )
            else:
                if self._buffer:  # the last part may be smaller than part_bytes
                    await self._send(bytes(self._buffer))
                await self._wait_sending()
                await client.complete_multipart_upload(
                    Bucket=self._store.bucket,
                    Key=self._s3_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException as exc:
            await self.abort()
            if isinstance(exc, ClientError | BotoCoreError):
                raise self._store._fail(exc) from None
            raise
        self._buffer = bytearray()
        self._done = True

    async def abort(self) -> None:
        self._done = True
        self._buffer = bytearray()
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        upload_id = self._upload_id
        if upload_id is None:
            return
        try:
            client = await self._store.client()
            await client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._s3_key, UploadId=upload_id
            )
        except ClientError as exc:
            if _code(exc) not in ("NoSuchUpload", "404"):
                return  # kept: a later abort tries again
        except (BotoCoreError, BlobStoreUnavailable):
            # The store is out of reach: the upload id is kept, so that the caller's
            # abort tries again; a store's lifecycle rule drops what is never aborted
            # (docs/object-storage.md: AbortIncompleteMultipartUpload).
            return
        self._upload_id = None
