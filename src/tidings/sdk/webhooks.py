"""Receiving Tidings webhooks: check a delivery's signature and its timestamp.

>>> from tidings.sdk.webhooks import verify_webhook
>>> verify_webhook(secret, headers["X-Tidings-Timestamp"], body,   # doctest: +SKIP
...                headers["X-Tidings-Signature"])

A delivery is a POST of the event's JSON; ``X-Tidings-Signature`` is ``sha256=`` and the
hex HMAC-SHA256, keyed with the webhook's secret, of ``"<X-Tidings-Timestamp>.<body>"``
(the raw body bytes). ``X-Tidings-Delivery`` is the same on every retry of one delivery:
keep the ones handled to ignore a repeat. Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["DEFAULT_TOLERANCE", "sign_webhook", "verify_webhook"]

DEFAULT_TOLERANCE = 300.0
"""Seconds a delivery's timestamp may be away from the receiver's clock."""


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Tidings-Signature`` of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether a delivery is genuine: signed with ``secret`` and sent within
    ``tolerance`` seconds of ``now`` (default: the clock), so that a recorded delivery
    cannot be replayed later."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign_webhook(secret, timestamp, body), signature)
