"""SCIM 2.0 at /scim/v2 (RFC 7644), and the admins' SCIM tokens under /api/v1.

Every SCIM answer is `application/scim+json`, errors included, in the SCIM error shape
(`urn:ietf:params:scim:api:messages:2.0:Error` with `status` and `scimType`): the
routes of `scim_router` use `ScimRoute`, which turns whatever a route or its
dependencies raise into that shape, with the status of api/errors.py's table. Bodies
are read here (content type, size, depth checked) and parsed by protocol/scim.py.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tidings.api.errors import INTERNAL_MESSAGE, STATUS
from tidings.api.routes import ERRORS, Auth, Svc, client_ip, json, no_content
from tidings.core.clock import rfc3339
from tidings.core.errors import (
    ErrorCode,
    NotFound,
    RateLimited,
    TidingsError,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from tidings.services.audit import client_address
from tidings.services.hub import Services
from tidings.services.scim import ScimGroupView, ScimUserView, group_json, user_json
from tidings.store.ports import ScimToken


class _LazyModule:
    """Stands for a module imported at its first attribute access. Not a module and
    not in sys.modules (the standard library's LazyLoader puts one there, and anything
    that walks sys.modules, such as inspect.getmodule inside pydantic's class creation,
    then ran its code in the middle of an unrelated import)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        return getattr(module, attr)


if TYPE_CHECKING:
    from tidings.protocol import scim as wire
else:
    # Imported at its first use, not at start: scim2_models' models (attribute
    # docstrings read from their source) were 15% of a server's start-up CPU, which a
    # site without SCIM clients never needs. The first SCIM request pays it once.
    wire = _LazyModule("tidings.protocol.scim")

log = structlog.get_logger(__name__)
PREFIX = "/scim/v2"
_SCIM_TYPES = {
    ErrorCode.CONFLICT: "uniqueness",
    ErrorCode.TOO_LARGE: "tooMany",
    ErrorCode.INVALID_REQUEST: "invalidValue",
}
_ACCEPTED = ("application/scim+json", "application/json")

M = TypeVar("M", "wire.User", "wire.Group")


def scim_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=wire.MEDIA_TYPE)


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return scim_response(wire.error_json(status, detail, scim_type), status, headers)


def _from_error(exc: TidingsError) -> Response:
    status = STATUS[exc.code]
    scim_type = exc.details.get("scim_type") or _SCIM_TYPES.get(exc.code)
    response = scim_error(status, exc.message, scim_type if status < 500 else None)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return response


class ScimRoute(APIRoute):
    """A route whose every failure answers in SCIM's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except TidingsError as exc:
                return _from_error(exc)
            except RequestValidationError:
                return scim_error(400, "invalid request parameters", "invalidSyntax")
            except StarletteHTTPException as exc:
                return scim_error(exc.status_code, str(exc.detail), None)
            except Exception as exc:  # one request's boundary: logged, answered
                log.exception(
                    "scim_request_failed",
                    method=request.method,
                    path=request.url.path,
                    error_type=type(exc).__name__,
                )
                return scim_error(500, INTERNAL_MESSAGE)

        return scim_handler


scim_router = APIRouter(prefix=PREFIX, route_class=ScimRoute, tags=["scim"])
router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["scim"])


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


async def scim_caller(request: Request, svc: Svc) -> ScimToken:
    address = client_ip(request)
    client_address.set(address)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing Authorization: Bearer <SCIM token> header")
    return await svc.scim.authenticate(token.strip(), address)


Caller = Annotated[ScimToken, Depends(scim_caller)]


async def read_json(request: Request, svc: Services) -> object:
    """The request's JSON body: of a SCIM content type, within scim_max_request_bytes,
    nested at most wire.MAX_DEPTH deep."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _ACCEPTED:
        raise UnsupportedMediaType("send the body as application/scim+json (or application/json)")
    limit = svc.deps.scim.scim_max_request_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"SCIM request body over {limit} bytes", limit=limit)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise TooLarge(f"SCIM request body over {limit} bytes", limit=limit)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise wire.invalid("the body is not valid JSON", "invalidSyntax") from exc
    wire.check_depth(body)
    return body


