"""The asyncio client for the Tidings protocol (REST over httpx, live events over websockets).

Quick start::

    async with Client("http://127.0.0.1:8080") as client:
        await client.login("alice", "secret")
        stream = await client.subscribe()          # connected and ready
        conv = await client.create_conversation("group", [bob_id], name="ops")
        msg = await client.send(conv.id, "hello")  # stored, with its seq
        async for event in stream:                 # every event once, in order
            print(event)

See ``docs/sdk.md`` for the full tour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote, urlsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tidings.protocol.session import (
    Answered,
    ClientSession,
    Delivered,
    Dropped,
    Next,
    Ready,
    ReconnectSoon,
    Refused,
    Signal,
    position_key,
)
from tidings.sdk.errors import (
    Conflict,
    ConnectionFailed,
    StreamClosed,
    TidingsError,
    error_for,
)
from tidings.sdk.models import (
    CommandInvoked,
    Conversation,
    ConversationNotifications,
    CustomStatus,
    Department,
    DeviceSession,
    DoNotDisturb,
    EphemeralMessage,
    Event,
    File,
    FileLink,
    ForwardOrigin,
    HistoryPage,
    IncomingWebhook,
    Invocation,
    JobInfo,
    JobStats,
    JSONObject,
    Member,
    Message,
    OfflineNotifications,
    Pin,
    PluginInfo,
    Preferences,
    PushSubscription,
    ReadState,
    SavedMessage,
    SavedPage,
    ScheduledMessage,
    ScimToken,
    SearchPage,
    SearchResult,
    SecondFactor,
    SlashCommand,
    SyncPage,
    Thread,
    ThreadPage,
    ThreadState,
    TotpEnrolment,
    User,
    Webhook,
    WebhookDelivery,
    parse_ephemeral,
    parse_event,
    parse_time,
)

__all__ = ["Client", "EventStream", "backoff_delay", "position_key"]

log = logging.getLogger("tidings.sdk")

API_PREFIX: Final = "/api/v1"
FATAL: Final = frozenset({Next.AUTH_FAILED, Next.RESUME_REFUSED})
"""What ends a stream (protocol/session.py reads the close codes): reconnecting the
same way cannot help after 4001 bad token, 4003 revoked/disabled/removed, or 4009 a
``since`` the server never gave out (the application must sync over REST and open a new
stream)."""


class _Unset:
    """An argument left out (None is a value: it clears)."""

    __slots__ = ()


_UNSET: Final = _Unset()


UploadSource = str | os.PathLike[str] | bytes | bytearray | AsyncIterable[bytes]
"""What :meth:`Client.upload` takes: a path, the bytes, or an async iterator of chunks."""
UPLOAD_CHUNK: Final = 256 * 1024


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, UPLOAD_CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), UPLOAD_CHUNK):
        yield data[start : start + UPLOAD_CHUNK]


def _answer(response: httpx.Response) -> Any:
    """The decoded body of an answer read whole, or its error raised."""
    if response.status_code >= 400:
        try:
            body: object = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        raise error_for(response.status_code, body, retry_after=_retry_after(response))
    return orjson.loads(response.content) if response.content else None


def backoff_delay(attempt: int, *, base: float = 0.1, cap: float = 10.0) -> float:
    """Jittered exponential backoff: a random delay in ``[d/2, d]`` with ``d = base·2^attempt``.

    The lower half keeps a steady minimum ("equal jitter"), the random upper half
    spreads a crowd of clients that lost the server at the same moment.
    """
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)


def _aware_time(send_at: datetime) -> str:
    """A scheduled message's time as the server takes it (RFC 3339 with its zone)."""
    if send_at.tzinfo is None:
        raise ValueError("send_at must be an aware datetime (with a time zone)")
    return send_at.isoformat()


def _ws_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :] + API_PREFIX + "/ws"
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :] + API_PREFIX + "/ws"
    return base_url + API_PREFIX + "/ws"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _drop_none(params: Mapping[str, object]) -> dict[str, str | list[str]]:
    """Query parameters as text; a list or tuple repeats its key (`state=a&state=b`)."""
    out: dict[str, str | list[str]] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out[key] = [str(v) for v in value]
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


