"""Security headers on every HTTP answer (API, errors, the web client's files, the API
docs), HSTS only over HTTPS, and Swagger UI served from the package: `/api/docs` names
no other host, and its assets answer. (Headers do not touch the store: SQLite only.)"""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from tests.conftest import AppServer, MakeServer

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def assert_secure(response: httpx.Response) -> None:
    h = response.headers
    csp = h.get("content-security-policy", "")
    directives = {}
    for directive in filter(None, (d.strip() for d in csp.split(";"))):
        name, _, value = directive.partition(" ")
        directives[name] = value
    assert directives.get("frame-ancestors") == "'none'", (response.url, csp)
    script_src = directives.get("script-src", "").split()
    assert "'self'" in script_src
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert all(s == "'self'" or s.startswith("'sha256-") for s in script_src), csp
    assert directives.get("object-src") == "'none'"
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("referrer-policy") == "no-referrer"


async def test_every_kind_of_answer_carries_the_headers(server: AppServer) -> None:
    token = await server.login()
    async with server.client() as c:
        auth = {"Authorization": f"Bearer {token}"}
        answers = [
            await c.get("/api/v1/users/me", headers=auth),  # API
            await c.get("/api/v1/users/me"),  # 401
            await c.post("/api/v1/auth/login", content=b"{not json"),  # 4xx body
            await c.get("/api/v1/no-such-route"),  # 404
            await c.get("/healthz"),
            await c.get("/openapi.json"),
            await c.get("/"),  # the web client
            await c.get("/app.js"),
            await c.get("/style.css"),
            await c.get("/no-such-file.js"),
            await c.get("/api/docs"),
            await c.get("/api/docs/assets/swagger-ui-bundle.js"),
        ]
    for r in answers:
        assert_secure(r)
        assert "strict-transport-security" not in r.headers, r.url  # plain HTTP
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 401, 400, 404, 200, 200, 200, 200, 200, 404, 200, 200]


async def test_web_client_csp_allows_no_inline_script(server: AppServer) -> None:
    async with server.client() as c:
        index = await c.get("/")
    csp = index.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "'unsafe-inline'" not in csp
    # every script of the page is a file of this origin
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index.text)


async def test_docs_are_served_from_the_package(server: AppServer) -> None:
    async with server.client() as c:
        page = await c.get("/api/docs")
        assert page.status_code == 200
        html = page.text
        # no other host: every URL the page names is a path on this server
        assert not re.search(r"(https?:)?//[a-z0-9]", html, re.IGNORECASE), html
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assets = [u for u in urls if u.startswith("/api/docs/assets/")]
        assert len(assets) == 3, urls  # bundle, CSS, icon
        for url in [*urls, "/openapi.json"]:
            r = await c.get(url)
            assert r.status_code == 200, url
            assert_secure(r)
        bundle = await c.get("/api/docs/assets/swagger-ui-bundle.js")
        assert "SwaggerUIBundle" in bundle.text
        assert bundle.headers["content-type"].startswith("text/javascript")
    # the one inline script (Swagger UI's init) is allowed by its hash, nothing else
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    csp = page.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}';" in csp


async def test_hsts_only_over_https(make_server: MakeServer) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with make_server() as server, server.client() as c:
        # loopback is a trusted proxy by default: its word that the client used HTTPS
        for path in ("/healthz", "/", "/api/docs", "/api/v1/users/me"):
            r = await c.get(path, headers=https)
            assert r.headers.get("strict-transport-security") == "max-age=31536000", path
        assert "strict-transport-security" not in (await c.get("/healthz")).headers
        r = await c.get("/healthz", headers={"X-Forwarded-Proto": "http"})
        assert "strict-transport-security" not in r.headers
    async with make_server(hsts_max_age=600) as server, server.client() as c:
        r = await c.get("/healthz", headers=https)
        assert r.headers["strict-transport-security"] == "max-age=600"
    async with make_server(hsts_max_age=0) as server, server.client() as c:
        assert "strict-transport-security" not in (await c.get("/", headers=https)).headers
    # a client that is not a trusted proxy cannot ask for it (nor for anything else)
    async with make_server(trusted_proxies="10.9.9.9") as server, server.client() as c:
        r = await c.get("/healthz", headers=https)
        assert "strict-transport-security" not in r.headers
        assert_secure(r)
