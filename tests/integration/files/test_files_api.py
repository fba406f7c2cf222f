"""Files over REST (docs/files.md), on both databases and every blob store
(`blob_store_kind`): upload, who may read a file, attachments on messages, recall,
ranges, signed links, safe serving, limits, dedupe and collection."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppServer, MakeServer, World
from tests.fakes import FakeClock
from tests.helpers import Api
from tests.raw_http import RawHttp, request
from tidings.blobs.ports import BlobMissing
from tidings.core.models import FileStatus

FILE_SETTINGS: dict[str, object] = {"max_upload_bytes": 256 * 1024, "max_request_bytes": 4096}


def png(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG (grey pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def fserver(
    make_server: MakeServer, blob_settings: dict[str, object]
) -> AsyncIterator[AppServer]:
    clock = FakeClock()
    async with make_server(clock=clock, **FILE_SETTINGS, **blob_settings) as s:
        s.fake_clock = clock  # type: ignore[attr-defined]
        yield s


@pytest.fixture
async def fworld(fserver: AppServer) -> AsyncIterator[World]:
    w = World(fserver)
    try:
        yield w
    finally:
        await w.close()


async def upload(
    api: Api,
    data: bytes,
    name: str = "notes.txt",
    content_type: str = "text/plain",
    expect: int = 201,
) -> dict[str, Any]:
    r = await api.http.post("/files", files={"file": (name, data, content_type)})
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    return body["file"] if expect == 201 else body


async def ready(server: AppServer, api: Api, file_id: str) -> None:
    """Until the job after the upload has marked the file ready."""
    for _ in range(200):
        await server.container.services.jobs.drain()
        if (await api.get(f"/files/{file_id}/meta"))["file"]["status"] == "ready":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the file never became ready")


def stored_blobs(server: AppServer) -> list[Path]:
    """The blob files of a data-directory store, temporary files included."""
    root = server.data_dir / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_then_read_it_back(fworld: World, fserver: AppServer) -> None:
    ann = await fworld.user("ann")
    data = b"hello, files\n" * 100
    file = await upload(ann, data, "report.txt")
    assert file["name"] == "report.txt"
    assert file["size"] == len(data)
    assert file["content_type"] == "text/plain"
    assert file["uploader_id"] == ann.id
    assert file["status"] in ("processing", "ready")
    assert len(file["sha256"]) == 64 and file["has_thumbnail"] is False
    meta = await ann.get(f"/files/{file['id']}/meta")
    assert meta["file"]["id"] == file["id"]
    r = await ann.http.get(f"/files/{file['id']}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["etag"] == f'"{file["sha256"]}"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert r.headers["content-disposition"].startswith("attachment;")
    # the job after the upload (default: marks it ready), run by the worker role
    for _ in range(200):
        await fserver.container.services.jobs.drain()
        status = (await ann.get(f"/files/{file['id']}/meta"))["file"]["status"]
        if status == "ready":
            break
        await asyncio.sleep(0.05)
    assert status == "ready"


async def test_only_the_uploader_and_members_where_attached_see_a_file(fworld: World) -> None:
    ann, ben, eve = await fworld.users("ann", "ben", "eve")
    file = await upload(ann, b"secret plans")
    fid = file["id"]
    for who in (ben, eve):
        for path in (f"/files/{fid}", f"/files/{fid}/meta"):
            r = await who.http.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (await who.http.post(f"/files/{fid}/link")).status_code == 404
    cid = await fworld.conversation(ann, ben)
    message = await ann.send(cid, "see attached", attachments=[fid])
    assert [a["id"] for a in message["attachments"]] == [fid]
    assert (await ben.http.get(f"/files/{fid}")).content == b"secret plans"
    assert (await eve.http.get(f"/files/{fid}")).status_code == 404
    # a missing file answers the same as one not visible
    missing = await eve.http.get(f"/files/{uuid.uuid4().hex}/meta")
    assert missing.status_code == 404
    # history carries the file objects
    page = await ben.get(f"/conversations/{cid}/messages")
    assert page["messages"][-1]["attachments"][0]["name"] == "notes.txt"


async def test_only_the_uploader_can_attach_and_the_count_is_bounded(fworld: World) -> None:
    ann, ben = await fworld.users("ann", "ben")
    cid = await fworld.conversation(ann, ben)
    file = await upload(ann, b"mine")
    r = await ben.http.post(
        f"/conversations/{cid}/messages",
        json={"client_msg_id": "b1", "body": "x", "attachments": [file["id"]]},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    many = [(await upload(ann, f"f{i}".encode()))["id"] for i in range(11)]
    r = await ann.http.post(
        f"/conversations/{cid}/messages",
        json={"client_msg_id": "a1", "body": "x", "attachments": many},
    )
    assert r.status_code == 400 and r.json()["error"]["details"]["limit"] == 10
    r = await ann.http.post(
        f"/conversations/{cid}/messages",
        json={"client_msg_id": "a2", "body": "x", "attachments": [file["id"], file["id"]]},
    )
    assert r.status_code == 400
    # nothing was written by the refused sends
    assert (await ann.get(f"/conversations/{cid}/messages"))["messages"] == []


async def test_a_recalled_message_takes_its_files_access_with_it(fworld: World) -> None:
    ann, ben = await fworld.users("ann", "ben")
    cid = await fworld.conversation(ann, ben)
    fid = (await upload(ann, b"oops"))["id"]
    message = await ann.send(cid, "wrong file", attachments=[fid])
    assert (await ben.http.get(f"/files/{fid}")).status_code == 200
    recalled = (
        await ann.call("DELETE", f"/conversations/{cid}/messages/{message['seq']}", expect=200)
    )["message"]
    assert recalled["attachments"] == []
    assert (await ben.http.get(f"/files/{fid}")).status_code == 404
    assert (await ben.get(f"/conversations/{cid}/files"))["files"] == []
    assert (await ann.http.get(f"/files/{fid}")).status_code == 200  # still the uploader's
    page = await ben.get(f"/conversations/{cid}/messages")
    assert page["messages"][-1]["attachments"] == []


async def test_a_removed_member_keeps_only_what_was_sent_before(fworld: World) -> None:
    ann, ben = await fworld.users("ann", "ben")
    cid = await fworld.conversation(ann, ben)
    before = (await upload(ann, b"before"))["id"]
    await ann.send(cid, "one", attachments=[before])
    await ann.call("DELETE", f"/conversations/{cid}/members/{ben.id}", expect=204)
    after = (await upload(ann, b"after"))["id"]
    await ann.send(cid, "two", attachments=[after])
    assert (await ben.http.get(f"/files/{before}")).status_code == 200
    assert (await ben.http.get(f"/files/{after}")).status_code == 404


async def test_ranges(fworld: World) -> None:
    ann = await fworld.user("ann")
    data = bytes(range(256)) * 40
    fid = (await upload(ann, data, "bytes.bin", "application/octet-stream"))["id"]
    r = await ann.http.get(f"/files/{fid}", headers={"range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = await ann.http.get(f"/files/{fid}", headers={"range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = await ann.http.get(f"/files/{fid}", headers={"range": "bytes=10000-"})
    assert r.status_code == 206 and r.content == data[10000:]
    r = await ann.http.get(f"/files/{fid}", headers={"range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    assert r.json()["error"]["code"] == "invalid_request"
    r = await ann.http.get(f"/files/{fid}", headers={"range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == data  # several ranges: the whole file
    etag = r.headers["etag"]
    r = await ann.http.get(f"/files/{fid}", headers={"if-none-match": etag})
    assert r.status_code == 304


async def test_signed_links(fworld: World, fserver: AppServer) -> None:
    ann = await fworld.user("ann")
    fid = (await upload(ann, png(), "pic.png", "image/png"))["id"]
    link = await ann.post(f"/files/{fid}/link", {"variant": "original"})
    url: str = link["url"]
    assert url.startswith(f"/api/v1/files/{fid}/signed?") and link["expires_at"]
    anonymous = Api(fserver.url)
    try:
        r = await anonymous.http.get(url.removeprefix("/api/v1"))
        assert r.status_code == 200 and r.content == png()
        assert "immutable" in r.headers["cache-control"]
        assert r.headers["cache-control"].startswith("public, max-age=")
        assert r.headers["etag"] == f'"{hashlib.sha256(png()).hexdigest()}"'
        assert r.headers["content-disposition"].startswith("inline;")  # a clean PNG
        tampered = url.replace("variant=original", "variant=preview")
        r = await anonymous.http.get(tampered.removeprefix("/api/v1"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        bad_sig = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
        assert (await anonymous.http.get(bad_sig.removeprefix("/api/v1"))).status_code == 404
        other = url.replace(fid, uuid.uuid4().hex[:len(fid)])
        assert (await anonymous.http.get(other.removeprefix("/api/v1"))).status_code == 404
        fserver.fake_clock.advance(3600)  # type: ignore[attr-defined]
        r = await anonymous.http.get(url.removeprefix("/api/v1"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    finally:
        await anonymous.close()
    # a thumbnail that does not exist has no link and no bytes (a text file: an image
    # gets its thumbnail from the worker, which runs here, workers/files.py)
    tid = (await upload(ann, b"no pixels here\n", "notes.txt"))["id"]
    await fserver.container.services.jobs.drain()
    r = await ann.http.post(f"/files/{tid}/link", json={"variant": "thumbnail"})
    assert r.status_code == 404
    assert (await ann.http.get(f"/files/{tid}/thumbnail")).status_code == 404


async def test_polyglot_and_markup_are_never_inline(fworld: World) -> None:
    ann = await fworld.user("ann")
    polyglot = png() + b"<html><script>alert(1)</script></html>"
    file = await upload(ann, polyglot, "cat.png", "image/png")
    assert file["content_type"] == "image/png"
    r = await ann.http.get(f"/files/{file['id']}")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    gifar = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;" + b"PK\x03\x04" + b"\x00" * 40
    r = await ann.http.get(f"/files/{(await upload(ann, gifar, 'a.gif', 'image/gif'))['id']}")
    assert r.headers["content-disposition"].startswith("attachment;")
    for body, declared, sniffed in (
        (b"<!DOCTYPE html><html><body>hi</body></html>", "image/png", "text/html"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "image/png",
         "image/svg+xml"),
    ):
        file = await upload(ann, body, "x.png", declared)
        assert file["content_type"] == sniffed  # the bytes, not the client's word
        r = await ann.http.get(f"/files/{file['id']}")
        assert r.headers["content-disposition"].startswith("attachment;")
        assert r.headers["content-type"].startswith("application/octet-stream")
        assert r.headers["content-security-policy"] == "sandbox; default-src 'none'"
    clean = await upload(ann, png(), "ok.png", "application/octet-stream")
    r = await ann.http.get(f"/files/{clean['id']}")
    assert clean["content_type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    assert r.headers["content-type"] == "image/png"


async def test_hostile_file_names(fworld: World) -> None:
    ann = await fworld.user("ann")
    file = await upload(ann, b"x", "../../etc/passwd", "text/plain")
    assert file["name"] == "passwd"
    file = await upload(ann, b"x", "a\u202egnp.exe\x07\r\n.txt", "text/plain")
    assert "\u202e" not in file["name"] and "\r" not in file["name"] and "\x07" not in file["name"]
    huge = "ü" * 5000 + ".txt"
    file = await upload(ann, b"x", huge, "text/plain")
    assert len(file["name"]) <= 200 and file["name"].endswith(".txt")
    r = await ann.http.get(f"/files/{file['id']}")
    disposition = r.headers["content-disposition"]
    assert "filename*=UTF-8''" in disposition and "%C3%BC" in disposition
    assert disposition.isascii()


async def test_blocked_types(fworld: World, fserver: AppServer) -> None:
    ann = await fworld.user("ann")
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 600
    pe = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 600
    for data, name in ((elf, "tool"), (pe, "setup.txt")):
        body = await upload(ann, data, name, "text/plain", expect=415)
        assert body["error"]["code"] == "unsupported_media_type"
    assert [p for p in stored_blobs(fserver)] == []


async def test_too_large_while_streaming_leaves_nothing(fworld: World, fserver: AppServer) -> None:
    ann = await fworld.user("ann")
    # over the global max_request_bytes (4 KiB here) but within max_upload_bytes: fine
    ok = await upload(ann, b"a" * 100_000, "big.txt")
    assert ok["size"] == 100_000
    before = stored_blobs(fserver)
    body = await upload(ann, b"b" * (300 * 1024), "huge.txt", expect=413)
    assert body["error"]["code"] == "too_large"
    assert stored_blobs(fserver) == before
    # other routes keep the global limit
    r = await ann.http.post("/users/me", content=b"x" * 10_000)
    assert r.status_code == 413


async def test_quota(make_server: MakeServer, blob_settings: dict[str, object]) -> None:
    async with make_server(upload_quota_bytes=3000, **FILE_SETTINGS, **blob_settings) as s:
        world = World(s)
        try:
            ann = await world.user("ann")
            await upload(ann, b"a" * 2000)
            body = await upload(ann, b"b" * 2000, expect=413)
            assert body["error"]["code"] == "too_large"
            assert body["error"]["details"]["limit"] == 3000
            await upload(ann, b"c" * 900)
            body = await upload(ann, b"d" * 200, expect=413)
            assert "quota" in body["error"]["message"]
        finally:
            await world.close()


async def test_the_same_bytes_are_stored_once(fworld: World, fserver: AppServer) -> None:
    ann, ben = await fworld.users("ann", "ben")
    data = b"the same report\n" * 50
    one = await upload(ann, data, "a.txt")
    two = await upload(ben, data, "b.txt")
    assert one["id"] != two["id"] and one["sha256"] == two["sha256"]
    assert (await ben.http.get(f"/files/{two['id']}")).content == data
    if fserver.settings.blob_url is None:
        root = fserver.data_dir / "blobs"
        assert len([p for p in stored_blobs(fserver) if p.relative_to(root).parts[0] != "tmp"]) == 1


async def test_an_interrupted_upload_leaves_nothing(fworld: World, fserver: AppServer) -> None:
    ann = await fworld.user("ann")
    boundary = "xyzBOUNDARY"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="cut.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    raw = await RawHttp.connect(fserver.url)
    await raw.send(
        request(
            "POST",
            "/api/v1/files",
            {
                "Authorization": f"Bearer {ann.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + 200_000),
            },
        )
        + head
        + b"z" * 50_000
    )
    await asyncio.sleep(0.3)
    await raw.close()  # mid-body
    for _ in range(100):
        await asyncio.sleep(0.05)
        if not [p for p in stored_blobs(fserver)]:
            break
    assert stored_blobs(fserver) == []
    async with fserver.container.store.read() as tx:
        assert await tx.uploaded_bytes(ann.id) == 0
    # the server goes on
    assert (await upload(ann, b"after"))["size"] == 5


async def test_malformed_uploads(fworld: World) -> None:
    ann = await fworld.user("ann")
    r = await ann.http.post("/files", content=b"raw", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = await ann.http.post("/files", files={"other": ("x.txt", b"x", "text/plain")})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "file"
    r = await ann.http.post(
        "/files",
        content=b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 400
    anonymous = Api(ann.base_url)
    try:
        r = await anonymous.http.post("/files", files={"file": ("x.txt", b"x", "text/plain")})
        assert r.status_code == 401
    finally:
        await anonymous.close()


async def test_conversation_files_panel(fworld: World) -> None:
    ann, ben, eve = await fworld.users("ann", "ben", "eve")
    cid = await fworld.conversation(ann, ben)
    ids = []
    for i in range(3):
        a = (await upload(ann, f"a{i}".encode(), f"a{i}.txt"))["id"]
        b = (await upload(ann, f"b{i}".encode(), f"b{i}.txt"))["id"]
        await ann.send(cid, f"m{i}", attachments=[a, b])
        ids.append([a, b])
    page = await ben.get(f"/conversations/{cid}/files", params={"limit": 1})
    # a message's files are never split: the first page has at least its two
    assert [f["file"]["id"] for f in page["files"]][:2] == ids[2]
    every = await ben.get(f"/conversations/{cid}/files")
    assert len(every["files"]) == 6 and every["next_cursor"] is None
    assert every["files"][0]["sender_id"] == ann.id
    r = await eve.http.get(f"/conversations/{cid}/files")
    assert r.status_code == 404


async def test_collection_after_the_grace_period(
    make_server: MakeServer, blob_settings: dict[str, object]
) -> None:
    clock = FakeClock()
    async with make_server(
        clock=clock, files_gc_grace_seconds=600, **FILE_SETTINGS, **blob_settings
    ) as s:
        world = World(s)
        try:
            ann, ben = await world.users("ann", "ben")
            cid = await world.conversation(ann, ben)
            kept = await upload(ann, b"attached")
            dropped = await upload(ann, b"never attached")
            await ann.send(cid, "x", attachments=[kept["id"]])
            files = s.container.services.files
            blobs = s.container.blobs
            await ready(s, ann, dropped["id"])  # the job after the upload is done
            await blobs.put("t/dropped.webp", b"thumb")  # as the media job would make it
            await files.mark_processed(dropped["id"], FileStatus.READY, thumb_key="t/dropped.webp")
            assert (await files.collect(None)).files == 0  # within the grace period
            clock.advance(601)
            collected = await files.collect(None)
            assert (collected.files, collected.blobs) == (1, 1)
            assert (await ann.http.get(f"/files/{dropped['id']}/meta")).status_code == 404
            assert (await ben.http.get(f"/files/{kept['id']}")).content == b"attached"
            with pytest.raises(BlobMissing):  # its thumbnail went with it
                await blobs.size("t/dropped.webp")
            if s.settings.blob_url is None:
                assert len(stored_blobs(s)) == 1
        finally:
            await world.close()


async def test_websocket_send_with_attachments_and_events_equal_a_fresh_fetch(
    fworld: World,
) -> None:
    ann, ben, eve = await fworld.users("ann", "ben", "eve")
    cid = await fworld.conversation(ann, ben)
    start = (await ben.get("/sync"))["next"]
    ws_ann, ws_ben = await fworld.ws(ann), await fworld.ws(ben)
    fid = (await upload(ann, png(), "pic.png", "image/png"))["id"]
    ack = await ws_ann.request(
        {
            "type": "send",
            "conversation_id": cid,
            "client_msg_id": uuid.uuid4().hex,
            "body": "look",
            "attachments": [fid],
        }
    )
    assert ack["type"] == "ack", ack
    assert [a["id"] for a in ack["message"]["attachments"]] == [fid]
    live = (await ws_ben.event("message"))["event"]["message"]
    assert live["attachments"][0]["content_type"] == "image/png"
    # eve's upload cannot ride on ann's frame, nor ann's on eve's
    other = (await upload(eve, b"eve's"))["id"]
    refused = await ws_ann.request(
        {"type": "send", "conversation_id": cid, "client_msg_id": "x1", "body": "x",
         "attachments": [other]}
    )
    assert refused["type"] == "error" and refused["error"]["code"] == "not_found"
    # stale state + events == fresh fetch, through a recall too
    await ann.call("DELETE", f"/conversations/{cid}/messages/{live['seq']}", expect=200)
    events = (await ben.get("/sync", params={"since": start}))["events"]
    state: dict[int, dict[str, Any]] = {}
    for item in events:
        event = item["event"]
        if event["kind"] in ("message", "message_deleted", "message_edited"):
            state[event["message"]["seq"]] = event["message"]
    fresh = {m["seq"]: m for m in (await ben.get(f"/conversations/{cid}/messages"))["messages"]}
    assert state == fresh
    assert fresh[live["seq"]]["attachments"] == []


async def test_the_worker_schedules_one_collection_per_interval(fserver: AppServer) -> None:
    from tidings.core.jobs import JobState
    from tidings.workers.maintenance import Maintenance

    worker = Maintenance(fserver.container)
    first = await worker.schedule_files_gc()
    assert await worker.schedule_files_gc() == first  # another worker: the same job
    jobs = fserver.container.services.jobs
    for _ in range(200):
        await jobs.drain()
        if (await jobs.show(None, first)).state is JobState.DONE:
            break
        await asyncio.sleep(0.05)
    assert (await jobs.show(None, first)).state is JobState.DONE


async def test_uploads_are_rate_limited(
    make_server: MakeServer, blob_settings: dict[str, object]
) -> None:
    async with make_server(rate_upload_per_user=2, **FILE_SETTINGS, **blob_settings) as s:
        world = World(s)
        try:
            ann = await world.user("ann")
            await upload(ann, b"one")
            await upload(ann, b"two")
            r = await ann.http.post("/files", files={"file": ("3.txt", b"three", "text/plain")})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
            assert "retry-after" in r.headers
        finally:
            await world.close()
