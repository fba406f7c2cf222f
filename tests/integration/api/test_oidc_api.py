"""OpenID Connect sign-in over HTTP (api/oidc_routes.py) as a browser does it: the
redirects, the cookies that bind a sign-in to the browser and hand its session over (no
token in a URL), hostile callback parameters, and the admin endpoints. The provider is
one the test controls on loopback (tests/oidc_helpers.py:FakeProvider). SQLite and
PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import AppServer, MakeServer
from tests.helpers import login
from tests.oidc_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProvider,
    query_of,
    quiet_httpx,  # noqa: F401 - a fixture
    tamper,
)

PATH = "/api/v1/auth/oidc"


pytestmark = pytest.mark.usefixtures("quiet_httpx")


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider().start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
async def sso(make_server: MakeServer, provider: FakeProvider) -> AsyncIterator[AppServer]:
    async with make_server(
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_provider_name="Acme SSO",
        oidc_group_roles="tidings-admins=admin",
    ) as s:
        yield s


def browser(server: AppServer) -> httpx.AsyncClient:
    from tests.helpers import http_client

    return http_client(server.url, follow_redirects=False, timeout=30)


async def start(b: httpx.AsyncClient) -> dict[str, str]:
    r = await b.get(PATH + "/start")
    assert r.status_code == 303, r.text
    return query_of(r.headers["location"])


def set_cookies(r: httpx.Response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}


async def test_the_login_form_learns_whether_sso_is_on(sso: AppServer, server: AppServer) -> None:
    async with browser(sso) as b:
        assert (await b.get(PATH)).json() == {
            "oidc": {"enabled": True, "provider_name": "Acme SSO"}
        }
    async with browser(server) as b:  # the default: off
        assert (await b.get(PATH)).json()["oidc"]["enabled"] is False
        r = await b.get(PATH + "/start")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await b.get(PATH + "/callback", params={"state": "s", "code": "c"})
        assert r.status_code == 404


async def test_a_browser_signs_in_and_no_token_is_in_a_url(
    sso: AppServer, provider: FakeProvider
) -> None:
    async with browser(sso) as b:
        r = await b.get(PATH + "/start")
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith(provider.issuer + "/authorize?")
        cookie = set_cookies(r)["tidings_oidc_browser"]
        for attribute in ("HttpOnly", "Path=/api/v1/auth/oidc", "SameSite=lax"):
            assert attribute.lower() in cookie.lower()
        q = query_of(location)
        claims = provider.claims(q["nonce"], groups=["tidings-admins"])
        provider.answer_with(provider.sign(claims))
        r = await b.get(PATH + "/callback", params={"state": q["state"], "code": "c0de"})
        assert r.status_code == 303
        assert r.headers["location"] == "../../../../#oidc=done"  # the web client, no secret
        assert "tidings_oidc_handoff" in set_cookies(r)
        r = await b.post(PATH + "/exchange", json={"device": "Chromium"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"]["username"] == "alice" and body["user"]["role"] == "admin"
        assert body["logout_url"].startswith(provider.issuer + "/logout?")
        gone = set_cookies(r)
        assert "max-age=0" in gone["tidings_oidc_handoff"].lower()
        me = await b.get("/api/v1/users/me", headers={"authorization": f"Bearer {body['token']}"})
        assert me.json()["user"]["id"] == body["user"]["id"]
        again = await b.post(PATH + "/exchange", json={})
        assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_credentials"
    admin = await login(sso.url, "admin", sso.admin_password)
    entries = (await admin.get("/audit?limit=500"))["entries"]
    logins = [e for e in entries if e["action"] == "login" and e["details"].get("method") == "oidc"]
    assert len(logins) == 1 and logins[0]["details"]["device"] == "Chromium"
    for e in entries:  # nothing secret in the audit log
        assert CLIENT_SECRET not in str(e) and body["token"] not in str(e)
    await admin.close()


async def test_the_callback_refuses_what_it_cannot_use(
    sso: AppServer, provider: FakeProvider
) -> None:
    async def back(b: httpx.AsyncClient, **params: Any) -> str:
        r = await b.get(PATH + "/callback", params=params)
        assert r.status_code == 303, (params, r.status_code, r.text)
        return str(r.headers["location"]).removeprefix("../../../../")

    async with browser(sso) as b:
        q = await start(b)
        provider.answer_with(tamper(provider.sign(provider.claims(q["nonce"]))))
        assert await back(b, state=q["state"], code="c") == "#oidc-error=invalid_token"
        assert await back(b, state=q["state"], code="c") == "#oidc-error=state"  # replayed
        q = await start(b)
        assert await back(b, state=q["state"], error="access_denied") == "#oidc-error=cancelled"
        assert await back(b, state="unknown", code="c") == "#oidc-error=state"
        assert await back(b, code="c") == "#oidc-error=state"
        assert await back(b) == "#oidc-error=state"
        assert await back(b, state="\u202e<script>", code="\u200b") == "#oidc-error=state"
        nul = await b.get(PATH + "/callback", params={"state": "\x00", "code": "c"})
        assert nul.status_code == 400  # no URL with NUL is served at all
        q = await start(b)
        assert await back(b, state=q["state"], error="x" * 5000) == "#oidc-error=provider"
        q = await start(b)
        assert await back(b, state=q["state"], code="a b c") == "#oidc-error=provider"
    async with browser(sso) as other:  # another browser: not its sign-in
        q2 = await start(other)
    async with browser(sso) as b:
        await start(b)
        provider.answer_with(provider.sign(provider.claims(q2["nonce"])))
        assert await back(b, state=q2["state"], code="c") == "#oidc-error=state"
        r = await b.get(PATH + "/callback", params={"state": "s" * 9000, "code": "c"})
        assert r.status_code == 400  # longer than any parameter may be: refused unread
        r = await b.post(PATH + "/exchange", json={"device": 5})
        assert r.status_code == 400
        r = await b.post(PATH + "/exchange", json={"device": "d", "token": "x"})
        assert r.status_code == 400
        r = await b.post(PATH + "/exchange", content=b"\xff" * 100)
        assert r.status_code == 400


async def test_only_admins_see_and_test_the_configuration(
    sso: AppServer, provider: FakeProvider
) -> None:
    from tests.helpers import make_user

    admin = await login(sso.url, "admin", sso.admin_password)
    config = (await admin.get("/identity/oidc"))["oidc"]
    assert config["issuer"] == provider.issuer and config["client_secret_set"] is True
    assert config["group_roles"] == [{"group": "tidings-admins", "role": "admin"}]
    assert CLIENT_SECRET not in str(config)
    report = await admin.post("/identity/oidc/test")
    assert report["ok"] is True and report["keys"] == 1
    assert report["end_session_endpoint"] == provider.issuer + "/logout"
    provider.discovery_changes["issuer"] = "https://someone-else.example"
    report = await admin.post("/identity/oidc/test")
    assert report["ok"] is False and "issuer" in report["error"]
    member = await make_user(admin, "pat")
    assert (await member.http.get("/identity/oidc")).status_code == 403
    assert (await member.http.post("/identity/oidc/test")).status_code == 403
    async with browser(sso) as anonymous:
        assert (await anonymous.get("/api/v1/identity/oidc")).status_code == 401
    await member.close()
    await admin.close()


async def test_the_owner_still_signs_in_with_a_password_when_the_provider_is_down(
    sso: AppServer, provider: FakeProvider
) -> None:
    provider.stop()
    async with browser(sso) as b:
        r = await b.get(PATH + "/start")
        assert r.status_code == 303 and r.headers["location"].endswith("#oidc-error=unavailable")
    admin = await login(sso.url, "admin", sso.admin_password)
    assert (await admin.get("/users/me"))["user"]["role"] == "owner"
    await admin.close()
    provider.start()
