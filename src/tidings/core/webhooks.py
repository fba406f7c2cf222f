"""Outgoing webhooks, the pure part: what a webhook is, which events it may ask for,
the URL and address rules (SSRF), the signature, the delivery id and the body.

Who may register one and what an org-wide webhook sees: services/webhooks.py and
docs/integrations.md ("Outgoing webhooks")."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NewType
from urllib.parse import SplitResult, urlsplit

from tidings.core.errors import InvalidRequest
from tidings.core.events import EventKind
from tidings.core.models import ConversationId, UserId

WebhookId = NewType("WebhookId", str)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The event kinds a webhook may ask for: every kind of a conversation's stream but read
# positions, a conversation's or a thread's (who read what when is a person's activity,
# not the conversation's), and profile changes (a person's, copied into each of their
# conversations), nor a person's own notification settings, saved or scheduled messages
# (private to them).
WEBHOOK_KINDS: tuple[str, ...] = tuple(
    k.value
    for k in EventKind
    if k
    not in (
        EventKind.READ,
        EventKind.THREAD_READ,
        EventKind.USER_UPDATED,
        EventKind.NOTIFICATIONS_UPDATED,
        EventKind.DND_UPDATED,
        EventKind.MESSAGE_SAVED,
        EventKind.MESSAGE_UNSAVED,
        EventKind.SCHEDULED_CREATED,
        EventKind.SCHEDULED_UPDATED,
        EventKind.SCHEDULED_DELETED,
    )
)
PING = "ping"  # the kind of a test delivery (X-Tidings-Event: ping)
SCHEMES = ("http", "https")
# X-Tidings-Delivery is derived from the job id in this namespace (uuid5): the same on
# every retry of one delivery, different for every other.
DELIVERY_NAMESPACE = uuid.UUID("6f1d8a52-3c2e-4b7e-9a51-2f0a6c1e7d44")


class DisabledReason(StrEnum):
    MANUAL = "manual"  # someone turned it off (PATCH enabled=false, `tidings webhooks disable`)
    FAILURES = "failures"  # webhook_max_failures consecutive failed attempts
    GONE = "gone"  # the receiver answered 410 Gone


class DeliveryStatus(StrEnum):
    OK = "ok"  # 2xx
    FAILED = "failed"  # a 5xx, 408, 429, a timeout or a connection error: retried
    REJECTED = "rejected"  # another answer (4xx, 3xx): not retried
    REFUSED = "refused"  # the address is not one webhooks may reach: nothing was sent


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered webhook. `owner_id` registered it (and is told when it is disabled);
    `conversation_id` None: org-wide. It gets the events committed after `since_position`
    (its registration, or its last enabling): never older ones."""

    id: WebhookId
    url: str
    events: tuple[str, ...]
    conversation_id: ConversationId | None
    owner_id: UserId
    enabled: bool
    disabled_reason: DisabledReason | None
    failures: int  # consecutive failed attempts (0 after a success)
    since_position: int
    created_at: datetime
    updated_at: datetime

    def wants(self, kind: str, conversation_id: str | None) -> bool:
        if not self.enabled or kind not in self.events or conversation_id is None:
            return False
        return self.conversation_id is None or self.conversation_id == conversation_id


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver one event (or a ping) to a webhook: the delivery log."""

    id: str
    webhook_id: WebhookId
    delivery_id: str  # X-Tidings-Delivery: the same on every attempt of one delivery
    kind: str
    position: int | None  # the event's stream position (None: a ping)
    attempt: int
    at: datetime
    status: DeliveryStatus
    response_code: int | None
    latency_ms: int | None
    error: str


@dataclass(frozen=True, slots=True)
class Target:
    """A checked webhook URL: where to connect and what to say in Host / SNI."""

    scheme: str
    host: str  # as in the URL (IDNA-encoded, no brackets)
    port: int
    path: str  # path and query, at least "/"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def check_url(raw: str, max_chars: int) -> Target:
    """A webhook URL: http or https, a host, no user name or password in it (the
    signature authenticates), at most `max_chars`. The address is checked separately
    (`refused_reason`), on every resolved address, at registration and every delivery."""
    if len(raw) > max_chars:
        raise InvalidRequest(f"url is longer than {max_chars} characters", field="url")
    if not raw.isprintable() or any(c.isspace() for c in raw):
        raise InvalidRequest("url must not contain spaces or control characters", field="url")
    try:
        parts: SplitResult = urlsplit(raw)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise InvalidRequest(f"url is not a valid URL ({exc})", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidRequest("url must be an http:// or https:// URL", field="url")
    if not host:
        raise InvalidRequest("url has no host", field="url")
    if port == 0:
        raise InvalidRequest("url has no valid port", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(
            "url must not carry a user name or password: receivers check the signature",
            field="url",
        )
    if parts.fragment:
        raise InvalidRequest("url must not have a #fragment", field="url")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise InvalidRequest("url's host is not a valid name", field="url") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, ascii_host, port or (443 if scheme == "https" else 80), path)


def parse_networks(raw: str) -> tuple[IpNetwork, ...]:
    """A setting's comma-separated CIDRs (or single addresses): webhook_allowed_networks,
    metrics_networks. ValueError names the part that is not one."""
    found: list[IpNetwork] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a CIDR (e.g. 10.0.0.0/8)") from exc
    return tuple(found)


def _embedded(ip: IpAddress) -> list[IpAddress]:
    """The IPv4 addresses an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d),
    IPv4-compatible (::a.b.c.d), 6to4, Teredo's client and NAT64 (64:ff9b::/96)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[IpAddress] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    packed = int(ip)
    if packed >> 32 == 0 and packed > 1:  # ::a.b.c.d (not :: or ::1, checked themselves)
        found.append(ipaddress.IPv4Address(packed & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.append(ip.teredo[1])
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        found.append(ipaddress.IPv4Address(packed & 0xFFFFFFFF))
    return found


def _forbidden(ip: IpAddress) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def refused_reason(ip: IpAddress, allowed: Sequence[IpNetwork]) -> str | None:
    """Why a webhook may not connect to `ip` (None: it may). Private, loopback,
    link-local, multicast, unspecified and reserved addresses are refused, and IPv6
    forms that stand for one of them, unless a network of `allowed` holds the address
    (or, for an IPv6 form, the IPv4 address it stands for)."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    # an IPv4-mapped address is its IPv4 address (the socket connects to that)
    candidates = [mapped] if mapped is not None else [ip, *_embedded(ip)]
    for candidate in (ip, *candidates):
        if any(candidate.version == n.version and candidate in n for n in allowed):
            return None
    for candidate in candidates:
        why = _forbidden(candidate)
        if why is not None:
            return f"{candidate} is a {why} address"
    return None


def check_events(kinds: Iterable[str]) -> tuple[str, ...]:
    """The event kinds of a webhook: at least one, each known, each once."""
    given = list(kinds)
    if not given:
        raise InvalidRequest("events must name at least one event kind", field="events")
    if len(given) > len(WEBHOOK_KINDS):
        raise InvalidRequest(
            f"events names more than the {len(WEBHOOK_KINDS)} event kinds there are",
            field="events",
        )
    unknown = [k for k in given if k not in WEBHOOK_KINDS]
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise InvalidRequest(
            f"unknown event kind {shown}: webhooks take {', '.join(WEBHOOK_KINDS)}",
            field="events",
        )
    if len(set(given)) != len(given):
        raise InvalidRequest("events names a kind twice", field="events")
    return tuple(k for k in WEBHOOK_KINDS if k in given)  # one order, whatever was given


def delivery_id(job_id: str) -> str:
    """X-Tidings-Delivery of the job that delivers it: the same on every retry."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, job_id))


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """X-Tidings-Signature: `sha256=` and the hex HMAC-SHA256 of "<timestamp>.<body>"."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def event_body(position: int, payload: dict[str, object], webhook_id: str) -> dict[str, object]:
    """The JSON a webhook gets for an event: the event's wire payload (as on the
    WebSocket, docs/protocol.md), its stream `position` and the `webhook_id`."""
    return {**payload, "position": str(position), "webhook_id": webhook_id}