def _page_args(
    request: Request, svc: Services, model: type[M], body: object = None
) -> tuple[wire.Query, list[str], list[str]]:
    """A list's filter, page and attribute selection, from the query or (.search) a
    SearchRequest body."""
    source: dict[str, Any]
    if body is None:
        source = dict(request.query_params)
    elif isinstance(body, dict):
        source = {k: (v if isinstance(v, list) else str(v)) for k, v in body.items()}
    else:
        raise wire.invalid("a SearchRequest is a JSON object", "invalidSyntax")
    lowered = {k.lower(): v for k, v in source.items()}
    for unsupported in ("sortby", "cursor"):
        if unsupported in lowered:
            raise wire.invalid(f"{unsupported} is not supported", "invalidValue")
    filter_text = lowered.get("filter")
    attribute, value = wire.parse_filter(
        model,
        None if filter_text is None else str(filter_text),
        svc.deps.scim.scim_max_filter_chars,
    )
    start, count = wire.parse_page(
        _text(lowered.get("startindex")), _text(lowered.get("count")), svc.deps.scim.scim_page_max
    )
    attributes = wire.attribute_list(lowered.get("attributes"))
    excluded = wire.attribute_list(lowered.get("excludedattributes"))
    return wire.Query(attribute, value, start, count), attributes, excluded


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _one(request: Request, resource: dict[str, Any], status: int = 200) -> Response:
    """One resource, with its ETag (304 when If-None-Match names it)."""
    version = str(resource["meta"]["version"])
    if status == 200 and request.method == "GET":
        seen = request.headers.get("if-none-match")
        if seen is not None and version in {t.strip() for t in seen.split(",")}:
            return Response(status_code=304, headers={"ETag": version})
    attributes = wire.attribute_list(request.query_params.get("attributes"))
    excluded = wire.attribute_list(request.query_params.get("excludedAttributes"))
    headers = {"ETag": version}
    if status == 201:
        headers["Location"] = str(resource["meta"]["location"])
    return scim_response(wire.select_attributes(resource, attributes, excluded), status, headers)


# --- discovery -------------------------------------------------------------------------
@scim_router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request, svc: Svc, caller: Caller) -> Response:
    return scim_response(
        wire.service_provider_config(base_url(request), svc.deps.scim.scim_page_max)
    )


@scim_router.get("/Schemas")
async def schemas(request: Request, caller: Caller) -> Response:
    found = wire.schemas(base_url(request))
    return scim_response(wire.list_response(found, len(found), 1))


@scim_router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, request: Request, caller: Caller) -> Response:
    for item in wire.schemas(base_url(request)):
        if item["id"] == schema_id:
            return scim_response(item)
    raise NotFound("no such schema")


@scim_router.get("/ResourceTypes")
async def resource_types(request: Request, caller: Caller) -> Response:
    found = wire.resource_types(base_url(request))
    return scim_response(wire.list_response(found, len(found), 1))


@scim_router.get("/ResourceTypes/{type_id}")
async def resource_type(type_id: str, request: Request, caller: Caller) -> Response:
    for item in wire.resource_types(base_url(request)):
        if item["id"] == type_id:
            return scim_response(item)
    raise NotFound("no such resource type")


# --- users -----------------------------------------------------------------------------
async def _list_users(request: Request, svc: Services, caller: ScimToken, body: object) -> Response:
    query, attributes, excluded = _page_args(request, svc, wire.User, body)
    total, views = await svc.scim.list_users(
        caller, query.attribute, query.value, query.start, query.count
    )
    url = base_url(request)
    found = [wire.select_attributes(user_json(v, url), attributes, excluded) for v in views]
    return scim_response(wire.list_response(found, total, query.start))


@scim_router.get("/Users")
async def list_users(request: Request, svc: Svc, caller: Caller) -> Response:
    return await _list_users(request, svc, caller, None)


@scim_router.post("/Users/.search")
async def search_users(request: Request, svc: Svc, caller: Caller) -> Response:
    return await _list_users(request, svc, caller, await read_json(request, svc))


@scim_router.post("/Users")
async def create_user(request: Request, svc: Svc, caller: Caller) -> Response:
    resource = wire.parse_resource(wire.User, await read_json(request, svc))
    view = await svc.scim.create_user(caller, resource)
    return _one(request, user_json(view, base_url(request)), 201)