class Client:
    """An asyncio client for one Tidings account.

    Authenticate either with a token (``Client(url, token=...)``, e.g. a bot token)
    or with :meth:`login`. Use it as an async context manager, or call
    :meth:`aclose` when done.

    Requests that are safe to repeat (reads, and :meth:`send`, which is idempotent on
    its ``client_msg_id``) are retried on a dropped connection or a 5xx with jittered
    exponential backoff for up to ``retry_timeout`` seconds; a ``429`` is retried after
    its ``Retry-After`` whatever the method, since the server wrote nothing.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retry_timeout: float = 30.0,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Create a client for the server at ``url`` (e.g. ``http://127.0.0.1:8080``).

        ``transport`` replaces httpx's network transport (tests use it to inject faults).
        """
        self.url = url.rstrip("/")
        self.token = token
        self.retry_timeout = retry_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            trust_env=False,
            transport=transport,
            headers={"accept": "application/json"},
        )
        self._streams: set[EventStream] = set()
        self.user: User | None = None
        """The account, once known (after :meth:`login` or :meth:`me`)."""

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every event stream of this client and the HTTP connection pool."""
        for stream in list(self._streams):
            await stream.aclose()
        await self._http.aclose()

    # ------------------------------------------------------------------ plumbing

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, object] | None = None,
        retry: bool | None = None,
        auth: bool = True,
    ) -> Any:
        """Call ``method path`` under ``/api/v1`` and return the decoded JSON body (or None).

        ``retry`` says whether the request may be repeated after it may have reached
        the server (default: True for GET, PUT and DELETE). A request that never
        reached it (connection refused) is always retried within ``retry_timeout``.
        Raises :class:`APIError` (a subclass per code) or :class:`ConnectionFailed`.
        """
        if retry is None:
            retry = method.upper() in ("GET", "HEAD", "PUT", "DELETE")
        full_path = path if path.startswith("/healthz") else API_PREFIX + path
        headers: dict[str, str] = {}
        content: bytes | None = None
        if json is not None:
            content = orjson.dumps(json)
            headers["content-type"] = "application/json"
        if auth and self.token:
            headers["authorization"] = f"Bearer {self.token}"
        query = _drop_none(params) if params else None
        deadline = time.monotonic() + self.retry_timeout
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, full_path, content=content, params=query, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Never reached the server: always safe to try again.
                if time.monotonic() >= deadline:
                    raise ConnectionFailed(f"{method} {path}: {exc!r}") from exc
                await self._backoff(attempt, deadline)
                attempt += 1
                continue
            except httpx.TransportError as exc:
                # May have reached the server (dropped mid-request, read timeout).
                if not retry or time.monotonic() >= deadline:
                    raise ConnectionFailed(f"{method} {path}: {exc!r}") from exc
                await self._backoff(attempt, deadline)
                attempt += 1
                continue
            status = response.status_code
            if status >= 500 and retry and time.monotonic() < deadline:
                await self._backoff(attempt, deadline)
                attempt += 1
                continue
            if status == 429 and time.monotonic() < deadline:
                wait = _retry_after(response)
                if wait is None:
                    wait = backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap)
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                attempt += 1
                continue
            if status >= 400:
                try:
                    body: object = orjson.loads(response.content) if response.content else None
                except orjson.JSONDecodeError:
                    body = None
                raise error_for(status, body, retry_after=_retry_after(response))
            if status == 204 or not response.content:
                return None
            return orjson.loads(response.content)

    async def _backoff(self, attempt: int, deadline: float) -> None:
        delay = backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap)
        await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    # ------------------------------------------------------------------ auth

    async def login(
        self,
        username: str,
        password: str,
        *,
        totp: str | None = None,
        device: str | None = None,
    ) -> User:
        """Log in with a password (and TOTP code if the account has one); keep the token."""
        body: dict[str, object] = {"username": username, "password": password}
        if totp is not None:
            body["totp"] = totp
        if device is not None:
            body["device"] = device
        data = await self.request("POST", "/auth/login", json=body, auth=False)
        self.token = str(data["token"])
        self.user = User.from_json(data.get("user") or {})
        return self.user

    async def logout(self) -> None:
        """Revoke this client's token (its live connections are closed by the server)."""
        await self.request("POST", "/auth/logout")
        self.token = None

    async def health(self) -> bool:
        """True if ``GET /healthz`` answers ``{"status": "ok"}``."""
        data = await self.request("GET", "/healthz", auth=False)
        return isinstance(data, dict) and data.get("status") == "ok"

    # ------------------------------------------------------------------ users

    async def me(self) -> User:
        """The authenticated account."""
        data = await self.request("GET", "/users/me")
        self.user = User.from_json(data.get("user", data))
        return self.user

    async def get_user(self, user_id: str) -> User:
        """One user by id."""
        data = await self.request("GET", f"/users/{quote(user_id, safe='')}")
        return User.from_json(data.get("user", data))

    async def search_users(
        self,
        query: str | None = None,
        *,
        department_id: str | None = None,
        limit: int | None = None,
    ) -> list[User]:
        """The directory: users whose username or display name matches ``query``."""
        data = await self.request(
            "GET",
            "/users",
            params={"query": query, "department_id": department_id, "limit": limit},
        )
        return [User.from_json(u) for u in data.get("users", [])]

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        display_name: str | None = None,
        role: str | None = None,
    ) -> User:
        """Create an account (admin only)."""
        body: dict[str, object] = {"username": username, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        if role is not None:
            body["role"] = role
        data = await self.request("POST", "/users", json=body)
        return User.from_json(data.get("user", data))

    async def update_user(
        self,
        user_id: str,
        *,
        display_name: str | None = None,
        role: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's display name, role or disabled flag (admin only)."""
        body = {
            k: v
            for k, v in {"display_name": display_name, "role": role, "disabled": disabled}.items()
            if v is not None
        }
        data = await self.request(
            "PATCH", f"/users/{quote(user_id, safe='')}", json=body, retry=True
        )
        return User.from_json(data.get("user", data))

    async def set_password(self, user_id: str, password: str) -> None:
        """Set a user's password and revoke all their tokens (admin only)."""
        await self.request(
            "POST", f"/users/{quote(user_id, safe='')}/password", json={"password": password}
        )

    # ------------------------------------------------------------------ own account

    async def change_password(self, current_password: str, new_password: str) -> None:
        """Change this account's password; every other session of it ends. A new
        password the server's policy refuses raises :class:`InvalidRequest` with
        ``details["reason"]`` (``too_short``, ``blank``, ``contains_username``,
        ``too_common``, ``too_weak`` ...); a wrong current one, ``invalid_credentials``;
        too many wrong ones, :class:`RateLimited`."""
        await self.request(
            "POST",
            "/auth/password",
            json={"current_password": current_password, "new_password": new_password},
        )

    async def preferences(self) -> Preferences:
        """This account's own settings: language, time zone, theme."""
        data = await self.request("GET", "/users/me")
        return Preferences.from_json(data.get("preferences") or {})

    async def update_profile(
        self,
        *,
        display_name: str | None = None,
        language: str | _Unset | None = _UNSET,
        time_zone: str | _Unset | None = _UNSET,
        theme: str | None = None,
        status: CustomStatus | _Unset | None = _UNSET,
    ) -> tuple[User, Preferences]:
        """Change this account's profile; arguments left out stay as they are.
        ``language`` / ``time_zone`` None: the device's again; ``status`` None: no custom
        status (a :class:`CustomStatus` with ``until`` expires by itself). Others see the
        name and status change as :class:`UserUpdated` events."""
        body: dict[str, object] = {}
        if display_name is not None:
            body["display_name"] = display_name
        if theme is not None:
            body["theme"] = theme
        if not isinstance(language, _Unset):
            body["language"] = language
        if not isinstance(time_zone, _Unset):
            body["time_zone"] = time_zone
        if not isinstance(status, _Unset):
            body["status"] = (
                None
                if status is None
                else {
                    "text": status.text,
                    "emoji": status.emoji,
                    "until": None if status.until is None else status.until.isoformat(),
                }
            )
        data = await self.request("PATCH", "/users/me", json=body, retry=True)
        user = User.from_json(data["user"])
        if self.user is not None and self.user.id == user.id:
            self.user = user
        return user, Preferences.from_json(data.get("preferences") or {})

    async def offline_notifications(self) -> OfflineNotifications:
        """This account's email digest and preview settings, and its digest address."""
        data = await self.request("GET", "/users/me/notifications/offline")
        return OfflineNotifications.from_json(data.get("notifications") or {})

    async def update_offline_notifications(
        self,
        *,
        email_digests: bool | None = None,
        previews: bool | None = None,
        email: str | None = None,
    ) -> OfflineNotifications:
        """Change them; left out: as they are. ``email`` ``""`` removes the address (a
        local account's only: a directory's accounts get theirs from it)."""
        body: dict[str, object] = {}
        if email_digests is not None:
            body["email_digests"] = email_digests
        if previews is not None:
            body["previews"] = previews
        if email is not None:
            body["email"] = email
        data = await self.request("PUT", "/users/me/notifications/offline", json=body, retry=True)
        return OfflineNotifications.from_json(data.get("notifications") or {})

    async def vapid_public_key(self) -> str:
        """The server's VAPID public key (base64url): the push subscription's
        ``applicationServerKey``."""
        data = await self.request("GET", "/push/vapid-key")
        return str(data["public_key"])

    async def push_subscriptions(self) -> list[PushSubscription]:
        """This account's devices subscribed to Web Push."""
        data = await self.request("GET", "/push/subscriptions")
        return [PushSubscription.from_json(s) for s in data.get("subscriptions", [])]

    async def subscribe_push(self, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
        """Subscribe this session to Web Push (a push service's endpoint and the
        subscription's keys, base64url); signing this session out ends it."""
        data = await self.request(
            "POST",
            "/push/subscriptions",
            json={"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
            retry=True,
        )
        return PushSubscription.from_json(data.get("subscription") or {})

    async def unsubscribe_push(self, endpoint: str) -> None:
        """Take a push subscription of this account back (none there: no error)."""
        await self.request("DELETE", "/push/subscriptions", json={"endpoint": endpoint}, retry=True)
    async def set_avatar(
        self, source: str | File | os.PathLike[str] | bytes, *, timeout: float = 30.0
    ) -> User:
        """Make this account's avatar from an image: a file id (or :class:`File`) of one
        of its own uploads, or a path (``pathlib.Path``) or bytes, uploaded first. The
        server cuts it from the upload's preview, so a fresh upload is waited for
        (``Conflict`` while it is processed, up to ``timeout`` seconds). Others see it
        as :class:`UserUpdated` events. ``UnsupportedMediaType``: not an image the
        server can show; ``TooLarge``: over avatar_max_bytes."""
        if isinstance(source, File):
            file_id = source.id
        elif isinstance(source, str):
            file_id = source
        else:
            file_id = (await self.upload(source, name="avatar")).id
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            try:
                data = await self.request(
                    "PUT", "/users/me/avatar", json={"file_id": file_id}, retry=True
                )
                break
            except Conflict:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        return self._mine(User.from_json(data["user"]))

    async def remove_avatar(self, user_id: str | None = None) -> User:
        """Remove this account's avatar, or (an admin's moderation, audited) that of
        ``user_id``."""
        path = "/users/me/avatar" if user_id is None else f"/users/{quote(user_id, safe='')}/avatar"
        data = await self.request("DELETE", path, retry=True)
        return self._mine(User.from_json(data["user"]))

    async def avatar_bytes(self, user_id: str, *, size: int = 256) -> bytes:
        """The avatar image of a user this account may see (256 or 64 px)."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        path = f"{API_PREFIX}/users/{quote(user_id, safe='')}/avatar"
        try:
            response = await self._http.get(path, params={"size": size}, headers=headers)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"GET /users/{user_id}/avatar: {exc!r}") from exc
        if response.status_code >= 400:
            _answer(response)
        return response.content

    def _mine(self, user: User) -> User:
        if self.user is not None and self.user.id == user.id:
            self.user = user
        return user

    async def sessions(self) -> list[DeviceSession]:
        """This account's signed-in devices; ``current`` marks this client's."""
        data = await self.request("GET", "/sessions")
        return [DeviceSession.from_json(s) for s in data.get("sessions", [])]

    async def revoke_session(self, session_id: str) -> None:
        """Sign out one device of this account (its live connections close)."""
        await self.request("DELETE", f"/sessions/{quote(session_id, safe='')}")

    async def revoke_other_sessions(self) -> int:
        """Sign out every other device of this account; returns how many."""
        data = await self.request("DELETE", "/sessions")
        return int(data.get("revoked") or 0)

    async def second_factor(self) -> SecondFactor:
        """Whether this account has a second factor, and its unspent recovery codes."""
        data = await self.request("GET", "/auth/totp")
        return SecondFactor(
            enabled=bool(data.get("enabled")),
            recovery_codes_left=int(data.get("recovery_codes_left") or 0),
        )

    async def setup_totp(self, password: str) -> TotpEnrolment:
        """Start enrolling a TOTP second factor (the account's password is needed)."""
        data = await self.request("POST", "/auth/totp/setup", json={"password": password})
        return TotpEnrolment(
            secret=str(data["secret"]),
            otpauth_uri=str(data["otpauth_uri"]),
            qr_png=str(data["qr_png"]),
        )

    async def enable_totp(self, password: str, code: str) -> list[str]:
        """Confirm the enrolment with the password and a first code from the
        authenticator; returns the ten recovery codes (shown this once)."""
        data = await self.request(
            "POST", "/auth/totp/enable", json={"password": password, "code": code}
        )
        return [str(c) for c in data["recovery_codes"]]

    async def regenerate_recovery_codes(self, password: str, code: str) -> list[str]:
        """New recovery codes (the old ones stop working): the password and a current
        TOTP code are needed."""
        data = await self.request(
            "POST", "/auth/totp/recovery-codes", json={"password": password, "code": code}
        )
        return [str(c) for c in data["recovery_codes"]]

    async def disable_totp(self, password: str, code: str) -> None:
        """Turn the second factor off: the password and a current code (or a recovery
        code) are needed; refused while the organization requires one."""
        await self.request("POST", "/auth/totp/disable", json={"password": password, "code": code})

    async def create_bot(
        self, username: str, *, display_name: str | None = None
    ) -> tuple[User, str]:
        """Create a bot account (admin only): the account and its token, shown once."""
        body: dict[str, object] = {"username": username}
        if display_name is not None:
            body["display_name"] = display_name
        data = await self.request("POST", "/bots", json=body)
        return User.from_json(data["user"]), str(data["token"])

    async def bots(self) -> list[User]:
        """Every bot account (admin only)."""
        data = await self.request("GET", "/bots")
        return [User.from_json(b["user"]) for b in data.get("bots", [])]

    async def rotate_bot_token(self, user_id: str) -> str:
        """A new token for a bot (admin only): the old one stops working at once."""
        data = await self.request("POST", f"/bots/{quote(user_id, safe='')}/token")
        return str(data["token"])

    async def jobs(
        self,
        *,
        states: Sequence[str] = (),
        kind: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[JobInfo]:
        """Durable jobs, newest first (admin only): optionally of some ``states``
        (``pending``, ``queued``, ``running``, ``done``, ``dead``) and one ``kind``;
        ``before`` a job id pages on to older ones."""
        params: dict[str, object] = {"limit": limit}
        if states:
            params["state"] = list(states)
        if kind is not None:
            params["kind"] = kind
        if before is not None:
            params["before"] = before
        data = await self.request("GET", "/admin/jobs", params=params)
        return [JobInfo.from_json(j) for j in data.get("jobs", [])]

    async def job(self, job_id: str) -> JobInfo:
        """One job with its payload and last error (admin only)."""
        data = await self.request("GET", f"/admin/jobs/{quote(job_id, safe='')}")
        return JobInfo.from_json(data["job"])

    async def scim_tokens(self) -> tuple[list[ScimToken], str]:
        """The SCIM provisioning tokens and the SCIM base URL to give the identity
        provider (admin only)."""
        data = await self.request("GET", "/scim/tokens")
        return [ScimToken.from_json(t) for t in data.get("tokens", [])], str(data["base_url"])

    async def issue_scim_token(self, name: str = "SCIM") -> tuple[ScimToken, str]:
        """A new SCIM bearer token (admin only): its record and the token, shown once."""
        data = await self.request("POST", "/scim/tokens", json={"name": name})
        return ScimToken.from_json(data["token"]), str(data["secret"])

    async def revoke_scim_token(self, token_id: str) -> None:
        """Revoke a SCIM token: its next SCIM request answers 401 (admin only)."""
        await self.request("DELETE", f"/scim/tokens/{quote(token_id, safe='')}")

    async def job_stats(self) -> JobStats:
        """The job queues: counts, lag, dead letters, consumers' lag (admin only)."""
        return JobStats.from_json(await self.request("GET", "/admin/jobs/stats"))

    async def retry_job(self, job_id: str) -> JobInfo:
        """Run a dead letter again, attempts from zero (admin only)."""
        data = await self.request("POST", f"/admin/jobs/{quote(job_id, safe='')}/retry")
        return JobInfo.from_json(data["job"])

    async def retry_dead_jobs(self, *, kind: str | None = None) -> int:
        """Run every dead letter (of ``kind``) again; returns how many (admin only)."""
        data = await self.request("POST", "/admin/jobs/retry-dead", json={"kind": kind})
        return int(data["retried"])

    async def purge_jobs(
        self,
        *,
        states: Sequence[str] = ("dead",),
        older_than_seconds: float | None = None,
        kind: str | None = None,
    ) -> int:
        """Delete finished jobs (dead letters by default); returns how many (admin only)."""
        body: dict[str, object] = {"states": list(states)}
        if older_than_seconds is not None:
            body["older_than_seconds"] = older_than_seconds
        if kind is not None:
            body["kind"] = kind
        data = await self.request("POST", "/admin/jobs/purge", json=body)
        return int(data["purged"])

    async def ldap_config(self) -> JSONObject:
        """The LDAP settings in force (admin only), without the bind password (only
        ``bind_password_set``); ``{"enabled": False}`` when LDAP is off."""
        data = await self.request("GET", "/admin/identity/ldap")
        return dict(data["ldap"])

    async def test_ldap(
        self, username: str | None = None, password: str | None = None
    ) -> JSONObject:
        """Check the directory (admin only): ``{"ok", "steps": [{"step", "ok",
        "detail"}]}``; with a username also find that account, with its password sign
        it in."""
        body: dict[str, object] = {}
        if username is not None:
            body["username"] = username
        if password is not None:
            body["password"] = password
        return dict(await self.request("POST", "/admin/identity/ldap/test", json=body))

    async def sync_ldap(self, *, dry_run: bool = True) -> JSONObject:
        """Sync the directory now (admin only; by default a dry run that only says what
        would change): ``{"dry_run", "entries", "counts", "rows", "error"}``."""
        return dict(
            await self.request("POST", "/admin/identity/ldap/sync", json={"dry_run": dry_run})
        )

    async def config(self) -> list[JSONObject]:
        """The LDAP and OpenID Connect settings admins may edit (admin only): each
        ``{"name", "group", "value", "secret", "set", "locked", "default",
        "description"}``; a secret's value is always None (``set`` says whether one is)."""
        data = await self.request("GET", "/admin/config")
        return [dict(row) for row in data["settings"]]

    async def update_config(self, values: dict[str, object]) -> list[JSONObject]:
        """Change settings (admin only; None: back to the default); answers them all
        again. A locked one: an APIError with code ``invalid_operation``; an unknown
        one or a bad value: InvalidRequest (``details["field"]`` names it), nothing
        written."""
        data = await self.request("PATCH", "/admin/config", json={"values": values})
        return [dict(row) for row in data["settings"]]

    async def plugins(self) -> list[PluginInfo]:
        """The server plugins the node loaded, in the order their hooks run (admin only)."""
        data = await self.request("GET", "/admin/plugins")
        return [PluginInfo.from_json(p) for p in data.get("plugins", [])]

    # --- outgoing webhooks ------------------------------------------------------------
    async def create_webhook(
        self, url: str, events: Sequence[str], *, conversation_id: str | None = None
    ) -> tuple[Webhook, str]:
        """Register a webhook: org-wide (admins) or of one conversation (its owner, or
        an admin). Returns it and its signing secret, shown this once."""
        body: dict[str, object] = {"url": url, "events": list(events)}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        data = await self.request("POST", "/webhooks", json=body)
        return Webhook.from_json(data["webhook"]), str(data["webhook"]["secret"])

    async def webhooks(self) -> list[Webhook]:
        """Every webhook (admins) or the caller's own."""
        data = await self.request("GET", "/webhooks")
        return [Webhook.from_json(w) for w in data.get("webhooks", [])]

    async def webhook(self, webhook_id: str) -> Webhook:
        data = await self.request("GET", f"/webhooks/{quote(webhook_id, safe='')}")
        return Webhook.from_json(data["webhook"])

    async def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> Webhook:
        """Change a webhook's URL or event kinds, or turn it off or on again."""
        body: dict[str, object] = {}
        if url is not None:
            body["url"] = url
        if events is not None:
            body["events"] = list(events)
        if enabled is not None:
            body["enabled"] = enabled
        data = await self.request("PATCH", f"/webhooks/{quote(webhook_id, safe='')}", json=body)
        return Webhook.from_json(data["webhook"])

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.request("DELETE", f"/webhooks/{quote(webhook_id, safe='')}")

    async def rotate_webhook_secret(self, webhook_id: str) -> tuple[Webhook, str]:
        """A new signing secret (returned once); the old one stops at once."""
        data = await self.request("POST", f"/webhooks/{quote(webhook_id, safe='')}/secret")
        return Webhook.from_json(data["webhook"]), str(data["webhook"]["secret"])

    async def test_webhook(self, webhook_id: str) -> str:
        """Send a ``ping`` delivery; returns its ``X-Tidings-Delivery`` id."""
        data = await self.request("POST", f"/webhooks/{quote(webhook_id, safe='')}/test")
        return str(data["delivery_id"])

    async def webhook_deliveries(
        self, webhook_id: str, *, before: str | None = None, limit: int | None = None
    ) -> tuple[list[WebhookDelivery], str | None]:
        """A page of the delivery log, newest first, and the ``before`` of the next."""
        data = await self.request(
            "GET",
            f"/webhooks/{quote(webhook_id, safe='')}/deliveries",
            params={"before": before, "limit": limit},
        )
        rows = [WebhookDelivery.from_json(d) for d in data.get("deliveries", [])]
        following = data.get("next")
        return rows, None if following is None else str(following)

    # ------------------------------------------------------------------ integrations

    async def create_incoming_webhook(self, conversation_id: str, name: str) -> IncomingWebhook:
        """A secret URL that posts into the conversation as ``name`` (admins, and the
        conversation's owners). Its ``url`` is shown this once."""
        data = await self.request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/incoming-webhooks",
            json={"name": name},
        )
        return IncomingWebhook.from_json(data["incoming_webhook"])

    async def incoming_webhooks(self, conversation_id: str | None = None) -> list[IncomingWebhook]:
        """One conversation's incoming webhooks, or (admins) every one."""
        path = (
            "/incoming-webhooks"
            if conversation_id is None
            else f"/conversations/{quote(conversation_id, safe='')}/incoming-webhooks"
        )
        data = await self.request("GET", path)
        return [IncomingWebhook.from_json(h) for h in data.get("incoming_webhooks", [])]

    async def update_incoming_webhook(
        self, hook_id: str, *, name: str | None = None, disabled: bool | None = None
    ) -> IncomingWebhook:
        """Rename, disable (its URL answers 404) or enable an incoming webhook."""
        body: dict[str, object] = {}
        if name is not None:
            body["name"] = name
        if disabled is not None:
            body["disabled"] = disabled
        data = await self.request(
            "PATCH", f"/incoming-webhooks/{quote(hook_id, safe='')}", json=body, retry=True
        )
        return IncomingWebhook.from_json(data["incoming_webhook"])

    async def rotate_incoming_webhook(self, hook_id: str) -> IncomingWebhook:
        """A new secret URL (in ``url``, shown once): the old one stops working."""
        data = await self.request("POST", f"/incoming-webhooks/{quote(hook_id, safe='')}/rotate")
        return IncomingWebhook.from_json(data["incoming_webhook"])

    async def delete_incoming_webhook(self, hook_id: str) -> None:
        await self.request("DELETE", f"/incoming-webhooks/{quote(hook_id, safe='')}")

    async def commands(self) -> list[SlashCommand]:
        """The slash commands this account may use (admins: every one)."""
        data = await self.request("GET", "/commands")
        return [SlashCommand.from_json(c) for c in data.get("commands", [])]

    async def create_command(
        self,
        name: str,
        *,
        url: str | None = None,
        bot_id: str | None = None,
        description: str = "",
        usage: str = "",
        display_name: str | None = None,
    ) -> tuple[SlashCommand, str | None]:
        """Register ``/name`` (admins) with an outgoing ``url`` (returns its signing
        secret, once) or a bot (``bot_id``; no secret)."""
        body: dict[str, object] = {"name": name, "description": description, "usage": usage}
        for key, value in (("url", url), ("bot_id", bot_id), ("display_name", display_name)):
            if value is not None:
                body[key] = value
        data = await self.request("POST", "/commands", json=body)
        secret = data.get("secret")
        return SlashCommand.from_json(data["command"]), None if secret is None else str(secret)

    async def update_command(
        self,
        command_id: str,
        *,
        description: str | None = None,
        usage: str | None = None,
        url: str | None = None,
        disabled: bool | None = None,
    ) -> SlashCommand:
        body = {
            k: v
            for k, v in (
                ("description", description),
                ("usage", usage),
                ("url", url),
                ("disabled", disabled),
            )
            if v is not None
        }
        data = await self.request(
            "PATCH", f"/commands/{quote(command_id, safe='')}", json=body, retry=True
        )
        return SlashCommand.from_json(data["command"])

    async def rotate_command_secret(self, command_id: str) -> str:
        """A new signing secret for a URL command (shown once)."""
        data = await self.request("POST", f"/commands/{quote(command_id, safe='')}/secret")
        return str(data["secret"])

    async def delete_command(self, command_id: str) -> None:
        await self.request("DELETE", f"/commands/{quote(command_id, safe='')}")

    async def invoke_command(
        self, conversation_id: str, command: str, text: str = ""
    ) -> Invocation:
        """Run ``/command text`` in a conversation; the reply comes as a message or,
        to this account only, as an :class:`EphemeralMessage` on the event stream."""
        data = await self.request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/commands",
            json={"command": command, "text": text},
        )
        return Invocation.from_json(data["invocation"])

    async def respond_to_command(
        self, response_url: str, text: str, *, in_channel: bool = False
    ) -> None:
        """Answer a slash command through its ``response_url`` (a bot's
        :class:`CommandInvoked`): shown to the caller only, or posted in the
        conversation (``in_channel``). The URL works a few times, until it expires."""
        path = urlsplit(response_url).path
        if not path.startswith(API_PREFIX + "/"):
            raise ValueError("not a response URL of this server")
        body = {"text": text, "response_type": "in_channel" if in_channel else "ephemeral"}
        await self.request("POST", path[len(API_PREFIX) :], json=body, auth=False, retry=False)

    async def departments(self) -> list[Department]:
        """The department tree, flat."""
        data = await self.request("GET", "/departments")
        return [Department.from_json(d) for d in data.get("departments", [])]

    async def create_department(self, name: str, *, parent_id: str | None = None) -> Department:
        """Create a department (admin only)."""
        body: dict[str, object] = {"name": name}
        if parent_id is not None:
            body["parent_id"] = parent_id
        data = await self.request("POST", "/departments", json=body)
        return Department.from_json(data.get("department", data))

    async def add_to_department(self, department_id: str, user_id: str) -> None:
        """Put a user in a department (admin only)."""
        await self.request(
            "PUT", f"/departments/{quote(department_id, safe='')}/members/{quote(user_id, safe='')}"
        )

    async def remove_from_department(self, department_id: str, user_id: str) -> None:
        """Take a user out of a department (admin only)."""
        await self.request(
            "DELETE",
            f"/departments/{quote(department_id, safe='')}/members/{quote(user_id, safe='')}",
        )

    async def rename_department(self, department_id: str, name: str) -> Department:
        """Rename a department (admin only)."""
        data = await self.request(
            "PATCH", f"/departments/{quote(department_id, safe='')}", json={"name": name}
        )
        return Department.from_json(data.get("department", data))

    async def move_department(self, department_id: str, parent_id: str | None) -> Department:
        """Move a department under ``parent_id`` (``None``: the top level; admin only)."""
        data = await self.request(
            "PATCH", f"/departments/{quote(department_id, safe='')}", json={"parent_id": parent_id}
        )
        return Department.from_json(data.get("department", data))

    async def delete_department(self, department_id: str) -> None:
        """Delete an empty department (no members, no sub-departments; admin only)."""
        await self.request("DELETE", f"/departments/{quote(department_id, safe='')}")

    async def department_members(self, department_id: str) -> list[User]:
        """The department's own members (admin only)."""
        data = await self.request("GET", f"/departments/{quote(department_id, safe='')}/members")
        return [User.from_json(u) for u in data.get("users", [])]

    async def usage_stats(self, days: int = 30) -> JSONObject:
        """Admin only: ``{"days": [{"day", "messages", "active_users"}], "storage":
        {"database_bytes", "blob_bytes"}}`` for the last ``days`` UTC days."""
        data: JSONObject = await self.request("GET", "/admin/stats/usage", params={"days": days})
        return data

    # ------------------------------------------------------------------ conversations

    async def archive_conversation(self, conversation_id: str) -> Conversation:
        """Archive a conversation: read-only and hidden from lists (owners and admins)."""
        data = await self.request(
            "PUT", f"/conversations/{quote(conversation_id, safe='')}/archive"
        )
        return Conversation.from_json(data.get("conversation", data))

    async def unarchive_conversation(self, conversation_id: str) -> Conversation:
        """Unarchive a conversation (owners and admins)."""
        data = await self.request(
            "DELETE", f"/conversations/{quote(conversation_id, safe='')}/archive"
        )
        return Conversation.from_json(data.get("conversation", data))

    async def all_conversations(
        self,
        *,
        query: str = "",
        kind: str | None = None,
        archived: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Conversation], int, int | None]:
        """Admin only: every conversation, filtered; (page, total, next offset or None)."""
        params: dict[str, object] = {"query": query, "limit": limit, "offset": offset}
        if kind is not None:
            params["kind"] = kind
        if archived is not None:
            params["archived"] = "true" if archived else "false"
        data = await self.request("GET", "/admin/conversations", params=params)
        found = [Conversation.from_json(c) for c in data.get("conversations", [])]
        return found, int(data.get("total", 0)), data.get("next_offset")

    async def conversation_members(self, conversation_id: str) -> list[Member]:
        """Admin only: any conversation's current members."""
        data = await self.request(
            "GET", f"/admin/conversations/{quote(conversation_id, safe='')}/members"
        )
        return [Member.from_json(m) for m in data.get("members", [])]

    async def create_conversation(
        self,
        kind: str,
        member_ids: Iterable[str] = (),
        *,
        name: str | None = None,
        topic: str | None = None,
        private: bool | None = None,
        announcement: bool | None = None,
        shared_history: bool | None = None,
    ) -> Conversation:
        """Create a ``direct``, ``group`` or ``channel`` conversation.

        A ``direct`` with someone you already have one with returns the existing one.
        ``private`` (channels: invite-only, not in browsing), ``announcement`` (only
        owners and moderators post) and ``shared_history`` (members added later read
        earlier messages): None takes the kind's default.
        """
        body: dict[str, object] = {"kind": kind, "member_ids": list(member_ids)}
        given = {
            "name": name,
            "topic": topic,
            "private": private,
            "announcement": announcement,
            "shared_history": shared_history,
        }
        body.update({k: v for k, v in given.items() if v is not None})
        data = await self.request("POST", "/conversations", json=body, retry=kind == "direct")
        return Conversation.from_json(data.get("conversation", data))

    async def direct(self, user_id: str) -> Conversation:
        """The direct conversation with ``user_id`` (created if needed)."""
        return await self.create_conversation("direct", [user_id])

    async def conversations(self, *, include_archived: bool = False) -> list[Conversation]:
        """The caller's conversations, latest activity first, with unread counts
        (archived ones only with ``include_archived``)."""
        params = {"include_archived": "true"} if include_archived else None
        data = await self.request("GET", "/conversations", params=params)
        return [Conversation.from_json(c) for c in data.get("conversations", [])]

    async def channels(self, query: str | None = None) -> list[Conversation]:
        """Channels the caller may join (``joined`` tells which they are in)."""
        data = await self.request("GET", "/channels", params={"query": query})
        return [Conversation.from_json(c) for c in data.get("conversations", [])]

    async def conversation(self, conversation_id: str) -> Conversation:
        """One conversation with its ``members``."""
        data = await self.request("GET", f"/conversations/{quote(conversation_id, safe='')}")
        return Conversation.from_json(data.get("conversation", data))

    async def update_conversation(
        self,
        conversation_id: str,
        *,
        name: str | None = None,
        topic: str | None = None,
        private: bool | None = None,
        announcement: bool | None = None,
        shared_history: bool | None = None,
    ) -> Conversation:
        """Rename a conversation or change its topic (owners, moderators, admins), or
        its settings ``private`` (channels), ``announcement``, ``shared_history``
        (owners, admins). None leaves a field as it is."""
        given = {
            "name": name,
            "topic": topic,
            "private": private,
            "announcement": announcement,
            "shared_history": shared_history,
        }
        body = {k: v for k, v in given.items() if v is not None}
        data = await self.request(
            "PATCH", f"/conversations/{quote(conversation_id, safe='')}", json=body, retry=True
        )
        return Conversation.from_json(data.get("conversation", data))

    async def add_members(self, conversation_id: str, user_ids: Iterable[str]) -> Conversation:
        """Add people (adding yourself to a channel is joining it)."""
        data = await self.request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/members",
            json={"user_ids": list(user_ids)},
            retry=True,  # adding someone twice changes nothing
        )
        return Conversation.from_json(data.get("conversation", data))

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        """Remove someone (removing yourself is leaving)."""
        await self.request(
            "DELETE",
            f"/conversations/{quote(conversation_id, safe='')}/members/{quote(user_id, safe='')}",
        )

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> Member:
        """Give a member the role ``owner``, ``moderator`` or ``member`` (owners and
        admins; the last owner stays one until another is named)."""
        cid, uid = quote(conversation_id, safe=""), quote(user_id, safe="")
        data = await self.request(
            "PUT",
            f"/conversations/{cid}/members/{uid}/role",
            json={"role": role},
            retry=True,  # giving the same role again changes nothing
        )
        return Member.from_json(data.get("member", data))

    async def join(self, conversation_id: str) -> Conversation:
        """Join a channel."""
        me = self.user or await self.me()
        return await self.add_members(conversation_id, [me.id])

    async def leave(self, conversation_id: str) -> None:
        """Leave a conversation."""
        me = self.user or await self.me()
        await self.remove_member(conversation_id, me.id)

    # ------------------------------------------------------------------ messages

    async def send(
        self,
        conversation_id: str,
        body: str,
        *,
        reply_to_seq: int | None = None,
        client_msg_id: str | None = None,
        attachments: Sequence[str | File] = (),
        thread_root_seq: int | None = None,
        also_to_conversation: bool = False,
    ) -> Message:
        """Send a message and return it as stored, with its ``seq``.

        The ``client_msg_id`` is made here (a UUID4) unless given; every retry after
        a dropped connection or a 5xx reuses it, so the server stores the message
        once however often the request had to be repeated. ``attachments``: files
        this account uploaded (:meth:`upload`), by id or as returned.
        ``thread_root_seq``: a reply in the thread of that root (``also_to_conversation``:
        shown in the main timeline too); ``reply_to_seq`` is a quote-reply instead.
        """
        payload: dict[str, object] = {
            "client_msg_id": client_msg_id or str(uuid.uuid4()),
            "body": body,
        }
        if reply_to_seq is not None:
            payload["reply_to_seq"] = reply_to_seq
        if thread_root_seq is not None:
            payload["thread_root_seq"] = thread_root_seq
        if also_to_conversation:
            payload["also_to_conversation"] = True
        if attachments:
            payload["attachments"] = [a.id if isinstance(a, File) else a for a in attachments]
        data = await self.request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/messages",
            json=payload,
            retry=True,
        )
        return Message.from_json(data.get("message", data))

    # ------------------------------------------------------------------ files

    async def upload(
        self,
        source: UploadSource,
        *,
        name: str | None = None,
        content_type: str | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> File:
        """Upload a file and return it (``POST /files``), streamed: a path is read in
        chunks, an async iterator of bytes is sent as it yields, and no more than one
        chunk is held. ``progress`` is called with the bytes sent so far after each
        chunk. Not retried (the stream is consumed); errors as :meth:`request`
        (``TooLarge`` over max_upload_bytes or the quota, ``UnsupportedMediaType``
        for a blocked type)."""
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            name = name or path.name
            chunks: AsyncIterable[bytes] = _file_chunks(path)
        elif isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            chunks = _one_chunk(data)
        else:
            chunks = source
        boundary = uuid.uuid4().hex
        filename = (name or "file").replace("\\", "_").replace('"', "_").replace("\r", "")
        filename = filename.replace("\n", "")
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        async def body() -> AsyncIterator[bytes]:
            yield head
            sent = 0
            async for chunk in chunks:
                if chunk:
                    yield bytes(chunk)
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent)
            yield tail

        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            response = await self._http.post(
                API_PREFIX + "/files", content=body(), headers=headers, timeout=None
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"POST /files: {exc!r}") from exc
        data = _answer(response)
        return File.from_json(data["file"])

    async def file(self, file_id: str) -> File:
        """A file's metadata (the uploader, or a member of a conversation where it is
        attached; others get NotFound)."""
        data = await self.request("GET", f"/files/{quote(file_id, safe='')}/meta")
        return File.from_json(data["file"])

    async def download(
        self,
        file_id: str,
        dest: str | os.PathLike[str],
        *,
        progress: Callable[[int], object] | None = None,
    ) -> Path:
        """Write the file's bytes to ``dest`` as they stream in (a temporary file
        beside it, renamed when complete: an interrupted download leaves no partial
        file under ``dest``). Returns ``dest``."""
        target = Path(dest)
        partial = target.with_name(target.name + ".part")
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        path = f"{API_PREFIX}/files/{quote(file_id, safe='')}"
        try:
            async with self._http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _answer(response)
                handle = await asyncio.to_thread(partial.open, "wb")
                try:
                    received = 0
                    async for chunk in response.aiter_bytes():
                        await asyncio.to_thread(handle.write, chunk)
                        received += len(chunk)
                        if progress is not None:
                            progress(received)
                finally:
                    await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, partial, target)
        except httpx.TransportError as exc:
            await asyncio.to_thread(_unlink, partial)
            raise ConnectionFailed(f"GET /files/{file_id}: {exc!r}") from exc
        except BaseException:
            await asyncio.to_thread(_unlink, partial)
            raise
        return target

    async def file_link(self, file_id: str, variant: str = "original") -> FileLink:
        """A signed URL that reads the file (``variant``: original, thumbnail, preview)
        without a token until it expires; absolute: this client's server URL + path."""
        data = await self.request(
            "POST", f"/files/{quote(file_id, safe='')}/link", json={"variant": variant}
        )
        expires = parse_time(data["expires_at"])
        return FileLink(url=self.url + str(data["url"]), expires_at=expires)

    async def reply(self, message: Message, body: str) -> Message:
        """Answer ``message`` with a quote-reply (``reply_to_seq`` = its seq): a new
        message in the same conversation that points at it (not a thread)."""
        return await self.send(message.conversation_id, body, reply_to_seq=message.seq)

    async def reply_in_thread(
        self, message: Message, body: str, *, also_to_conversation: bool = False
    ) -> Message:
        """Answer ``message`` in its thread (``thread_root_seq``): in the thread of
        ``message``, or of its root when it is a thread reply itself."""
        root = message.thread_root_seq or message.seq
        return await self.send(
            message.conversation_id,
            body,
            thread_root_seq=root,
            also_to_conversation=also_to_conversation,
        )

    async def threads(
        self, conversation_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> ThreadPage:
        """One page of the conversation's threads, newest activity first; pass the
        page's ``next_cursor`` as ``cursor`` for the next one."""
        data = await self.request(
            "GET",
            f"/conversations/{quote(conversation_id, safe='')}/threads",
            params={"cursor": cursor, "limit": limit},
        )
        return ThreadPage(
            threads=tuple(Thread.from_json(t) for t in data.get("threads", [])),
            next_cursor=data.get("next_cursor"),
        )

    async def thread(self, conversation_id: str, root_seq: int) -> Thread:
        """One root's thread: its summary and your state."""
        data = await self.request(
            "GET", f"/conversations/{quote(conversation_id, safe='')}/threads/{root_seq}"
        )
        return Thread.from_json(data.get("thread", data))

    async def thread_replies(
        self,
        conversation_id: str,
        root_seq: int,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """One page of a thread's replies, ascending by ``seq``."""
        return await self.history(
            conversation_id,
            before_seq=before_seq,
            after_seq=after_seq,
            limit=limit,
            thread_root_seq=root_seq,
        )

    async def follow_thread(self, conversation_id: str, root_seq: int) -> ThreadState:
        """Follow a thread (its replies count as your unread)."""
        return await self._thread_state("PUT", conversation_id, root_seq, "follow")

    async def unfollow_thread(self, conversation_id: str, root_seq: int) -> ThreadState:
        """Stop following a thread."""
        return await self._thread_state("DELETE", conversation_id, root_seq, "follow")

    async def read_thread(self, conversation_id: str, root_seq: int, seq: int) -> ThreadState:
        """Move your read position in a thread forward to the reply ``seq``."""
        return await self._thread_state("POST", conversation_id, root_seq, "read", {"seq": seq})

    async def _thread_state(
        self,
        method: str,
        conversation_id: str,
        root_seq: int,
        what: str,
        body: JSONObject | None = None,
    ) -> ThreadState:
        data = await self.request(
            method,
            f"/conversations/{quote(conversation_id, safe='')}/threads/{root_seq}/{what}",
            json=body,
            retry=True,  # each sets a state (or moves forward only): repeating is harmless
        )
        return ThreadState.from_json(data.get("thread", data))

    async def history(
        self,
        conversation_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
        thread_root_seq: int | None = None,
    ) -> HistoryPage:
        """One page of messages, ascending by ``seq`` (thread replies included: each has
        ``thread_root_seq``); with ``thread_root_seq``, one thread's replies only."""
        data = await self.request(
            "GET",
            f"/conversations/{quote(conversation_id, safe='')}/messages",
            params={
                "before_seq": before_seq,
                "after_seq": after_seq,
                "limit": limit,
                "thread_root_seq": thread_root_seq,
            },
        )
        return HistoryPage(
            messages=tuple(Message.from_json(m) for m in data.get("messages", [])),
            has_more=bool(data.get("has_more", False)),
        )

    async def iter_history(
        self, conversation_id: str, *, after_seq: int = 0, page_size: int = 200
    ) -> AsyncIterator[Message]:
        """Every message after ``after_seq``, oldest first, fetched page by page."""
        cursor = after_seq
        while True:
            page = await self.history(conversation_id, after_seq=cursor, limit=page_size)
            for message in page.messages:
                yield message
            if not page.messages or not page.has_more:
                return
            cursor = page.messages[-1].seq

    async def search(
        self,
        q: str,
        *,
        conversation_id: str | None = None,
        order: str = "newest",
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchPage:
        """One page of the messages you may see that match ``q`` (``GET /search``).

        ``q`` takes words, ``"exact phrases"`` and filters (``from:alice``,
        ``in:#general``, ``before:2026-12-01``, ``after:…``, ``has:file``,
        ``has:link``, ``is:thread``, ``mentions:me``); ``conversation_id`` limits the
        search to one conversation; ``order`` is ``newest`` (default) or
        ``relevance``; pass the page's ``next_cursor`` as ``cursor`` for the next page.
        A malformed query or cursor raises :class:`InvalidRequest` (``details["field"]``
        says which: ``q`` or ``cursor``); a conversation you may not read,
        :class:`NotFound`.
        """
        data = await self.request(
            "GET",
            "/search",
            params={
                "q": q,
                "conversation_id": conversation_id,
                "order": order,
                "limit": limit,
                "cursor": cursor,
            },
        )
        return SearchPage.from_json(data or {})

    async def iter_search(
        self,
        q: str,
        *,
        conversation_id: str | None = None,
        order: str = "newest",
        limit: int | None = None,
    ) -> AsyncIterator[SearchResult]:
        """Every result of ``q`` (as :meth:`search`), page by page (``limit`` per page)."""
        cursor: str | None = None
        while True:
            page = await self.search(
                q, conversation_id=conversation_id, order=order, limit=limit, cursor=cursor
            )
            for result in page.results:
                yield result
            # The cursor is followed even past an empty page; the same cursor twice
            # would never end, so iteration stops there.
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def edit(self, conversation_id: str, seq: int, body: str) -> Message:
        """Replace the body of your own message."""
        data = await self.request(
            "PATCH",
            f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}",
            json={"body": body},
            retry=True,
        )
        return Message.from_json(data.get("message", data))

    async def recall(self, conversation_id: str, seq: int) -> Message:
        """Recall (delete) a message; it stays in history with ``deleted=True``."""
        data = await self.request(
            "DELETE", f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}"
        )
        return Message.from_json(data.get("message", data))

    async def pins(self, conversation_id: str) -> list[Pin]:
        """The conversation's pinned messages, the newest pin first."""
        data = await self.request("GET", f"/conversations/{quote(conversation_id, safe='')}/pins")
        return [Pin.from_json(p) for p in data.get("pins", [])]

    async def pin(self, conversation_id: str, seq: int) -> Pin:
        """Pin a message (owners, moderators, admins); pinning it again changes nothing."""
        data = await self.request(
            "PUT", f"/conversations/{quote(conversation_id, safe='')}/pins/{seq}", retry=True
        )
        return Pin.from_json(data.get("pin", data))

    async def unpin(self, conversation_id: str, seq: int) -> None:
        """Unpin a message (owners, moderators, admins)."""
        await self.request(
            "DELETE", f"/conversations/{quote(conversation_id, safe='')}/pins/{seq}", retry=True
        )

    # --- notification settings (docs/protocol.md, "Notifications") ------------------
    async def conversation_notifications(self, conversation_id: str) -> ConversationNotifications:
        """Your level and mute in a conversation you are a member of."""
        data = await self.request(
            "GET", f"/conversations/{quote(conversation_id, safe='')}/notifications"
        )
        return ConversationNotifications.from_json(data.get("notifications") or {})

    async def set_conversation_notifications(
        self,
        conversation_id: str,
        *,
        level: str | _Unset | None = _UNSET,
        muted: bool | None = None,
        muted_until: datetime | _Unset | None = _UNSET,
    ) -> ConversationNotifications:
        """Change your settings in a conversation; arguments left out stay. ``level``:
        ``all``, ``mentions``, ``none`` (None: the kind's default); ``muted_until`` (an
        aware time in the future) mutes until then; ``muted=False`` unmutes. Your
        other connections get :class:`NotificationsUpdated`."""
        body: dict[str, object] = {}
        if not isinstance(level, _Unset):
            body["level"] = level
        if muted is not None:
            body["muted"] = muted
        if not isinstance(muted_until, _Unset):
            body["muted_until"] = None if muted_until is None else muted_until.isoformat()
        data = await self.request(
            "PUT",
            f"/conversations/{quote(conversation_id, safe='')}/notifications",
            json=body,
            retry=True,
        )
        return ConversationNotifications.from_json(data.get("notifications") or {})

    async def do_not_disturb(self) -> DoNotDisturb:
        """Your do not disturb, and whether it is on now (``active``)."""
        data = await self.request("GET", "/users/me/notifications")
        return DoNotDisturb.from_json(data.get("dnd") or {}, data.get("dnd_active"))

    async def set_do_not_disturb(
        self,
        *,
        until: datetime | _Unset | None = _UNSET,
        schedule: tuple[str, str] | _Unset | None = _UNSET,
    ) -> DoNotDisturb:
        """Change your do not disturb; arguments left out stay, None turns that part
        off. ``until``: an aware time in the future; ``schedule``: ``(start, end)`` as
        local ``"HH:MM"`` in your profile's time zone (``("22:00", "07:00")`` crosses
        midnight). Your connections get :class:`DndUpdated`."""
        body: dict[str, object] = {}
        if not isinstance(until, _Unset):
            body["dnd_until"] = None if until is None else until.isoformat()
        if not isinstance(schedule, _Unset):
            body["dnd_schedule"] = (
                None if schedule is None else {"start": schedule[0], "end": schedule[1]}
            )
        data = await self.request("PUT", "/users/me/notifications", json=body, retry=True)
        return DoNotDisturb.from_json(data.get("dnd") or {}, data.get("dnd_active"))
    async def forward(
        self,
        conversation_id: str,
        seq: int,
        to: str,
        *,
        client_msg_id: str | None = None,
    ) -> Message:
        """Forward message ``seq`` of ``conversation_id`` into conversation ``to``: a
        copy there (body and files) with ``forwarded_from``. Retried with the same
        ``client_msg_id`` (made here unless given): never forwarded twice."""
        data = await self.request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}/forward",
            json={"conversation_id": to, "client_msg_id": client_msg_id or str(uuid.uuid4())},
            retry=True,
        )
        return Message.from_json(data.get("message", data))

    async def forwarded_from(self, conversation_id: str, seq: int) -> ForwardOrigin:
        """Where forwarded message ``seq`` comes from (``NotFound`` if you may not read
        the original)."""
        data = await self.request(
            "GET",
            f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}/forwarded-from",
        )
        return ForwardOrigin.from_json(data.get("origin", data))

    async def saved(self, *, cursor: str | None = None, limit: int | None = None) -> SavedPage:
        """One page of your saved messages (those you may still read), the newest save
        first; pass the page's ``next_cursor`` as ``cursor`` for the next one."""
        data = await self.request("GET", "/saved", params={"cursor": cursor, "limit": limit})
        return SavedPage(
            saved=tuple(SavedMessage.from_json(x) for x in data.get("saved", [])),
            next_cursor=data.get("next_cursor"),
        )

    async def save(self, conversation_id: str, seq: int) -> SavedMessage:
        """Save a message you may read (private to you); saving it again changes nothing."""
        data = await self.request(
            "PUT",
            f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}/saved",
            retry=True,
        )
        return SavedMessage.from_json(data.get("saved", data))

    async def unsave(self, conversation_id: str, seq: int) -> None:
        """Take a message out of your saved list."""
        await self.request(
            "DELETE",
            f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}/saved",
            retry=True,
        )

    # --- scheduled messages --------------------------------------------------------
    async def schedule(
        self,
        conversation_id: str,
        body: str,
        send_at: datetime,
        *,
        reply_to_seq: int | None = None,
        thread_root_seq: int | None = None,
        also_to_conversation: bool = False,
        attachments: Sequence[str] = (),
    ) -> ScheduledMessage:
        """Schedule ``body`` (with ``attachments``: ids of your uploads) to be sent to a
        conversation you may post in at ``send_at`` (an aware datetime in the future,
        within the server's horizon). The server sends it then, as you; your
        connections get the ``ScheduledMessage*`` events."""
        payload: dict[str, Any] = {"body": body, "send_at": _aware_time(send_at)}
        if reply_to_seq is not None:
            payload["reply_to_seq"] = reply_to_seq
        if thread_root_seq is not None:
            payload["thread_root_seq"] = thread_root_seq
        if also_to_conversation:
            payload["also_to_conversation"] = True
        if attachments:
            payload["attachments"] = list(attachments)
        data = await self.request(
            "POST", f"/conversations/{quote(conversation_id, safe='')}/scheduled", json=payload
        )
        return ScheduledMessage.from_json(data.get("scheduled", data))

    async def scheduled(self, conversation_id: str | None = None) -> list[ScheduledMessage]:
        """Your scheduled messages not sent yet (and the failed ones), the soonest first;
        of one conversation with ``conversation_id``."""
        data = await self.request(
            "GET", "/scheduled", params={"conversation_id": conversation_id}
        )
        return [ScheduledMessage.from_json(x) for x in data.get("scheduled", [])]

    async def scheduled_message(self, scheduled_id: str) -> ScheduledMessage:
        """One of your scheduled messages (``NotFound`` once sent or cancelled)."""
        data = await self.request("GET", f"/scheduled/{quote(scheduled_id, safe='')}")
        return ScheduledMessage.from_json(data.get("scheduled", data))

    async def edit_scheduled(
        self,
        scheduled_id: str,
        *,
        body: str | None = None,
        send_at: datetime | None = None,
    ) -> ScheduledMessage:
        """Change a pending scheduled message's body and/or time."""
        payload: dict[str, Any] = {}
        if body is not None:
            payload["body"] = body
        if send_at is not None:
            payload["send_at"] = _aware_time(send_at)
        data = await self.request(
            "PATCH", f"/scheduled/{quote(scheduled_id, safe='')}", json=payload
        )
        return ScheduledMessage.from_json(data.get("scheduled", data))

    async def cancel_scheduled(self, scheduled_id: str) -> None:
        """Cancel a pending scheduled message (or dismiss a failed one)."""
        await self.request("DELETE", f"/scheduled/{quote(scheduled_id, safe='')}")

    async def react(self, conversation_id: str, seq: int, emoji: str) -> Message:
        """Add your ``emoji`` reaction to a message."""
        data = await self.request(
            "PUT",
            f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}"
            f"/reactions/{quote(emoji, safe='')}",
        )
        return Message.from_json(data.get("message", data))

    async def unreact(self, conversation_id: str, seq: int, emoji: str) -> Message:
        """Remove your ``emoji`` reaction from a message."""
        data = await self.request(
            "DELETE",
            f"/conversations/{quote(conversation_id, safe='')}/messages/{seq}"
            f"/reactions/{quote(emoji, safe='')}",
        )
        return Message.from_json(data.get("message", data))

    async def read(self, conversation_id: str, seq: int) -> ReadState:
        """Move your read position forward to ``seq``."""
        data = await self.request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/read",
            json={"seq": seq},
            retry=True,  # positions only move forward: repeating is harmless
        )
        return ReadState(read_seq=int(data.get("read_seq", seq)), unread=int(data.get("unread", 0)))

    async def mark_unread(self, conversation_id: str, from_seq: int | None = None) -> ReadState:
        """Mark the conversation unread from message ``from_seq`` on (None: its last
        message): your read position moves back to ``from_seq - 1``, never forward."""
        data = await self.request(
            "POST",
            f"/conversations/{quote(conversation_id, safe='')}/unread",
            json={"from_seq": from_seq},
            retry=True,  # positions only move back here: repeating is harmless
        )
        return ReadState(read_seq=int(data.get("read_seq", 0)), unread=int(data.get("unread", 0)))

    async def typing(self, conversation_id: str) -> None:
        """Tell the other members you are typing (ephemeral, best effort)."""
        await self.request("POST", f"/conversations/{quote(conversation_id, safe='')}/typing")

    async def presence(self, user_ids: Sequence[str]) -> dict[str, str]:
        """``online``, ``away`` or ``offline`` for each of ``user_ids``."""
        data = await self.request("GET", "/presence", params={"user_ids": ",".join(user_ids)})
        presence = data.get("presence", {})
        return {str(k): str(v) for k, v in presence.items()}

    # ------------------------------------------------------------------ sync and live

    async def sync(self, since: str | None = None, *, limit: int | None = None) -> SyncPage:
        """Events after ``since`` (one page); go on from ``next`` while ``more``."""
        data = await self.request("GET", "/sync", params={"since": since, "limit": limit})
        events = tuple(
            parse_event(str(item.get("position")), item.get("event") or {})
            for item in data.get("events", [])
        )
        nxt = data.get("next")
        return SyncPage(
            events=events,
            next=str(nxt) if nxt is not None else (since or ""),
            more=bool(data.get("more", False)),
        )

    async def sync_all(self, since: str | None = None, *, limit: int | None = None) -> SyncPage:
        """Every event after ``since``, following ``more`` to the end, as one page."""
        events: list[Event] = []
        page = await self.sync(since, limit=limit)
        events.extend(page.events)
        while page.more:
            page = await self.sync(page.next, limit=limit)
            events.extend(page.events)
        return SyncPage(events=tuple(events), next=page.next, more=False)

    def events(self, since: str | None = None, *, ephemeral: bool = True) -> EventStream:
        """Live events as an async iterator (see :class:`EventStream`).

        With ``since`` (a position you processed) the stream first replays every
        event after it. Without it, only events after the connection is ready come:
        ``await stream.wait_ready()`` (or use :meth:`subscribe`) before acting.
        ``ephemeral=False`` leaves out typing and presence signals.
        Must be called with an event loop running; the stream connects at once.
        """
        stream = EventStream(self, since=since, ephemeral=ephemeral)
        self._streams.add(stream)
        stream.start()
        return stream

    async def subscribe(
        self,
        since: str | None = None,
        *,
        ephemeral: bool = True,
        timeout: float = 30.0,  # a deadline for the first ready
    ) -> EventStream:
        """:meth:`events`, then wait until the first connection is ready."""
        stream = self.events(since, ephemeral=ephemeral)
        try:
            await stream.wait_ready(timeout)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    def _forget(self, stream: EventStream) -> None:
        self._streams.discard(stream)


