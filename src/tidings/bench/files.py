"""``tidings bench files``: files end to end, measured.

1. **Idle sends**: user A sends ``--idle-sends`` messages one at a time to B in their
   direct conversation, each waiting for B's delivery: the send latency with nothing else
   going on.
2. **A large file**: A uploads ``--file-size-mib`` MiB (default 1 GiB) as one multipart
   stream (a 1 MiB random block repeated: the generator holds nothing else) while the
   server's resident memory is sampled every 0.1 s; then downloads it and checks its
   size and SHA-256. Reported: MB/s both ways, the server's RSS growth.
3. **Many small images**: A uploads ``--images`` distinct small JPEGs
   (``--upload-concurrency`` at once) and sends each in a message; the workers make their
   thumbnails, and B's connection counts the ``file_updated`` events that say a thumbnail
   is ready. Meanwhile A keeps sending text messages in the same conversation one at a
   time: their latency under that load, beside the idle figure.

With ``--spawn`` the throw-away server allows the large upload (``max_upload_bytes``)
and does not rate-limit these uploads and sends; against a running server, those
settings are its operator's."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from tidings.bench import procstat

JSON = dict[str, Any]
# runner.py's Bench and Conn (runner imports this module: named loosely, no cycle)
Bench = Any
Conn = Any
BLOCK = 1024 * 1024
MB = 1_000_000  # MB/s in decimal megabytes, as disks and networks are quoted


def spawn_env(opts: Any) -> dict[str, str]:
    """Settings of a spawned server for this scenario (see the module docstring)."""
    return {
        "TIDINGS_MAX_UPLOAD_BYTES": str(opts.file_size_mib * BLOCK + BLOCK),
        "TIDINGS_UPLOAD_QUOTA_BYTES": "0",
        "TIDINGS_RATE_UPLOAD_PER_USER": "0",
        "TIDINGS_RATE_UPLOAD_PER_ADDRESS": "0",
        "TIDINGS_RATE_SEND_PER_USER": "0",
        "TIDINGS_RATE_SEND_PER_ADDRESS": "0",
    }


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / BLOCK, 1)


class RssWatch:
    """The server's resident memory: at the start, and the highest seen since."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        first = procstat.sample(pid) if pid else None
        self.start = first.rss_bytes if first else None
        self.peak = self.start
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(0.1)

    def poll(self) -> None:
        if self.pid:
            s = procstat.sample(self.pid)
            if s is not None and self.peak is not None:
                self.peak = max(self.peak, s.rss_bytes)

    def __enter__(self) -> RssWatch:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.poll()

    @property
    def growth(self) -> int | None:
        return None if self.start is None or self.peak is None else self.peak - self.start


async def _upload_stream(
    bench: Bench, token: str, name: str, content_type: str, size: int, block: bytes
) -> JSON:
    """POST /files with a multipart body made as it is sent (never held whole)."""
    boundary = "tidingsbench" + os.urandom(8).hex()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        left = size
        while left > 0:
            chunk = block if left >= len(block) else block[:left]
            left -= len(chunk)
            yield chunk
        yield tail

    # A connection of its own: a pooled one the server closed while idle (keep-alive)
    # cannot be retried with a body that is made as it is sent.
    async with httpx.AsyncClient(base_url=bench.url + "/api/v1", trust_env=False) as http:
        response = await http.post(
            "/files",
            content=body(),
            headers={
                "authorization": f"Bearer {token}",
                "content-type": f"multipart/form-data; boundary={boundary}",
                "content-length": str(len(head) + size + len(tail)),
            },
            timeout=None,
        )
    if response.status_code >= 300:
        raise RuntimeError(f"upload {name}: {response.status_code} {response.text[:300]}")
    data: JSON = orjson.loads(response.content)
    return dict(data["file"])


