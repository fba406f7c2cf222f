"""Web Push (RFC 8030) for closed tabs: the server's VAPID key (RFC 8292), each device's
subscription, and the jobs that encrypt (RFC 8291, aes128gcm) and send a notification.

Libraries: `http_ece` does the RFC 8188/8291 encryption and `py_vapid` the VAPID key and
ES256 token, both from the web-push-libs project that pywebpush itself is built on.
pywebpush is not used: it is those two plus a `requests`/aiohttp sender, and every push
must go out through our Outbound client instead (outbound/http.py: the endpoint is a URL
a browser handed us, so the SSRF guard applies: private and loopback addresses are
refused unless webhook_allowed_networks opens them).

The VAPID key pair is made at first need (the first start that wants it), sealed under
the server key (services/keyring.py, like integration secrets) in the `meta` table; its
public half is what browsers subscribe with (GET /push/vapid-key).

Subscriptions belong to a user and the session they were made in: signing that session
out deletes them (store/sql/security.py), and only live sessions' subscriptions are sent
to, and not those restricted to enrolling a second factor the organization requires
(they may read no message until they do). A push service's 404 or 410 deletes the
subscription; 408, 429 and 5xx are retried like webhooks (the job's backoff); another
4xx is a dead letter.
"""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import http_ece
import orjson
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from tidings.core.errors import CapReached, InvalidRequest
from tidings.core.jobs import Job, JobPolicy, Permanent
from tidings.core.models import Session
from tidings.core.notifications import (
    PushSubscription,
    SubscriptionId,
    check_subscription,
    origin_of,
    push_payload,
)
from tidings.core.webhooks import check_url
from tidings.outbound.ports import Outbound, Refused, Unreachable
from tidings.services.context import Deps
from tidings.services.jobs import JobService
from tidings.services.notify_jobs import PUSH_NOTIFY, NotifyJobService
from tidings.services.ratelimit import Action, RateLimiter

log = structlog.get_logger(__name__)