class _End:
    """Sentinel put in the queue when the stream ends."""

    __slots__ = ("error",)

    def __init__(self, error: TidingsError | None) -> None:
        self.error = error


class EventStream:
    """Live events of one account, resumed across reconnects.

    Iterate with ``async for``. Each stored event is yielded exactly once, in
    position order, even when the connection drops or the server restarts: the
    stream reconnects with jittered exponential backoff, sends ``since`` = the last
    position it received, and drops anything at or before it. Ephemeral typing and
    presence signals are yielded as they come (never replayed).

    :attr:`position` is the position of the last event yielded: store it to resume
    after your process restarts (``client.events(since=position)``).
    The stream ends (``StopAsyncIteration``) after :meth:`aclose`, or raises
    :class:`StreamClosed` if the server refuses the token (close 4001/4003) or the
    ``since`` position (close 4009, ``code`` tells which): resynchronise over REST
    (:meth:`Client.sync` or fresh fetches) and open a new stream.
    """

    def __init__(
        self,
        client: Client,
        *,
        since: str | None = None,
        ephemeral: bool = True,
        ready_timeout: float = 10.0,
        max_size: int = 4 * 1024 * 1024,
    ) -> None:
        self._client = client
        self._ephemeral = ephemeral
        self._ready_timeout = ready_timeout
        self._max_size = max_size
        self._queue: asyncio.Queue[Event | _End] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self._ended = False
        self._end_queued = False
        self._got_ready = False
        self.session = ClientSession(since)
        """The protocol state (protocol/session.py): resume position, dedupe, refs."""
        self._pending: dict[str, asyncio.Future[JSONObject]] = {}
        self.position: str | None = since
        """Position of the last stored event yielded (or ``since``/the first ``ready``)."""
        self.close_code: int | None = None
        """Close code of the last connection, if the server closed it."""

    @property
    def connections(self) -> int:
        """How many times a connection became ready (1 + the number of reconnects)."""
        return self.session.connections

    @property
    def duplicates_dropped(self) -> int:
        """Replayed events dropped because they were already received."""
        return self.session.duplicates

    @property
    def out_of_order(self) -> int:
        """Events that arrived below the last position (a server fault); yielded anyway."""
        return self.session.out_of_order

    @property
    def ready_position(self) -> str | None:
        """``position`` of the latest ``ready`` frame."""
        return self.session.ready_position

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Start connecting (done by :meth:`Client.events`)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tidings-events")

    @property
    def connected(self) -> bool:
        """True while a connection is authenticated and ready."""
        return self._ready.is_set()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until a connection is ready (replay, if any, follows right after)."""
        self.start()
        waiter = asyncio.ensure_future(self._ready.wait())
        task = self._task
        waits: set[asyncio.Future[Any]] = {waiter}
        if task is not None:
            waits.add(task)
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if self._ready.is_set():
            return
        if task is not None and task in done:
            item = self._peek_end()
            raise item or StreamClosed("event stream ended before it was ready")
        raise TimeoutError("event stream not ready in time")

    def _peek_end(self) -> TidingsError | None:
        for item in list(self._queue._queue):  # type: ignore[attr-defined]  # read-only peek
            if isinstance(item, _End):
                return item.error
        return None

    async def request(self, frame: Mapping[str, object], timeout: float = 10.0) -> JSONObject:
        """Send a client frame on the live connection and wait for its ``ack``.

        Raises :class:`APIError` for an ``error`` frame, :class:`ConnectionFailed` if
        the connection is not ready or drops before the answer.
        """
        ws = self._ws
        ref = self.session.request(frame) if ws is not None and self._ready.is_set() else None
        if ws is None or ref is None:
            raise ConnectionFailed("event stream is not connected")
        future: asyncio.Future[JSONObject] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            for text in self.session.frames_to_send():
                await ws.send(text)
            return await asyncio.wait_for(future, timeout)
        except ConnectionClosed as exc:
            raise ConnectionFailed("connection closed before the answer") from exc
        finally:
            self._pending.pop(ref, None)
            self.session.give_up(ref)

    def drop_connection(self) -> None:
        """Cut the live connection as a network failure would (for tests and tools).

        The stream notices, reconnects with backoff and resumes from its position.
        """
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    async def ping(self) -> None:
        """Round-trip a ``ping`` frame."""
        await self.request({"type": "ping"})

    async def set_presence(self, state: str) -> None:
        """Say you are ``online`` or ``away`` (on this connection)."""
        await self.request({"type": "presence", "state": state})

    async def aclose(self) -> None:
        """Close the connection and end the iteration."""
        if self._closed:
            return
        self._closed = True
        self._client._forget(self)
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._finish(None)

    def __aiter__(self) -> EventStream:
        self.start()
        return self

    async def __anext__(self) -> Event:
        if self._ended and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, _End):
            self._ended = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        if item.position is not None:
            self.position = item.position
        return item

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def next(self, timeout: float | None = None) -> Event:
        """The next event, waiting at most ``timeout`` seconds (``asyncio.TimeoutError``)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    # ------------------------------------------------------------------ internals

    def _finish(self, error: TidingsError | None) -> None:
        if not self._end_queued:
            self._end_queued = True
            self._queue.put_nowait(_End(error))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionFailed("event stream closed"))

    async def _run(self) -> None:
        attempt = 0
        error: TidingsError | None = None
        try:
            while not self._closed:
                quick = False
                self._got_ready = False
                try:
                    quick = await self._connect_once()
                except _Fatal as exc:
                    error = exc.error
                    return
                except (TimeoutError, OSError, InvalidHandshake, ConnectionClosed) as exc:
                    log.debug("tidings events: connection failed: %r", exc)
                except TidingsError as exc:
                    log.debug("tidings events: %r", exc)
                except Exception:  # loop boundary: log, reconnect, resume
                    log.exception("tidings events: unexpected error; reconnecting")
                finally:
                    self._ws = None
                    self._ready.clear()
                    for future in self._pending.values():
                        if not future.done():
                            future.set_exception(ConnectionFailed("connection lost"))
                if self._closed:
                    return
                if self._got_ready:
                    attempt = 0
                if quick:
                    delay = random.uniform(0.05, 0.5)
                else:
                    delay = backoff_delay(
                        attempt, base=self._client.backoff_base, cap=self._client.backoff_cap
                    )
                    attempt += 1
                await asyncio.sleep(delay)
        finally:
            if not self._closed:
                self._finish(error)

    async def _connect_once(self) -> bool:
        """Run one connection to its end. True if the server asked for a reconnect."""
        token = self._client.token
        if not token:
            raise _Fatal(StreamClosed("no token: log in first"))
        try:
            ws = await connect(
                _ws_url(self._client.url),
                proxy=None,
                compression=None,
                max_size=self._max_size,
                open_timeout=self._client.timeout,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise _Fatal(StreamClosed(f"handshake refused: HTTP {status}")) from exc
            raise
        self._ws = ws
        session = self.session
        lost = False
        try:
            session.connect(token)
            for text in session.frames_to_send():
                await ws.send(text)
            while True:
                timeout = None if session.ready else self._ready_timeout
                raw = await asyncio.wait_for(ws.recv(), timeout)
                try:
                    frame = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    log.warning("tidings events: undecodable frame dropped")
                    continue
                outcome = session.receive(frame)
                match outcome:
                    case Delivered():
                        if outcome.out_of_order:
                            log.warning(
                                "tidings events: position %s arrived after %s",
                                outcome.position,
                                session.since,
                            )
                        self._queue.put_nowait(parse_event(outcome.position, outcome.event))
                    case Dropped():
                        pass
                    case Ready():
                        self._got_ready = True
                        if self.position is None:
                            self.position = session.since
                        self._ready.set()
                    case Answered():
                        future = self._pending.get(outcome.ref)
                        if future is not None and not future.done():
                            if outcome.ok:
                                future.set_result(dict(outcome.frame))
                            else:
                                future.set_exception(error_for(0, outcome.frame))
                    case Refused(next=Next.AUTH_FAILED):
                        raise _Fatal(StreamClosed(f"auth refused: {outcome.code}"))
                    case ReconnectSoon():
                        return True
                    case Signal():
                        ephemeral = parse_ephemeral(outcome.frame)
                        # ephemeral=False leaves out typing and presence only: what is
                        # addressed to this account (replies, commands) always comes
                        addressed = isinstance(ephemeral, EphemeralMessage | CommandInvoked)
                        if ephemeral is not None and (self._ephemeral or addressed):
                            self._queue.put_nowait(ephemeral)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            self.close_code = code
            lost = True
            ended = session.connection_lost(code)
            if ended.next in FATAL:
                raise _Fatal(
                    StreamClosed(f"server closed the connection ({code})", code=code)
                ) from exc
            return ended.next is Next.RECONNECT_SOON
        finally:
            if not lost:  # ended another way (a timeout, a reconnect frame, cancelled)
                session.connection_lost(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)


class _Fatal(Exception):
    def __init__(self, error: TidingsError) -> None:
        super().__init__(str(error))
        self.error = error
