"""What the server's keys (services/keyring.py) protect in the database, checked at start
and moved to the newest key on demand:

- `check`: every key id the database refers to (sealed TOTP secrets, sealed webhook
  secrets, the audit log's signed head) is one the server holds; else one clear error
  (`KeyProblem`) naming them.
- `prepare` (server start): `check`, then seal TOTP secrets stored as is (rows from
  before migration 0006) and give a log with entries but no signed head its head (an
  `audit_head_adopted` entry: from before 0006, or the head row was deleted).
- `rotate` (`tidings secrets rotate`): seal every TOTP and webhook secret under the
  newest key and sign the audit head with it, after checking the log; then the older
  keys may go.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.core.audit import AuditAction
from tidings.services.audit import AuditService, record
from tidings.services.config import reseal_secrets, secret_key_ids
from tidings.services.context import Deps
from tidings.services.keyring import UnknownKey
from tidings.store.ports import SealedSecret, Tx, WebhookSecret

BATCH = 200  # TOTP secrets resealed per transaction


class KeyProblem(Exception):
    """The database needs a key that the server does not hold (one line for the operator)."""


@dataclass(frozen=True, slots=True)
class KeyUse:
    """Which key ids the database refers to: TOTP secrets sealed per key id (None:
    stored as is), and the key of the audit log's signed head (None: no head)."""

    totp: dict[str | None, int]
    head: str | None
    webhooks: dict[str, int] = dataclasses.field(default_factory=dict)
    commands: dict[str, int] = dataclasses.field(default_factory=dict)
    config: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rotation:
    key_id: str  # the newest key: everything is under it now
    resealed: int
    forgotten: int  # second factors removed because their key is lost (--forget-lost)
    unused: list[str]  # keys held that nothing uses any more: they may be removed


