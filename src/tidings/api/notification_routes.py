"""REST of notification settings (issue 17, docs/protocol.md "Notifications"): a
member's level and mute per conversation, the caller's do not disturb. Thin: every
check is services/notifications.py's."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.api.routes import ERRORS, Auth, Svc, json
from tidings.core.notify import dnd_active
from tidings.protocol.wire import dnd_json, notify_json
from tidings.services.notifications import UNSET, DndChange, MemberNotifyChange, zone_of

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["notifications"])


@router.get(
    "/conversations/{cid}/notifications", response_model=s.ConversationNotificationsEnvelope
)
async def get_conversation_notifications(cid: str, svc: Svc, me: Auth) -> Response:
    """The caller's level and mute in a conversation they are a member of."""
    conv, notify = await svc.notifications.member_settings(me.user, cid)
    return json({"conversation_id": conv.id, "notifications": notify_json(notify)})


@router.put(
    "/conversations/{cid}/notifications", response_model=s.ConversationNotificationsEnvelope
)
async def put_conversation_notifications(
    cid: str, body: s.ConversationNotificationsIn, svc: Svc, me: Auth
) -> Response:
    """Change the caller's level (`all`, `mentions`, `none`; null: the kind's default)
    and mute (`muted`, `muted_until`). Fields left out stay. The caller's other
    connections get `notifications_updated`."""
    given = body.model_fields_set
    change = MemberNotifyChange(
        level=body.level if "level" in given else UNSET,
        muted=body.muted if "muted" in given and body.muted is not None else UNSET,
        muted_until=body.muted_until if "muted_until" in given else UNSET,
    )
    conv, notify = await svc.notifications.set_member(me.user, cid, change)
    return json({"conversation_id": conv.id, "notifications": notify_json(notify)})


async def _mine(svc: Svc, me: Auth) -> Response:
    user = await svc.profile.mine(me)
    dnd = await svc.notifications.dnd(user)
    limits = svc.deps.limits
    return json(
        {
            "dnd": dnd_json(dnd),
            "dnd_active": dnd_active(dnd, zone_of(user), svc.deps.clock.now()),
            "time_zone": user.preferences.time_zone,
            "mention_all": {
                "min_role": limits.mention_all_min_role,
                "large_min_role": limits.mention_all_large_min_role,
                "large_members": limits.mention_all_large_members,
                "confirm_members": limits.mention_all_confirm_members,
            },
        }
    )


@router.get("/users/me/notifications", response_model=s.UserNotificationsOut)
async def get_my_notifications(svc: Svc, me: Auth) -> Response:
    """The caller's do not disturb (and whether it is on now), and who may mention
    everyone here (the web client asks before doing it to more than
    `mention_all.confirm_members`)."""
    return await _mine(svc, me)


@router.put("/users/me/notifications", response_model=s.UserNotificationsOut)
async def put_my_notifications(body: s.UserNotificationsIn, svc: Svc, me: Auth) -> Response:
    """Change the caller's do not disturb: `dnd_until` (RFC 3339, in the future; null:
    off) and `dnd_schedule` ({start, end} local "HH:MM" in the profile's time zone;
    null: none). Fields left out stay. Their connections get `dnd_updated`."""
    given = body.model_fields_set
    schedule = body.dnd_schedule
    change = DndChange(
        until=body.dnd_until if "dnd_until" in given else UNSET,
        schedule=UNSET
        if "dnd_schedule" not in given
        else None
        if schedule is None
        else (schedule.start, schedule.end),
    )
    await svc.notifications.set_dnd(me.user, change)
    return await _mine(svc, me)
