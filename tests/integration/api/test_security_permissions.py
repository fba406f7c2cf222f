"""Permissions in one table: every REST operation of the OpenAPI document and every
WebSocket frame, tried as owner, admin, member, guest, non-member and anonymous against
the application in-process. Each cell is the expected outcome: allowed, or denied (unauthenticated,
forbidden or not_found). A new operation fails this test until it has its row.

The world: `creator` (a member) made the group G with `mem` (a member) and `gue` (a
guest) in it; `own` is the organization's owner, `adm` an admin, `out` a member outside
G. Other roles' calls that are allowed may still fail validation (a wrong TOTP code, a
wrong password): those count as allowed, since the permission check let them through."""

from __future__ import annotations

import functools
import itertools
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets

from tests.conftest import AppServer, MakeServer
from tests.helpers import Api, Ws, http_client, login, make_user
from tidings.core.jobs import Job, JobPolicy
from tidings.core.models import Avatar, FileStatus
from tidings.services.avatars import SIZES, avatar_key
from tidings.services.integrations import RESPONSE_LINK

ROLES = ("owner", "admin", "member", "guest", "nonmember", "anonymous")
AUTH = frozenset(ROLES) - {"anonymous"}
EVERYONE = frozenset(ROLES)
ADMINS = frozenset({"owner", "admin"})
IN_G = frozenset({"member", "guest"})
NOBODY: frozenset[str] = frozenset()
DENIED = {"unauthenticated", "forbidden", "not_found", "second_factor_required"}
PASSWORD = "plum-orbit-123"
_n = itertools.count(1)