class SecretsService:
    def __init__(self, deps: Deps, audit: AuditService) -> None:
        self.d = deps
        self.audit = audit

    async def usage(self) -> KeyUse:
        async with self.d.store.read() as tx:
            totp = await tx.second_factor_key_ids()
            head = await tx.get_audit_head()
            webhooks = await tx.webhook_key_ids()
            commands = await tx.command_key_ids()
            config = await secret_key_ids(tx)
        return KeyUse(totp, None if head is None else head.key_id, webhooks, commands, config)

    async def check(self) -> KeyUse:
        """Raise KeyProblem when the database refers to a key not held."""
        use = await self.usage()
        held = set(self.d.keyring.ids)
        lost = sorted({k for k in use.totp if k is not None and k not in held})
        problems = [f"{use.totp[k]} TOTP secrets are sealed under key {k}" for k in lost]
        problems += [
            f"{n} webhook secrets are sealed under key {k}"
            for k, n in sorted(use.webhooks.items())
            if k not in held
        ]
        problems += [
            f"{n} slash-command secrets are sealed under key {k}"
            for k, n in sorted(use.commands.items())
            if k not in held
        ]
        problems += [
            f"{n} runtime configuration secrets are sealed under key {k}"
            for k, n in sorted(use.config.items())
            if k not in held
        ]
        if use.head is not None and use.head not in held:
            problems.append(f"the audit log's head is signed with key {use.head}")
        if problems:
            holding = ", ".join(self.d.keyring.ids) or "no key at all"
            raise KeyProblem(
                "; ".join(problems) + f", which this server does not hold (it holds "
                f"{holding}): give it the key (secret_keys, or the key file), or if the key "
                "is lost for good, `tidings secrets rotate --forget-lost` (docs/security.md)"
            )
        return use

    async def prepare(self) -> None:
        """At server start: check the keys, seal what is stored as is, adopt a head."""
        use = await self.check()
        if use.totp.get(None):
            await self._reseal(None, forget=False)
        if use.head is None:
            async with self.d.store.write() as tx:
                if await tx.get_audit_head() is None and await tx.list_audit(0, 1):
                    await record(
                        tx,
                        self.d.clock,
                        AuditAction.AUDIT_HEAD_ADOPTED,
                        actor_id=None,
                        details={"reason": "no signed head"},
                    )

    async def rotate(self, forget_lost: bool = False) -> Rotation:
        """Seal every TOTP secret under the newest key and sign the audit head with it.
        The log is verified first (a head is never signed over a broken or truncated
        log); with `forget_lost`, second factors under a key not held are removed (their
        users enrol again) and a head signed with such a key is adopted."""
        keyring = self.d.keyring
        current = keyring.current().id
        use = await self.usage()
        held = set(keyring.ids)
        lost_head = use.head is not None and use.head not in held
        if not forget_lost:
            await self.check()
        check = await self.audit.verify(head=not lost_head)
        if not check.ok:
            raise KeyProblem(
                f"the audit log does not verify ({check.reason}): run `tidings audit "
                "verify`; nothing was rotated, so that no new signature covers it"
            )
        resealed = forgotten = 0
        for key_id in sorted(use.totp, key=lambda k: k or ""):
            if key_id != current:
                lost = key_id is not None and key_id not in held
                done, dropped = await self._reseal(key_id, forget=lost)
                resealed, forgotten = resealed + done, forgotten + dropped
        webhooks = await self._reseal_webhooks(use.webhooks, held, current)
        commands = await self._reseal_commands(use.commands, held, current)
        async with self.d.store.write() as tx:
            config, config_lost = await reseal_secrets(self.d, tx, held)
        async with self.d.store.write() as tx:
            details: dict[str, object] = {
                "key_id": current,
                "resealed": resealed,
                "forgotten": forgotten,
                "webhooks_resealed": webhooks,
                "commands_resealed": commands,
                "config_secrets_resealed": config,
            }
            if config_lost:
                details["config_secrets_forgotten"] = config_lost
            if lost_head:
                details["adopted_head_of_lost_key"] = use.head
            await record(  # moves the head: signed with the newest key
                tx, self.d.clock, AuditAction.SECRETS_ROTATED, actor_id=None, details=details
            )
        unused = [k for k in keyring.ids if k != current]
        return Rotation(current, resealed, forgotten, unused)

    async def _reseal_webhooks(self, use: dict[str, int], held: set[str], current: str) -> int:
        """Seal every webhook secret under the newest key. Those under a key not held
        (only with --forget-lost, `check` refused otherwise) cannot be opened: those
        webhooks are deleted (their receivers could not check a new secret either) and
        audited, and their owners register them again."""
        keyring = self.d.keyring

        async def under(tx: Tx, key_id: str) -> list[tuple[str, str]]:
            return [(i, s.sealed) for i, s in await tx.webhook_secrets_under(key_id)]

        async def store(tx: Tx, webhook_id: str, key_id: str, sealed: str) -> None:
            await tx.set_webhook_secret(webhook_id, WebhookSecret(sealed, key_id))

        return await self._reseal_signing(
            use, held, current, under, keyring.open_webhook, keyring.seal_webhook, store,
            lambda tx, webhook_id: tx.delete_webhook(webhook_id), AuditAction.WEBHOOK_DELETED,
        )  # fmt: skip

    async def _reseal_commands(self, use: dict[str, int], held: set[str], current: str) -> int:
        """As for webhooks: every slash command's signing secret under the newest key;
        those whose key is lost deleted (audited), and an admin registers them again."""
        keyring = self.d.keyring

        async def under(tx: Tx, key_id: str) -> list[tuple[str, str]]:
            return [(i, s.sealed) for i, s in await tx.command_secrets_under(key_id)]

        async def store(tx: Tx, command_id: str, key_id: str, sealed: str) -> None:
            await tx.update_command(command_id, secret=SealedSecret(key_id, sealed))

        return await self._reseal_signing(
            use, held, current, under, keyring.open_secret, keyring.seal_secret, store,
            lambda tx, command_id: tx.delete_command(command_id), AuditAction.COMMAND_DELETED,
        )  # fmt: skip

    async def _reseal_signing(
        self,
        use: dict[str, int],
        held: set[str],
        current: str,
        under: Callable[[Tx, str], Awaitable[list[tuple[str, str]]]],
        open_: Callable[[str, str, str], str],
        seal: Callable[[str, str], tuple[str, str]],
        store: Callable[[Tx, str, str, str], Awaitable[None]],
        delete: Callable[[Tx, str], Awaitable[None]],
        deleted: str,
    ) -> int:
        """Reseal the signing secrets of one kind of owner (webhooks, slash commands),
        key by key, one transaction per key: `under` lists (owner id, sealed) under a
        key, `open_`/`seal` are the keyring's for that kind, `store` keeps the new seal.
        An owner whose key is not held is deleted (`delete`) and audited (`deleted`,
        reason secret_key_lost). Returns how many were resealed."""
        done = 0
        for key_id in sorted(use):
            if key_id == current:
                continue
            async with self.d.store.write() as tx:
                for owner_id, stored in await under(tx, key_id):
                    if key_id not in held:
                        await delete(tx, owner_id)
                        await record(
                            tx,
                            self.d.clock,
                            deleted,
                            actor_id=None,
                            target_id=owner_id,
                            details={"reason": "secret_key_lost", "key_id": key_id},
                        )
                        continue
                    try:
                        plain = open_(owner_id, key_id, stored)
                    except UnknownKey as exc:
                        raise KeyProblem(str(exc)) from exc
                    new_id, sealed = seal(owner_id, plain)
                    await store(tx, owner_id, new_id, sealed)
                    done += 1
        return done

    async def _reseal(self, key_id: str | None, *, forget: bool) -> tuple[int, int]:
        """Seal under the newest key every TOTP secret under `key_id` (not held and
        `forget`: remove those second factors). Returns (resealed, removed)."""
        keyring = self.d.keyring
        resealed = removed = 0
        after = ""
        while True:
            async with self.d.store.write() as tx:
                batch = await tx.second_factors_under(key_id, after, BATCH)
                for user_id, factor in batch:
                    if forget:
                        await tx.delete_second_factor(user_id)
                        await record(
                            tx,
                            self.d.clock,
                            AuditAction.TOTP_RESET,
                            actor_id=None,
                            target_id=user_id,
                            details={"reason": "secret_key_lost", "key_id": key_id},
                        )
                        removed += 1
                        continue
                    try:
                        secret = keyring.open_totp(user_id, factor.key_id, factor.secret)
                    except UnknownKey as exc:
                        raise KeyProblem(str(exc)) from exc
                    new_id, sealed = keyring.seal_totp(user_id, secret)
                    if await tx.reseal_second_factor(user_id, factor.key_id, sealed, new_id):
                        resealed += 1
            if len(batch) < BATCH:
                return resealed, removed
            after = batch[-1][0]
