"""Security settings -> what the services need (SecurityLimits); TLS for the server."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import timedelta
from typing import Any

import uvicorn

from tidings.app.settings import Settings
from tidings.services.context import SecurityLimits


def security_limits(settings: Settings) -> SecurityLimits:
    return SecurityLimits(
        login_failures_before_delay=settings.login_failures_before_delay,
        login_failures_before_lockout=settings.login_failures_before_lockout,
        login_address_failures_before_lockout=settings.login_address_failures_before_lockout,
        login_lockout=timedelta(seconds=settings.login_lockout_seconds),
        login_failure_window=timedelta(seconds=settings.login_failure_window_seconds),
        login_max_delay=timedelta(seconds=settings.login_max_delay_seconds),
        rate_window_seconds=float(settings.rate_window_seconds),
        rate_login_per_user=settings.rate_login_per_user,
        rate_login_per_address=settings.rate_login_per_address,
        rate_send_per_user=settings.rate_send_per_user,
        rate_send_per_address=settings.rate_send_per_address,
        rate_upload_per_user=settings.rate_upload_per_user,
        rate_upload_per_address=settings.rate_upload_per_address,
        totp_issuer=settings.totp_issuer,
    )


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


class TlsConfig(uvicorn.Config):
    """uvicorn's Config, with TLS 1.2 as the oldest protocol version it accepts."""

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