# Who may do what. Keys are (method, path template) exactly as in /openapi.json.
REST: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    # from loopback, as every caller here (metrics_networks); elsewhere a token
    # (tests/integration/app/test_metrics.py)
    ("GET", "/metrics"): EVERYONE,
    ("POST", "/api/v1/auth/login"): EVERYONE,
    ("POST", "/api/v1/auth/logout"): AUTH,
    ("POST", "/api/v1/auth/password"): AUTH,
    ("GET", "/api/v1/auth/totp"): AUTH,
    ("POST", "/api/v1/auth/totp/setup"): AUTH,
    ("POST", "/api/v1/auth/totp/enable"): AUTH,
    ("POST", "/api/v1/auth/totp/disable"): AUTH,
    ("POST", "/api/v1/auth/totp/recovery-codes"): AUTH,
    ("GET", "/api/v1/sessions"): AUTH,
    ("DELETE", "/api/v1/sessions/{sid}"): AUTH,  # one's own
    ("GET", "/api/v1/users/me"): AUTH,
    ("POST", "/api/v1/users"): ADMINS,
    ("GET", "/api/v1/users"): AUTH,
    ("GET", "/api/v1/users/{uid}"): AUTH,
    ("PATCH", "/api/v1/users/{uid}"): ADMINS,
    ("POST", "/api/v1/users/{uid}/password"): ADMINS,
    ("GET", "/api/v1/users/{uid}/sessions"): ADMINS,
    # avatars (services/avatars.py): creator has one (world.avatar_url); everyone signed
    # in sees it (the guest shares G with creator: a contact); its URL needs no token;
    # admins remove someone else's (xtra's)
    ("PUT", "/api/v1/users/me/avatar"): AUTH,  # a body refused past the check
    ("DELETE", "/api/v1/users/me/avatar"): AUTH,
    ("DELETE", "/api/v1/users/{uid}/avatar"): ADMINS,
    ("GET", "/api/v1/users/{uid}/avatar"): AUTH,
    ("GET", "/api/v1/users/{uid}/avatar/{avatar_id}"): EVERYONE,
    ("DELETE", "/api/v1/users/{uid}/sessions"): ADMINS,
    ("DELETE", "/api/v1/users/{uid}/totp"): ADMINS,
    ("POST", "/api/v1/bots"): ADMINS,
    ("GET", "/api/v1/bots"): ADMINS,
    ("POST", "/api/v1/bots/{uid}/token"): ADMINS,
    ("GET", "/api/v1/departments"): AUTH,
    ("POST", "/api/v1/departments"): ADMINS,
    ("PATCH", "/api/v1/departments/{did}"): ADMINS,
    ("DELETE", "/api/v1/departments/{did}"): ADMINS,
    ("GET", "/api/v1/departments/{did}/members"): ADMINS,
    ("PUT", "/api/v1/departments/{did}/members/{uid}"): ADMINS,
    ("DELETE", "/api/v1/departments/{did}/members/{uid}"): ADMINS,
    ("GET", "/api/v1/settings"): AUTH,
    ("PATCH", "/api/v1/settings"): ADMINS,
    ("GET", "/api/v1/audit"): ADMINS,
    ("GET", "/api/v1/audit/export"): ADMINS,
    # LDAP off on this server: the sync answers 503 unavailable to admins (past the check)
    ("GET", "/api/v1/admin/identity/ldap"): ADMINS,
    ("POST", "/api/v1/admin/identity/ldap/test"): ADMINS,
    ("POST", "/api/v1/admin/identity/ldap/sync"): ADMINS,
    ("GET", "/api/v1/admin/config"): ADMINS,
    ("PATCH", "/api/v1/admin/config"): ADMINS,
    ("GET", "/api/v1/scim/tokens"): ADMINS,
    ("POST", "/api/v1/scim/tokens"): ADMINS,
    ("DELETE", "/api/v1/scim/tokens/{token_id}"): ADMINS,
    # SCIM takes SCIM tokens only: a session of any role is refused (401, SCIM's shape)
    **{
        (method, f"/scim/v2{path}"): NOBODY
        for method, path in (
            ("GET", "/ServiceProviderConfig"),
            ("GET", "/Schemas"),
            ("GET", "/Schemas/{schema_id}"),
            ("GET", "/ResourceTypes"),
            ("GET", "/ResourceTypes/{type_id}"),
            ("GET", "/Users"),
            ("POST", "/Users"),
            ("POST", "/Users/.search"),
            ("GET", "/Users/{user_id}"),
            ("PUT", "/Users/{user_id}"),
            ("PATCH", "/Users/{user_id}"),
            ("DELETE", "/Users/{user_id}"),
            ("GET", "/Groups"),
            ("POST", "/Groups"),
            ("POST", "/Groups/.search"),
            ("GET", "/Groups/{group_id}"),
            ("PUT", "/Groups/{group_id}"),
            ("PATCH", "/Groups/{group_id}"),
            ("DELETE", "/Groups/{group_id}"),
            ("POST", "/.search"),
        )
    },
    ("POST", "/api/v1/conversations"): AUTH - {"guest"},  # guests: direct ones only
    ("GET", "/api/v1/conversations"): AUTH,
    ("GET", "/api/v1/channels"): AUTH - {"guest"},  # guests do not browse channels
    ("GET", "/api/v1/conversations/{cid}"): IN_G,
    # only G's owner (creator) could; org admins do not see into private groups
    ("PATCH", "/api/v1/conversations/{cid}"): NOBODY,
    ("POST", "/api/v1/conversations/{cid}/members"): IN_G,  # groups: members invite
    ("DELETE", "/api/v1/conversations/{cid}/members/{uid}"): NOBODY,  # someone else
    # a fresh group of creator's: only its owner gives roles; org admins do not see into it
    ("PUT", "/api/v1/conversations/{cid}/members/{uid}/role"): NOBODY,
    ("POST", "/api/v1/conversations/{cid}/messages"): IN_G,
    ("GET", "/api/v1/conversations/{cid}/messages"): IN_G,
    ("PATCH", "/api/v1/conversations/{cid}/messages/{seq}"): frozenset({"member"}),  # sender
    ("DELETE", "/api/v1/conversations/{cid}/messages/{seq}"): frozenset({"member"}),
    ("PUT", "/api/v1/conversations/{cid}/messages/{seq}/reactions/{emoji}"): IN_G,
    ("DELETE", "/api/v1/conversations/{cid}/messages/{seq}/reactions/{emoji}"): IN_G,
    # pins: G's members read them; only its owner (creator) and moderators pin, and org
    # admins are not in G
    ("GET", "/api/v1/conversations/{cid}/pins"): IN_G,
    ("PUT", "/api/v1/conversations/{cid}/pins/{seq}"): NOBODY,
    ("DELETE", "/api/v1/conversations/{cid}/pins/{seq}"): NOBODY,
    # saved messages: one's own list; G's members save its messages; unsaving touches
    # only one's own list, so it answers 204 to anyone (nothing to learn)
    ("GET", "/api/v1/saved"): AUTH,
    ("PUT", "/api/v1/conversations/{cid}/messages/{seq}/saved"): IN_G,
    ("DELETE", "/api/v1/conversations/{cid}/messages/{seq}/saved"): AUTH,
    # scheduled messages: G's members schedule into it; each one is its sender's alone
    # (here mem's: anyone else gets not_found)
    ("POST", "/api/v1/conversations/{cid}/scheduled"): IN_G,
    ("GET", "/api/v1/scheduled"): AUTH,
    ("GET", "/api/v1/scheduled/{sid}"): frozenset({"member"}),
    ("PATCH", "/api/v1/scheduled/{sid}"): frozenset({"member"}),
    ("DELETE", "/api/v1/scheduled/{sid}"): frozenset({"member"}),
    # forwarding G's message into G itself: its members; the link back of a forward
    ("POST", "/api/v1/conversations/{cid}/messages/{seq}/forward"): IN_G,
    ("GET", "/api/v1/conversations/{cid}/messages/{seq}/forwarded-from"): IN_G,
    # a fresh group of creator's: its owner (not a role here) and org admins archive it
    ("PUT", "/api/v1/conversations/{cid}/archive"): ADMINS,
    ("DELETE", "/api/v1/conversations/{cid}/archive"): ADMINS,
    ("GET", "/api/v1/admin/conversations"): ADMINS,
    ("GET", "/api/v1/admin/stats/usage"): ADMINS,
    ("GET", "/api/v1/search"): AUTH,
    ("GET", "/api/v1/admin/search/status"): ADMINS,
    ("POST", "/api/v1/admin/search/reindex"): ADMINS,
    ("GET", "/api/v1/admin/conversations/{cid}/members"): ADMINS,
    ("POST", "/api/v1/conversations/{cid}/read"): IN_G,
    ("POST", "/api/v1/conversations/{cid}/unread"): IN_G,
    ("GET", "/api/v1/conversations/{cid}/threads"): IN_G,
    ("GET", "/api/v1/conversations/{cid}/threads/{root_seq}"): IN_G,
    ("PUT", "/api/v1/conversations/{cid}/threads/{root_seq}/follow"): IN_G,
    ("DELETE", "/api/v1/conversations/{cid}/threads/{root_seq}/follow"): IN_G,
    ("POST", "/api/v1/conversations/{cid}/threads/{root_seq}/read"): IN_G,
    ("POST", "/api/v1/conversations/{cid}/typing"): IN_G,
    ("GET", "/api/v1/sync"): AUTH,
    ("GET", "/api/v1/presence"): AUTH,
    # single sign-on: public, but off on this server (not_found for everyone); with it
    # on, tests/integration/api/test_oidc_api.py
    ("GET", "/api/v1/auth/oidc"): EVERYONE,
    ("GET", "/api/v1/auth/oidc/start"): NOBODY,
    ("GET", "/api/v1/auth/oidc/callback"): NOBODY,
    ("POST", "/api/v1/auth/oidc/exchange"): NOBODY,
    ("GET", "/api/v1/identity/oidc"): ADMINS,
    ("POST", "/api/v1/identity/oidc/test"): NOBODY,  # admins: not_found (off)
    # an org-wide webhook (the owner's): admins register and manage those; everyone
    # lists their own (docs/integrations.md)
    ("POST", "/api/v1/webhooks"): ADMINS,
    ("GET", "/api/v1/webhooks"): AUTH,
    ("GET", "/api/v1/webhooks/{wid}"): ADMINS,
    ("PATCH", "/api/v1/webhooks/{wid}"): ADMINS,
    ("DELETE", "/api/v1/webhooks/{wid}"): ADMINS,
    ("POST", "/api/v1/webhooks/{wid}/secret"): ADMINS,
    ("POST", "/api/v1/webhooks/{wid}/test"): ADMINS,
    ("GET", "/api/v1/webhooks/{wid}/deliveries"): ADMINS,
    # durable jobs: a dead letter made for this test (world.job_id)
    ("GET", "/api/v1/admin/plugins"): ADMINS,
    ("GET", "/api/v1/admin/jobs"): ADMINS,
    ("GET", "/api/v1/admin/jobs/stats"): ADMINS,
    ("GET", "/api/v1/admin/jobs/{job_id}"): ADMINS,
    ("POST", "/api/v1/admin/jobs/{job_id}/retry"): ADMINS,
    ("POST", "/api/v1/admin/jobs/retry-dead"): ADMINS,
    ("POST", "/api/v1/admin/jobs/purge"): ADMINS,
    # incoming webhooks: G's owner (creator) and org admins manage them; G's other
    # members are refused, strangers learn nothing; the URL itself is the secret
    ("POST", "/api/v1/conversations/{cid}/incoming-webhooks"): ADMINS,
    ("GET", "/api/v1/conversations/{cid}/incoming-webhooks"): ADMINS,
    ("GET", "/api/v1/incoming-webhooks"): ADMINS,
    ("PATCH", "/api/v1/incoming-webhooks/{hid}"): ADMINS,
    ("POST", "/api/v1/incoming-webhooks/{hid}/rotate"): ADMINS,
    ("DELETE", "/api/v1/incoming-webhooks/{hid}"): ADMINS,
    ("POST", "/api/v1/hooks/{hid}/{secret}"): EVERYONE,
    # slash commands: admins manage them, anyone lists them, members invoke them; a
    # response URL is signed, no token
    ("GET", "/api/v1/commands"): AUTH,
    ("POST", "/api/v1/commands"): ADMINS,
    ("PATCH", "/api/v1/commands/{command_id}"): ADMINS,
    ("POST", "/api/v1/commands/{command_id}/secret"): ADMINS,
    ("DELETE", "/api/v1/commands/{command_id}"): ADMINS,
    ("POST", "/api/v1/conversations/{cid}/commands"): IN_G,
    ("POST", "/api/v1/command-responses/{iid}/{signature}"): EVERYONE,
    # files (docs/files.md): mem uploaded world.file_id and attached it in G; nobody
    # else sees it (admins included: not_found); a signed link needs no token
    ("POST", "/api/v1/files"): AUTH,  # this call has no multipart body: 415 past the check
    ("GET", "/api/v1/files/{file_id}"): IN_G,
    ("GET", "/api/v1/files/{file_id}/meta"): IN_G,
    ("GET", "/api/v1/files/{file_id}/thumbnail"): IN_G,
    ("POST", "/api/v1/files/{file_id}/link"): IN_G,
    ("GET", "/api/v1/files/{file_id}/signed"): EVERYONE,
    ("GET", "/api/v1/conversations/{cid}/files"): IN_G,
    ("PATCH", "/api/v1/users/me"): AUTH,  # one's own profile
    # one's own notification settings: in G's conversations for its members, DND for all
    ("GET", "/api/v1/conversations/{cid}/notifications"): IN_G,
    ("PUT", "/api/v1/conversations/{cid}/notifications"): IN_G,
    ("GET", "/api/v1/users/me/notifications"): AUTH,
    ("PUT", "/api/v1/users/me/notifications"): AUTH,
    # notifications for closed tabs (docs/notifications.md): one's own subscriptions and
    # settings; the digest's unsubscribe link is signed, no token
    ("GET", "/api/v1/push/vapid-key"): AUTH,
    ("GET", "/api/v1/push/subscriptions"): AUTH,
    ("POST", "/api/v1/push/subscriptions"): AUTH,  # a refused address: 400 past the check
    ("DELETE", "/api/v1/push/subscriptions"): AUTH,
    ("GET", "/api/v1/users/me/notifications/offline"): AUTH,
    ("PUT", "/api/v1/users/me/notifications/offline"): AUTH,
    ("GET", "/api/v1/notifications/unsubscribe"): EVERYONE,
    ("POST", "/api/v1/notifications/unsubscribe"): EVERYONE,
    # last: it signs out each role's other sessions (the fresh ones of earlier rows)
    ("DELETE", "/api/v1/sessions"): AUTH,
}
HOOK_URL = "http://127.0.0.1:9/hook"  # nothing listens: deliveries fail, logged

