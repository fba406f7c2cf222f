"""The SSRF guard of outbound/http.py against a real receiver on loopback: what it
connects to is the address it checked, whatever the name resolves to a moment later."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.webhook_receiver import Receiver
from tidings.core.webhooks import check_url, parse_networks
from tidings.outbound.http import HttpOutbound
from tidings.outbound.ports import Refused, Unreachable


class RebindingDns:
    """A name server that gives the answers it was given, one per question (the last
    one again when they run out): a name that is public at the check and loopback at
    the connection, the DNS rebinding attack."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


async def test_the_connection_goes_to_the_checked_address() -> None:
    async with Receiver() as receiver:
        dns = RebindingDns(["127.0.0.1"])
        out = HttpOutbound(
            parse_networks("127.0.0.0/8"), timeout=5, connect_timeout=5, resolver=dns
        )
        try:
            target = check_url(f"http://hooks.example.test:{receiver.port}/in?k=v", 2048)
            answer = await out.post(target, {"X-Test": "1"}, b"{}")
        finally:
            await out.close()
        assert answer.status == 200 and dns.asked == 1
        got = receiver.received[0]
        assert got.headers["host"] == f"hooks.example.test:{receiver.port}"
        assert got.path == "/in?k=v" and got.headers["x-test"] == "1"


async def test_a_name_rebound_to_loopback_is_refused_at_delivery() -> None:
    async with Receiver() as receiver:
        dns = RebindingDns(["93.184.216.34"], ["127.0.0.1"])
        out = HttpOutbound((), timeout=5, connect_timeout=5, resolver=dns)
        try:
            target = check_url(f"http://rebind.example.test:{receiver.port}/", 2048)
            assert [str(a) for a in await out.resolve(target)] == ["93.184.216.34"]
            with pytest.raises(Refused, match="loopback"):
                await out.post(target, {}, b"{}")
        finally:
            await out.close()
        assert receiver.received == []


async def test_one_refused_address_among_several_refuses_the_name() -> None:
    dns = RebindingDns(["93.184.216.34", "10.0.0.7"])
    out = HttpOutbound((), timeout=5, connect_timeout=5, resolver=dns)
    try:
        with pytest.raises(Refused, match="private"):
            await out.resolve(check_url("http://mixed.example.test/", 2048))
    finally:
        await out.close()


async def test_timeouts_and_dead_ports_are_unreachable() -> None:
    async with Receiver(delay=2.0) as slow:
        out = HttpOutbound(parse_networks("127.0.0.0/8"), timeout=0.3, connect_timeout=0.3)
        try:
            with pytest.raises(Unreachable, match="no answer"):
                await out.post(check_url(slow.url, 2048), {}, b"{}")
            port = slow.port
        finally:
            await out.close()
    out = HttpOutbound(parse_networks("127.0.0.0/8"), timeout=2, connect_timeout=2)
    try:
        with pytest.raises(Unreachable, match="connection failed"):
            await out.post(check_url(f"http://127.0.0.1:{port}/", 2048), {}, b"{}")
    finally:
        await out.close()


async def test_a_literal_private_address_is_refused_before_any_connection() -> None:
    """A slash command's or a webhook's URL naming a private address itself, or a name
    that resolves to loopback, gets nowhere (the guard every outgoing request shares)."""
    out = HttpOutbound((), timeout=1, connect_timeout=1)
    try:
        for url in ("http://127.0.0.1:9/x", "http://[::1]/x", "http://169.254.169.254/latest"):
            with pytest.raises(Refused):
                await out.post(check_url(url, 2048), {}, b"{}")
        with pytest.raises(Refused, match="loopback"):
            await out.post(check_url("http://localhost:9/x", 2048), {}, b"{}")
    finally:
        await out.close()


async def test_the_answer_is_read_only_when_asked_and_bounded() -> None:
    """Webhooks want the status only; slash commands read the answer (their reply), at
    most `read_max` bytes: a larger one is a failure, not a buffer that grows."""
    async with Receiver(headers={"Content-Type": "text/plain"}) as receiver:
        out = HttpOutbound(parse_networks("127.0.0.0/8"), timeout=5, connect_timeout=5)
        try:
            target = check_url(receiver.url, 2048)
            plain = await out.post(target, {}, b"{}")
            assert plain.status == 200 and plain.body == b""
            read = await out.post(
                target, {"User-Agent": "Tidings-Integrations/1"}, b"{}", read_max=10
            )
            assert read.body == b"ok" and read.content_type == "text/plain"
            with pytest.raises(Unreachable, match="larger than 1 bytes"):
                await out.post(target, {}, b"{}", read_max=1)
        finally:
            await out.close()
        assert receiver.received[1].headers["user-agent"] == "Tidings-Integrations/1"
        assert receiver.received[1].headers["host"] == f"127.0.0.1:{receiver.port}"