@scim_router.get("/Users/{user_id}")
async def get_user(user_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    view = await svc.scim.get_user(caller, user_id)
    return _one(request, user_json(view, base_url(request)))


@scim_router.put("/Users/{user_id}")
async def replace_user(user_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    resource = wire.parse_resource(wire.User, await read_json(request, svc), replacing=True)
    view = await svc.scim.replace_user(caller, user_id, resource, request.headers.get("if-match"))
    return _one(request, user_json(view, base_url(request)))


@scim_router.patch("/Users/{user_id}")
async def patch_user(user_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    patch = wire.parse_patch(
        wire.User, await read_json(request, svc), svc.deps.scim.scim_max_patch_operations
    )
    view: ScimUserView = await svc.scim.patch_user(
        caller, user_id, patch, request.headers.get("if-match")
    )
    return _one(request, user_json(view, base_url(request)))


@scim_router.delete("/Users/{user_id}", status_code=204)
async def delete_user(user_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    await svc.scim.delete_user(caller, user_id, request.headers.get("if-match"))
    return Response(status_code=204)


# --- groups ----------------------------------------------------------------------------
async def _list_groups(
    request: Request, svc: Services, caller: ScimToken, body: object
) -> Response:
    query, attributes, excluded = _page_args(request, svc, wire.Group, body)
    total, views = await svc.scim.list_groups(
        caller, query.attribute, query.value, query.start, query.count
    )
    url = base_url(request)
    found = [wire.select_attributes(group_json(v, url), attributes, excluded) for v in views]
    return scim_response(wire.list_response(found, total, query.start))


@scim_router.get("/Groups")
async def list_groups(request: Request, svc: Svc, caller: Caller) -> Response:
    return await _list_groups(request, svc, caller, None)


@scim_router.post("/Groups/.search")
async def search_groups(request: Request, svc: Svc, caller: Caller) -> Response:
    return await _list_groups(request, svc, caller, await read_json(request, svc))


@scim_router.post("/Groups")
async def create_group(request: Request, svc: Svc, caller: Caller) -> Response:
    resource = wire.parse_resource(wire.Group, await read_json(request, svc))
    view = await svc.scim.create_group(caller, resource)
    return _one(request, group_json(view, base_url(request)), 201)


@scim_router.get("/Groups/{group_id}")
async def get_group(group_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    view = await svc.scim.get_group(caller, group_id)
    return _one(request, group_json(view, base_url(request)))


@scim_router.put("/Groups/{group_id}")
async def replace_group(group_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    resource = wire.parse_resource(wire.Group, await read_json(request, svc), replacing=True)
    view = await svc.scim.replace_group(caller, group_id, resource, request.headers.get("if-match"))
    return _one(request, group_json(view, base_url(request)))


@scim_router.patch("/Groups/{group_id}")
async def patch_group(group_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    patch = wire.parse_patch(
        wire.Group, await read_json(request, svc), svc.deps.scim.scim_max_patch_operations
    )
    view: ScimGroupView = await svc.scim.patch_group(
        caller, group_id, patch, request.headers.get("if-match")
    )
    return _one(request, group_json(view, base_url(request)))


@scim_router.delete("/Groups/{group_id}", status_code=204)
async def delete_group(group_id: str, request: Request, svc: Svc, caller: Caller) -> Response:
    await svc.scim.delete_group(caller, group_id, request.headers.get("if-match"))
    return Response(status_code=204)


@scim_router.post("/.search")
async def search_everything(caller: Caller) -> Response:
    """A search across resource types at once (RFC 7644 3.4.3 makes it optional):
    501, search /Users/.search or /Groups/.search."""
    return scim_error(501, "search /Users/.search or /Groups/.search, one type at a time")


@scim_router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def not_found(rest: str) -> Response:
    """Any other path under /scim/v2 (Bulk, Me, a typo): a SCIM 404; a method an
    endpoint does not take: 405."""
    for pattern, allowed in _ENDPOINTS:
        if pattern.fullmatch(rest):
            response = scim_error(405, f"/{pattern.pattern.split('(')[0]} takes {allowed}")
            response.headers["Allow"] = allowed
            return response
    return scim_error(404, f"no SCIM endpoint /{rest[:100]}")


_ENDPOINTS = [
    (re.compile(r"ServiceProviderConfig"), "GET"),
    (re.compile(r"(Schemas|ResourceTypes)(/[^/]+)?"), "GET"),
    (re.compile(r"(Users|Groups)/\.search"), "POST"),
    (re.compile(r"(Users|Groups)"), "GET, POST"),
    (re.compile(r"(Users|Groups)/[^/]+"), "GET, PUT, PATCH, DELETE"),
]


# --- the admins' SCIM tokens (/api/v1) --------------------------------------------------
class ScimTokenIn(BaseModel):
    name: str = Field("SCIM", max_length=80, description="what the token is for (Okta, ...)")


class ScimTokenOut(BaseModel):
    id: str
    name: str
    created_by: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class ScimTokensOut(BaseModel):
    tokens: list[ScimTokenOut]
    base_url: str


class ScimTokenIssuedOut(BaseModel):
    token: ScimTokenOut
    secret: str = Field(description="the bearer token, shown this once")
    base_url: str


def token_json(token: ScimToken) -> dict[str, object]:
    return {
        "id": token.id,
        "name": token.name,
        "created_by": token.created_by,
        "created_at": rfc3339(token.created_at),
        "last_used_at": None if token.last_used_at is None else rfc3339(token.last_used_at),
        "revoked_at": None if token.revoked_at is None else rfc3339(token.revoked_at),
    }


@router.get("/scim/tokens", response_model=ScimTokensOut)
async def scim_tokens(request: Request, svc: Svc, me: Auth) -> Response:
    found = await svc.scim.tokens(me.user)
    return json({"tokens": [token_json(t) for t in found], "base_url": base_url(request)})


@router.post("/scim/tokens", status_code=201, response_model=ScimTokenIssuedOut)
async def issue_scim_token(body: ScimTokenIn, request: Request, svc: Svc, me: Auth) -> Response:
    token, secret = await svc.scim.issue_token(me.user, body.name)
    return json({"token": token_json(token), "secret": secret, "base_url": base_url(request)}, 201)


@router.delete("/scim/tokens/{token_id}", status_code=204)
async def revoke_scim_token(token_id: str, svc: Svc, me: Auth) -> Response:
    await svc.scim.revoke_token(me.user, token_id)
    return no_content()
