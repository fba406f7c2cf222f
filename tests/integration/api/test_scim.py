"""SCIM 2.0 at /scim/v2, driven as Okta and Entra ID drive it, on both backends:
users and groups (departments) through their lifecycle, deactivation ending sessions
and connections, the token's permissions, hostile input, limits, ETags and the audit
log. The compliance checker's run is tests/e2e/test_scim_compliance.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import AppServer, MakeServer, World
from tests.helpers import USER_PASSWORD, Api, Ws, http_client, login

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class Scim:
    """An identity provider's SCIM client of one server."""

    def __init__(self, server: AppServer, token: str) -> None:
        self.http = http_client(
            server.url + "/scim/v2",
            headers={"authorization": f"Bearer {token}", "content-type": SCIM},
            timeout=30,
        )

    async def call(
        self, method: str, path: str, body: Any = None, expect: int | None = None, **kw: Any
    ) -> httpx.Response:
        content = None if body is None else orjson.dumps(body)
        r = await self.http.request(method, path, content=content, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        if r.content:
            assert r.headers["content-type"].startswith(SCIM), r.headers
        return r

    async def create_user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        body = {"schemas": [USER], "userName": user_name, **extra}
        return dict((await self.call("POST", "/Users", body, 201)).json())

    async def patch(self, path: str, *operations: dict[str, Any], expect: int = 200) -> Any:
        r = await self.call("PATCH", path, {"schemas": [PATCH], "Operations": list(operations)})
        assert r.status_code == expect, r.text
        return r.json() if r.content else None

    async def close(self) -> None:
        await self.http.aclose()


async def issue(admin: Api, name: str = "Okta") -> dict[str, Any]:
    issued: dict[str, Any] = await admin.post("/scim/tokens", {"name": name}, expect=201)
    return issued


@pytest.fixture
async def scim(server: AppServer, world: World) -> AsyncIterator[Scim]:
    issued = await issue(await world.admin())
    client = Scim(server, issued["secret"])
    try:
        yield client
    finally:
        await client.close()


async def account(admin: Api, username: str) -> dict[str, Any]:
    """The Tidings account of this username, as an admin sees it."""
    found = [
        u
        for u in (await admin.get("/users", params={"query": username}))["users"]
        if u["username"] == username
    ]
    assert len(found) == 1, found
    return dict(found[0])


def scim_error(r: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM)
    body: dict[str, Any] = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status), body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


# --- discovery ---------------------------------------------------------------------------
async def test_discovery_documents_say_what_tidings_serves(scim: Scim) -> None:
    spc = (await scim.call("GET", "/ServiceProviderConfig", expect=200)).json()
    assert spc["patch"]["supported"] and spc["filter"]["supported"] and spc["etag"]["supported"]
    assert not spc["bulk"]["supported"] and not spc["sort"]["supported"]
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = (await scim.call("GET", "/ResourceTypes", expect=200)).json()
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    schemas = (await scim.call("GET", "/Schemas", expect=200)).json()
    user_schema = next(s for s in schemas["Resources"] if s["id"] == USER)
    names = {a["name"] for a in user_schema["attributes"]}
    assert {"userName", "name", "displayName", "emails", "active", "password"} <= names
    assert "phoneNumbers" not in names  # only what round-trips is published
    one = await scim.call("GET", f"/Schemas/{GROUP}", expect=200)
    assert one.json()["id"] == GROUP
    scim_error(await scim.call("GET", "/Schemas/urn:nope"), 404)
    scim_error(await scim.call("GET", "/Bulk"), 404)


