"""The Outbound port: HTTP requests to addresses a user chose (an outgoing webhook's
URL, a slash command's), never to one that the SSRF rules refuse
(core/webhooks.py:refused_reason). One adapter serves both (outbound/http.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidings.core.webhooks import IpAddress, Target


class Refused(Exception):
    """The target resolves to an address that outgoing requests may not reach."""


class Unreachable(Exception):
    """No answer: the name does not resolve, the connection failed or timed out. The
    message says which (never the URL: it may carry a secret of the receiver's)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    latency_ms: int
    content_type: str = ""
    body: bytes = b""  # read only when asked (`read_max`), at most that many bytes


class Outbound(Protocol):
    async def resolve(self, target: Target) -> Sequence[IpAddress]:
        """Every address of the target's host, each checked (Refused, Unreachable)."""
        ...

    async def post(
        self,
        target: Target,
        headers: Mapping[str, str],
        body: bytes,
        *,
        read_max: int = 0,
        timeout: float | None = None,
    ) -> Answer:
        """POST `body` to the target: resolved and checked again, then sent to the
        checked address (the Host header and TLS name are the URL's). Redirects are not
        followed: a 3xx is the answer. `read_max` > 0: the answer's body is read too, and
        one larger than that is Unreachable; `timeout`: this request's deadline (default:
        the adapter's)."""
        ...

    async def close(self) -> None: ...


class NoOutbound:
    """For a process given no Outbound: every request is refused."""

    async def resolve(self, target: Target) -> Sequence[IpAddress]:
        raise Refused("this process makes no outgoing requests")

    async def post(
        self,
        target: Target,
        headers: Mapping[str, str],
        body: bytes,
        *,
        read_max: int = 0,
        timeout: float | None = None,
    ) -> Answer:
        raise Refused("this process makes no outgoing requests")

    async def close(self) -> None:
        return None
