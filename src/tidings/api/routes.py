"""REST routes under /api/v1: parse -> one service call -> serialize."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.core.clock import rfc3339
from tidings.core.errors import InvalidRequest, Unauthenticated
from tidings.core.models import MAX_STORED_INT, ConversationKind, MemberRole, OrgRole, Session
from tidings.protocol.wire import (
    conversation_json,
    department_json,
    member_json,
    member_view_json,
    message_json,
    pin_json,
    preferences_json,
    user_json,
)
from tidings.services.audit import client_address
from tidings.services.hub import Services
from tidings.services.profile import UNSET, ProfileChange, StatusChange
from tidings.services.ratelimit import Action
from tidings.services.sync import parse_position

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 429, 500)
}
# a message's seq in a path: bounded like every integer a client sends
SeqPath = Annotated[int, Path(ge=1, le=MAX_STORED_INT)]

router = APIRouter(prefix="/api/v1", responses=ERRORS)


def json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def services(request: Request) -> Services:
    hub: Services = request.app.state.services
    return hub


Svc = Annotated[Services, Depends(services)]


bearer = HTTPBearer(auto_error=False, description="A token from POST /auth/login")


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn takes X-Forwarded-For from trusted proxies only)."""
    return request.client.host if request.client is not None else ""


async def _session(
    request: Request,
    svc: Services,
    credentials: HTTPAuthorizationCredentials | None,
    allow_enrol_only: bool,
) -> Session:
    address = client_ip(request)
    client_address.set(address)  # for the audit log of whatever this request does
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated("missing or malformed Authorization: Bearer <token> header")
    found = await svc.auth.authenticate(
        credentials.credentials.strip(), allow_enrol_only=allow_enrol_only, address=address
    )
    structlog.contextvars.bind_contextvars(user_id=found.user.id)  # this request's log lines
    return found


