"""The job after an upload, for images (workers/files.py, workers/imaging.py), on both
databases and every blob store: the message is delivered at once, then gains its
thumbnail by a `file_updated` event (stale state + events == a fresh fetch); what is
served inline has no EXIF (GPS) and is turned as the camera said; a decompression bomb
and a file Pillow cannot read stay plain files, downloadable; an animated GIF gets a
still. The servers here run no worker role: the test runs the jobs (`drain`), so that
the message is surely delivered before its thumbnail exists."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from tests.conftest import AppServer, MakeServer, World
from tests.helpers import Api, Ws

SETTINGS: dict[str, object] = {
    "max_upload_bytes": 4 * 1024 * 1024,
    "roles": ["api", "gateway"],  # no worker: the test drains the jobs itself
}


@pytest.fixture
async def mserver(
    make_server: MakeServer, blob_settings: dict[str, object]
) -> AsyncIterator[AppServer]:
    async with make_server(**SETTINGS, **blob_settings) as s:
        yield s


@pytest.fixture
async def mworld(mserver: AppServer) -> AsyncIterator[World]:
    w = World(mserver)
    try:
        yield w
    finally:
        await w.close()


def jpeg_with_gps(orientation: int = 6) -> bytes:
    im = Image.new("RGB", (800, 400), (200, 30, 30))
    im.paste((30, 30, 200), (0, 0, 400, 400))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SpyCam Inc."
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.0), "E", (13.0, 24.0, 36.0)
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (120, 90), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return out.getvalue()


async def upload(api: Api, data: bytes, name: str, content_type: str) -> dict[str, Any]:
    r = await api.http.post("/files", files={"file": (name, data, content_type)})
    assert r.status_code == 201, r.text
    file: dict[str, Any] = r.json()["file"]
    return file


async def send_with(
    world: World, server: AppServer, data: bytes, name: str, content_type: str
) -> tuple[Api, Api, Ws, str, dict[str, Any], dict[str, Any]]:
    """Ann sends `data` to Ben, who watches live: (ann, ben, ben's ws, cid, message as
    Ben got it, the file as uploaded)."""
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    ws = await world.ws(ben)
    file = await upload(ann, data, name, content_type)
    assert file["status"] == "processing" and file["has_thumbnail"] is False
    sent = await ann.send(cid, f"here is {name}", attachments=[file["id"]])
    got = (await ws.event("message"))["event"]["message"]
    assert got["seq"] == sent["seq"]
    assert [a["id"] for a in got["attachments"]] == [file["id"]]
    assert got["attachments"][0]["has_thumbnail"] is False  # delivered before the job ran
    await server.container.services.jobs.drain()
    return ann, ben, ws, cid, got, file


def apply_file_updated(message: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """What a client does with `file_updated`: replace the attachment by id."""
    assert event["seq"] == message["seq"]
    out = dict(message)
    out["attachments"] = [
        event["file"] if a["id"] == event["file"]["id"] else a for a in message["attachments"]
    ]
    return out


async def fresh_message(api: Api, cid: str, seq: int) -> dict[str, Any]:
    page = await api.get(f"/conversations/{cid}/messages", params={"limit": 50})
    found: dict[str, Any] = next(m for m in page["messages"] if m["seq"] == seq)
    return found


async def test_an_image_gains_its_thumbnail_by_an_event_without_exif_turned_upright(
    mworld: World, mserver: AppServer
) -> None:
    ann, ben, ws, cid, stale, file = await send_with(
        mworld, mserver, jpeg_with_gps(orientation=6), "beach.jpg", "image/jpeg"
    )
    event = (await ws.event("file_updated"))["event"]
    assert event["conversation_id"] == cid and event["seq"] == stale["seq"]
    updated = event["file"]
    assert updated["id"] == file["id"] and updated["status"] == "ready"
    assert updated["has_thumbnail"] is True
    assert (updated["width"], updated["height"]) == (400, 800)  # orientation 6: turned
    # stale state + events == a fresh fetch, for both members
    for who in (ann, ben):
        assert apply_file_updated(stale, event) == await fresh_message(who, cid, stale["seq"])
    meta = (await ben.get(f"/files/{file['id']}/meta"))["file"]
    assert meta == updated

    for size, longest in (("small", 320), ("preview", 800)):
        r = await ben.http.get(f"/files/{file['id']}/thumbnail", params={"size": size})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        served = Image.open(io.BytesIO(r.content))
        assert max(served.size) == longest and served.height > served.width  # upright
        assert dict(served.getexif()) == {}  # no GPS, no camera, nothing
        assert b"SpyCam" not in r.content
        top, bottom = (
            served.convert("RGB").getpixel((10, 10)),
            served.convert("RGB").getpixel((10, served.height - 10)),
        )
        assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2]  # blue half on top
    # the original is the uploader's file, untouched (its EXIF included)
    r = await ben.http.get(f"/files/{file['id']}")
    assert r.content == jpeg_with_gps(orientation=6)
    # a signed link to the thumbnail works without a token
    link = await ben.post(f"/files/{file['id']}/link", {"variant": "thumbnail"})
    r = await ben.http.get(link["url"].removeprefix("/api/v1"), headers={"authorization": ""})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    # the job again (delivery is at least once): nothing more happens
    await mserver.container.services.jobs.consume("file_uploaded", {"file_id": file["id"]})
    after = await ben.get("/sync", params={"since": ws.last_position, "limit": 50})
    assert [e["kind"] for e in after["events"]] == []
    await ws.close()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
async def test_a_decompression_bomb_is_refused_and_stays_a_plain_file(
    mworld: World, mserver: AppServer
) -> None:
    bomb = png_claiming(50_000, 50_000)
    _ann, ben, ws, cid, stale, file = await send_with(
        mworld, mserver, bomb, "huge.png", "image/png"
    )
    event = (await ws.event("file_updated"))["event"]
    updated = event["file"]
    assert updated["status"] == "ready" and updated["has_thumbnail"] is False
    assert updated["width"] is None and updated["height"] is None
    assert apply_file_updated(stale, event) == await fresh_message(ben, cid, stale["seq"])
    r = await ben.http.get(f"/files/{file['id']}/thumbnail")
    assert r.status_code == 404
    r = await ben.http.get(f"/files/{file['id']}")
    assert r.status_code == 200 and r.content == bomb  # still downloadable
    await ws.close()


async def test_an_animated_gif_gets_a_still_thumbnail(mworld: World, mserver: AppServer) -> None:
    gif = animated_gif()
    _ann, ben, ws, _cid, _stale, file = await send_with(
        mworld, mserver, gif, "dance.gif", "image/gif"
    )
    updated = (await ws.event("file_updated"))["event"]["file"]
    assert updated["has_thumbnail"] is True and (updated["width"], updated["height"]) == (120, 90)
    r = await ben.http.get(f"/files/{file['id']}/thumbnail")
    thumb = Image.open(io.BytesIO(r.content))
    assert thumb.format == "JPEG" and not getattr(thumb, "is_animated", False)
    r, g, b = thumb.convert("RGB").getpixel((60, 45))
    assert r > 200 > g and b < 60  # the first frame
    assert (await ben.http.get(f"/files/{file['id']}")).content == gif  # the original animates
    await ws.close()


async def test_a_file_that_is_no_image_is_ready_without_a_thumbnail(
    mworld: World, mserver: AppServer
) -> None:
    truncated = jpeg_with_gps()[:600]
    _ann, ben, ws, cid, stale, file = await send_with(
        mworld, mserver, truncated, "broken.jpg", "image/jpeg"
    )
    event = (await ws.event("file_updated"))["event"]
    assert event["file"]["status"] == "ready" and event["file"]["has_thumbnail"] is False
    assert apply_file_updated(stale, event) == await fresh_message(ben, cid, stale["seq"])
    assert (await ben.http.get(f"/files/{file['id']}")).content == truncated
    await ws.close()