# --- users -------------------------------------------------------------------------------
async def test_a_user_through_create_filter_replace_patch_and_delete(
    scim: Scim, world: World
) -> None:
    created = await scim.create_user(
        "Ann.Lee@corp.example",
        externalId="00u1",
        name={"givenName": "Ann", "familyName": "Lee"},
        emails=[{"value": "ann@corp.example", "type": "work", "primary": True}],
        active=True,
    )
    uid = created["id"]
    assert created["userName"] == "Ann.Lee@corp.example"
    assert created["meta"]["location"].endswith(f"/scim/v2/Users/{uid}")
    admin = await world.admin()
    ann = await account(admin, "ann.lee")
    assert (ann["display_name"], ann["origin"], ann["email"]) == (
        "Ann Lee",
        "scim",
        "ann@corp.example",
    )
    assert ann["id"] != uid  # the SCIM id is the scim identity link's subject
    # filters: userName case-insensitively, externalId exactly
    for text in ('userName eq "ann.lee@CORP.example"', 'externalId eq "00u1"'):
        found = (await scim.call("GET", "/Users", params={"filter": text}, expect=200)).json()
        assert found["totalResults"] == 1 and found["Resources"][0]["id"] == uid
    none = await scim.call("GET", "/Users", params={"filter": 'userName eq "nobody"'})
    assert none.json()["totalResults"] == 0 and none.json()["Resources"] == []
    # replace: everything the body says, and only that
    replaced = await scim.call(
        "PUT",
        f"/Users/{uid}",
        {
            "schemas": [USER],
            "userName": "Ann.Lee@corp.example",
            "displayName": "Ann L.",
            "emails": [{"value": "ann.lee@corp.example", "type": "work"}],
        },
        expect=200,
    )
    assert "name" not in replaced.json() and "externalId" not in replaced.json()
    assert replaced.json()["displayName"] == "Ann L."
    # Entra ID's and Okta's PATCH forms
    patched = await scim.patch(
        f"/Users/{uid}",
        {"op": "Replace", "path": "name.givenName", "value": "Annie"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "a@corp.example"},
        {"op": "add", "path": "title", "value": "ignored: Tidings keeps no title"},
        {"op": "replace", "value": {"displayName": "Annie Lee", "externalId": "00u1"}},
    )
    assert patched["name"] == {"givenName": "Annie"}
    assert patched["emails"] == [{"value": "a@corp.example", "type": "work"}]
    assert patched["displayName"] == "Annie Lee" and patched["externalId"] == "00u1"
    assert "title" not in patched
    got = (await scim.call("GET", f"/Users/{uid}", expect=200)).json()
    assert got == patched
    ann = await account(admin, "ann.lee")
    assert (ann["display_name"], ann["email"]) == ("Annie Lee", "a@corp.example")
    # delete: gone from SCIM, the account stays (disabled): messages are never lost
    await scim.call("DELETE", f"/Users/{uid}", expect=204)
    scim_error(await scim.call("GET", f"/Users/{uid}"), 404)
    assert (await account(admin, "ann.lee"))["disabled"] is True
    # a new POST with the userName links the same account again (a provisioned one:
    # identity_link_existing "provisioned"); it stays disabled (the shared rule: a
    # provider enables only what it disabled itself) until an admin enables it
    again = await scim.create_user("Ann.Lee@corp.example", active=True)
    assert again["id"] != uid
    back = await account(admin, "ann.lee")
    assert back["id"] == ann["id"] and back["disabled"] is True


async def test_pages_count_from_start_index(scim: Scim) -> None:
    ids = [(await scim.create_user(f"p{i}@corp.example"))["id"] for i in range(5)]
    page = (
        await scim.call("GET", "/Users", params={"startIndex": "2", "count": "2"}, expect=200)
    ).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [r["id"] for r in page["Resources"]] == sorted(ids)[1:3]
    counted = (await scim.call("GET", "/Users", params={"count": "0"}, expect=200)).json()
    assert counted["totalResults"] == 5 and counted["Resources"] == []
    search = await scim.call(
        "POST",
        "/Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName eq "p3@corp.example"',
            "attributes": ["userName"],
        },
        expect=200,
    )
    only = search.json()["Resources"]
    assert only == [{"schemas": [USER], "id": ids[3], "userName": "p3@corp.example"}]
    scim_error(await scim.call("GET", "/Users", params={"count": "many"}), 400, "invalidValue")


