"""The Outbound adapter on httpx, with the SSRF guard.

Every request resolves the URL's host itself and checks every address it gets
(core/webhooks.py:refused_reason: private, loopback, link-local, multicast,
unspecified, reserved and the IPv6 forms of them are refused unless
webhook_allowed_networks holds them); then it connects to the first checked address,
with the URL's host in the Host header and as the TLS server name (certificates are
checked against the name). What it connects to is what was checked, so a name that
resolves to a public address for the check and to a private one a moment later (DNS
rebinding) gets nowhere. Redirects are never followed. No connection is kept alive: two
names on one address must not share a TLS connection made for one of them. Proxy
settings of the environment are ignored (a proxy would resolve the name itself)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import httpx

from tidings.core.webhooks import IpAddress, IpNetwork, Target, refused_reason
from tidings.outbound.ports import Answer, Refused, Unreachable

# host, port -> the addresses the name has (as text)
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class HttpOutbound:
    def __init__(
        self,
        allowed: Sequence[IpNetwork],
        *,
        timeout: float,
        connect_timeout: float,
        resolver: Resolver = system_resolver,
        user_agent: str = "Tidings/1",
    ) -> None:
        self.allowed = tuple(allowed)
        self.timeout = timeout
        self.resolver = resolver
        self.user_agent = user_agent
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def resolve(self, target: Target) -> list[IpAddress]:
        try:
            literal: IpAddress | None = ipaddress.ip_address(target.host)
        except ValueError:
            literal = None
        if literal is not None:
            found = [literal]
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    raw = await self.resolver(target.host, target.port)
            except (OSError, UnicodeError, TimeoutError) as exc:
                raise Unreachable(f"the host name does not resolve ({exc})") from None
            found = []
            for text in raw:
                ip = ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone
                if ip not in found:
                    found.append(ip)
            if not found:
                raise Unreachable("the host name has no address")
        for ip in found:
            why = refused_reason(ip, self.allowed)
            if why is not None:
                raise Refused(
                    f"{why}: webhooks may not reach it (webhook_allowed_networks allows "
                    "such networks)"
                )
        return found

    async def post(
        self,
        target: Target,
        headers: Mapping[str, str],
        body: bytes,
        *,
        read_max: int = 0,
        timeout: float | None = None,
    ) -> Answer:
        deadline = self.timeout if timeout is None else timeout
        ip = (await self.resolve(target))[0]
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        url = f"{target.scheme}://{literal}:{target.port}{target.path}"
        sent = {
            "User-Agent": self.user_agent,
            "Content-Type": "application/json",
            **headers,
            "Host": target.host_header,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        started = time.monotonic()
        data = bytearray()
        try:
            async with asyncio.timeout(deadline):
                request = self._client.build_request(
                    "POST", url, headers=sent, content=body, extensions=extensions
                )
                response = await self._client.send(request, stream=True)
                try:
                    if read_max > 0:
                        async for chunk in response.aiter_bytes():
                            data += chunk
                            if len(data) > read_max:
                                raise Unreachable(f"the answer is larger than {read_max} bytes")
                finally:
                    await response.aclose()  # unless asked, the status is all we want
        except (TimeoutError, httpx.TimeoutException):
            raise Unreachable(f"no answer within {deadline:g} s") from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"the connection failed ({type(exc).__name__}: {exc})") from None
        latency = round((time.monotonic() - started) * 1000)
        return Answer(
            response.status_code,
            latency,
            response.headers.get("content-type", ""),
            bytes(data),
        )

    async def close(self) -> None:
        await self._client.aclose()