async def _upload_bytes(bench: Bench, token: str, name: str, data: bytes) -> JSON:
    response = await bench.http.post(
        "/files",
        files={"file": (name, data, "image/jpeg")},
        headers={"authorization": f"Bearer {token}"},
    )
    if response.status_code >= 300:
        raise RuntimeError(f"upload {name}: {response.status_code} {response.text[:300]}")
    result: JSON = orjson.loads(response.content)
    return dict(result["file"])


async def _large_file(bench: Bench, token: str) -> JSON:
    size = bench.opts.file_size_mib * BLOCK
    block = os.urandom(BLOCK)
    expected = hashlib.sha256()
    left = size
    while left > 0:  # before the clock starts
        chunk = block if left >= BLOCK else block[:left]
        expected.update(chunk)
        left -= len(chunk)
    sha = expected.hexdigest()
    with RssWatch(bench.pid) as up_rss:
        t0 = time.perf_counter()
        file = await _upload_stream(
            bench, token, "large.bin", "application/octet-stream", size, block
        )
        up_s = time.perf_counter() - t0
    got = hashlib.sha256()
    received = 0
    with RssWatch(bench.pid) as down_rss:
        t0 = time.perf_counter()
        async with bench.http.stream(
            "GET",
            f"/files/{file['id']}",
            headers={"authorization": f"Bearer {token}"},
            timeout=None,
        ) as response:
            if response.status_code != 200:
                raise RuntimeError(f"download: {response.status_code}")
            async for chunk in response.aiter_raw():
                received += len(chunk)
                got.update(chunk)
        down_s = time.perf_counter() - t0
    return {
        "large_file_mib": bench.opts.file_size_mib,
        "large_upload_s": round(up_s, 2),
        "large_upload_mb_per_s": round(size / MB / up_s, 1),
        "large_upload_server_rss_growth_mib": _mib(up_rss.growth),
        "large_download_s": round(down_s, 2),
        "large_download_mb_per_s": round(size / MB / down_s, 1),
        "large_download_server_rss_growth_mib": _mib(down_rss.growth),
        "large_sha256_ok": file.get("sha256") == sha and got.hexdigest() == sha,
        "large_size_ok": file.get("size") == size and received == size,
    }


def make_images(count: int, seed: str) -> list[bytes]:
    """`count` distinct small JPEGs (480 x 360, a gradient and a number each)."""
    from PIL import Image, ImageDraw

    base = Image.linear_gradient("L").resize((480, 360)).convert("RGB")
    out = []
    for i in range(count):
        im = base.copy()
        draw = ImageDraw.Draw(im)
        draw.rectangle((20 + i % 200, 20, 220 + i % 200, 120), fill=(i % 256, (i * 7) % 256, 90))
        draw.text((30, 200), f"{seed} #{i}", fill=(255, 255, 255))
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=80)
        out.append(buffer.getvalue())
    return out


async def _probe_sends(
    bench: Bench,
    sender: Conn,
    receiver: Conn,
    cid: str,
    tag: str,
    *,
    count: int | None = None,
    until: asyncio.Event | None = None,
) -> list[float]:
    """Send text messages one at a time, each waiting for its delivery to `receiver`;
    `count` of them, or until `until` is set. Their latencies, in seconds."""
    latencies: list[float] = []
    i = 0
    while (count is None or i < count) and not (until is not None and until.is_set()):
        cmid = bench.make_cmid("fp", tag, i)
        arrived = receiver.expect(cmid)
        t0 = time.perf_counter()
        if await sender.send_message(cid, cmid, bench.body) is None:
            receiver.waiters.pop(cmid, None)
        else:
            try:
                latencies.append(await asyncio.wait_for(arrived, bench.opts.drain_timeout) - t0)
            except TimeoutError:
                bench.rec.error(f"probe {cmid}: not delivered")
        i += 1
        if until is not None:
            await asyncio.sleep(0.02)  # about 40 probes a second: a busy person, not a flood
    return latencies