PUSH_SEND = "push.send"
VAPID_META = "vapid_key"  # "<key id>:<sealed PEM>"
VAPID_OWNER = "vapid"
TOKEN_HOURS = 12  # a VAPID token's lifetime (RFC 8292: at most 24 hours)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService:
    def __init__(
        self, deps: Deps, jobs: JobService, outbound: Outbound, notify: NotifyJobService
    ) -> None:
        self.d = deps
        self.jobs = jobs
        self.outbound = outbound
        self.notify = notify
        self.limits = deps.notify
        self.limiter = RateLimiter(deps)
        self._vapid: Vapid02 | None = None
        jobs.register(PUSH_NOTIFY, self._notify, JobPolicy(max_attempts=5, queue="push"))
        jobs.register(
            PUSH_SEND,
            self._send,
            JobPolicy(
                max_attempts=self.limits.push_max_attempts,
                timeout_seconds=self.limits.push_timeout_seconds + 30.0,
                queue="push",
            ),
        )

    # --- the VAPID key -----------------------------------------------------------------
    async def vapid(self) -> Vapid02:
        """The server's VAPID key: read, or made and stored the first time (a node that
        loses the race to store it reads the winner's)."""
        if self._vapid is not None:
            return self._vapid
        async with self.d.store.read() as tx:
            stored = await tx.get_meta(VAPID_META)
        if stored is None:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            key_id, sealed = self.d.keyring.seal_secret(VAPID_OWNER, pem)
            async with self.d.store.write() as tx:
                stored = await tx.get_meta(VAPID_META)
                if stored is None:
                    stored = f"{key_id}:{sealed}"
                    await tx.set_meta(VAPID_META, stored)
                    log.info("vapid_key_made")
        key_id, sealed = stored.split(":", 1)
        pem = self.d.keyring.open_secret(VAPID_OWNER, key_id, sealed)
        self._vapid = Vapid02.from_pem(pem.encode())
        return self._vapid

    async def public_key(self) -> str:
        """The applicationServerKey browsers subscribe with: the uncompressed P-256
        point, base64url without padding."""
        vapid = await self.vapid()
        raw = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _b64(raw)

    def _subject(self) -> str:
        subject = self.limits.push_vapid_subject or self.limits.public_url
        if not subject.startswith(("mailto:", "https://", "http://")):
            subject = "mailto:postmaster@localhost"
        return subject

    # --- subscriptions -------------------------------------------------------------------
    async def subscribe(
        self, session: Session, endpoint: str, p256dh: str, auth: str
    ) -> PushSubscription:
        """Subscribe this device (this session). The same endpoint again replaces the
        earlier subscription (new keys, or another session of the same browser)."""
        user = session.user
        await self.limiter.check(Action.NOTIFY, user.id, None)
        try:
            check_subscription(endpoint, p256dh, auth, self.limits.push_max_endpoint_chars)
        except ValueError as exc:
            field = "endpoint" if str(exc).startswith("endpoint") else "keys"
            raise InvalidRequest(str(exc), field=field) from None
        try:
            target = check_url(endpoint, self.limits.push_max_endpoint_chars)
        except InvalidRequest as exc:
            raise InvalidRequest(f"endpoint: {exc}", field="endpoint") from None
        try:
            await self.outbound.resolve(target)
        except (Refused, Unreachable) as exc:
            raise InvalidRequest(f"endpoint: {exc}", field="endpoint") from None
        sub = PushSubscription(
            id=SubscriptionId(self.d.ids.new_id()),
            user_id=user.id,
            token_id=session.token_id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            created_at=self.d.clock.now(),
        )
        cap = self.limits.push_max_subscriptions_per_user
        async with self.d.store.write() as tx:
            replaced = await tx.delete_push_subscription_by_endpoint(user.id, endpoint)
            if not replaced and await tx.count_push_subscriptions(user.id) >= cap:
                raise CapReached(
                    f"you have the most push subscriptions allowed ({cap})",
                    field="endpoint",
                    limit=cap,
                )
            await tx.put_push_subscription(sub)
        return sub

    async def unsubscribe(self, session: Session, endpoint: str) -> None:
        user = session.user
        await self.limiter.check(Action.NOTIFY, user.id, None)
        async with self.d.store.write() as tx:
            # none there (gone already: a 410, a sign-out) is no error: the same outcome
            await tx.delete_push_subscription_by_endpoint(user.id, endpoint)

    async def list_for(self, session: Session) -> list[PushSubscription]:
        async with self.d.store.read() as tx:
            return await tx.push_subscriptions_of(session.user.id, self.d.clock.now())

    # --- the jobs ----------------------------------------------------------------------
    async def _notify(self, job: Job) -> None:
        """One message for one user: a `push.send` job per live subscription."""
        p = job.payload
        uid, cid, seq = str(p["user_id"]), str(p["conversation_id"]), int(p["seq"])
        async with self.d.store.read() as tx:
            if not await self.notify.still_due(tx, uid, cid, seq):
                return
            # a session restricted to enrolling a second factor reads no message: it is
            # pushed none either (until it enrols)
            subs = await tx.push_subscriptions_of(uid, self.d.clock.now(), sending=True)
        if not subs:
            return
        async with self.d.store.write() as tx:
            for sub in subs:
                await self.jobs.enqueue(
                    tx,
                    PUSH_SEND,
                    {"subscription_id": sub.id, "conversation_id": cid, "seq": seq},
                    job_id=f"push-send:{sub.id}:{cid}:{seq}",
                )

    async def _send(self, job: Job) -> None:
        p = job.payload
        cid, seq = str(p["conversation_id"]), int(p["seq"])
        async with self.d.store.read() as tx:
            sub = await tx.get_push_subscription(str(p["subscription_id"]))
            if sub is None:
                return  # unsubscribed, or signed out, since
            sendable = await tx.push_subscriptions_of(sub.user_id, self.d.clock.now(), sending=True)
            if sub.id not in {s.id for s in sendable}:
                return  # its session expired, or must enrol a second factor first, since
            if not await self.notify.still_due(tx, sub.user_id, cid, seq):
                return  # read meanwhile (on another device)
            message = await tx.get_message(cid, seq)
            settings = await tx.get_notify_settings(sub.user_id)
            sender = None if message is None else await tx.get_user(message.sender_id)
        if message is None:
            return
        show = self.limits.notify_previews and settings.previews
        data = push_payload(
            cid,
            seq,
            "" if sender is None else sender.display_name,
            message.body if show else None,
        )
        body = self.encrypt(sub, orjson.dumps(data))
        vapid = await self.vapid()
        exp = int((self.d.clock.now() + timedelta(hours=TOKEN_HOURS)).timestamp())
        claims = {"aud": origin_of(sub.endpoint), "sub": self._subject(), "exp": exp}
        headers = {
            **vapid.sign(claims),
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "aes128gcm",
            "TTL": str(self.limits.push_ttl_seconds),
            "Urgency": "high" if data.get("preview") is not None else "normal",
        }
        try:
            target = check_url(sub.endpoint, max(len(sub.endpoint), 8))
            answer = await self.outbound.post(
                target, headers, body, timeout=self.limits.push_timeout_seconds
            )
        except InvalidRequest as exc:
            await self._drop(sub, f"not a URL: {exc}")
            return
        except Refused as exc:
            await self._drop(sub, str(exc))
            raise Permanent(f"the push endpoint is refused: {exc}") from None
        except Unreachable:
            raise
        status = answer.status
        if 200 <= status < 300:
            return
        if status in (404, 410):  # the subscription expired or was withdrawn
            await self._drop(sub, f"the push service answered {status}")
            return
        if status in (408, 429) or status >= 500:
            raise Unreachable(f"the push service answered {status}")
        raise Permanent(f"the push service answered {status}: not retried")

    def encrypt(self, sub: PushSubscription, plaintext: bytes) -> bytes:
        """RFC 8291: aes128gcm with a fresh sender key and salt per message."""
        sender = ec.generate_private_key(ec.SECP256R1())
        encrypted: bytes = http_ece.encrypt(
            plaintext,
            salt=os.urandom(16),
            private_key=sender,
            dh=_unb64(sub.p256dh),
            auth_secret=_unb64(sub.auth),
            version="aes128gcm",
        )
        return encrypted

    async def _drop(self, sub: PushSubscription, why: str) -> None:
        async with self.d.store.write() as tx:
            await tx.delete_push_subscription(sub.id)
        log.info("push_subscription_dropped", subscription_id=sub.id, why=why[:200])
