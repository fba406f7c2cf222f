"""What services ask of a directory (LDAP / Active Directory): identity/ldap.py implements
it with ldap3; app/container.py picks it when `ldap_url` is set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tidings.core.models import ExternalProfile


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One account of the directory, mapped: its DN, its stable id (`subject`: the
    entry's UUID) and the profile the settings' attribute mapping made of it."""

    dn: str
    subject: str
    profile: ExternalProfile


@dataclass(frozen=True, slots=True)
class CheckStep:
    """One step of a directory check (`tidings ldap test`, the admin page)."""

    step: str
    ok: bool
    detail: str


class Directory(Protocol):
    """Every method runs the directory's blocking client off the event loop, each
    operation bounded by the settings' timeouts. An unreachable or failing directory
    raises core.errors.Unavailable, never a refusal."""

    @property
    def provider(self) -> str:
        """The provider name of its identities ("ldap")."""
        ...

    async def authenticate(self, username: str, password: str) -> DirectoryEntry | None:
        """The entry of `username` when `password` is its password; None when there is no
        such entry, or the password is wrong (or empty: never an anonymous bind)."""
        ...

    async def entries(self) -> list[DirectoryEntry]:
        """Every account the sync provisions (the sync filter under the user base);
        Unavailable rather than a partial list."""
        ...

    async def check(self, username: str | None, password: str | None) -> list[CheckStep]:
        """Connect, bind as the service account, search; with a username (and password),
        find (and sign in) that account. Never raises: a failed step says why."""
        ...

    def describe(self) -> dict[str, object]:
        """The configuration, secrets left out (the admin page, `tidings ldap test`)."""
        ...

    def close(self) -> None:
        """Let go of its connections (another configuration replaces it)."""
        ...
