"""REST routes of outgoing webhooks. Thin: parse -> one service call -> serialize."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from tidings.api import webhook_schemas as ws
from tidings.api.routes import ERRORS, Auth, Svc, json, no_content
from tidings.protocol.wire import delivery_json, webhook_json

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["webhooks"])


@router.post("/webhooks", status_code=201, response_model=ws.WebhookEnvelope)
async def create_webhook(body: ws.WebhookIn, svc: Svc, me: Auth) -> Response:
    """Register a webhook: org-wide (admins) or of one conversation (its owner, or an
    admin). The answer carries its signing `secret`, shown this once."""
    made = await svc.webhooks.create(me.user, body.url, body.events, body.conversation_id)
    return json({"webhook": webhook_json(made.webhook, made.secret)}, 201)


@router.get("/webhooks", response_model=ws.WebhooksOut)
async def list_webhooks(svc: Svc, me: Auth) -> Response:
    found = await svc.webhooks.list_for(me.user)
    return json({"webhooks": [webhook_json(w) for w in found]})


@router.get("/webhooks/{wid}", response_model=ws.WebhookEnvelope)
async def get_webhook(wid: str, svc: Svc, me: Auth) -> Response:
    return json({"webhook": webhook_json(await svc.webhooks.get(me.user, wid))})


@router.patch("/webhooks/{wid}", response_model=ws.WebhookEnvelope)
async def patch_webhook(wid: str, body: ws.WebhookPatchIn, svc: Svc, me: Auth) -> Response:
    """Change the URL or the event kinds, or turn it off or on (`enabled`)."""
    webhook = await svc.webhooks.update(
        me.user, wid, url=body.url, events=body.events, enabled=body.enabled
    )
    return json({"webhook": webhook_json(webhook)})


@router.delete("/webhooks/{wid}", status_code=204)
async def delete_webhook(wid: str, svc: Svc, me: Auth) -> Response:
    await svc.webhooks.delete(me.user, wid)
    return no_content()


@router.post("/webhooks/{wid}/secret", response_model=ws.WebhookEnvelope)
async def rotate_webhook_secret(wid: str, svc: Svc, me: Auth) -> Response:
    """A new signing secret, shown this once; the old one stops at once."""
    made = await svc.webhooks.rotate_secret(me.user, wid)
    return json({"webhook": webhook_json(made.webhook, made.secret)})


@router.post("/webhooks/{wid}/test", status_code=202, response_model=ws.PingOut)
async def ping_webhook(wid: str, svc: Svc, me: Auth) -> Response:
    """Send a test delivery (`X-Tidings-Event: ping`): it shows in the delivery log."""
    return json({"delivery_id": await svc.webhooks.ping(me.user, wid)}, 202)


@router.get("/webhooks/{wid}/deliveries", response_model=ws.DeliveriesOut)
async def webhook_deliveries(
    wid: str,
    svc: Svc,
    me: Auth,
    before: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The delivery log, newest first: one row per attempt."""
    found = await svc.webhooks.deliveries(me.user, wid, before, limit)
    return json(
        {
            "deliveries": [delivery_json(d) for d in found],
            "next": found[-1].id if len(found) == limit else None,
        }
    )