WS: dict[str, frozenset[str]] = {
    "auth": AUTH,
    "send": IN_G,
    "read": IN_G,
    "typing": IN_G,
    "presence": AUTH,
    "ping": AUTH,
    "command": IN_G,
}


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None
    token: str | None = None  # overrides the role's token


@dataclass
class World:
    url: str
    owner: Api
    apis: dict[str, Api] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)
    creator: Api | None = None
    mem: Api | None = None
    target: Api | None = None
    group: str = ""
    department: str = ""
    message_seq: int = 0
    job_id: str = ""
    # signs a command's response URL as the server does (the test's server's keyring)
    sign_response: Any = None
    webhook: str = ""
    file_id: str = ""
    signed_path: str = ""
    unsubscribe_path: str = ""
    forwarded_seq: int = 0
    avatar_url: str = ""

    def token(self, role: str) -> str | None:
        return None if role == "anonymous" else self.apis[role].token

    async def fresh_user(self) -> str:
        name = f"t{next(_n)}"
        data = await self.owner.post("/users", {"username": name, "password": PASSWORD}, expect=201)
        return str(data["user"]["id"])

    async def fresh_bot(self) -> str:
        data = await self.owner.post("/bots", {"username": f"b{next(_n)}"}, expect=201)
        return str(data["user"]["id"])

    async def fresh_token(self, role: str) -> tuple[str, str]:
        """A second session of the role's user: (token, session id)."""
        async with http_client(self.url, timeout=30) as c:
            r = await c.post(
                "/api/v1/auth/login",
                json={"username": self.usernames[role], "password": PASSWORD, "device": "x"},
            )
        token = r.json()["token"]
        headers = {"authorization": f"Bearer {token}"}
        async with http_client(self.url, headers=headers, timeout=30) as c:
            sessions = (await c.get("/api/v1/sessions")).json()["sessions"]
        return token, next(s["id"] for s in sessions if s["current"])

    async def fresh_hook(self) -> tuple[str, str]:
        """An incoming webhook of G (made by the owner): its id and its URL's path."""
        data = await self.owner.post(
            f"/conversations/{self.group}/incoming-webhooks", {"name": "H"}, expect=201
        )
        hook = data["incoming_webhook"]
        return str(hook["id"]), "/" + str(hook["url"]).split("/", 3)[3]

    async def fresh_command(self) -> str:
        """A slash command answered by a bot (no outgoing request is made): its name."""
        name = f"cmd{next(_n)}"
        body = {"name": name, "bot_id": await self.fresh_bot()}
        await self.owner.post("/commands", body, expect=201)
        return name

    async def fresh_command_id(self) -> str:
        name = f"cmd{next(_n)}"
        made = await self.owner.post(
            "/commands", {"name": name, "url": "https://commands.example/x"}, expect=201
        )
        return str(made["command"]["id"])

    async def fresh_response_path(self) -> str:
        """The path of a new invocation's response URL (G's creator invoked it)."""
        assert self.creator is not None and self.sign_response is not None
        name = await self.fresh_command()
        made = await self.creator.post(
            f"/conversations/{self.group}/commands", {"command": name}, expect=202
        )
        iid = str(made["invocation"]["id"])
        return f"/api/v1/command-responses/{iid}/{self.sign_response(iid)}"

    async def fresh_webhook(self) -> str:
        data = await self.owner.post(
            "/webhooks", {"url": HOOK_URL, "events": ["reaction"]}, expect=201
        )
        return str(data["webhook"]["id"])

    async def fresh_group(self, archived: bool = False) -> str:
        """A new group of creator's with mem and gue in it (archived by creator if asked)."""
        assert self.creator is not None
        ids = [self.apis["member"].id, self.apis["guest"].id]
        made = await self.creator.post(
            "/conversations",
            {"kind": "group", "name": f"a{next(_n)}", "member_ids": ids},
            expect=201,
        )
        cid = str(made["conversation"]["id"])
        if archived:
            await self.creator.call("PUT", f"/conversations/{cid}/archive", expect=200)
        return cid

    async def mem_message(self) -> int:
        assert self.mem is not None
        return int((await self.mem.send(self.group, "by mem"))["seq"])

    async def mem_scheduled(self) -> str:
        """A fresh scheduled message of mem's in G, due tomorrow: its id."""
        assert self.mem is not None
        made = await self.mem.post(
            f"/conversations/{self.group}/scheduled",
            {"body": "later", "send_at": tomorrow()},
            expect=201,
        )
        return str(made["scheduled"]["id"])


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def build(world: World, method: str, path: str, role: str) -> Call:
    """A valid request for this operation as this role (fresh targets where it writes)."""
    v1 = "/api/v1"
    g, uid = world.group, world.target.id if world.target else ""
    login_as = world.usernames.get(role, "creator")
    match (method, path.removeprefix(v1)):
        case ("POST", "/auth/login"):
            return Call(method, path, {"username": login_as, "password": PASSWORD})
        case ("POST", "/auth/logout"):
            token = None if role == "anonymous" else (await world.fresh_token(role))[0]
            return Call(method, path, token=token)
        case ("POST", "/auth/password"):
            return Call(method, path, {"current_password": PASSWORD, "new_password": PASSWORD})
        case ("POST", "/auth/totp/setup"):
            return Call(method, path, {"password": PASSWORD})
        case ("POST", "/auth/totp/enable") | ("POST", "/auth/totp/recovery-codes"):
            return Call(method, path, {"password": PASSWORD, "code": "000000"})
        case ("POST", "/auth/totp/disable"):
            return Call(method, path, {"password": "not-my-password", "code": "000000"})
        case ("DELETE", "/sessions/{sid}"):
            sid = "x" if role == "anonymous" else (await world.fresh_token(role))[1]
            return Call(method, f"{v1}/sessions/{sid}")
        case ("POST", "/users"):
            return Call(method, path, {"username": f"new{next(_n)}", "password": PASSWORD})
        case ("PATCH", "/users/me"):
            return Call(method, path, {"theme": "system"})
        case ("PUT", "/users/me/avatar"):
            return Call(method, path, {"file_id": 7})
        case ("DELETE", "/users/{uid}/avatar"):
            return Call(method, f"{v1}/users/{uid}/avatar")
        case ("GET", "/users/{uid}/avatar"):
            assert world.creator is not None
            return Call(method, f"{v1}/users/{world.creator.id}/avatar")
        case ("GET", "/users/{uid}/avatar/{avatar_id}"):
            return Call(method, world.avatar_url)
        case ("GET", "/users/{uid}") | ("GET", "/users/{uid}/sessions"):
            return Call(method, f"{v1}/users/{uid}" + path.split("{uid}")[1])
        case ("DELETE", "/users/{uid}/sessions") | ("DELETE", "/users/{uid}/totp"):
            return Call(method, f"{v1}/users/{uid}" + path.split("{uid}")[1])
        case ("PATCH", "/users/{uid}"):
            return Call(method, f"{v1}/users/{await world.fresh_user()}", {"display_name": "T"})
        case ("POST", "/users/{uid}/password"):
            fresh = await world.fresh_user()
            return Call(method, f"{v1}/users/{fresh}/password", {"password": "plum-orbit-456"})
        case ("POST", "/bots"):
            return Call(method, path, {"username": f"newbot{next(_n)}"})
        case ("POST", "/bots/{uid}/token"):
            return Call(method, f"{v1}/bots/{await world.fresh_bot()}/token")
        case ("POST", "/departments"):
            return Call(method, path, {"name": f"dept {next(_n)}"})
        case ("PATCH", "/departments/{did}") | ("DELETE", "/departments/{did}"):
            made = await world.owner.post("/departments", {"name": f"d{next(_n)}"}, expect=201)
            body = {"name": f"renamed {next(_n)}"} if method == "PATCH" else None
            return Call(method, f"{v1}/departments/{made['department']['id']}", body)
        case ("GET", "/departments/{did}/members"):
            return Call(method, f"{v1}/departments/{world.department}/members")
        case ("PUT", "/departments/{did}/members/{uid}") | (
            "DELETE",
            "/departments/{did}/members/{uid}",
        ):
            return Call(method, f"{v1}/departments/{world.department}/members/{uid}")
        case ("POST", "/admin/identity/ldap/test") | ("POST", "/admin/identity/ldap/sync"):
            return Call(method, path, {})
        case ("PATCH", "/admin/config"):
            return Call(method, path, {"values": {"ldap_user_filter": "(uid={username})"}})
        case ("POST", "/scim/tokens"):
            return Call(method, path, {"name": f"idp {next(_n)}"})
        case ("DELETE", "/scim/tokens/{token_id}"):
            issued = await world.owner.post("/scim/tokens", {"name": "t"}, expect=201)
            return Call(method, f"{v1}/scim/tokens/{issued['token']['id']}")
        case _ if path.startswith("/scim/v2/"):
            return Call(method, re.sub(r"\{[a-z_]+\}", "x", path), json={})
        case ("PATCH", "/settings"):
            return Call(method, path, {"second_factor_policy": "none"})
        case ("POST", "/conversations"):
            return Call(method, path, {"kind": "group", "name": f"g{next(_n)}"})
        case ("GET", "/conversations/{cid}") | ("GET", "/conversations/{cid}/messages"):
            return Call(method, path.replace("{cid}", g))
        case ("PATCH", "/conversations/{cid}"):
            return Call(method, f"{v1}/conversations/{g}", {"topic": f"t{next(_n)}"})
        case ("POST", "/conversations/{cid}/members"):
            return Call(method, f"{v1}/conversations/{g}/members", {"user_ids": [uid]})
        case ("DELETE", "/conversations/{cid}/members/{uid}"):
            assert world.creator is not None
            await world.creator.post(f"/conversations/{g}/members", {"user_ids": [uid]})
            return Call(method, f"{v1}/conversations/{g}/members/{uid}")
        case ("POST", "/conversations/{cid}/messages"):
            body = {"client_msg_id": uuid.uuid4().hex, "body": "hello"}
            return Call(method, f"{v1}/conversations/{g}/messages", body)
        case ("PATCH", "/conversations/{cid}/messages/{seq}"):
            seq = world.message_seq
            return Call(method, f"{v1}/conversations/{g}/messages/{seq}", {"body": "edited"})
        case ("DELETE", "/conversations/{cid}/messages/{seq}"):
            return Call(method, f"{v1}/conversations/{g}/messages/{await world.mem_message()}")
        case (_, "/conversations/{cid}/messages/{seq}/reactions/{emoji}"):
            seq = world.message_seq
            return Call(method, f"{v1}/conversations/{g}/messages/{seq}/reactions/👍")
        case ("GET", "/conversations/{cid}/notifications"):
            return Call(method, f"{v1}/conversations/{g}/notifications")
        case ("PUT", "/conversations/{cid}/notifications"):
            return Call(method, f"{v1}/conversations/{g}/notifications", {"level": "mentions"})
        case ("PUT", "/users/me/notifications"):
            return Call(method, path, {"dnd_schedule": {"start": "22:00", "end": "07:00"}})
        case ("POST", "/conversations/{cid}/messages/{seq}/forward"):
            body = {"conversation_id": g, "client_msg_id": uuid.uuid4().hex}
            return Call(
                method, f"{v1}/conversations/{g}/messages/{world.message_seq}/forward", body
            )
        case ("GET", "/conversations/{cid}/messages/{seq}/forwarded-from"):
            return Call(
                method, f"{v1}/conversations/{g}/messages/{world.forwarded_seq}/forwarded-from"
            )
        case ("POST", "/conversations/{cid}/scheduled"):
            body = {"body": "later", "send_at": tomorrow()}
            return Call(method, f"{v1}/conversations/{g}/scheduled", body)
        case (_, "/scheduled/{sid}"):
            body = {"body": "changed"} if method == "PATCH" else None
            return Call(method, f"{v1}/scheduled/{await world.mem_scheduled()}", body)
        case (_, "/conversations/{cid}/messages/{seq}/saved"):
            return Call(method, f"{v1}/conversations/{g}/messages/{world.message_seq}/saved")
        case ("GET", "/conversations/{cid}/pins"):
            return Call(method, f"{v1}/conversations/{g}/pins")
        case (_, "/conversations/{cid}/pins/{seq}"):
            return Call(method, f"{v1}/conversations/{g}/pins/{world.message_seq}")
        case ("PUT", "/conversations/{cid}/members/{uid}/role"):
            cid, mem = await world.fresh_group(), world.apis["member"].id
            return Call(
                method, f"{v1}/conversations/{cid}/members/{mem}/role", {"role": "moderator"}
            )
        case (_, "/conversations/{cid}/archive"):
            cid = await world.fresh_group(archived=method == "DELETE")
            return Call(method, f"{v1}/conversations/{cid}/archive")
        case ("GET", "/admin/conversations/{cid}/members"):
            return Call(method, path.replace("{cid}", g))
        case ("POST", "/conversations/{cid}/read"):
            return Call(method, f"{v1}/conversations/{g}/read", {"seq": 1})
        case ("POST", "/conversations/{cid}/unread"):
            return Call(method, f"{v1}/conversations/{g}/unread", {"from_seq": 1})
        case ("GET", "/conversations/{cid}/threads"):
            return Call(method, path.replace("{cid}", g))
        case (_, p) if p.startswith("/conversations/{cid}/threads/{root_seq}"):
            seq = str(world.message_seq)
            body = {"seq": 1} if p.endswith("/read") else None
            return Call(method, path.replace("{cid}", g).replace("{root_seq}", seq), body)
        case ("POST", "/conversations/{cid}/typing"):
            return Call(method, f"{v1}/conversations/{g}/typing")
        case ("GET", "/sync"):
            return Call(method, path, params={"since": "0"})
        case ("GET", "/search"):
            return Call(method, path, params={"q": "hello"})
        case ("GET", "/presence"):
            return Call(method, path, params={"user_ids": uid})
        case ("POST", "/auth/oidc/exchange"):
            return Call(method, path, {})
        case ("GET", "/admin/jobs/{job_id}") | ("POST", "/admin/jobs/{job_id}/retry"):
            return Call(method, f"{v1}/admin/jobs/{world.job_id}" + path.split("{job_id}")[1])
        case ("POST", "/admin/jobs/retry-dead") | ("POST", "/admin/jobs/purge"):
            return Call(method, path, {"kind": "test.nothing"})
        case (_, "/conversations/{cid}/incoming-webhooks"):
            body = {"name": "H"} if method == "POST" else None
            return Call(method, path.replace("{cid}", g), body)
        case (_, "/incoming-webhooks/{hid}") | ("POST", "/incoming-webhooks/{hid}/rotate"):
            hid, _url = await world.fresh_hook()
            body = {"name": "N"} if method == "PATCH" else None
            return Call(method, path.replace("{hid}", hid), body)
        case ("POST", "/hooks/{hid}/{secret}"):
            _hid, hook_path = await world.fresh_hook()
            return Call(method, hook_path, {"text": "hi"})
        case ("POST", "/commands"):
            return Call(method, path, {"name": f"c{next(_n)}", "url": "https://x.example/c"})
        case (_, "/commands/{command_id}") | ("POST", "/commands/{command_id}/secret"):
            command_id = await world.fresh_command_id()
            body = {"description": "d"} if method == "PATCH" else None
            return Call(method, path.replace("{command_id}", command_id), body)
        case ("POST", "/conversations/{cid}/commands"):
            return Call(method, path.replace("{cid}", g), {"command": await world.fresh_command()})
        case ("POST", "/command-responses/{iid}/{signature}"):
            return Call(method, await world.fresh_response_path(), {"text": "later"})
        case ("GET", "/files/{file_id}/signed"):
            return Call(method, world.signed_path)
        case ("POST", "/push/subscriptions"):
            keys = {"p256dh": "B" + "A" * 86, "auth": "A" * 22}
            return Call(method, path, {"endpoint": "https://203.0.113.9/push", "keys": keys})
        case ("DELETE", "/push/subscriptions"):
            return Call(method, path, {"endpoint": "https://push.example/none"})
        case ("PUT", "/users/me/notifications/offline"):
            return Call(method, path, {"previews": True})
        case (_, "/notifications/unsubscribe"):
            return Call(method, world.unsubscribe_path)
        case (_, p) if p.startswith("/files/{file_id}"):
            return Call(method, path.replace("{file_id}", world.file_id))
        case ("GET", "/conversations/{cid}/files"):
            return Call(method, path.replace("{cid}", g))
        case ("POST", "/webhooks"):
            return Call(method, path, {"url": HOOK_URL, "events": ["message"]})
        case ("DELETE", "/webhooks/{wid}"):
            return Call(method, f"{v1}/webhooks/{await world.fresh_webhook()}")
        case ("PATCH", "/webhooks/{wid}"):
            return Call(method, f"{v1}/webhooks/{world.webhook}", {"enabled": True})
        case (_, p) if p.startswith("/webhooks/{wid}"):
            return Call(method, path.replace("{wid}", world.webhook))
        case _ if "{" not in path:
            return Call(method, path)
    raise AssertionError(f"no request for {method} {path}: add one to build()")


