"""REST routes of notifications for closed tabs: Web Push subscriptions, the VAPID key,
the caller's notification settings, and the digest mails' unsubscribe link. Thin."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from tidings.api import push_schemas as ns
from tidings.api.routes import ERRORS, Auth, Svc, json, no_content
from tidings.core.errors import Forbidden
from tidings.core.notifications import PushSubscription, mail_language
from tidings.services.notify_jobs import MySettings

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["notifications"])


def _iso(sub: PushSubscription) -> str:
    return sub.created_at.isoformat().replace("+00:00", "Z")


def subscription_json(sub: PushSubscription, token_id: str) -> dict[str, object]:
    return {
        "id": sub.id,
        "endpoint": sub.endpoint,
        "created_at": _iso(sub),
        "this_device": sub.token_id == token_id,
    }


def settings_json(mine: MySettings) -> dict[str, object]:
    return {
        "notifications": {
            "email_digests": mine.settings.email_digests,
            "previews": mine.settings.previews,
            "email": mine.email,
            "email_available": mine.email_available,
            "push_available": mine.push_available,
        }
    }


@router.get("/push/vapid-key", response_model=ns.VapidKeyOut)
async def vapid_key(svc: Svc, me: Auth) -> Response:
    """The server's VAPID public key (the `applicationServerKey` to subscribe with)."""
    return json({"public_key": await svc.push.public_key()})


@router.get("/push/subscriptions", response_model=ns.PushSubscriptionsOut)
async def list_subscriptions(svc: Svc, me: Auth) -> Response:
    """The caller's devices subscribed to push (sessions still signed in)."""
    found = await svc.push.list_for(me)
    return json({"subscriptions": [subscription_json(s, me.token_id) for s in found]})


@router.post("/push/subscriptions", status_code=201, response_model=ns.PushSubscriptionEnvelope)
async def subscribe(body: ns.PushSubscriptionIn, svc: Svc, me: Auth) -> Response:
    """Subscribe this device (the browser's PushSubscription.toJSON()); bound to this
    session: signing it out ends the subscription."""
    sub = await svc.push.subscribe(me, body.endpoint, body.keys.p256dh, body.keys.auth)
    return json({"subscription": subscription_json(sub, me.token_id)}, 201)


@router.delete("/push/subscriptions", status_code=204)
async def unsubscribe(body: ns.PushEndpointIn, svc: Svc, me: Auth) -> Response:
    await svc.push.unsubscribe(me, body.endpoint)
    return no_content()


@router.get(
    "/users/me/notifications/offline",
    response_model=ns.OfflineNotificationsEnvelope,
    tags=["users"],
)
async def my_notifications(svc: Svc, me: Auth) -> Response:
    return json(settings_json(await svc.notify_jobs.my_settings(me.user)))


@router.put(
    "/users/me/notifications/offline",
    response_model=ns.OfflineNotificationsEnvelope,
    tags=["users"],
)
async def set_my_notifications(body: ns.OfflineNotificationsIn, svc: Svc, me: Auth) -> Response:
    """Change the caller's digest and preview settings, and (local accounts) the email
    address digests go to (`""` removes it)."""
    email = body.email if body.email else None
    mine = await svc.notify_jobs.update_settings(
        me,
        email_digests=body.email_digests,
        previews=body.previews,
        email=email,
        clear_email=body.email == "",
    )
    return json(settings_json(mine))


# --- the unsubscribe link of digest mails (no sign-in) ---------------------------------
_PAGE = {
    "en": {
        "title": "Email digests",
        "ask": "Stop email digests of missed messages for this account?",
        "button": "Unsubscribe",
        "done": "You will get no more email digests. You can turn them on again in "
        "Tidings, under Account.",
        "bad": "This unsubscribe link is not valid.",
    },
    "zh-CN": {
        "title": "邮件摘要",
        "ask": "停止向此账号发送未读消息的邮件摘要？",
        "button": "退订",
        "done": "你将不再收到邮件摘要。可以在 Tidings 的“账号”中重新开启。",
        "bad": "此退订链接无效。",
    },
}


def _page(language: str, text: str, form: str = "", status: int = 200) -> Response:
    lang = mail_language(language)
    t = _PAGE[lang]
    body = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width">'
        f"<title>{html.escape(t['title'])}</title></head><body>"
        f"<h1>{html.escape(t['title'])}</h1><p>{html.escape(text)}</p>{form}</body></html>"
    )
    return Response(body, status, media_type="text/html", headers={"cache-control": "no-store"})


Uid = Annotated[str, Query(alias="u", max_length=64)]
Sig = Annotated[str, Query(alias="s", max_length=128)]


@router.get("/notifications/unsubscribe", include_in_schema=True, response_class=Response)
async def unsubscribe_page(u: Uid, s: Sig, svc: Svc) -> Response:
    """The confirmation page of a digest's unsubscribe link (no sign-in: the link is
    signed); its button POSTs to the same URL."""
    try:
        language = await svc.digests.check_unsubscribe(u, s)
    except Forbidden:
        return _page("", _PAGE["en"]["bad"] + " / " + _PAGE["zh-CN"]["bad"], status=403)
    t = _PAGE[mail_language(language)]
    action = html.escape(svc.digests.unsubscribe_url(u).split("/api/v1", 1)[1], quote=True)
    form = (
        f'<form method="post" action="/api/v1{action}">'
        f'<button type="submit">{html.escape(t["button"])}</button></form>'
    )
    return _page(language, t["ask"], form)


@router.post("/notifications/unsubscribe", response_class=Response)
async def unsubscribe_digests(u: Uid, s: Sig, svc: Svc) -> Response:
    """Unsubscribe (the page's button, or a mail client's RFC 8058 one-click POST)."""
    try:
        language = await svc.digests.check_unsubscribe(u, s)
        await svc.digests.unsubscribe(u, s)
    except Forbidden:
        return _page("", _PAGE["en"]["bad"] + " / " + _PAGE["zh-CN"]["bad"], status=403)
    return _page(language, _PAGE[mail_language(language)]["done"])
