"""The pure rules of outgoing webhooks: URLs, addresses (SSRF), event kinds, signature."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from tidings.core.errors import InvalidRequest
from tidings.core.webhooks import (
    WEBHOOK_KINDS,
    check_events,
    check_url,
    delivery_id,
    parse_networks,
    refused_reason,
    signature,
)

REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.31.0.1",
    "192.168.0.10",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.251",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert refused_reason(ipaddress.ip_address(address), ()) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused_reason(ipaddress.ip_address(address), ()) is None


def test_the_allowed_networks_open_exactly_themselves() -> None:
    allowed = parse_networks("127.0.0.0/8, ::1/128,10.5.0.0/16")
    for ok in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.5.9.9"):
        assert refused_reason(ipaddress.ip_address(ok), allowed) is None, ok
    for still in ("10.6.0.1", "169.254.169.254", "192.168.1.1", "::ffff:10.6.0.1"):
        assert refused_reason(ipaddress.ip_address(still), allowed) is not None, still


def test_parse_networks_refuses_junk() -> None:
    assert parse_networks("") == ()
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/33")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://",
        "http:///path",
        "http://user:pw@example.com/",
        "http://user@example.com/",
        "http://example.com/#frag",
        "http://example.com/a b",
        "http://example.com/\n",
        "http://example.com:70000/",
        "http://[::1/",
        "//example.com/",
        "example.com",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_url(url, 2048)
    assert refused.value.details.get("field") == "url"


def test_url_length_is_the_setting() -> None:
    url = "https://example.com/" + "a" * 100
    assert check_url(url, len(url)).host == "example.com"
    with pytest.raises(InvalidRequest):
        check_url(url + "a", len(url))


def test_a_checked_url_keeps_what_the_request_needs() -> None:
    t = check_url("HTTPS://Example.COM:8443/in?x=1", 2048)
    assert (t.scheme, t.host, t.port, t.path) == ("https", "example.com", 8443, "/in?x=1")
    assert t.host_header == "example.com:8443"
    t = check_url("http://[2001:db8::1]/", 2048)
    assert (t.host, t.port, t.host_header) == ("2001:db8::1", 80, "[2001:db8::1]")
    t = check_url("http://bücher.example/", 2048)
    assert t.host == "xn--bcher-kva.example"


def test_event_kinds() -> None:
    assert "read" not in WEBHOOK_KINDS and "message" in WEBHOOK_KINDS
    assert "user_updated" not in WEBHOOK_KINDS  # a person's change, copied per conversation
    assert check_events(["reaction", "message"]) == ("message", "reaction")
    for bad in ([], ["message", "message"], ["read"], ["x"], [*WEBHOOK_KINDS, "message"]):
        with pytest.raises(InvalidRequest):
            check_events(bad)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"kind":"message"}'
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("whsec_x", "1700000000", body) == "sha256=" + expected


def test_the_delivery_id_is_the_jobs() -> None:
    assert delivery_id("webhook:a:1") == delivery_id("webhook:a:1")
    assert delivery_id("webhook:a:1") != delivery_id("webhook:a:2")


def test_the_web_admin_offers_every_webhook_kind() -> None:
    """The web client's list of event kinds (web/webhooks.js) is the server's."""
    import re
    from pathlib import Path

    js = (Path(__file__).resolve().parents[3] / "src/tidings/web/webhooks.js").read_text()
    kinds = re.findall(r"'(\w+)'", js.split("export const KINDS = [", 1)[1].split("];", 1)[0])
    assert sorted(kinds) == sorted(WEBHOOK_KINDS)
