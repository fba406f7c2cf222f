"""The LDAP / Active Directory adapter of the Directory port, on ldap3.

ldap3 is synchronous: every operation runs in this adapter's own small thread pool
(`ldap_max_concurrent` threads, so that a slow directory never takes the threads that
hash passwords), bounded by ldap3's connect and receive timeouts, and the caller's wait
by an asyncio timeout over the whole operation. Each operation opens its own
connections and closes them (a directory sign-in is rare next to messages; nothing is
pooled that could be left bound as a user).

- Sign-in, search mode (default): bind as the service account, find the one entry of
  the user filter, then bind as that entry's DN with the password on a second
  connection. Direct mode: bind as `ldap_user_dn_template`, then read the entry as the
  user. An empty password is refused before anything is sent: an LDAP simple bind with a
  DN and no password is an *unauthenticated* bind that many servers accept.
- TLS: ldaps:// or StartTLS, the certificate always checked (against `ldap_ca_file`, or
  the system's CAs), the host name too.
- Errors: a socket, TLS or protocol failure, a busy or unavailable server, a service
  account that cannot bind: core.errors.Unavailable (503). Only result 49 (invalid
  credentials) and its kin on the *user's* bind are a refusal.
- Secrets: the service account's password and the user's are never logged; ldap3's own
  messages name DNs and result codes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn
from pydantic import SecretStr

from tidings.core.errors import Unavailable
from tidings.core.models import ExternalProfile, OrgRole
from tidings.identity.ports import CheckStep, DirectoryEntry

log = structlog.get_logger(__name__)
T = TypeVar("T")

PROVIDER = "ldap"
# Bind results that mean "not this password" (or not this account), not an outage:
# invalidCredentials, inappropriateAuthentication, insufficientAccessRights,
# unwillingToPerform (some servers, for a locked or disabled account).
REFUSED_RESULTS = frozenset({48, 49, 50, 53})
ROLE_RANK = {OrgRole.GUEST: 0, OrgRole.MEMBER: 1, OrgRole.ADMIN: 2}
AD_ACCOUNT_DISABLED = 0x2  # userAccountControl: ACCOUNTDISABLE
TRUE_WORDS = frozenset({"true", "1", "yes", "on", "disabled", "locked"})
MEMBER_ATTRIBUTES = ("member", "uniqueMember", "memberUid")


@dataclass(frozen=True, slots=True)
class LdapConfig:
    """The ldap_* settings (app/settings.py holds every default and description; the
    container fills this with app/settings.py:limits_from)."""

    ldap_url: str | None
    ldap_bind_dn: str
    ldap_bind_password: SecretStr | None
    ldap_user_base: str
    ldap_user_filter: str
    ldap_sync_filter: str
    ldap_bind_mode: str
    ldap_user_dn_template: str
    ldap_start_tls: bool
    ldap_ca_file: Path | None
    ldap_username_attribute: str
    ldap_display_name_attribute: str
    ldap_email_attribute: str
    ldap_uuid_attribute: str
    ldap_disabled_attribute: str
    ldap_department_source: str
    ldap_department_attribute: str
    ldap_group_base: str
    ldap_group_roles: dict[str, str]
    ldap_default_role: str
    ldap_connect_timeout_seconds: float
    ldap_timeout_seconds: float
    ldap_max_concurrent: int
    ldap_sync_max_entries: int

    @property
    def sync_filter(self) -> str:
        return self.ldap_sync_filter or self.ldap_user_filter.replace("{username}", "*")


def norm_dn(dn: str) -> str:
    """A DN compared case-insensitively and without spaces around its separators."""
    try:
        return ",".join(f"{attr.lower()}={value.lower()}" for attr, value, _ in parse_dn(dn))
    except LDAPException:
        return dn.strip().lower()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _Attrs:
    """An entry's raw attributes by lower-case name."""

    def __init__(self, raw: dict[str, list[bytes]]) -> None:
        self.raw = {k.lower(): v for k, v in raw.items()}

    def values(self, name: str) -> list[bytes]:
        return list(self.raw.get(name.lower(), [])) if name else []

    def first(self, *names: str) -> str | None:
        for name in names:
            for value in self.values(name):
                text = _text(value).strip()
                if text:
                    return text
        return None