async def make_world(url: str, owner_password: str) -> World:
    owner = await login(url, "admin", owner_password)
    world = World(url, owner)
    world.apis["owner"] = owner
    world.usernames["owner"] = "admin"
    # the owner's password is not PASSWORD: give it PASSWORD so fresh logins work
    await owner.post(f"/users/{owner.id}/password", {"password": PASSWORD}, expect=204)
    owner = await login(url, "admin", PASSWORD)
    world.owner = world.apis["owner"] = owner
    for role, name, org_role in (
        ("admin", "adm", "admin"),
        ("member", "mem", "member"),
        ("guest", "gue", "guest"),
        ("nonmember", "out", "member"),
    ):
        world.apis[role] = await make_user(owner, name, role=org_role)
        world.usernames[role] = name
    world.creator = await make_user(owner, "creator")
    world.target = await make_user(owner, "xtra")
    world.mem = world.apis["member"]
    members = [world.apis["member"].id, world.apis["guest"].id]
    conv = await world.creator.post(
        "/conversations", {"kind": "group", "name": "G", "member_ids": members}, expect=201
    )
    world.group = conv["conversation"]["id"]
    world.message_seq = await world.mem_message()
    forwarded = await world.mem.post(
        f"/conversations/{world.group}/messages/{world.message_seq}/forward",
        {"conversation_id": world.group, "client_msg_id": uuid.uuid4().hex},
        expect=201,
    )
    world.forwarded_seq = int(forwarded["message"]["seq"])
    dep = await owner.post("/departments", {"name": "Security"}, expect=201)
    world.department = dep["department"]["id"]
    world.webhook = await world.fresh_webhook()
    return world


