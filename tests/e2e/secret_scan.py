"""What counts as a secret in a log line: the passwords the tests use, anything shaped
like a bearer token, TOTP provisioning URIs, Authorization headers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

KNOWN_PASSWORDS = (
    "owner-password-for-tests",
    "plum-orbit-123",
    "plum-orbit-456",
    "another-password",
    "a-new-password",
    "tidings-test-secret-for-seaweedfs",  # tests/blob_servers.py: the S3 secret key
)
# new_token(): secrets.token_urlsafe(32), 43 characters of base64url standing alone
TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
MARKERS = ("otpauth://", "Bearer ", "secret=")


def leaks(text: str, extra: Iterable[str] = ()) -> list[str]:
    """Every secret (or secret-shaped string) found in `text`, with its line."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for secret in (*KNOWN_PASSWORDS, *MARKERS, *extra):
            if secret and secret in line:
                found.append(f"line {number}: {secret!r} in {line[:200]}")
        for match in TOKEN_SHAPED.finditer(line):
            found.append(f"line {number}: token-shaped {match.group()!r} in {line[:200]}")
    return found


def scan(paths: Iterable[Path], extra: Iterable[str] = ()) -> list[str]:
    extra = list(extra)
    return [
        f"{path.name} {leak}"
        for path in paths
        for leak in leaks(path.read_text(errors="replace"), extra)
    ]
