"""GET /api/v1/search and the admins' index endpoints over HTTP, on SQLite and on
PostgreSQL + Redis: the response shape, hostile input (huge q, control characters, bad
cursors and conversation ids, other users' conversations), the rate limit, sign-in."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

from tests.conftest import AppServer, MakeServer, World
from tests.helpers import Api, login, make_user


async def indexed(server: AppServer) -> None:
    await server.search_indexed()


async def test_search_answers_results_highlights_cursor_and_counts(
    world: World, server: AppServer
) -> None:
    ann, ben = await world.users("ann", "ben")
    cid = await world.conversation(ann, ben)
    for i in range(3):
        await ann.send(cid, f"数据库 migration step {i}")
    await indexed(server)
    page = await ben.get("/search", params={"q": "数据库", "limit": 2})
    assert [r["message"]["body"] for r in page["results"]] == [
        "数据库 migration step 2", "数据库 migration step 1"
    ]
    assert page["results"][0]["highlights"] == [[0, 3]]
    assert page["results"][0]["message"]["conversation_id"] == cid
    assert page["counts"] == [{"conversation_id": cid, "count": 3}]
    assert page["counts_capped"] is False
    params = {"q": "数据库", "limit": 2, "cursor": page["next_cursor"]}
    more = await ben.get("/search", params=params)
    assert [r["message"]["body"] for r in more["results"]] == ["数据库 migration step 0"]
    assert more["next_cursor"] is None
    ranked = await ben.get("/search", params={"q": "migration", "order": "relevance"})
    assert len(ranked["results"]) == 3
    one = await ben.get("/search", params={"q": "step", "conversation_id": cid})
    assert len(one["results"]) == 3


def invalid(r: httpx.Response, field: str | None = None) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    if field is not None:
        assert error["details"]["field"] == field, error


async def test_hostile_input_is_refused_with_the_field_named(
    world: World, server: AppServer
) -> None:
    ann, ben, eve = await world.users("ann", "ben", "eve")
    cid = await world.conversation(ann, ben)
    await ann.send(cid, "secret plans")
    await indexed(server)
    http = eve.http
    invalid(await http.get("/search", params={"q": "x" * 501}), "q")
    invalid(await http.get("/search", params={"q": "x" * 60_000}), "q")
    invalid(await http.get("/search", params={"q": "a\x00b"}))  # every URL: no NUL
    invalid(await http.get("/search", params={"q": "a\x1bb"}), "q")
    invalid(await http.get("/search", params={"q": ""}), "q")
    invalid(await http.get("/search"))
    invalid(await http.get("/search", params={"q": "has:everything"}), "q")
    invalid(await http.get("/search", params={"q": "before:yesterday"}), "q")
    invalid(await http.get("/search", params={"q": "from:nobody"}), "q")
    invalid(await http.get("/search", params={"q": "plans in:#G"}), "q")
    for cursor in ("garbage", "!!", "x" * 5000, base64.urlsafe_b64encode(b"[1,2]").decode(),
                   base64.urlsafe_b64encode(orjson.dumps({"o": "n", "t": "x"})).decode()):
        r = await http.get("/search", params={"q": "plans", "cursor": cursor})
        assert r.status_code == 400, (cursor, r.text)
    invalid(await http.get("/search", params={"q": "plans", "limit": 0}))
    invalid(await http.get("/search", params={"q": "plans", "limit": 101}), "limit")
    invalid(await http.get("/search", params={"q": "plans", "order": "random"}))
    # another user's conversation, or none: not found (never told which)
    for other in (cid, "nope", "x" * 900):
        r = await http.get("/search", params={"q": "plans", "conversation_id": other})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    page = await eve.get("/search", params={"q": "plans"})
    assert page["results"] == [] and page["counts"] == []
    # unsigned
    async with httpx.AsyncClient(base_url=server.url + "/api/v1") as anon:
        r = await anon.get("/search", params={"q": "plans"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


async def test_the_admin_endpoints(world: World, server: AppServer) -> None:
    admin = await world.admin()
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    await ann.send(cid, "one")
    await indexed(server)
    status = await admin.get("/admin/search/status")
    assert status["documents"] >= 1 and status["last_indexed_at"] is not None
    assert (await ann.http.get("/admin/search/status")).status_code == 403
    assert (await ann.http.post("/admin/search/reindex")).status_code == 403
    started = await admin.post("/admin/search/reindex", expect=202)
    assert started["started"] in (True, False)


async def test_searches_are_rate_limited(make_server: MakeServer) -> None:
    async with make_server(rate_search_per_user=3, rate_window_seconds=60) as server:
        admin = await login(server.url, "admin", server.admin_password)
        ann: Api = await make_user(admin, "ann")
        try:
            for _ in range(3):
                await ann.get("/search", params={"q": "x"})
            r = await ann.http.get("/search", params={"q": "x"})
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
        finally:
            await ann.close()
            await admin.close()


@pytest.mark.parametrize("q", ["'; DROP TABLE search_docs; --", 'x" OR "y', "a & b | !c",
                               "NEAR(a b)", "\\'", "*", "^x", "x:*"])
async def test_index_syntax_in_q_is_only_text(world: World, server: AppServer, q: str) -> None:
    ann = await world.user("ann")
    cid = await world.conversation(ann)
    await ann.send(cid, "plain words")
    await indexed(server)
    r = await ann.http.get("/search", params={"q": q})
    if r.status_code == 400:  # nothing but punctuation: an empty query
        assert r.json()["error"]["details"]["field"] == "q"
    else:
        assert r.status_code == 200, r.text
        assert r.json()["results"] == []