def outcome(response: httpx.Response) -> str:
    if response.status_code < 400:
        return "allowed"
    body = response.json()
    if "error" not in body:  # SCIM's error shape (its status as a string)
        return "denied" if body["status"] in ("401", "403", "404") else "allowed"
    code = body["error"]["code"]
    return "denied" if code in DENIED else "allowed"  # a validation error got past the check


async def _dead_letter(server: AppServer) -> str:
    """A job that failed for good, for the jobs endpoints to be tried on."""
    jobs = server.container.services.jobs

    async def fail(job: Job) -> None:
        raise RuntimeError("no")

    jobs.register("test.permissions", fail, JobPolicy(max_attempts=1))
    async with server.container.store.write() as tx:
        job_id = await jobs.enqueue(tx, "test.permissions", {})
    await jobs.drain()
    return job_id


async def _attached_file(world: World, server: AppServer) -> None:
    """mem uploads a file (with a thumbnail, as the media job would make) and sends it
    in G; its signed link (the path the signed row calls)."""
    assert world.mem is not None
    r = await world.mem.http.post("/files", files={"file": ("a.txt", b"hello", "text/plain")})
    world.file_id = r.json()["file"]["id"]
    await world.mem.send(world.group, "a file", attachments=[world.file_id])
    files = server.container.services.files
    await server.container.blobs.put("t/permissions-thumb", b"thumb")
    await files.mark_processed(world.file_id, FileStatus.READY, thumb_key="t/permissions-thumb")
    link = await world.mem.post(f"/files/{world.file_id}/link", {})
    world.signed_path = link["url"]


