"""The job after an upload (`file_uploaded`), as the worker role runs it: for an image,
its size as shown, a thumbnail and a preview (workers/imaging.py, with Pillow, in a
thread: never on the event loop that serves sends), stored with `BlobStore.put`; then
the file is recorded as processed (`FileService.mark_processed`), which tells every
conversation where a message carries it (`file_updated`). Anything else, and an image
that cannot be previewed (a decompression bomb, a truncated or mislabelled file), is
simply ready: a plain file, still downloadable.

Derived blobs are content-addressed like the originals: `d/<sha256>/thumb.jpg` (or
`.webp` where the image has transparency), so that uploads of the same bytes share
them, a second run of the job (delivery is at least once) writes the same bytes under
the same keys, and the collection of an original's blob takes them with it
(core/files.py: `derived_keys`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import AsyncIterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog

from tidings.blobs.ports import BlobMissing, BlobStore
from tidings.core.errors import UnsupportedMediaType
from tidings.core.files import derived_key
from tidings.core.models import FileInfo, FileStatus
from tidings.services.context import ImageLimits
from tidings.services.files import FileService
from tidings.workers.imaging import (
    PILLOW_FORMATS,
    NotAnImage,
    Rendition,
    derive_image,
    render_avatar,
)

log = structlog.get_logger(__name__)

IMAGE_THREAD_NICE = 10  # how much less CPU priority an image thread has than the loop


def _lower_priority() -> None:
    """Run this thread (an image thread) at a lower CPU priority than the process's
    other threads: on Linux a thread's nice value is its own (setpriority on its thread
    id), so when the cores are busy the event loop that serves sends is scheduled
    first and the thumbnails take the time left. `tidings bench files` (1,000 image
    uploads on 2 cores): send p99 in the same conversation 26-29 ms with image threads
    at the loop's priority, see docs/benchmarks.md for the figure with this. Raising
    one's own nice value needs no privilege; where it is refused, nothing changes."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or refused: as is
        tid = threading.get_native_id()
        nice = os.getpriority(os.PRIO_PROCESS, tid) + IMAGE_THREAD_NICE
        os.setpriority(os.PRIO_PROCESS, tid, min(19, nice))


async def _read_all(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise NotAnImage(f"over image_max_bytes ({limit})")
    return bytes(data)


class MediaProcessor:
    """`FileService.set_processor(MediaProcessor(...))`: what `file_uploaded` does."""

    def __init__(self, files: FileService, blobs: BlobStore, limits: ImageLimits) -> None:
        self.files = files
        self.blobs = blobs
        self.limits = limits
        self._threads = ThreadPoolExecutor(
            max_workers=limits.image_threads,
            thread_name_prefix="tidings-image",
            initializer=_lower_priority,
        )

    async def __call__(self, file: FileInfo) -> None:
        if file.status is not FileStatus.PROCESSING:
            return  # done already (a second delivery of the job), or quarantined
        limits = self.limits
        if file.content_type not in PILLOW_FORMATS:
            await self.files.mark_processed(file.id, FileStatus.READY, if_processing=True)
            return
        try:
            if file.size > limits.image_max_bytes:
                raise NotAnImage(f"over image_max_bytes ({limits.image_max_bytes})")
            data = await _read_all(self.blobs.read(file.blob_key), limits.image_max_bytes)
            derived = await asyncio.get_running_loop().run_in_executor(
                self._threads,
                functools.partial(
                    derive_image,
                    data,
                    file.content_type,
                    max_pixels=limits.image_max_pixels,
                    thumb_px=limits.image_thumbnail_px,
                    preview_px=limits.image_preview_px,
                ),
            )
        except BlobMissing:
            log.warning("file_blob_missing", file_id=file.id)
            return  # collected meanwhile: nothing to record
        except NotAnImage as exc:
            log.info("file_not_previewed", file_id=file.id, reason=exc.reason[:200])
            await self.files.mark_processed(file.id, FileStatus.READY, if_processing=True)
            return
        thumb_key = await self._put(file, "thumb", derived.thumbnail)
        preview_key = await self._put(file, "preview", derived.preview)
        await self.files.mark_processed(
            file.id,
            FileStatus.READY,
            width=derived.width,
            height=derived.height,
            thumb_key=thumb_key,
            preview_key=preview_key,
            if_processing=True,
        )
        log.info(
            "file_previewed",
            file_id=file.id,
            width=derived.width,
            height=derived.height,
            animated=derived.animated,
        )

    async def avatar(
        self, data: bytes, content_type: str, sizes: Sequence[int]
    ) -> list[tuple[bytes, str]]:
        """Square avatar renditions of an upload's preview (services/avatars.py), in the
        image threads; what Pillow refuses is `unsupported_media_type`."""
        try:
            renditions = await asyncio.get_running_loop().run_in_executor(
                self._threads,
                functools.partial(
                    render_avatar,
                    data,
                    content_type,
                    max_pixels=self.limits.image_max_pixels,
                    sizes=tuple(sizes),
                ),
            )
        except NotAnImage as exc:
            log.info("avatar_not_made", reason=exc.reason[:200])
            raise UnsupportedMediaType("this image cannot be made an avatar") from exc
        return [(r.data, r.content_type) for r in renditions]

    async def _put(self, file: FileInfo, variant: str, rendition: Rendition) -> str:
        key = derived_key(file.sha256, variant, rendition.content_type)
        await self.blobs.put(key, rendition.data)
        return key
