"""Outgoing HTTP that a user can aim (slash command URLs; meant to be shared with the
outgoing webhooks): SSRF-guarded, signed, bounded.

- The host is resolved first, then every address it resolves to is checked: private,
  loopback, link-local, multicast, reserved and unspecified addresses are refused unless
  a network of `webhook_allowed_networks` holds them (the tests allow loopback so). The
  request then goes to the address checked (the Host header and TLS name stay the
  host's), so a second resolution cannot point it elsewhere (DNS rebinding).
- Redirects are not followed (a 3xx is a failure), proxies from the environment are
  not used, the whole request has a deadline, and at most `max_bytes` of the answer are
  read.
- `signed_headers` makes the headers of the outgoing webhooks: `X-Tidings-Timestamp`
  and `X-Tidings-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from tidings.core.integrations import signature
from tidings.core.webhooks import parse_networks

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
USER_AGENT = "Tidings-Integrations/1"


class OutboundRefused(Exception):
    """The URL points where outgoing requests may not go (retrying cannot help)."""


class OutboundFailed(Exception):
    """The target could not be reached or did not answer in time (a retry may help)."""


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    status: int
    content_type: str
    body: bytes


def address_allowed(address: IpAddress, allowed: tuple[IpNetwork, ...]) -> bool:
    if any(address in net for net in allowed if net.version == address.version):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_allowed(address.ipv4_mapped, allowed)
    return address.is_global and not address.is_multicast


def signed_headers(secret: str, timestamp: str, body: bytes) -> dict[str, str]:
    return {
        "X-Tidings-Timestamp": timestamp,
        "X-Tidings-Signature": signature(secret, timestamp, body),
    }


class Outbound:
    def __init__(self, allowed_networks: str, *, timeout: float, max_bytes: int) -> None:
        self.allowed = parse_networks(allowed_networks)
        self.timeout = timeout
        self.max_bytes = max_bytes

    async def resolve(self, host: str, port: int) -> IpAddress:
        """The address to connect to: every address of `host` must be allowed."""
        try:
            literal: IpAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise OutboundFailed(f"cannot resolve {host}: {exc}") from exc
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise OutboundFailed(f"{host} has no address")
        refused = [a for a in addresses if not address_allowed(a, self.allowed)]
        if refused:
            raise OutboundRefused(
                f"{host} resolves to {refused[0]}, a private, loopback or reserved address "
                "(webhook_allowed_networks may allow it)"
            )
        return addresses[0]

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> OutboundResponse:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise OutboundRefused("only http:// and https:// URLs with a host are called")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self.timeout):
                address = await self.resolve(host, port)
                shown = f"[{address}]" if address.version == 6 else str(address)
                pinned = urlunsplit(
                    (parts.scheme, f"{shown}:{port}", parts.path or "/", parts.query, "")
                )
                host_header = host if parts.port is None else f"{host}:{parts.port}"
                sent = {
                    "User-Agent": USER_AGENT,
                    "Content-Type": "application/json",
                    **headers,
                    "Host": host_header,
                }
                extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
                async with (
                    httpx.AsyncClient(
                        follow_redirects=False, trust_env=False, timeout=self.timeout
                    ) as client,
                    client.stream(
                        "POST", pinned, content=body, headers=sent, extensions=extensions
                    ) as answer,
                ):
                    data = bytearray()
                    async for chunk in answer.aiter_bytes():
                        data += chunk
                        if len(data) > self.max_bytes:
                            raise OutboundFailed(
                                f"the answer is larger than {self.max_bytes} bytes"
                            )
                    return OutboundResponse(
                        answer.status_code, answer.headers.get("content-type", ""), bytes(data)
                    )
        except TimeoutError as exc:
            raise OutboundFailed(f"no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise OutboundFailed(f"{type(exc).__name__}: {exc}") from exc
