"""Avatars (services/avatars.py) over the application in-process, on both backends: set
from one's own processed image upload, seen live by `user_updated` (stale state + the
event == a fresh fetch), served by its tokenless immutable URL and by the token-bearing
GET (square, no EXIF, nosniff, ETag), changed (the old URL stops working), removed by
oneself and by an admin (audited), what a guest sees (those it shares a conversation
with; of others not even the URL), and hostile
inputs: another's file, a non-image, an SVG, a decompression bomb, one over
avatar_max_bytes, one still processing, a made-up URL, a wrong size. The servers run no
worker role: the test runs the upload jobs (`drain`)."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import AppServer, MakeServer, World
from tests.helpers import Api, http_client
from tests.integration.files.test_file_media import jpeg_with_gps, png_claiming
from tidings.sdk import Client, NotFound

PASSWORD = "plum-orbit-123"

SETTINGS: dict[str, object] = {
    "max_upload_bytes": 4 * 1024 * 1024,
    "avatar_max_bytes": 1024 * 1024,
    "roles": ["api", "gateway"],
}


@pytest.fixture
async def aserver(make_server: MakeServer) -> AsyncIterator[AppServer]:
    async with make_server(**SETTINGS) as s:
        yield s


@pytest.fixture
async def aworld(aserver: AppServer) -> AsyncIterator[World]:
    w = World(aserver)
    try:
        yield w
    finally:
        await w.close()


async def upload(api: Api, data: bytes, name: str, content_type: str) -> str:
    r = await api.http.post("/files", files={"file": (name, data, content_type)})
    assert r.status_code == 201, r.text
    return str(r.json()["file"]["id"])


async def processed(server: AppServer, api: Api, data: bytes, name: str, kind: str) -> str:
    file_id = await upload(api, data, name, kind)
    await server.container.services.jobs.drain()
    return file_id


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]


def png_with_alpha() -> bytes:
    im = Image.new("RGBA", (300, 200), (0, 200, 0, 0))
    im.paste((0, 0, 255, 255), (100, 50, 200, 150))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


async def fetch(server: AppServer, url: str, **headers: str) -> Any:
    async with http_client(server.url) as anon:  # no token: as an <img> fetches it
        return await anon.get(url, headers=headers)


async def test_an_avatar_is_set_seen_live_served_changed_and_removed(
    aworld: World, aserver: AppServer
) -> None:
    ann, ben = await aworld.users("ann", "ben")
    await aworld.conversation(ann, ben)
    ws = await aworld.ws(ben)
    stale = (await ben.get(f"/users/{ann.id}"))["user"]
    assert stale["avatar"] is None

    file_id = await processed(aserver, ann, jpeg_with_gps(orientation=6), "me.jpg", "image/jpeg")
    me = (await ann.call("PUT", "/users/me/avatar", json={"file_id": file_id}, expect=200))["user"]
    avatar = me["avatar"]
    assert set(avatar) == {"id", "updated_at", "url", "small_url"}
    assert "token" not in avatar["url"] and "sig" not in avatar["url"]

    # stale state + the event == a fresh fetch (ben's group event)
    event = (await ws.event("user_updated"))["event"]
    assert event["user"]["id"] == ann.id
    fresh = (await ben.get(f"/users/{ann.id}"))["user"]
    assert {**stale, **event["user"]} == fresh == me
    assert (await ann.get("/users/me"))["user"]["avatar"] == avatar
    assert (await aworld.ws(ann)).ready["user"]["avatar"] == avatar  # a new connection's

    # the URL: no token, square, upright, no EXIF, image headers, immutable, ETag
    for url, px in ((avatar["url"], 256), (avatar["small_url"], 64)):
        r = await fetch(aserver, url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in r.headers["cache-control"]
        im = Image.open(io.BytesIO(r.content))
        assert im.size == (px, px) and im.format == "JPEG"
        assert not im.getexif() and "exif" not in im.info
        again = await fetch(aserver, url, **{"if-none-match": r.headers["etag"]})
        assert again.status_code == 304
    # the token-bearing GET, for whoever may see ann
    r = await ben.http.get(f"/users/{ann.id}/avatar", params={"size": 64})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (64, 64)

    # a new picture (transparency: WebP): a new URL; the old one stops working
    other = await processed(aserver, ann, png_with_alpha(), "logo.png", "image/png")
    changed = (await ann.call("PUT", "/users/me/avatar", json={"file_id": other}, expect=200))[
        "user"
    ]["avatar"]
    assert changed["id"] != avatar["id"] and changed["url"] != avatar["url"]
    assert (await ws.event("user_updated"))["event"]["user"]["avatar"] == changed
    refused(await fetch(aserver, avatar["url"]), 404, "not_found")
    r = await fetch(aserver, changed["url"])
    assert r.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(r.content)).mode == "RGBA"

    # removed: an event, null, the URL and the bearer GET are not_found
    gone = (await ann.call("DELETE", "/users/me/avatar", expect=200))["user"]
    assert gone["avatar"] is None
    assert (await ws.event("user_updated"))["event"]["user"] == gone
    assert (await ben.get(f"/users/{ann.id}"))["user"] == gone
    refused(await fetch(aserver, changed["url"]), 404, "not_found")
    refused(await ben.http.get(f"/users/{ann.id}/avatar"), 404, "not_found")
    # one's own changes are audited as profile changes
    admin = await aworld.admin()
    audit = await admin.get("/audit", params={"action": "user_updated", "actor_id": ann.id})
    assert [e["details"]["fields"] for e in audit["entries"]] == [["avatar"]] * 3


async def test_admins_remove_an_avatar_guests_see_only_whom_they_share_a_conversation_with(
    aworld: World, aserver: AppServer
) -> None:
    ann, ben = await aworld.users("ann", "ben")
    near, far, chan = await aworld.users("near", "far", "chan", role="guest")
    await aworld.conversation(ann, near)
    await aworld.conversation(ben, ann, chan, kind="channel", name="general")
    file_id = await processed(aserver, ann, jpeg_with_gps(), "me.jpg", "image/jpeg")
    mine = await ann.call("PUT", "/users/me/avatar", json={"file_id": file_id}, expect=200)
    url = mine["user"]["avatar"]["url"]

    # a guest sees the avatars of people it shares a conversation with (a channel
    # too); of anyone else neither the image nor its URL
    for guest in (near, chan):
        assert (await guest.http.get(f"/users/{ann.id}/avatar")).status_code == 200
        assert (await guest.get(f"/users/{ann.id}"))["user"]["avatar"]["url"] == url
    refused(await far.http.get(f"/users/{ann.id}/avatar"), 404, "not_found")
    assert (await far.get(f"/users/{ann.id}"))["user"]["avatar"] is None
    found = await far.get("/users", params={"query": "ann"})
    assert [u["avatar"] for u in found["users"] if u["id"] == ann.id] in ([], [None])
    assert (await ben.get("/users", params={"query": "ann"}))["users"][0]["avatar"]["url"] == url
    refused(await ben.http.get(f"/users/{far.id}/avatar"), 404, "not_found")  # has none

    refused(await ben.http.delete(f"/users/{ann.id}/avatar"), 403, "forbidden")
    admin = await aworld.admin()
    removed = await admin.call("DELETE", f"/users/{ann.id}/avatar", expect=200)
    assert removed["user"]["avatar"] is None
    audit = await admin.get("/audit", params={"action": "avatar_removed"})
    [entry] = audit["entries"]
    assert entry["actor_id"] == admin.id and entry["target_id"] == ann.id


async def test_hostile_avatars_are_refused_with_nothing_changed(
    aworld: World, aserver: AppServer
) -> None:
    ann, ben = await aworld.users("ann", "ben")

    async def put(file_id: str) -> Any:
        return await ann.http.put("/users/me/avatar", json={"file_id": file_id})

    image = jpeg_with_gps()
    # still processing: conflict (the job has not run)
    pending = await upload(ann, image, "me.jpg", "image/jpeg")
    refused(await put(pending), 409, "conflict")
    await aserver.container.services.jobs.drain()
    # someone else's upload, a missing one: not_found, as alike
    theirs = await processed(aserver, ben, image, "ben.jpg", "image/jpeg")
    refused(await put(theirs), 404, "not_found")
    refused(await put("nope"), 404, "not_found")
    # not an image; an SVG (uploaded as a plain file: no preview); a decompression bomb
    text = await processed(aserver, ann, b"hello world" * 10, "a.png", "image/png")
    refused(await put(text), 415, "unsupported_media_type")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    r = await ann.http.post("/files", files={"file": ("x.svg", svg, "image/svg+xml")})
    if r.status_code == 201:
        await aserver.container.services.jobs.drain()
        refused(await put(r.json()["file"]["id"]), 415, "unsupported_media_type")
    bomb = await processed(aserver, ann, png_claiming(50_000, 50_000), "b.png", "image/png")
    refused(await put(bomb), 415, "unsupported_media_type")
    # over avatar_max_bytes (1 MiB here)
    noise = Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    assert len(out.getvalue()) > 1024 * 1024
    big = await processed(aserver, ann, out.getvalue(), "big.png", "image/png")
    refused(await put(big), 413, "too_large")
    # bad bodies and queries
    refused(await ann.http.put("/users/me/avatar", json={"file_id": 7}), 400, "invalid_request")
    r = await ann.http.put("/users/me/avatar", json={"file_id": pending, "x": 1})
    refused(r, 400, "invalid_request")
    refused(
        await ann.http.get(f"/users/{ann.id}/avatar", params={"size": 100}), 400, "invalid_request"
    )
    refused(await fetch(aserver, f"/api/v1/users/{ann.id}/avatar/{'0' * 32}"), 404, "not_found")
    assert (await ann.get("/users/me"))["user"]["avatar"] is None  # nothing was changed
    # and a good one still works after all that
    assert (await put(pending)).status_code == 200


async def test_the_sdk_sets_an_avatar_from_a_path_and_removes_it(
    make_server: MakeServer, tmp_path: Path
) -> None:
    # every role: the worker runs the upload's job while set_avatar waits for it
    async with (
        make_server(max_upload_bytes=4 * 1024 * 1024) as server,
        Client(server.url) as admin,
    ):
        await admin.login(server.admin_username, server.admin_password)
        ann_user = await admin.create_user(f"ann{secrets.token_hex(3)}", PASSWORD)
        async with Client(server.url) as ann:
            await ann.login(ann_user.username, PASSWORD)
            source = tmp_path / "me.jpg"
            source.write_bytes(jpeg_with_gps())
            me = await ann.set_avatar(source)
            assert me.avatar is not None and me.avatar.url.endswith("?size=256")
            assert ann.user is not None and ann.user.avatar == me.avatar
            seen = await admin.get_user(ann_user.id)
            assert seen.avatar == me.avatar
            image = Image.open(io.BytesIO(await admin.avatar_bytes(ann_user.id, size=64)))
            assert image.size == (64, 64)
            removed = await admin.remove_avatar(ann_user.id)  # moderation
            assert removed.avatar is None
            assert (await ann.me()).avatar is None
            with pytest.raises(NotFound):
                await admin.avatar_bytes(ann_user.id)
            with pytest.raises(NotFound):
                await ann.set_avatar("no-such-file")


async def test_avatar_changes_count_against_the_profile_rate_limit(make_server: MakeServer) -> None:
    async with make_server(rate_membership_per_user=3, roles=["api", "gateway"]) as server:
        world = World(server)
        try:
            ann = await world.user("ann")
            for _ in range(3):  # no avatar: answered as is, but counted
                await ann.call("DELETE", "/users/me/avatar", expect=200)
            r = await ann.http.put("/users/me/avatar", json={"file_id": "x"})
            refused(r, 429, "rate_limited")
            assert r.headers["retry-after"]
        finally:
            await world.close()