class LdapDirectory:
    """The Directory port on an LDAP server (or a pool of them: several URLs)."""

    provider = PROVIDER

    def __init__(self, config: LdapConfig) -> None:
        if not config.ldap_url:
            raise ValueError("ldap_url is not set: LDAP is off")
        self.c = config
        self._pool = ThreadPoolExecutor(config.ldap_max_concurrent, "ldap")
        self._servers = [self._server(url) for url in config.ldap_url.split()]

    # --- the port --------------------------------------------------------------------
    async def authenticate(self, username: str, password: str) -> DirectoryEntry | None:
        if not password or not username:
            return None  # never an unauthenticated bind
        return await self._run(lambda: self._authenticate(username, password))

    async def entries(self) -> list[DirectoryEntry]:
        return await self._run(self._entries, operations=4 + self.c.ldap_sync_max_entries // 500)

    async def check(self, username: str | None, password: str | None) -> list[CheckStep]:
        try:
            return await self._run(lambda: self._check(username, password), operations=8)
        except Unavailable as exc:
            return [CheckStep("directory", False, str(exc))]

    def describe(self) -> dict[str, object]:
        c = self.c
        return {
            "url": c.ldap_url,
            "bind_dn": c.ldap_bind_dn,
            "bind_password_set": c.ldap_bind_password is not None
            and bool(c.ldap_bind_password.get_secret_value()),
            "user_base": c.ldap_user_base,
            "user_filter": c.ldap_user_filter,
            "sync_filter": c.sync_filter,
            "bind_mode": c.ldap_bind_mode,
            "user_dn_template": c.ldap_user_dn_template,
            "start_tls": c.ldap_start_tls,
            "ca_file": None if c.ldap_ca_file is None else str(c.ldap_ca_file),
            "attributes": {
                "username": c.ldap_username_attribute or "uid, else sAMAccountName",
                "display_name": c.ldap_display_name_attribute or "displayName, else cn",
                "email": c.ldap_email_attribute,
                "uuid": c.ldap_uuid_attribute or "entryUUID, else objectGUID",
                "disabled": c.ldap_disabled_attribute,
            },
            "department_source": c.ldap_department_source,
            "department_attribute": c.ldap_department_attribute,
            "group_base": self._group_base(),
            "group_roles": dict(c.ldap_group_roles),
            "default_role": c.ldap_default_role,
            "connect_timeout_seconds": c.ldap_connect_timeout_seconds,
            "timeout_seconds": c.ldap_timeout_seconds,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- running off the loop --------------------------------------------------------
    async def _run(self, work: Callable[[], T], operations: int = 6) -> T:
        """`work` in the pool; Unavailable when the directory fails or the whole
        operation outlasts `operations` directory round trips."""
        bound = self.c.ldap_connect_timeout_seconds + operations * self.c.ldap_timeout_seconds
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(bound):
                return await loop.run_in_executor(self._pool, work)
        except TimeoutError:
            raise Unavailable(f"the directory did not answer within {bound:g} s") from None
        except LDAPException as exc:
            log.warning("ldap_failed", error=_describe(exc))
            raise Unavailable(f"the directory failed: {_describe(exc)}") from None
        except OSError as exc:
            log.warning("ldap_failed", error=str(exc))
            raise Unavailable(f"the directory is unreachable: {exc}") from None

    # --- connections -----------------------------------------------------------------
    def _server(self, url: str) -> Server:
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f"ldap_url must be ldap://host[:port] or ldaps://host[:port]: {url!r}")
        secure = parts.scheme == "ldaps"
        tls = None
        if secure or self.c.ldap_start_tls:
            tls = Tls(
                validate=ssl.CERT_REQUIRED,
                version=ssl.PROTOCOL_TLS_CLIENT,
                ca_certs_file=None if self.c.ldap_ca_file is None else str(self.c.ldap_ca_file),
            )
        return Server(
            parts.hostname,
            port=parts.port or (636 if secure else 389),
            use_ssl=secure,
            tls=tls,
            get_info=NONE,
            connect_timeout=self.c.ldap_connect_timeout_seconds,
        )

    def _connect(self, user: str | None, password: str | None) -> Connection:
        """An open connection (TLS started when asked), not bound yet: to the first of
        the servers that answers, in the order of ldap_url."""
        failure: Exception | None = None
        for server in self._servers:
            conn = Connection(
                server,
                user=user or None,
                password=password or None,
                read_only=True,
                raise_exceptions=False,
                # whole seconds: ldap3 packs it into SO_RCVTIMEO
                receive_timeout=math.ceil(self.c.ldap_timeout_seconds),
                auto_referrals=False,
            )
            try:
                conn.open()
            except (LDAPException, OSError) as exc:
                failure = exc
                continue
            if self.c.ldap_start_tls and not server.ssl and not conn.start_tls():
                conn.unbind()
                raise Unavailable(f"StartTLS failed: {_result(conn)}")
            return conn
        assert failure is not None
        raise failure

    def _service(self) -> Connection:
        """A connection bound as the service account (or anonymous, without one)."""
        c = self.c
        password = None if c.ldap_bind_password is None else c.ldap_bind_password.get_secret_value()
        conn = self._connect(c.ldap_bind_dn or None, password if c.ldap_bind_dn else None)
        if not conn.bind():
            detail = _result(conn)
            conn.unbind()
            # the service account is configuration: its refusal is an outage, never
            # the user's wrong password
            raise Unavailable(f"the service account cannot bind: {detail}")
        return conn

    @contextlib.contextmanager
    def _bound(self) -> Iterator[Connection]:
        conn = self._service()
        try:
            yield conn
        finally:
            conn.unbind()

    # --- sign-in ---------------------------------------------------------------------
    def _authenticate(self, username: str, password: str) -> DirectoryEntry | None:
        if self.c.ldap_bind_mode == "direct":
            return self._authenticate_direct(username, password)
        with self._bound() as conn:
            found = self._find(conn, username)
            if found is None:
                return None
            dn, attrs = found
            if not self._bind_as(dn, password):
                return None
            return self._entry(conn, dn, attrs)

    def _authenticate_direct(self, username: str, password: str) -> DirectoryEntry | None:
        template = self.c.ldap_user_dn_template
        if not template:
            raise Unavailable("ldap_bind_mode is direct but ldap_user_dn_template is empty")
        who = template.replace("{username}", escape_rdn(username))
        conn = self._connect(who, password)
        try:
            if not conn.bind():
                result = conn.result.get("result")
                if result in REFUSED_RESULTS:
                    return None
                raise Unavailable(f"the directory refused the bind: {_result(conn)}")
            found = self._find(conn, username)
            if found is None:
                return None
            return self._entry(conn, *found)
        finally:
            conn.unbind()

    def _bind_as(self, dn: str, password: str) -> bool:
        conn = self._connect(dn, password)
        try:
            if conn.bind():
                return True
            if conn.result.get("result") in REFUSED_RESULTS:
                return False
            raise Unavailable(f"the directory failed the sign-in: {_result(conn)}")
        finally:
            conn.unbind()

    def _find(self, conn: Connection, username: str) -> tuple[str, _Attrs] | None:
        query = self.c.ldap_user_filter.replace("{username}", escape_filter_chars(username))
        entries = self._search(conn, self.c.ldap_user_base, query, size_limit=2)
        if len(entries) != 1:
            if len(entries) > 1:
                log.warning("ldap_ambiguous_username", filter=self.c.ldap_user_filter)
            return None
        return entries[0]

    # --- sync ------------------------------------------------------------------------
    def _entries(self) -> list[DirectoryEntry]:
        limit = self.c.ldap_sync_max_entries
        with self._bound() as conn:
            groups = self._groups(conn)
            found: list[DirectoryEntry] = []
            pages = conn.extend.standard.paged_search(
                self.c.ldap_user_base,
                self.c.sync_filter,
                SUBTREE,
                attributes=self._attributes(),
                paged_size=min(500, limit + 1),
                generator=True,
            )
            for item in pages:
                if item.get("type") != "searchResEntry":
                    continue
                if len(found) >= limit:
                    raise Unavailable(
                        f"the directory has more than ldap_sync_max_entries ({limit}) entries "
                        "to sync: nothing was changed"
                    )
                found.append(self._mapped(item["dn"], _Attrs(item["raw_attributes"]), groups))
            result = conn.result.get("result", 0)
            if result not in (0, None, 32):  # 32: no such base (an empty answer)
                raise Unavailable(f"the directory's search failed: {_result(conn)}")
            return found

    # --- check -----------------------------------------------------------------------
    def _check(self, username: str | None, password: str | None) -> list[CheckStep]:
        steps: list[CheckStep] = []
        where = " ".join(str(s) for s in self._servers)
        try:
            conn = self._connect(None, None)
            conn.unbind()
            tls = (
                "ldaps"
                if self._servers[0].ssl
                else ("StartTLS" if self.c.ldap_start_tls else "no TLS")
            )
            steps.append(CheckStep("connect", True, f"{where} ({tls})"))
        except (LDAPException, OSError, Unavailable) as exc:
            steps.append(CheckStep("connect", False, _describe(exc)))
            return steps
        try:
            with self._bound() as conn:
                who = self.c.ldap_bind_dn or "anonymous"
                steps.append(CheckStep("bind", True, f"as {who}"))
                sample = self._search(conn, self.c.ldap_user_base, self.c.sync_filter, 5)
                steps.append(
                    CheckStep(
                        "search",
                        bool(sample),
                        f"{len(sample)}{'+' if len(sample) == 5 else ''} entries match "
                        f"{self.c.sync_filter} under {self.c.ldap_user_base or '(root)'}",
                    )
                )
                if username:
                    found = self._find(conn, username)
                    if found is None:
                        steps.append(CheckStep("find", False, f"no single entry for {username!r}"))
                        return steps
                    entry = self._entry(conn, *found)
                    p = entry.profile
                    steps.append(
                        CheckStep(
                            "find",
                            True,
                            f"{entry.dn}: username {p.username!r}, display name "
                            f"{p.display_name!r}, email {p.email!r}, departments "
                            f"{list(p.departments or ())}, role "
                            f"{None if p.role is None else p.role.value}, disabled {p.disabled}",
                        )
                    )
        except (LDAPException, OSError, Unavailable) as exc:
            steps.append(CheckStep("bind", False, _describe(exc)))
            return steps
        if username and password:
            try:
                ok = self._authenticate(username, password) is not None
                steps.append(CheckStep("sign-in", ok, "password accepted" if ok else "refused"))
            except (LDAPException, OSError, Unavailable) as exc:
                steps.append(CheckStep("sign-in", False, _describe(exc)))
        return steps

    # --- mapping ---------------------------------------------------------------------
    def _attributes(self) -> list[str]:
        c = self.c
        names = [
            c.ldap_username_attribute or "uid",
            "sAMAccountName",
            c.ldap_display_name_attribute or "displayName",
            "cn",
            c.ldap_email_attribute,
            c.ldap_uuid_attribute or "entryUUID",
            "objectGUID",
            c.ldap_disabled_attribute,
            "memberOf",
        ]
        if c.ldap_department_source == "attribute":
            names.append(c.ldap_department_attribute)
        return list(dict.fromkeys(n for n in names if n))

    def _search(
        self, conn: Connection, base: str, query: str, size_limit: int
    ) -> list[tuple[str, _Attrs]]:
        ok = conn.search(
            base,
            query,
            SUBTREE,
            attributes=self._attributes(),
            size_limit=size_limit,
            time_limit=max(1, int(self.c.ldap_timeout_seconds)),
        )
        result = conn.result.get("result", 0)
        # 4: size limit exceeded (more than asked: still an answer); 32: no such base
        if not ok and result not in (0, 4, 32):
            raise Unavailable(f"the directory's search failed: {_result(conn)}")
        return [
            (item["dn"], _Attrs(item["raw_attributes"]))
            for item in conn.response or []
            if item.get("type") == "searchResEntry"
        ]

    def _group_base(self) -> str:
        if self.c.ldap_group_base:
            return self.c.ldap_group_base
        parts = self.c.ldap_user_base.split(",", 1)
        return parts[1].strip() if len(parts) == 2 else self.c.ldap_user_base

    def _groups(self, conn: Connection) -> dict[str, tuple[OrgRole, set[str], set[str]]]:
        """Each mapped group (by its normalized DN): its role, its members' DNs
        (normalized) and memberUid usernames."""
        groups: dict[str, tuple[OrgRole, set[str], set[str]]] = {}
        for key, role_name in self.c.ldap_group_roles.items():
            role = OrgRole(role_name)
            if "=" in key:
                ok = conn.search(
                    key,
                    "(objectClass=*)",
                    "BASE",
                    attributes=list(MEMBER_ATTRIBUTES),
                    time_limit=max(1, int(self.c.ldap_timeout_seconds)),
                )
                result = conn.result.get("result", 0)
                if not ok and result not in (0, 32):
                    raise Unavailable(f"the directory's group search failed: {_result(conn)}")
            else:
                ok = conn.search(
                    self._group_base(),
                    f"(cn={escape_filter_chars(key)})",
                    SUBTREE,
                    attributes=list(MEMBER_ATTRIBUTES),
                    size_limit=5,
                    time_limit=max(1, int(self.c.ldap_timeout_seconds)),
                )
            for item in conn.response or []:
                if item.get("type") != "searchResEntry":
                    continue
                attrs = _Attrs(item["raw_attributes"])
                dns = {
                    norm_dn(_text(v)) for a in ("member", "uniqueMember") for v in attrs.values(a)
                }
                uids = {_text(v).strip().lower() for v in attrs.values("memberUid")}
                groups[norm_dn(item["dn"])] = (role, dns, uids)
        return groups

    def _entry(self, conn: Connection, dn: str, attrs: _Attrs) -> DirectoryEntry:
        groups = self._groups(conn) if self.c.ldap_group_roles else {}
        return self._mapped(dn, attrs, groups)

    def _mapped(
        self, dn: str, attrs: _Attrs, groups: dict[str, tuple[OrgRole, set[str], set[str]]]
    ) -> DirectoryEntry:
        c = self.c
        username = (
            attrs.first(
                *(
                    [c.ldap_username_attribute]
                    if c.ldap_username_attribute
                    else ["uid", "sAMAccountName"]
                )
            )
            or ""
        )
        display = attrs.first(
            *(
                [c.ldap_display_name_attribute]
                if c.ldap_display_name_attribute
                else ["displayName", "cn"]
            )
        )
        email = attrs.first(c.ldap_email_attribute) if c.ldap_email_attribute else None
        profile = ExternalProfile(
            username=username,
            display_name=display,
            email=email,
            departments=self._departments(dn, attrs),
            role=self._role(dn, username, attrs, groups),
            disabled=self._disabled(attrs),
        )
        return DirectoryEntry(dn=dn, subject=self._subject(dn, attrs), profile=profile)

    def _subject(self, dn: str, attrs: _Attrs) -> str:
        names = (
            [self.c.ldap_uuid_attribute]
            if self.c.ldap_uuid_attribute
            else ["entryUUID", "objectGUID"]
        )
        for name in names:
            for value in attrs.values(name):
                if len(value) == 16 and name.lower() == "objectguid":
                    return str(uuid.UUID(bytes_le=bytes(value)))  # AD: binary, little-endian
                text = _text(value).strip().lower()
                if text:
                    return text
        return "dn:" + norm_dn(dn)  # no stable id: the DN (a moved entry is a new one)

    def _departments(self, dn: str, attrs: _Attrs) -> tuple[str, ...] | None:
        source = self.c.ldap_department_source
        if source == "none":
            return None
        if source == "attribute":
            return tuple(
                _text(v).strip()
                for v in attrs.values(self.c.ldap_department_attribute)
                if _text(v).strip()
            )
        try:
            rdns = parse_dn(dn)
            base = parse_dn(self.c.ldap_user_base) if self.c.ldap_user_base else []
        except LDAPException:
            return ()
        inner = rdns[1 : len(rdns) - len(base)] if base else rdns[1:]
        names = [value.replace("/", "-") for attr, value, _ in inner if attr.lower() == "ou"]
        return ("/".join(reversed(names)),) if names else ()

    def _role(
        self,
        dn: str,
        username: str,
        attrs: _Attrs,
        groups: dict[str, tuple[OrgRole, set[str], set[str]]],
    ) -> OrgRole | None:
        if not self.c.ldap_group_roles:
            return None
        mine = norm_dn(dn)
        member_of = {norm_dn(_text(v)) for v in attrs.values("memberOf")}
        roles = [
            role
            for group_dn, (role, dns, uids) in groups.items()
            if mine in dns or username.lower() in uids or group_dn in member_of
        ]
        if not roles:
            return OrgRole(self.c.ldap_default_role)
        return max(roles, key=ROLE_RANK.__getitem__)

    def _disabled(self, attrs: _Attrs) -> bool:
        name = self.c.ldap_disabled_attribute
        value = attrs.first(name) if name else None
        if value is None:
            return False
        if name.lower() == "useraccountcontrol":
            try:
                return bool(int(value) & AD_ACCOUNT_DISABLED)
            except ValueError:
                return False
        return value.strip().lower() in TRUE_WORDS


def _result(conn: Connection) -> str:
    r: dict[str, Any] = conn.result or {}
    return f"{r.get('description', 'error')} ({r.get('result')}) {r.get('message', '')}".strip()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