async def _creator_avatar(world: World, server: AppServer) -> None:
    """creator's avatar, as services/avatars.py would record it (its blobs made up)."""
    assert world.creator is not None
    for px in SIZES:
        await server.container.blobs.put(avatar_key("ab" * 32, px), b"image")
    now = datetime.now(UTC)
    async with server.container.store.write() as tx:
        await tx.set_avatar(world.creator.id, Avatar("av" * 16, now, "ab" * 32, "image/jpeg"))
    me = await world.creator.get("/users/me")
    world.avatar_url = me["user"]["avatar"]["url"]


async def test_every_rest_operation_as_every_role(make_server: MakeServer) -> None:
    # the incoming webhook rows make a fresh one of G for each call; webhooks to
    # loopback are allowed (only to register them: nothing listens there)
    async with make_server(
        max_incoming_webhooks_per_conversation=100, webhook_allowed_networks="127.0.0.0/8"
    ) as server:
        async with server.client(timeout=30) as http:
            spec = (await http.get("/openapi.json")).json()
        served = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
        assert served == set(REST), (
            f"missing from the table: {sorted(served - set(REST))}; "
            f"no longer served: {sorted(set(REST) - served)}"
        )
        world = await make_world(server.url, server.admin_password)
        world.job_id = await _dead_letter(server)
        await _attached_file(world, server)
        await _creator_avatar(world, server)
        world.sign_response = functools.partial(
            server.container.deps.keyring.sign_link, RESPONSE_LINK
        )
        link = server.container.services.digests.unsubscribe_url(world.apis["member"].id)
        world.unsubscribe_path = "/api/v1" + link.split("/api/v1", 1)[1]
        wrong: list[str] = []
        async with server.client(timeout=30) as http:
            for (method, path), allowed in REST.items():
                for role in ROLES:
                    call = await build(world, method, path, role)
                    token = call.token or world.token(role)
                    headers = {"authorization": f"Bearer {token}"} if token else {}
                    r = await http.request(
                        call.method,
                        call.path,
                        json=call.json,
                        params=call.params,
                        headers=headers,
                    )
                    assert r.status_code < 500, (method, path, role, r.text)
                    got = outcome(r)
                    expected = "allowed" if role in allowed else "denied"
                    if got != expected:
                        wrong.append(
                            f"{method} {path} as {role}: {got} ({r.status_code} "
                            f"{r.text[:120]}), expected {expected}"
                        )
        assert not wrong, "\n".join(wrong)


