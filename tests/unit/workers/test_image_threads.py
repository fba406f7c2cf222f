"""Image threads yield the CPU to the event loop that serves sends (workers/files.py):
each runs at a nice value IMAGE_THREAD_NICE above the process's, its own (Linux), while
the loop's thread keeps the process's."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, cast

import pytest

from tidings.services.context import ImageLimits
from tidings.workers.files import IMAGE_THREAD_NICE, MediaProcessor


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_an_image_thread_runs_at_a_lower_priority_than_the_loop() -> None:
    before = _own_nice()
    limits = ImageLimits(
        image_max_pixels=10**6,
        image_max_bytes=10**6,
        image_thumbnail_px=320,
        image_preview_px=1280,
        image_threads=1,
    )
    processor = MediaProcessor(cast(Any, None), cast(Any, None), limits)
    pool = processor._threads  # where derive_image runs
    in_thread = pool.submit(_own_nice).result()
    pool.shutdown()
    assert in_thread == min(19, before + IMAGE_THREAD_NICE)
    assert _own_nice() == before  # the calling thread (the loop's) is untouched
