"""The SSRF guard of outgoing requests (services/outbound.py): which addresses a user's
URL may reach, and the networks a setting allows. Pure: no request is made."""

from __future__ import annotations

import ipaddress

import pytest

from tidings.core.integrations import signature_ok
from tidings.services.outbound import (
    Outbound,
    OutboundRefused,
    address_allowed,
    parse_networks,
    signed_headers,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
        "100.64.0.1", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "ff02::1",
    ],
)  # fmt: skip
def test_private_loopback_link_local_and_reserved_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address), ())


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address), ())


def test_the_setting_allows_networks() -> None:
    allowed = parse_networks(" 127.0.0.0/8 , 10.0.0.0/8,, fd00::/8 ")
    assert len(allowed) == 3
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allowed)
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert address_allowed(ipaddress.ip_address("fd12::1"), allowed)
    assert not address_allowed(ipaddress.ip_address("192.168.0.1"), allowed)
    with pytest.raises(ValueError, match="not a CIDR"):
        parse_networks("127.0.0.1/99")


async def test_a_literal_private_address_is_refused_before_any_connection() -> None:
    out = Outbound("", timeout=1, max_bytes=1000)
    for url in ("http://127.0.0.1:9/x", "http://[::1]/x", "http://169.254.169.254/latest"):
        with pytest.raises(OutboundRefused):
            await out.post(url, b"{}", {})
    with pytest.raises(OutboundRefused):
        await out.post("file:///etc/passwd", b"", {})
    with pytest.raises(OutboundRefused):  # a name that resolves to loopback
        await out.post("http://localhost:9/x", b"{}", {})


def test_signed_headers_are_the_outgoing_webhooks() -> None:
    headers = signed_headers("sec", "1700000000", b"body")
    assert headers["X-Tidings-Timestamp"] == "1700000000"
    assert signature_ok("sec", "1700000000", b"body", headers["X-Tidings-Signature"])