async def _ws_outcome(world: World, ws_url: str, role: str, frame_type: str) -> str:
    token = world.token(role) or "not-a-token"
    try:
        ws = await Ws.connect(ws_url, token)
    except (AssertionError, websockets.ConnectionClosed):
        return "denied"
    try:
        if frame_type == "auth":
            return "allowed"
        frames: dict[str, dict[str, Any]] = {
            "send": {
                "type": "send",
                "conversation_id": world.group,
                "client_msg_id": uuid.uuid4().hex,
                "body": "ws",
            },
            "read": {"type": "read", "conversation_id": world.group, "seq": 1},
            "typing": {"type": "typing", "conversation_id": world.group},
            "presence": {"type": "presence", "state": "away"},
            "ping": {"type": "ping"},
            "command": {
                "type": "command",
                "conversation_id": world.group,
                "command": await world.fresh_command(),
            },
        }
        reply = await ws.request(frames[frame_type])
        if reply["type"] == "ack":
            return "allowed"
        return "denied" if reply["error"]["code"] in DENIED else "allowed"
    finally:
        await ws.close()


async def test_every_websocket_frame_as_every_role(make_server: MakeServer) -> None:
    async with make_server(webhook_allowed_networks="127.0.0.0/8") as server:  # make_world's
        world = await make_world(server.url, server.admin_password)
        wrong = []
        for frame_type, allowed in WS.items():
            for role in ROLES:
                got = await _ws_outcome(world, server.ws_url, role, frame_type)
                expected = "allowed" if role in allowed else "denied"
                if got != expected:
                    wrong.append(f"{frame_type} as {role}: {got}, expected {expected}")
        assert not wrong, "\n".join(wrong)