async def test_existing_accounts_follow_identity_link_existing_and_never_the_owner(
    scim: Scim, world: World
) -> None:
    await world.users("ben")
    admin = await world.admin()
    # a local account is not taken over by default ("provisioned"): 409, nothing written
    r = await scim.call("POST", "/Users", {"schemas": [USER], "userName": "ben@corp.example"})
    scim_error(r, 409, "uniqueness")
    assert "may not take over" in r.json()["detail"]
    listed = (await scim.call("GET", "/Users", expect=200)).json()
    assert listed["totalResults"] == 0
    assert (await account(admin, "ben"))["origin"] == "local"
    # the owner (and any bot) is never linked: the SCIM user gets a name beside it
    owner = await scim.create_user("admin@corp.example")
    assert (await account(admin, "admin"))["role"] == "owner"
    assert (await account(admin, "admin-2"))["origin"] == "scim"
    # two SCIM users never share an account
    await scim.create_user("cy@corp.example")
    await scim.create_user("cy@other.example")
    assert (await account(admin, "cy-2"))["origin"] == "scim"
    dup = await scim.call("POST", "/Users", {"schemas": [USER], "userName": "CY@corp.example"})
    scim_error(dup, 409, "uniqueness")
    assert owner["userName"] == "admin@corp.example"


async def test_with_identity_link_existing_all_a_local_account_is_taken_over(
    make_server: MakeServer,
) -> None:
    async with make_server(identity_link_existing="all") as server:
        w = World(server)
        try:
            (ben,) = await w.users("ben")
            admin = await w.admin()
            scim = Scim(server, (await issue(admin))["secret"])
            try:
                await scim.create_user("ben@corp.example", displayName="Ben B")
                taken = await account(admin, "ben")
                assert (taken["id"], taken["origin"], taken["display_name"]) == (
                    ben.id,
                    "scim",
                    "Ben B",
                )
            finally:
                await scim.close()
        finally:
            await w.close()


async def test_deactivation_ends_sessions_and_connections_and_reactivation_works(
    server: AppServer, scim: Scim, world: World
) -> None:
    created = await scim.create_user("cara@corp.example", password=USER_PASSWORD)
    cara = await login(server.url, "cara", USER_PASSWORD)
    ws = await Ws.connect(server.ws_url, cara.token or "")
    try:
        await scim.patch(f"/Users/{created['id']}", {"op": "replace", "value": {"active": "False"}})
        async with asyncio.timeout(10):
            await ws.conn.wait_closed()
        assert ws.conn.close_code == 4003
        assert (await cara.get("/users/me", expect=None)) is not None
        r = await cara.http.get("/users/me")
        assert r.status_code == 401
        async with http_client(server.url) as c:
            refused = await c.post(
                "/api/v1/auth/login", json={"username": "cara", "password": USER_PASSWORD}
            )
        assert refused.status_code == 401
        got = (await scim.call("GET", f"/Users/{created['id']}", expect=200)).json()
        assert got["active"] is False
        await scim.patch(
            f"/Users/{created['id']}", {"op": "replace", "path": "active", "value": True}
        )
        again = await login(server.url, "cara", USER_PASSWORD)
        assert (await again.get("/users/me"))["user"]["username"] == "cara"
        await again.close()
    finally:
        await ws.close()
        await cara.close()
    admin = await world.admin()
    token_id = (await admin.get("/scim/tokens"))["tokens"][0]["id"]
    cara_id = (await account(admin, "cara"))["id"]
    entries = (await admin.get("/audit", params={"limit": 500}))["entries"]
    mine = [
        (e["action"], e["details"])
        for e in entries
        if e["target_id"] == cara_id and e["actor_id"] == token_id
    ]
    assert (
        "identity_user_disabled",
        {"provider": "scim", "reason": "disabled by the provider"},
    ) in mine
    assert ("identity_user_updated", {"provider": "scim", "fields": {"disabled": False}}) in mine


