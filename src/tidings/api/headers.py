"""Security headers on every HTTP response, and the API's Swagger UI served from the
package's own files (no CDN: `/api/docs` works offline and loads nothing from elsewhere)."""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATH = "/api/docs"
DOCS_ASSETS = DOCS_PATH + "/assets"
# Swagger UI 5's dist files (bundle, CSS, icon), as shipped by the fastapi-offline package.
SWAGGER_DIR = Path(str(importlib.resources.files("fastapi_offline") / "static"))


def content_security_policy(script_src: str = "'self'") -> str:
    """Scripts and styles from this origin only (no inline script), no plugins, no
    framing; `connect-src` lets the web client reach the API and its WebSocket."""
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {script_src}",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """ASGI middleware: the headers every HTTP response carries, unless the route set its
    own (the docs page has its own `Content-Security-Policy`). HSTS only on a request
    that came over HTTPS: TLS ended by this server (`tls_cert`), or `X-Forwarded-Proto:
    https` from a proxy in `trusted_proxies` (uvicorn's proxy headers set the scheme, and
    only for those)."""

    def __init__(self, app: ASGIApp, *, hsts_max_age: int) -> None:
        self.app = app
        self.fixed = (
            ("content-security-policy", content_security_policy()),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
        )
        self.hsts = f"max-age={hsts_max_age}" if hsts_max_age > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hsts = self.hsts if scope.get("scheme") == "https" else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.fixed:
                    headers.setdefault(name, value)
                if hsts is not None:
                    headers.setdefault("strict-transport-security", hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _script_hashes(html: bytes) -> str:
    """CSP source expressions for the page's inline scripts (Swagger UI's init)."""
    scripts = re.findall(rb"<script>(.*?)</script>", html, re.DOTALL)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in scripts
    )


def mount_docs(app: FastAPI, *, openapi_url: str) -> None:
    """`/api/docs`: FastAPI's Swagger UI page pointed at the packaged assets under
    `/api/docs/assets/`. The page is built once; its one inline script (the init) is
    allowed by its hash in that page's own CSP, every other script comes from 'self'."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_DIR), name="docs-assets")
    page = bytes(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url=None,
            # no badge image from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        ).body
    )
    csp = content_security_policy(f"'self' {_script_hashes(page)}")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> Response:
        return Response(page, media_type="text/html", headers={"content-security-policy": csp})
