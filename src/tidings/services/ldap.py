"""LDAP / Active Directory: sign-in with the directory's password, the periodic sync, the
admin's check. The directory is the Directory port (identity/ports.py; identity/ldap.py
on ldap3), given by the container when `ldap_url` is set; provisioning is the shared
services/identity.py.

- Sign-in (`sign_in`, called by AuthService.login for a name that is no local account):
  the directory checks the password, then the account is provisioned just in time and
  brought in step with the entry. Directory errors are Unavailable (503), never a wrong
  password.
- Sync (`sync`, the worker's periodic task and `tidings ldap sync`): every entry of the
  sync filter is provisioned (an entry disabled in the directory that has no account yet
  is skipped, not created); every account linked to an entry that is gone is disabled. A
  directory that answers with no entry at all while accounts are linked is taken for a
  misconfiguration (a wrong base or filter): nothing is disabled, the run says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from tidings.core.audit import AuditAction
from tidings.core.errors import Conflict, Forbidden, InvalidOperation, InvalidRequest
from tidings.core.jobs import Job, JobPolicy
from tidings.core.models import User
from tidings.core.rules import check_admin, username_key
from tidings.identity.ports import CheckStep, Directory, DirectoryEntry
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.identity import Change, IdentityService
from tidings.services.jobs import JobService
from tidings.services.ratelimit import Action, RateLimiter

log = structlog.get_logger(__name__)
TOUCH_CHUNK = 500
ACTIONS = ("created", "updated", "disabled", "linked", "skipped", "error")


@dataclass(frozen=True, slots=True)
class SyncRow:
    """One account of a sync: what happened (or, dry, would happen) and why."""

    username: str
    action: str  # created | updated | disabled | linked | unchanged | skipped | error
    fields: dict[str, object] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SyncReport:
    dry_run: bool
    entries: int
    rows: list[SyncRow]
    error: str = ""

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def changed(self) -> list[SyncRow]:
        return [r for r in self.rows if r.action not in ("unchanged",)]


SYNC_JOB = "identity.ldap_sync"


class LdapService:
    def __init__(
        self,
        deps: Deps,
        identity: IdentityService,
        directory: Directory | None,
        jobs: JobService | None = None,
    ) -> None:
        self.d = deps
        self.identity = identity
        self.directory = directory
        self.jobs = jobs
        self.limiter = RateLimiter(deps)
        if jobs is not None:  # the directory may come later (services/config.py)
            jobs.register(
                SYNC_JOB,
                self._sync_job,
                # a sync is idempotent; a failed one is retried a few times, then the
                # next interval's job tries again
                JobPolicy(max_attempts=3, timeout_seconds=deps.identity.ldap_sync_timeout_seconds),
            )

    async def _sync_job(self, job: Job) -> None:
        report = await self.sync(None, dry_run=False)
        if report.error:
            log.warning("ldap_sync_refused", error=report.error)

    async def schedule_sync(self) -> str | None:
        """Enqueue this interval's sync job (the worker calls it now and then). Its id is
        the interval's number, so that every worker node of a cluster enqueues the same
        one job per interval. None when LDAP or the periodic sync is off."""
        interval = self.d.identity.ldap_sync_interval_seconds
        if self.directory is None or self.jobs is None or interval <= 0:
            return None
        slot = int(self.d.clock.now().timestamp()) // interval
        async with self.d.store.write() as tx:
            return await self.jobs.enqueue(
                tx, SYNC_JOB, {"slot": slot}, job_id=f"{SYNC_JOB}:{slot}"
            )

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def set_directory(self, directory: Directory | None) -> None:
        """Put another directory in force (the admins changed the settings; None: LDAP
        off), closing the one before."""
        old, self.directory = self.directory, directory
        if old is not None and old is not directory:
            old.close()

    def _directory(self) -> Directory:
        if self.directory is None:
            # configuration, not an outage: nothing to retry
            raise InvalidOperation("LDAP is off (the setting ldap_url is not set)")
        return self.directory

    async def sign_in(self, username: str, password: str) -> User | None:
        """The account of `username` when the directory accepts `password` (created or
        brought in step now); None when it does not. Unavailable when the directory
        cannot answer."""
        directory = self._directory()
        entry = await directory.authenticate(username, password)
        if entry is None:
            return None
        return await self.identity.provision(directory.provider, entry.subject, entry.profile)

    async def check_password(self, user: User, password: str) -> bool:
        """Whether the directory accepts `password` for this account (its entry found by
        the account's username and linked to it). Unavailable when it cannot answer."""
        directory = self._directory()
        entry = await directory.authenticate(user.username, password)
        if entry is None:
            return False
        linked = await self.identity.linked(directory.provider, entry.subject)
        return linked is not None and linked.id == user.id

    async def sync(self, actor: User | None, *, dry_run: bool = False) -> SyncReport:
        """Bring every account in step with the directory (see the module's doc).
        `actor` None: the worker or the command line."""
        if actor is not None:
            check_admin(actor, "sync the directory")
            await self.limiter.check(Action.DIRECTORY, actor.id, None)
        directory = self._directory()
        entries = await directory.entries()
        linked = await self.identity.links(directory.provider)
        rows: list[SyncRow] = []
        seen: set[str] = set()
        unchanged: list[str] = []
        for entry in entries:
            seen.add(entry.subject)
            row = await self._sync_one(directory.provider, entry, dry_run)
            rows.append(row)
            if row.action == "unchanged":
                unchanged.append(entry.subject)
        if unchanged and not dry_run:
            await self._touch(directory.provider, unchanged)
        gone = [(subject, user) for subject, user in linked if subject not in seen]
        error = ""
        if not entries and linked:
            error = (
                f"the directory returned no entry but {len(linked)} accounts are linked to it: "
                "check ldap_user_base and the sync filter; nothing was disabled"
            )
            gone = []
        for subject, user in gone:
            if user.disabled:
                continue
            if user.role.value == "owner":
                rows.append(SyncRow(user.username, "skipped", detail="an owner is never disabled"))
                continue
            if not dry_run:
                await self.identity.disable(directory.provider, subject, "gone from the directory")
            rows.append(
                SyncRow(user.username, "disabled", {"disabled": True}, "gone from the directory")
            )
        report = SyncReport(dry_run, len(entries), rows, error)
        if not dry_run and (report.error or report.changed):
            async with self.d.store.write() as tx:
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.IDENTITY_SYNCED,
                    actor_id=None if actor is None else actor.id,
                    details={
                        "provider": directory.provider,
                        "entries": len(entries),
                        **{a: report.count(a) for a in ACTIONS if report.count(a)},
                        **({"error": error} if error else {}),
                    },
                )
        log.info(
            "ldap_sync",
            dry_run=dry_run,
            entries=len(entries),
            created=report.count("created"),
            updated=report.count("updated"),
            disabled=report.count("disabled"),
            errors=report.count("error"),
        )
        return report

    async def _sync_one(self, provider: str, entry: DirectoryEntry, dry_run: bool) -> SyncRow:
        name = entry.profile.username or entry.dn
        try:
            plan: Change = await self.identity.plan(provider, entry.subject, entry.profile)
            if plan.action == "created" and entry.profile.disabled:
                return SyncRow(name, "skipped", detail="disabled in the directory, no account")
            if not dry_run and plan.action != "unchanged":
                await self.identity.provision(provider, entry.subject, entry.profile)
            return SyncRow(name, plan.action, plan.fields)
        except (InvalidRequest, Conflict) as exc:
            return SyncRow(name, "error", detail=exc.message)

    async def _touch(self, provider: str, subjects: list[str]) -> None:
        """The directory vouched for these unchanged accounts now (a few hundred a
        transaction)."""
        for start in range(0, len(subjects), TOUCH_CHUNK):
            async with self.d.store.write() as tx:
                now = self.d.clock.now()
                for subject in subjects[start : start + TOUCH_CHUNK]:
                    await tx.touch_link(provider, subject, now)

    async def check(
        self, actor: User | None, username: str | None = None, password: str | None = None
    ) -> list[CheckStep]:
        """Connect, bind, search, and optionally find and sign in one account: for the
        admin page and `tidings ldap test`. Writes nothing."""
        if actor is not None:
            check_admin(actor, "test the directory")
            await self.limiter.check(Action.DIRECTORY, actor.id, None)
        if self.directory is None:
            return [CheckStep("configuration", False, "LDAP is off: ldap_url is not set")]
        if username and password:  # a sign-in attempt: under the login rate limit too
            await self.limiter.check(Action.LOGIN, username_key(username)[:120], None)
        steps = await self.directory.check(username, password)
        async with self.d.store.write() as tx:
            await record(
                tx,
                self.d.clock,
                AuditAction.IDENTITY_LDAP_TESTED,
                actor_id=None if actor is None else actor.id,
                details={
                    "username": username,
                    "with_password": bool(password),
                    "ok": all(s.ok for s in steps),
                    "failed": [s.step for s in steps if not s.ok],
                },
            )
        return steps

    def describe(self, actor: User | None) -> dict[str, object]:
        """The LDAP configuration, without its secrets."""
        if actor is not None and not actor.role.is_admin:
            raise Forbidden("only admins see the directory's configuration")
        if self.directory is None:
            return {"enabled": False}
        return {"enabled": True, **self.directory.describe()}
