"""REST routes of the integrations: incoming webhooks and slash commands. Thin, like
routes.py: parse -> one service call -> serialize."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tidings.api import integration_schemas as s
from tidings.api.routes import ERRORS, Auth, Svc, client_ip, json, no_content
from tidings.core.errors import InvalidRequest, TooLarge
from tidings.core.integrations import slack_text
from tidings.protocol.wire import command_json, hook_json, invocation_json, message_json
from tidings.services.audit import client_address
from tidings.services.hub import Services
from tidings.services.integrations import hook_url

router = APIRouter(prefix="/api/v1", responses=ERRORS)

# a URL's secret or signature in a path: bounded like every string a client sends
Secret = Annotated[str, Path(min_length=1, max_length=128)]
Id = Annotated[str, Path(min_length=1, max_length=64)]
JSON_OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}


def base_url(svc: Services, request: Request) -> str:
    """Where URLs given out start: `public_url`, else where this request came to."""
    return svc.deps.integrations.public_url or str(request.base_url)


async def json_body(request: Request, limit: int, *, form: bool = False) -> Any:
    """A body that is JSON, or (`form`) a form with Slack's `payload=<JSON>`, of at most
    `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body over {limit} bytes", limit=limit)
    raw = await request.body()
    if len(raw) > limit:
        raise TooLarge(f"request body over {limit} bytes", limit=limit, size=len(raw))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if form and kind == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(raw.decode("utf-8"), strict_parsing=False, max_num_fields=20)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidRequest("the form is not valid UTF-8 url-encoding") from exc
        payload = fields.get("payload")
        if not payload:
            raise InvalidRequest("a form body needs its JSON in payload=", field="payload")
        raw = payload[0].encode()
    elif kind not in ("application/json", ""):
        accepted = "application/json" + (" or application/x-www-form-urlencoded" if form else "")
        raise InvalidRequest(f"Content-Type must be {accepted}, not {kind}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(f"{key} must be a string", field=key)


# --- incoming webhooks ---------------------------------------------------------------
@router.post(
    "/conversations/{cid}/incoming-webhooks",
    status_code=201,
    response_model=s.IncomingWebhookEnvelope,
    tags=["integrations"],
)
async def create_incoming_webhook(
    cid: Id, body: s.IncomingWebhookIn, svc: Svc, me: Auth, request: Request
) -> Response:
    """A secret URL that posts into this conversation (admins, and its owners). The URL
    is shown here once: only a hash of its secret is kept."""
    hook, secret = await svc.incoming_webhooks.create(me.user, cid, body.name)
    url = hook_url(base_url(svc, request), hook.id, secret)
    return json({"incoming_webhook": hook_json(hook, url)}, 201)


@router.get(
    "/conversations/{cid}/incoming-webhooks",
    response_model=s.IncomingWebhooksOut,
    tags=["integrations"],
)
async def list_conversation_webhooks(cid: Id, svc: Svc, me: Auth) -> Response:
    hooks = await svc.incoming_webhooks.list(me.user, cid)
    return json({"incoming_webhooks": [hook_json(h) for h in hooks]})


@router.get("/incoming-webhooks", response_model=s.IncomingWebhooksOut, tags=["integrations"])
async def list_incoming_webhooks(svc: Svc, me: Auth) -> Response:
    """Every conversation's incoming webhooks (admins)."""
    hooks = await svc.incoming_webhooks.list(me.user, None)
    return json({"incoming_webhooks": [hook_json(h) for h in hooks]})


@router.patch(
    "/incoming-webhooks/{hid}", response_model=s.IncomingWebhookEnvelope, tags=["integrations"]
)
async def patch_incoming_webhook(
    hid: Id, body: s.IncomingWebhookPatchIn, svc: Svc, me: Auth
) -> Response:
    hook = await svc.incoming_webhooks.update(
        me.user, hid, name=body.name, disabled=body.disabled
    )
    return json({"incoming_webhook": hook_json(hook)})


@router.post(
    "/incoming-webhooks/{hid}/rotate",
    response_model=s.IncomingWebhookEnvelope,
    tags=["integrations"],
)
async def rotate_incoming_webhook(hid: Id, svc: Svc, me: Auth, request: Request) -> Response:
    """A new secret URL (shown once); the old URL stops working at once."""
    hook, secret = await svc.incoming_webhooks.rotate(me.user, hid)
    url = hook_url(base_url(svc, request), hook.id, secret)
    return json({"incoming_webhook": hook_json(hook, url)})


@router.delete("/incoming-webhooks/{hid}", status_code=204, tags=["integrations"])
async def delete_incoming_webhook(hid: Id, svc: Svc, me: Auth) -> Response:
    await svc.incoming_webhooks.delete(me.user, hid)
    return no_content()


@router.post(
    "/hooks/{hid}/{secret}",
    response_model=s.HookPostOut,
    tags=["integrations"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": s.HookPostIn.model_json_schema()},
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"payload": {"type": "string"}}}
                },
            },
        }
    },
)
async def post_incoming_webhook(hid: Id, secret: Secret, svc: Svc, request: Request) -> Response:
    """An incoming webhook's URL: `{"text": "…"}` (Slack-compatible: also `blocks` and
    `attachments`, reduced to text; `username` and `icon_*` are ignored) or Tidings'
    `{"body": "…", "client_msg_id": "…"}`. No token: the URL is the secret."""
    address = client_ip(request)
    client_address.set(address)
    limit = svc.deps.integrations.incoming_webhook_max_body_bytes
    data = await json_body(request, limit, form=True)
    text = _optional_str(data, "body") or slack_text(data)
    client_msg_id = _optional_str(data, "client_msg_id")
    message, _created = await svc.incoming_webhooks.post(
        hid, secret, text, client_msg_id, address=address
    )
    return json({"ok": True, "message": message_json(message)})


# --- slash commands ------------------------------------------------------------------
@router.get("/commands", response_model=s.CommandsOut, tags=["integrations"])
async def list_commands(svc: Svc, me: Auth) -> Response:
    """The slash commands anyone may use (admins: every one, with its target)."""
    if me.user.role.is_admin:
        found = await svc.commands.list(me.user)
    else:
        found = await svc.commands.visible(me.user)
    return json({"commands": [command_json(c, me.user) for c in found]})


@router.post("/commands", status_code=201, response_model=s.CommandEnvelope, tags=["integrations"])
async def create_command(body: s.CommandIn, svc: Svc, me: Auth) -> Response:
    """Register `/name` (admins) with an outgoing URL (its signing secret is shown here
    once) or a bot."""
    command, secret = await svc.commands.create(
        me.user,
        body.name,
        url=body.url,
        bot_id=body.bot_id,
        description=body.description,
        usage=body.usage,
        display_name=body.display_name,
    )
    return json({"command": command_json(command, me.user), "secret": secret}, 201)


@router.patch("/commands/{command_id}", response_model=s.CommandEnvelope, tags=["integrations"])
async def patch_command(command_id: Id, body: s.CommandPatchIn, svc: Svc, me: Auth) -> Response:
    command = await svc.commands.update(
        me.user,
        command_id,
        description=body.description,
        usage=body.usage,
        url=body.url,
        disabled=body.disabled,
    )
    return json({"command": command_json(command, me.user)})


@router.post(
    "/commands/{command_id}/secret", response_model=s.CommandEnvelope, tags=["integrations"]
)
async def rotate_command_secret(command_id: Id, svc: Svc, me: Auth) -> Response:
    """A new signing secret (shown once): requests are signed with it from now on."""
    command, secret = await svc.commands.rotate_secret(me.user, command_id)
    return json({"command": command_json(command, me.user), "secret": secret})


@router.delete("/commands/{command_id}", status_code=204, tags=["integrations"])
async def delete_command(command_id: Id, svc: Svc, me: Auth) -> Response:
    await svc.commands.delete(me.user, command_id)
    return no_content()


@router.post(
    "/conversations/{cid}/commands",
    status_code=202,
    response_model=s.InvocationEnvelope,
    tags=["integrations"],
)
async def invoke_command(
    cid: Id, body: s.InvokeIn, svc: Svc, me: Auth, request: Request
) -> Response:
    """Invoke `/command text` here (members): accepted now, run as a job; the reply
    comes as a message or, to the caller only, as an `ephemeral` frame."""
    invocation, command = await svc.commands.invoke(
        me.user, cid, body.command, body.text, base_url=base_url(svc, request)
    )
    return json({"invocation": invocation_json(invocation, command)}, 202)


@router.post(
    "/command-responses/{iid}/{signature}",
    response_model=s.OkOut,
    tags=["integrations"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": s.CommandReplyIn.model_json_schema()}},
        }
    },
)
async def command_response(iid: Id, signature: Secret, svc: Svc, request: Request) -> Response:
    """A command's response URL: its target replies here later, a few times, until it
    expires (`{"text", "response_type": "ephemeral" | "in_channel"}`)."""
    client_address.set(client_ip(request))
    data = await json_body(request, svc.deps.integrations.command_response_max_bytes)
    await svc.commands.respond(iid, signature, data)
    return json({"ok": True})