# --- groups ------------------------------------------------------------------------------
async def test_groups_are_departments_and_named_groups_give_roles(
    make_server: MakeServer,
) -> None:
    async with make_server(scim_group_roles={"Tidings Admins": "admin"}) as server:
        w = World(server)
        try:
            admin = await w.admin()
            scim = Scim(server, (await issue(admin))["secret"])
            try:
                a = await scim.create_user("dan@corp.example")
                b = await scim.create_user("eve@corp.example")
                sales = (
                    await scim.call(
                        "POST",
                        "/Groups",
                        {
                            "schemas": [GROUP],
                            "displayName": "Sales",
                            "members": [{"value": a["id"], "display": "Dan"}],
                        },
                        expect=201,
                    )
                ).json()
                assert [m["value"] for m in sales["members"]] == [a["id"]]
                deps = (await admin.get("/departments"))["departments"]
                assert [d["name"] for d in deps] == ["Sales"] and deps[0]["id"] == sales["id"]
                assert (await account(admin, "dan"))["department_ids"] == [sales["id"]]
                admins = (
                    await scim.call(
                        "POST",
                        "/Groups",
                        {"schemas": [GROUP], "displayName": "Tidings Admins"},
                        expect=201,
                    )
                ).json()
                await scim.patch(
                    f"/Groups/{admins['id']}",
                    {
                        "op": "add",
                        "path": "members",
                        "value": [{"value": a["id"]}, {"value": b["id"]}],
                    },
                )
                assert (await account(admin, "eve"))["role"] == "admin"
                # Entra ID's member removal, and the RFC's
                await scim.patch(
                    f"/Groups/{admins['id']}",
                    {"op": "Remove", "path": "members", "value": [{"value": b["id"]}]},
                )
                await scim.patch(
                    f"/Groups/{admins['id']}",
                    {"op": "remove", "path": f'members[value eq "{a["id"]}"]'},
                )
                for name in ("dan", "eve"):
                    assert (await account(admin, name))["role"] == "member"
                found = await scim.call(
                    "GET", "/Groups", params={"filter": 'displayName eq "sales"'}, expect=200
                )
                assert [g["id"] for g in found.json()["Resources"]] == [sales["id"]]
                renamed = await scim.call(
                    "PUT",
                    f"/Groups/{sales['id']}",
                    {"schemas": [GROUP], "displayName": "Sales EMEA", "members": []},
                    expect=200,
                )
                assert "members" not in renamed.json()
                await scim.call("DELETE", f"/Groups/{sales['id']}", expect=204)
                scim_error(await scim.call("GET", f"/Groups/{sales['id']}"), 404)
                deps = (await admin.get("/departments"))["departments"]
                assert [d["name"] for d in deps] == ["Tidings Admins"]
                bad = await scim.call(
                    "POST",
                    "/Groups",
                    {"schemas": [GROUP], "displayName": "X", "members": [{"value": admin.id}]},
                )
                scim_error(bad, 400, "invalidValue")  # the owner is no SCIM user
                assert [d["name"] for d in (await admin.get("/departments"))["departments"]] == [
                    "Tidings Admins"
                ]
            finally:
                await scim.close()
        finally:
            await w.close()


