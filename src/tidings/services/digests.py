"""Email digests of missed direct messages and mentions, over SMTP.

The job `digest.send` (derived by services/notify_jobs.py, due digest_delay_seconds
after a message) mails a user everything still unread since their last digest: direct
messages and mentions (the same seam, `NotifyJobService.still_due`, decides each),
in one mail, in the user's language (their profile's; Chinese or English), plain text
and HTML. Nothing is sent when all of it was read meanwhile, to a user without an email
address, or one who turned digests off (their setting, or the mail's unsubscribe link).

SMTP is aiosmtplib: asyncio-native (no thread per mail, timeouts and cancellation like
the rest of the worker), STARTTLS and implicit TLS with certificate checks, AUTH; the
standard library's smtplib would need a worker thread per connection for the same. The
password is a SecretStr setting: never logged, never in an error (a failed login is
reported as "authentication failed" by the server's answer code only).

Delivery is at least once: a worker that dies between the SMTP server's acceptance and
the record of it sends that digest again (its Message-ID is the same: the job's).

The unsubscribe link (also in `List-Unsubscribe`, with RFC 8058 one-click POST) carries
the user id and an HMAC of it under the server key (services/keyring.py:sign_link): it
works without signing in; GET shows a confirmation page, POST turns digests off.
"""

from __future__ import annotations

import hashlib
import ssl
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import quote

import aiosmtplib
import structlog

from tidings.core.audit import AuditAction
from tidings.core.errors import Forbidden
from tidings.core.jobs import Job, JobPolicy
from tidings.core.notifications import NotifySettings, render_digest
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.jobs import JobService
from tidings.services.notify_jobs import DIGEST_SEND, NotifyJobService

log = structlog.get_logger(__name__)

LOOK_BACK_S = 7 * 86400  # a first digest reaches back this far at most
UNSUBSCRIBE_PURPOSE = "digest-unsubscribe"
UNSUBSCRIBE_PATH = "/api/v1/notifications/unsubscribe"


class SmtpFailed(Exception):
    """The SMTP server could not be reached or refused the mail (retried)."""


class DigestService:
    def __init__(self, deps: Deps, jobs: JobService, notify: NotifyJobService) -> None:
        self.d = deps
        self.jobs = jobs
        self.notify = notify
        self.limits = deps.notify
        jobs.register(
            DIGEST_SEND,
            self._send,
            JobPolicy(
                max_attempts=8, timeout_seconds=self.limits.smtp_timeout_seconds * 3, queue="email"
            ),
        )

    # --- links -------------------------------------------------------------------------
    def unsubscribe_url(self, user_id: str) -> str:
        signature = self.d.keyring.sign_link(UNSUBSCRIBE_PURPOSE, user_id)
        base = (self.limits.public_url or "http://localhost").rstrip("/")
        return f"{base}{UNSUBSCRIBE_PATH}?u={quote(user_id)}&s={quote(signature)}"

    def _check_link(self, user_id: str, signature: str) -> None:
        if not self.d.keyring.link_is_signed(UNSUBSCRIBE_PURPOSE, user_id, signature):
            raise Forbidden("this unsubscribe link is not valid")

    async def check_unsubscribe(self, user_id: str, signature: str) -> str:
        """The user's language, if the link is valid (the confirmation page is in it)."""
        self._check_link(user_id, signature)
        async with self.d.store.read() as tx:
            user = await tx.get_user(user_id)
        if user is None:
            raise Forbidden("this unsubscribe link is not valid")
        return user.preferences.language or ""

    async def unsubscribe(self, user_id: str, signature: str) -> None:
        """Turn the user's digests off (the link's POST); again is no error."""
        self._check_link(user_id, signature)
        async with self.d.store.write() as tx:
            if await tx.get_user(user_id) is None:
                raise Forbidden("this unsubscribe link is not valid")
            old = await tx.get_notify_settings(user_id)
            if not old.email_digests:
                return
            await tx.set_notify_settings(
                user_id, NotifySettings(email_digests=False, previews=old.previews)
            )
            await record(
                tx,
                self.d.clock,
                AuditAction.DIGESTS_UNSUBSCRIBED,
                actor_id=None,
                target_id=user_id,
            )

    # --- the job ---------------------------------------------------------------------
    async def _send(self, job: Job) -> None:
        if not self.limits.smtp_host:
            return
        uid = str(job.payload["user_id"])
        now = self.d.clock.now()
        async with self.d.store.read() as tx:
            user = await tx.get_user(uid)
            if user is None or user.disabled or user.bot or not user.email:
                return
            settings = await tx.get_notify_settings(uid)
            if not settings.email_digests:
                return
            since = await tx.digest_sent_at(uid)
            oldest = now - timedelta(seconds=LOOK_BACK_S)  # no mail of ancient history
            since = oldest if since is None or since < oldest else since
            found, more = await tx.missed_items(uid, since, now, self.limits.digest_max_items)
            items = [
                i
                for i in found
                if await self.notify.still_due(tx, uid, i.conversation_id, i.seq, digest=True)
            ]
        if not items:
            return
        base = (self.limits.public_url or "http://localhost").rstrip("/")
        mail = render_digest(
            user.preferences.language,
            items,
            more,
            self.limits.notify_previews and settings.previews,
            f"{base}/",
            self.unsubscribe_url(uid),
        )
        message = EmailMessage()
        sender = self.limits.smtp_from or f"tidings@{self.limits.smtp_host}"
        message["From"] = sender
        message["To"] = user.email
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(now)
        domain = sender.rpartition("@")[2] or "localhost"
        digest = hashlib.sha256(job.id.encode()).hexdigest()[:32]
        message["Message-ID"] = make_msgid(idstring=digest, domain=domain)
        message["List-Unsubscribe"] = f"<{self.unsubscribe_url(uid)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        await self.deliver(message)
        async with self.d.store.write() as tx:
            await tx.set_digest_sent_at(uid, now)
        log.info("digest_sent", user_id=uid, messages=len(items) + more)

    async def deliver(self, message: EmailMessage) -> None:
        """Hand one mail to the SMTP server of the settings."""
        lim = self.limits
        context: ssl.SSLContext | None = None
        if lim.smtp_tls != "none":
            context = ssl.create_default_context(
                cafile=None if lim.smtp_ca_file is None else str(lim.smtp_ca_file)
            )
        password = None if lim.smtp_password is None else lim.smtp_password.get_secret_value()
        try:
            await aiosmtplib.send(
                message,
                hostname=lim.smtp_host,
                port=lim.smtp_port,
                username=lim.smtp_user or None,
                password=password if lim.smtp_user else None,
                use_tls=lim.smtp_tls == "tls",
                start_tls=lim.smtp_tls == "starttls",
                tls_context=context,
                timeout=lim.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SmtpFailed(f"the SMTP server refused the login ({exc.code})") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpFailed(f"the SMTP server answered {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpFailed(f"SMTP failed ({type(exc).__name__})") from None
