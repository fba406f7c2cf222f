"""TLS for the server, and the refusal to serve plain HTTP beyond loopback. (The login
and rate limits reach the services as SecurityLimits, filled by app/settings.py's
limits_from.)"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

import uvicorn

from tidings.app.settings import Settings


class InsecureBind(Exception):
    """Plain HTTP on an address other machines can reach, without --insecure-http."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume reachable


def check_bind(settings: Settings) -> None:
    """Refuse to serve plain HTTP beyond loopback unless the operator insists."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise InsecureBind("give both --tls-cert and --tls-key, or neither")
    if settings.tls_cert is not None or settings.insecure_http or is_loopback(settings.host):
        return
    raise InsecureBind(
        f"refusing to serve plain HTTP on {settings.host}: passwords and tokens would cross "
        "the network in clear text. Give --tls-cert and --tls-key to serve HTTPS, or put a "
        "TLS-terminating load balancer in front and pass --insecure-http (see docs/security.md)."
    )


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for TLS (empty without a certificate)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    for path in (settings.tls_cert, settings.tls_key):
        if not path.is_file():
            raise FileNotFoundError(f"TLS file not found: {path}")
    return {
        "ssl_certfile": str(settings.tls_cert),
        "ssl_keyfile": str(settings.tls_key),
        "ssl_version": ssl.PROTOCOL_TLS_SERVER,
    }


# The TLS 1.2 suites offered: forward secrecy (ECDHE) and an AEAD cipher only, no CBC, no
# RSA key exchange. TLS 1.3's suites are all AEAD and are not affected by this list.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"


class TlsConfig(uvicorn.Config):
    """uvicorn's Config, with TLS 1.2 as the oldest protocol version it accepts and only
    AEAD suites under TLS 1.2."""

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
            self.ssl.set_ciphers(TLS12_CIPHERS)
