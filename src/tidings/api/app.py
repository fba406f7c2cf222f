"""The ASGI application: REST routes, the WebSocket gateway, health, the web client."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import orjson
from fastapi import FastAPI, Request, WebSocket
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

import tidings
from tidings.api.admin_conversation_routes import router as admin_conversation_router
from tidings.api.admin_stats_routes import router as admin_stats_router
from tidings.api.avatar_routes import router as avatar_router
from tidings.api.config_routes import router as config_router
from tidings.api.errors import error_response, install_error_handlers
from tidings.api.file_routes import MULTIPART_ROOM, UPLOAD_PATHS
from tidings.api.file_routes import router as file_router
from tidings.api.headers import SecurityHeaders, mount_docs
from tidings.api.identity_routes import router as identity_router
from tidings.api.integration_routes import router as integration_router
from tidings.api.jobs_routes import router as jobs_router
from tidings.api.limits import RequestLimits
from tidings.api.notification_routes import router as notification_router
from tidings.api.oidc_routes import router as oidc_router
from tidings.api.plugin_routes import router as plugin_router
from tidings.api.push_routes import router as push_router
from tidings.api.request_context import RequestContext
from tidings.api.routes import router
from tidings.api.scim_routes import router as scim_admin_router
from tidings.api.scim_routes import scim_router
from tidings.api.search_routes import router as search_router
from tidings.api.security_routes import router as security_router
from tidings.api.thread_routes import router as thread_router
from tidings.api.timeline_routes import router as timeline_router
from tidings.api.webhook_routes import router as webhook_router
from tidings.core.errors import ErrorCode, NotFound, TidingsError
from tidings.gateway.ws import WS_PATH, Gateway
from tidings.services.hub import Services

WEB_DIR = Path(tidings.__file__).parent / "web"
# the web app manifest's type (W3C Web App Manifest), whatever the host's mime.types
# says; the service worker (sw.js) is text/javascript like every module
mimetypes.add_type("application/manifest+json", ".webmanifest")


class MetricsSource(Protocol):
    """What serves /metrics (app/metrics.py): who may read it, and the exposition."""

    content_type: str

    def refusal(self, client: str | None, headers: Mapping[str, str]) -> TidingsError | None: ...

    async def render(self) -> bytes: ...


def create_app(
    services: Services,
    gateway: Gateway | None,
    *,
    max_request_bytes: int,
    hsts_max_age: int,
    body_timeout: float,
    api: bool = True,
    readiness: Callable[[], Awaitable[dict[str, str]]] | None = None,
    status: Callable[[], dict[str, object]] | None = None,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    metrics: MetricsSource | None = None,
    max_upload_bytes: int = 0,
) -> FastAPI:
    """The application for the roles of this process: `api` serves REST and the web
    client, a `gateway` serves WebSockets; health and readiness are always served."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        yield
        if on_shutdown is not None:
            await on_shutdown()

    app = FastAPI(
        title="Tidings",
        version=tidings.__version__,
        description="Self-hosted enterprise instant messaging. Protocol: docs/protocol.md.",
        lifespan=lifespan,
        docs_url=None,  # mount_docs: Swagger UI from the package, not a CDN
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> Response:
        """Liveness: the process answers. Also says which node this is and what it holds."""
        facts = status() if status is not None else {}
        return Response(orjson.dumps({"status": "ok", **facts}), media_type="application/json")

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        problems = await readiness() if readiness is not None else {}
        if problems:
            return error_response(503, ErrorCode.UNAVAILABLE, "not ready", problems)
        return Response(orjson.dumps({"status": "ready"}), media_type="application/json")

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
            401: {"description": "metrics_token is set and was not given, or is wrong"},
            403: {"description": "not from metrics_networks and no metrics_token set"},
        },
    )
    async def prometheus_metrics(request: Request) -> Response:
        """This process's metrics in the Prometheus text format, on every role. Only
        for the clients in `metrics_networks` (default: loopback, not through a proxy),
        or with `Authorization: Bearer <metrics_token>` (docs/operations.md)."""
        if metrics is None:
            raise NotFound("no metrics here")
        client = request.client.host if request.client is not None else None
        refusal = metrics.refusal(client, request.headers)
        if refusal is not None:
            raise refusal
        return Response(await metrics.render(), media_type=metrics.content_type)

    if api:
        app.include_router(router)
        app.include_router(security_router)
        app.include_router(jobs_router)
        app.include_router(admin_conversation_router)
        app.include_router(admin_stats_router)
        app.include_router(oidc_router)
        app.include_router(identity_router)
        app.include_router(config_router)
        app.include_router(plugin_router)
        app.include_router(integration_router)
        app.include_router(scim_admin_router)
        app.include_router(scim_router)
        app.include_router(webhook_router)
        app.include_router(file_router)
        app.include_router(avatar_router)
        app.include_router(search_router)
        app.include_router(thread_router)
        app.include_router(notification_router)
        app.include_router(push_router)
        app.include_router(timeline_router)
    if gateway is not None:
        serve_ws = gateway.serve

        @app.websocket(WS_PATH)
        async def websocket(ws: WebSocket) -> None:
            await serve_ws(ws)

    mount_docs(app, openapi_url=app.openapi_url or "/openapi.json")
    if api and WEB_DIR.is_dir():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    app.add_middleware(
        RequestLimits,
        max_body_bytes=max_request_bytes,
        body_timeout=body_timeout,
        upload_paths=UPLOAD_PATHS,
        upload_body_bytes=max_upload_bytes + MULTIPART_ROOM,
    )
    app.add_middleware(SecurityHeaders, hsts_max_age=hsts_max_age)
    app.add_middleware(RequestContext)  # outermost: every answer and log line has its id
    return app