# --- tokens and permissions --------------------------------------------------------------
async def test_no_wrong_or_revoked_token_answers_401(server: AppServer, world: World) -> None:
    admin = await world.admin()
    issued = await issue(admin)
    assert issued["secret"].startswith("scim_")
    assert issued["base_url"].endswith("/scim/v2")
    listed = await admin.get("/scim/tokens")
    assert [t["id"] for t in listed["tokens"]] == [issued["token"]["id"]]
    assert issued["secret"] not in orjson.dumps(listed).decode()  # never shown again
    async with http_client(server.url) as c:
        for headers in (
            {},
            {"authorization": "Bearer scim_wrong"},
            {"authorization": f"Bearer {admin.token}"},  # a session token is no SCIM token
            {"authorization": f"Basic {issued['secret']}"},
        ):
            r = await c.get("/scim/v2/Users", headers=headers)
            scim_error(r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer")
        good = {"authorization": f"Bearer {issued['secret']}"}
        assert (await c.get("/scim/v2/Users", headers=good)).status_code == 200
        await admin.call("DELETE", f"/scim/tokens/{issued['token']['id']}", expect=204)
        scim_error(await c.get("/scim/v2/Users", headers=good), 401)
    await admin.call("DELETE", f"/scim/tokens/{issued['token']['id']}", expect=404)
    (member,) = await world.users("fay")
    await member.post("/scim/tokens", {"name": "mine"}, expect=403)
    await member.get("/scim/tokens", expect=403)
    entries = (await admin.get("/audit", params={"limit": 500}))["entries"]
    assert {"scim_token_created", "scim_token_revoked"} <= {e["action"] for e in entries}


async def test_every_change_is_audited_with_the_token_as_actor(scim: Scim, world: World) -> None:
    admin = await world.admin()
    token_id = (await admin.get("/scim/tokens"))["tokens"][0]["id"]
    u = await scim.create_user("gus@corp.example")
    await scim.patch(f"/Users/{u['id']}", {"op": "replace", "path": "displayName", "value": "G"})
    g = (await scim.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Ops"}, 201)).json()
    await scim.call("DELETE", f"/Groups/{g['id']}", expect=204)
    await scim.call("DELETE", f"/Users/{u['id']}", expect=204)
    entries = (await admin.get("/audit", params={"limit": 500}))["entries"]
    mine = [e["action"] for e in entries if e["actor_id"] == token_id]
    for action in (
        "identity_user_created",
        "scim_user_created",
        "identity_user_updated",
        "scim_group_created",
        "scim_group_deleted",
        "identity_user_disabled",
        "scim_user_deleted",
    ):
        assert action in mine, (action, mine)


# --- hostile input -----------------------------------------------------------------------
async def test_hostile_input_is_refused_in_the_scim_shape_and_writes_nothing(
    server: AppServer, scim: Scim, world: World
) -> None:
    r = await scim.http.post("/Users", content=b'{"schemas": [', headers={"content-type": SCIM})
    scim_error(r, 400, "invalidSyntax")
    r = await scim.http.post(
        "/Users",
        content=orjson.dumps({"schemas": [USER], "userName": "x"}),
        headers={"content-type": "text/plain"},
    )
    scim_error(r, 415)
    big = {"schemas": [USER], "userName": "big", "displayName": "x" * (300 * 1024)}
    scim_error(await scim.call("POST", "/Users", big), 413)
    deep: Any = "x"
    for _ in range(50):
        deep = {"a": deep}
    scim_error(
        await scim.call("POST", "/Users", {"schemas": [USER], "userName": "d", "name": deep}),
        400,
        "invalidSyntax",
    )
    scim_error(await scim.call("POST", "/Users", ["not", "an", "object"]), 400, "invalidSyntax")
    scim_error(await scim.call("POST", "/Users", {"schemas": [USER]}), 400)
    invisible = {"schemas": [USER], "userName": "ev\u202eil@corp.example"}
    scim_error(await scim.call("POST", "/Users", invisible), 400)
    long_name = {"schemas": [USER], "userName": "n@corp.example", "displayName": "n" * 81}
    scim_error(await scim.call("POST", "/Users", long_name), 400)
    scim_error(
        await scim.call(
            "POST", "/Users", {"schemas": [USER], "userName": "w@x.example", "password": "weak"}
        ),
        400,
    )
    # unknown attributes: ignored, never stored or answered
    odd = await scim.create_user(
        "odd@corp.example",
        favouriteColour="red",
        name={"givenName": "O", "nickname": "?"},
        **{"urn:vendor:custom:2.0:User": {"shoeSize": 44}},
    )
    assert "favouriteColour" not in odd and odd["name"] == {"givenName": "O"}
    # filters
    for text, kind in (
        ('userName eq "a" or userName eq "b"', "invalidFilter"),
        ('userName co "a"', "invalidFilter"),
        ("userName eq", "invalidFilter"),
        ('title eq "x"', "invalidFilter"),
        ("(" * 5000, "invalidFilter"),
        ('userName eq "' + "a" * 10_000 + '"', "invalidFilter"),
    ):
        scim_error(await scim.call("GET", "/Users", params={"filter": text}), 400, kind)
    scim_error(await scim.call("GET", "/Users", params={"sortBy": "userName"}), 400)
    # PATCH
    uid = odd["id"]
    nope = {"op": "replace", "path": "nope", "value": 1}
    scim_error(await _last(scim, uid, nope), 400, "invalidPath")
    scim_error(await _last(scim, uid, {"op": "frob", "path": "displayName", "value": "x"}), 400)
    scim_error(await _last(scim, uid, {"op": "remove", "path": "userName"}), 400)
    deep_value: Any = "x"
    for _ in range(40):
        deep_value = [deep_value]
    deep_patch = {"op": "replace", "path": "emails", "value": deep_value}
    scim_error(await _last(scim, uid, deep_patch), 400, "invalidSyntax")
    many = [{"op": "replace", "path": "displayName", "value": "x"}] * 201
    scim_error(await _last(scim, uid, *many), 413)
    r = await scim.call("PATCH", f"/Users/{uid}", {"Operations": []})
    scim_error(r, 400)
    # one bad operation among good ones: nothing is written
    r = await _last(
        scim,
        uid,
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "userName", "value": "bad\u202e@corp.example"},
    )
    scim_error(r, 400)
    still = (await scim.call("GET", f"/Users/{uid}", expect=200)).json()
    assert "displayName" not in still and still["userName"] == "odd@corp.example"
    scim_error(await scim.call("GET", "/Users/nobody"), 404)
    scim_error(await scim.call("DELETE", "/Users/nobody"), 404)
    # nothing half-written: the refused users do not exist
    admin = await world.admin()
    names = {u["username"] for u in (await admin.get("/users?query="))["users"]}
    assert names == {"admin", "odd"}


async def _last(scim: Scim, uid: str, *operations: dict[str, Any]) -> httpx.Response:
    return await scim.call(
        "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": list(operations)}
    )