async def session(
    request: Request,
    svc: Svc,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Session:
    return await _session(request, svc, credentials, False)


async def enrolling_session(
    request: Request,
    svc: Svc,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Session:
    """Also a session restricted to enrolling a second factor (see SecondFactorRequired)."""
    return await _session(request, svc, credentials, True)


Auth = Annotated[Session, Depends(session)]
AnyAuth = Annotated[Session, Depends(enrolling_session)]


# --- auth ---------------------------------------------------------------------------
@router.post("/auth/login", response_model=s.LoginOut, tags=["auth"])
async def login(body: s.LoginIn, svc: Svc, request: Request) -> Response:
    address = client_ip(request)
    client_address.set(address)
    token, sess = await svc.auth.login(
        body.username, body.password, body.device or "", totp=body.totp, address=address
    )
    return json(
        {
            "token": token,
            "user": user_json(sess.user, svc.deps.clock.now()),
            "expires_at": rfc3339(sess.expires_at),
            "second_factor_required": sess.enrol_only,
        }
    )


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(svc: Svc, me: AnyAuth) -> Response:
    await svc.auth.logout(me)
    return no_content()


# --- users --------------------------------------------------------------------------
@router.get("/users/me", response_model=s.MeOut, tags=["users"])
async def get_me(svc: Svc, me: AnyAuth) -> Response:
    """Also answers a session that may only enrol a second factor: then
    `second_factor_required` is true (as at login), and every other call but logout,
    sessions and /auth/totp answers 403 `second_factor_required` until it is enrolled.
    `preferences`: the caller's own settings (PATCH /users/me)."""
    user = await svc.profile.mine(me)
    return json(
        {
            "user": user_json(user, svc.deps.clock.now()),
            "second_factor_required": me.enrol_only,
            "preferences": preferences_json(user.preferences),
        }
    )


@router.patch("/users/me", response_model=s.ProfileOut, tags=["users"])
async def patch_me(body: s.ProfilePatchIn, svc: Svc, me: Auth) -> Response:
    """Change your own profile: display name, language, time zone, theme, custom
    status. Others see the name and status change as `user_updated` events; your own
    connections also get the preferences. Validated whole: nothing is written when one
    field is wrong (`400 invalid_request`, `details.field`)."""
    given = body.model_fields_set
    for name in ("display_name", "theme"):
        if name in given and getattr(body, name) is None:
            raise InvalidRequest(f"{name} must not be null", field=name)
    status = body.status
    change = ProfileChange(
        display_name=body.display_name if body.display_name is not None else UNSET,
        language=body.language if "language" in given else UNSET,
        time_zone=body.time_zone if "time_zone" in given else UNSET,
        theme=body.theme if body.theme is not None else UNSET,
        status=(
            UNSET
            if "status" not in given
            else None
            if status is None
            else StatusChange(status.text, status.emoji, status.until)
        ),
    )
    user = await svc.profile.update(me, change)
    return json(
        {
            "user": user_json(user, svc.deps.clock.now()),
            "preferences": preferences_json(user.preferences),
        }
    )


@router.post("/users", status_code=201, response_model=s.UserEnvelope, tags=["users"])
async def create_user(body: s.UserCreateIn, svc: Svc, me: Auth) -> Response:
    user = await svc.users.create(
        me.user, body.username, body.password, body.display_name, OrgRole(body.role)
    )
    return json({"user": user_json(user)}, 201)


@router.get("/users", response_model=s.UsersOut, tags=["users"])
async def search_users(
    svc: Svc,
    me: Auth,
    query: Annotated[str, Query(max_length=100)] = "",
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    users = await svc.avatars.shown_to(
        me.user, await svc.users.search(me.user, query, department_id, limit)
    )
    now = svc.deps.clock.now()
    return json({"users": [user_json(u, now) for u in users]})


@router.get("/users/{uid}", response_model=s.UserEnvelope, tags=["users"])
async def get_user(uid: str, svc: Svc, me: Auth) -> Response:
    [user] = await svc.avatars.shown_to(me.user, [await svc.users.get(me.user, uid)])
    return json({"user": user_json(user, svc.deps.clock.now())})


@router.patch("/users/{uid}", response_model=s.UserEnvelope, tags=["users"])
async def patch_user(uid: str, body: s.UserPatchIn, svc: Svc, me: Auth) -> Response:
    user = await svc.users.update(
        me.user,
        uid,
        display_name=body.display_name,
        role=None if body.role is None else OrgRole(body.role),
        disabled=body.disabled,
        email=body.email,
    )
    return json({"user": user_json(user)})


@router.post("/users/{uid}/password", status_code=204, tags=["users"])
async def reset_password(uid: str, body: s.PasswordIn, svc: Svc, me: Auth) -> Response:
    await svc.users.reset_password(me.user, uid, body.password)
    return no_content()


# --- bots ---------------------------------------------------------------------------
@router.post("/bots", status_code=201, response_model=s.BotTokenOut, tags=["bots"])
async def create_bot(body: s.BotCreateIn, svc: Svc, me: Auth) -> Response:
    bot, token = await svc.bots.create(me.user, body.username, body.display_name)
    return json({"user": user_json(bot), "token": token}, 201)


@router.get("/bots", response_model=s.BotsOut, tags=["bots"])
async def list_bots(svc: Svc, me: Auth) -> Response:
    found = await svc.bots.list(me.user)
    return json(
        {
            "bots": [
                {
                    "user": user_json(b.user),
                    "token_created_at": None if b.token is None else rfc3339(b.token.created_at),
                    "last_seen_at": (
                        None
                        if b.token is None or b.token.last_seen_at is None
                        else rfc3339(b.token.last_seen_at)
                    ),
                }
                for b in found
            ]
        }
    )


@router.post("/bots/{uid}/token", response_model=s.BotTokenOut, tags=["bots"])
async def rotate_bot_token(uid: str, svc: Svc, me: Auth) -> Response:
    bot, token = await svc.bots.rotate_token(me.user, uid)
    return json({"user": user_json(bot), "token": token})


# --- departments --------------------------------------------------------------------
@router.get("/departments", response_model=s.DepartmentsOut, tags=["organization"])
async def list_departments(svc: Svc, me: Auth) -> Response:
    deps = await svc.departments.list(me.user)
    return json({"departments": [department_json(d) for d in deps]})


@router.post(
    "/departments", status_code=201, response_model=s.DepartmentEnvelope, tags=["organization"]
)
async def create_department(body: s.DepartmentIn, svc: Svc, me: Auth) -> Response:
    dep = await svc.departments.create(me.user, body.name, body.parent_id)
    return json({"department": department_json(dep)}, 201)


@router.patch("/departments/{did}", response_model=s.DepartmentEnvelope, tags=["organization"])
async def patch_department(did: str, body: s.DepartmentPatchIn, svc: Svc, me: Auth) -> Response:
    """Rename (`name`) or move (`parent_id`; null: to the top level; a department cannot
    move under itself or its sub-departments), one per request. Admins only."""
    moving = "parent_id" in body.model_fields_set
    if moving == (body.name is not None):
        raise InvalidRequest("give either name or parent_id", field="name")
    if moving:
        dep = await svc.departments.move(me.user, did, body.parent_id)
    else:
        assert body.name is not None
        dep = await svc.departments.rename(me.user, did, body.name)
    return json({"department": department_json(dep)})


@router.delete("/departments/{did}", status_code=204, tags=["organization"])
async def delete_department(did: str, svc: Svc, me: Auth) -> Response:
    """Delete an empty department (no members, no sub-departments). Admins only."""
    await svc.departments.delete(me.user, did)
    return no_content()


@router.get("/departments/{did}/members", response_model=s.UsersOut, tags=["organization"])
async def department_members(did: str, svc: Svc, me: Auth) -> Response:
    """The department's own members (not its sub-departments'). Admins only."""
    users = await svc.departments.members(me.user, did)
    return json({"users": [user_json(u) for u in users]})


@router.put("/departments/{did}/members/{uid}", status_code=204, tags=["organization"])
async def assign_department(did: str, uid: str, svc: Svc, me: Auth) -> Response:
    await svc.departments.set_member(me.user, did, uid, True)
    return no_content()


@router.delete("/departments/{did}/members/{uid}", status_code=204, tags=["organization"])
async def unassign_department(did: str, uid: str, svc: Svc, me: Auth) -> Response:
    await svc.departments.set_member(me.user, did, uid, False)
    return no_content()


# --- conversations ------------------------------------------------------------------
@router.post(
    "/conversations",
    status_code=201,
    response_model=s.ConversationEnvelope,
    tags=["conversations"],
)
async def create_conversation(body: s.ConversationIn, svc: Svc, me: Auth) -> Response:
    conv, created = await svc.conversations.create(
        me.user,
        ConversationKind(body.kind),
        body.member_ids,
        body.name,
        body.topic,
        private=body.private,
        announcement=body.announcement,
        shared_history=body.shared_history,
    )
    return json({"conversation": conversation_json(conv)}, 201 if created else 200)


@router.get("/conversations", response_model=s.ConversationsOut, tags=["conversations"])
async def list_conversations(
    svc: Svc,
    me: Auth,
    include_archived: Annotated[
        bool, Query(description="also list archived (read-only) conversations")
    ] = False,
) -> Response:
    """The caller's conversations; archived ones only with `include_archived=true`."""
    views = await svc.conversations.list_for(me.user, include_archived)
    return json({"conversations": [member_view_json(v) for v in views]})


@router.get("/channels", response_model=s.ConversationsOut, tags=["conversations"])
async def browse_channels(
    svc: Svc, me: Auth, query: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    """Channels to join: every public one, and the private ones the caller is in."""
    found = await svc.conversations.channels(me.user, query)
    return json({"conversations": [{**conversation_json(c), "joined": j} for c, j in found]})


@router.get("/conversations/{cid}", response_model=s.ConversationEnvelope, tags=["conversations"])
async def get_conversation(cid: str, svc: Svc, me: Auth) -> Response:
    conv, members = await svc.conversations.view(me.user, cid)
    data = conversation_json(conv)
    data["members"] = [member_json(m) for m in members]
    return json({"conversation": data})


@router.patch("/conversations/{cid}", response_model=s.ConversationEnvelope, tags=["conversations"])
async def patch_conversation(cid: str, body: s.ConversationPatchIn, svc: Svc, me: Auth) -> Response:
    """Rename or set the topic (owners, moderators, admins); change the settings
    `private` (channels), `announcement`, `shared_history` (owners, admins). Members
    get one `conversation_updated`."""
    conv = await svc.conversations.update(
        me.user,
        cid,
        body.name,
        body.topic,
        private=body.private,
        announcement=body.announcement,
        shared_history=body.shared_history,
    )
    return json({"conversation": conversation_json(conv)})


@router.post(
    "/conversations/{cid}/members",
    response_model=s.ConversationEnvelope,
    tags=["conversations"],
)
async def add_members(cid: str, body: s.MembersIn, svc: Svc, me: Auth) -> Response:
    conv = await svc.conversations.add_members(me.user, cid, body.user_ids)
    return json({"conversation": conversation_json(conv)})


@router.put(
    "/conversations/{cid}/members/{uid}/role",
    response_model=s.MemberEnvelope,
    tags=["conversations"],
)
async def set_member_role(cid: str, uid: str, body: s.RoleIn, svc: Svc, me: Auth) -> Response:
    """Give a member the role owner, moderator or member. Owners and admins only; the
    last owner stays until another is named. Members get `member_role_changed`."""
    member = await svc.conversations.set_role(me.user, cid, uid, MemberRole(body.role))
    return json({"member": member_json(member)})


@router.delete("/conversations/{cid}/members/{uid}", status_code=204, tags=["conversations"])
async def remove_member(cid: str, uid: str, svc: Svc, me: Auth) -> Response:
    await svc.conversations.remove_member(me.user, cid, uid)
    return no_content()


@router.put(
    "/conversations/{cid}/archive", response_model=s.ConversationEnvelope, tags=["conversations"]
)
async def archive_conversation(cid: str, svc: Svc, me: Auth) -> Response:
    """Archive: read-only (sends, edits, reactions, membership and name changes get
    `forbidden`) and hidden from members' lists by default. Owners and admins only;
    members get `conversation_updated` with `archived_at` set."""
    conv = await svc.conversations.archive(me.user, cid)
    return json({"conversation": conversation_json(conv)})


@router.delete(
    "/conversations/{cid}/archive", response_model=s.ConversationEnvelope, tags=["conversations"]
)
async def unarchive_conversation(cid: str, svc: Svc, me: Auth) -> Response:
    """Unarchive: writable and listed again (`conversation_updated`, `archived_at` null)."""
    conv = await svc.conversations.unarchive(me.user, cid)
    return json({"conversation": conversation_json(conv)})


# --- messages -----------------------------------------------------------------------
@router.post(
    "/conversations/{cid}/messages",
    status_code=201,
    response_model=s.MessageEnvelope,
    tags=["messages"],
)
async def send_message(cid: str, body: s.SendIn, svc: Svc, me: Auth, request: Request) -> Response:
    await svc.limiter.check(Action.SEND, me.user.id, client_ip(request))
    message, created = await svc.messages.send(
        me.user,
        cid,
        body.client_msg_id,
        body.body,
        body.reply_to_seq,
        body.attachments,
        thread_root_seq=body.thread_root_seq,
        also_to_conversation=body.also_to_conversation,
    )
    return json({"message": message_json(message)}, 201 if created else 200)


@router.get("/conversations/{cid}/messages", response_model=s.MessagesOut, tags=["messages"])
async def history(
    cid: str,
    svc: Svc,
    me: Auth,
    before_seq: Annotated[int | None, Query(ge=1, le=MAX_STORED_INT)] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_STORED_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    thread_root_seq: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_STORED_INT,
            description="only the replies of the thread of this root",
        ),
    ] = None,
) -> Response:
    """A page of history, ascending by seq: every message, thread replies included
    (each carries `thread_root_seq`; a client shows in its main timeline the roots, the
    plain messages and the replies with `also_to_conversation`); with `thread_root_seq`,
    one thread's replies only."""
    messages, more = await svc.messages.history(
        me.user,
        cid,
        before_seq=before_seq,
        after_seq=after_seq,
        limit=limit,
        thread_root_seq=thread_root_seq,
    )
    return json({"messages": [message_json(m) for m in messages], "has_more": more})


@router.patch(
    "/conversations/{cid}/messages/{seq}", response_model=s.MessageEnvelope, tags=["messages"]
)
async def edit_message(cid: str, seq: SeqPath, body: s.EditIn, svc: Svc, me: Auth) -> Response:
    message = await svc.messages.edit(me.user, cid, seq, body.body)
    return json({"message": message_json(message)})


@router.delete(
    "/conversations/{cid}/messages/{seq}", response_model=s.MessageEnvelope, tags=["messages"]
)
async def recall_message(cid: str, seq: SeqPath, svc: Svc, me: Auth) -> Response:
    message = await svc.messages.recall(me.user, cid, seq)
    return json({"message": message_json(message)})


@router.put(
    "/conversations/{cid}/messages/{seq}/reactions/{emoji}",
    response_model=s.MessageEnvelope,
    tags=["messages"],
)
async def add_reaction(cid: str, seq: SeqPath, emoji: str, svc: Svc, me: Auth) -> Response:
    message = await svc.messages.react(me.user, cid, seq, emoji, True)
    return json({"message": message_json(message)})


@router.delete(
    "/conversations/{cid}/messages/{seq}/reactions/{emoji}",
    response_model=s.MessageEnvelope,
    tags=["messages"],
)
async def remove_reaction(cid: str, seq: SeqPath, emoji: str, svc: Svc, me: Auth) -> Response:
    message = await svc.messages.react(me.user, cid, seq, emoji, False)
    return json({"message": message_json(message)})


@router.get("/conversations/{cid}/pins", response_model=s.PinsOut, tags=["messages"])
async def list_pins(cid: str, svc: Svc, me: Auth) -> Response:
    """The pinned messages (those the caller may read), the newest pin first."""
    found = await svc.messages.pins(me.user, cid)
    return json({"pins": [pin_json(p, m) for p, m in found]})


@router.put("/conversations/{cid}/pins/{seq}", response_model=s.PinEnvelope, tags=["messages"])
async def pin_message(cid: str, seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """Pin a message (owners, moderators, admins): `message_pinned` to every member."""
    pin, message = await svc.messages.pin(me.user, cid, seq)
    return json({"pin": pin_json(pin, message)})


@router.delete("/conversations/{cid}/pins/{seq}", status_code=204, tags=["messages"])
async def unpin_message(cid: str, seq: SeqPath, svc: Svc, me: Auth) -> Response:
    """Unpin a message (owners, moderators, admins): `message_unpinned` to every member."""
    await svc.messages.unpin(me.user, cid, seq)
    return no_content()


@router.post("/conversations/{cid}/read", response_model=s.ReadOut, tags=["messages"])
async def mark_read(cid: str, body: s.ReadIn, svc: Svc, me: Auth) -> Response:
    read_seq, unread = await svc.messages.mark_read(me.user, cid, body.seq)
    return json({"read_seq": read_seq, "unread": unread})


@router.post("/conversations/{cid}/unread", response_model=s.ReadOut, tags=["messages"])
async def mark_unread(cid: str, svc: Svc, me: Auth, body: s.UnreadIn | None = None) -> Response:
    """Mark the conversation unread from `from_seq` on (absent: its last message): the
    caller's read position moves back (never forward); a `read` event as for a move."""
    from_seq = None if body is None else body.from_seq
    read_seq, unread = await svc.messages.mark_unread(me.user, cid, from_seq)
    return json({"read_seq": read_seq, "unread": unread})


@router.post("/conversations/{cid}/typing", status_code=204, tags=["messages"])
async def typing(cid: str, svc: Svc, me: Auth) -> Response:
    await svc.presence.typing(me.user, cid)
    return no_content()


# --- stream and presence ------------------------------------------------------------
@router.get("/sync", response_model=s.SyncOut, tags=["sync"])
async def sync(
    svc: Svc,
    me: Auth,
    since: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    start = parse_position(since)
    events, more = await svc.sync.events_since(me.user, start, limit)
    next_pos = events[-1].position if events else start
    return json(
        {
            "events": [{"position": str(e.position), "event": e.payload} for e in events],
            "next": str(next_pos),
            "more": more,
        }
    )


@router.get("/presence", response_model=s.PresenceOut, tags=["sync"])
async def presence(
    svc: Svc, me: Auth, user_ids: Annotated[str, Query(max_length=20000)] = ""
) -> Response:
    ids = [u for u in user_ids.split(",") if u]
    return json({"presence": await svc.presence.states(me.user, ids)})