async def scenario_files(bench: Bench) -> JSON:
    opts = bench.opts
    a, b = await bench.create_accounts(2, "x")
    cid = await bench.create_conversation(a, "direct", [b.id])
    result: JSON = {"images": opts.images}
    if opts.file_size_mib > 0:
        # Before the connections open and the image load: the large file alone.
        result.update(await _large_file(bench, a.token))
    conns, failed = await bench.open_conns([a, b])
    if failed:
        raise RuntimeError(f"connections failed: {bench.rec.errors[:3]}")
    ca, cb = sorted(conns, key=lambda c: c.account.id != a.id)
    ca.convs.add(cid)
    cb.convs.add(cid)
    thumbs: dict[str, float] = {}  # file id -> when B learnt its thumbnail is ready

    def on_event(event: JSON, now: float) -> None:
        # A thumbnail made before the message was sent comes with the message itself;
        # one made after, by a file_updated event.
        if event.get("kind") == "file_updated":
            files = [event.get("file") or {}]
        elif event.get("kind") == "message":
            files = (event.get("message") or {}).get("attachments") or []
        else:
            return
        for f in files:
            if f.get("has_thumbnail"):
                thumbs.setdefault(str(f.get("id")), now)

    cb.on_event = on_event
    idle = await _probe_sends(bench, ca, cb, cid, "idle", count=opts.idle_sends)
    result.update(
        idle_send_samples=len(idle),
        idle_send_p50_ms=_ms(_percentile(idle, 0.5)),
        idle_send_p99_ms=_ms(_percentile(idle, 0.99)),
    )
    if opts.images > 0:
        images = await asyncio.to_thread(make_images, opts.images, bench.run_id)
        done = asyncio.Event()
        sem = asyncio.Semaphore(opts.upload_concurrency)
        ids: list[str] = []
        upload_errors = 0
        t0 = time.perf_counter()

        async def one(i: int, data: bytes) -> None:
            nonlocal upload_errors
            async with sem:
                try:
                    f = await _upload_bytes(bench, a.token, f"img-{i}.jpg", data)
                except RuntimeError as exc:
                    upload_errors += 1
                    bench.rec.error(str(exc))
                    return
                sent = await ca.send_message(
                    cid, bench.make_cmid("fi", i), f"img-{i}.jpg", attachments=[str(f["id"])]
                )
                if sent is None:
                    upload_errors += 1
                else:
                    ids.append(str(f["id"]))

        async def uploads() -> float:
            await asyncio.gather(*(one(i, d) for i, d in enumerate(images)))
            return time.perf_counter() - t0

        async def thumbnails() -> float | None:
            deadline = time.monotonic() + opts.thumbnail_timeout
            while time.monotonic() < deadline:
                if len(ids) + upload_errors == len(images) and all(i in thumbs for i in ids):
                    return max(thumbs.values(), default=t0) - t0
                await asyncio.sleep(0.05)
            return None

        async def waited() -> float | None:
            try:
                return await thumbnails()
            finally:
                done.set()

        with RssWatch(bench.pid) as rss:
            busy, uploaded_s, ready_s = await asyncio.gather(
                _probe_sends(bench, ca, cb, cid, "busy", until=done), uploads(), waited()
            )
        result.update(
            images_uploaded=len(ids),
            image_upload_errors=upload_errors,
            images_uploaded_s=round(uploaded_s, 2),
            thumbnails_ready=sum(1 for i in ids if i in thumbs),
            thumbnails_all_ready_s=None if ready_s is None else round(ready_s, 2),
            busy_send_samples=len(busy),
            busy_send_p50_ms=_ms(_percentile(busy, 0.5)),
            busy_send_p99_ms=_ms(_percentile(busy, 0.99)),
            images_server_rss_growth_mib=_mib(rss.growth),
        )
        if ready_s is None:
            result["failed"] = len(ids) - result["thumbnails_ready"] + upload_errors
    if result.get("large_sha256_ok") is False or result.get("large_size_ok") is False:
        result["failed"] = result.get("failed", 0) + 1
    result["send_errors"] = bench.rec.send_errors
    for conn in conns:
        await conn.close()
    return result