async def test_etags_answer_304_and_412(scim: Scim) -> None:
    u = await scim.create_user("hal@corp.example")
    r = await scim.call("GET", f"/Users/{u['id']}", expect=200)
    tag = r.headers["etag"]
    assert tag == u["meta"]["version"] and tag.startswith('W/"')
    r = await scim.http.get(f"/Users/{u['id']}", headers={"if-none-match": tag})
    assert r.status_code == 304
    stale = await scim.call(
        "PATCH",
        f"/Users/{u['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "displayName", "value": "H"}],
        },
        headers={"if-match": 'W/"not-it"'},
    )
    scim_error(stale, 412)
    fresh = await scim.call(
        "PATCH",
        f"/Users/{u['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "displayName", "value": "H"}],
        },
        headers={"if-match": tag},
        expect=200,
    )
    assert fresh.headers["etag"] != tag


async def test_a_token_over_its_rate_is_refused_with_retry_after(
    make_server: MakeServer,
) -> None:
    async with make_server(rate_scim_per_token=3) as server:
        w = World(server)
        try:
            scim = Scim(server, (await issue(await w.admin()))["secret"])
            try:
                for _ in range(3):
                    await scim.call("GET", "/Users", expect=200)
                r = await scim.call("GET", "/Users")
                scim_error(r, 429)
                assert int(r.headers["retry-after"]) >= 1
            finally:
                await scim.close()
        finally:
            await w.close()
