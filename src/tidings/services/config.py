"""The settings admins edit at run time: LDAP and OpenID Connect (docs/identity.md,
"Configuring from the web") and the limits (sizes, edit window, page sizes, login
protection, passwords, rates: docs/operations.md, "Organization settings"), which every
check reads from the context the container refreshes (Deps.put_limits).

- A setting the operator set in the configuration file or the environment
  (`Settings.model_fields_set`) is locked: shown, never changed here.
- Otherwise an admin's value, stored in the database's meta table as one JSON document
  with a version counter, overrides the default. Secrets (`ldap_bind_password`,
  `oidc_client_secret`) are sealed with the keyring and never answered, logged or audited:
  only whether one is set.
- A change is validated by building the would-be Settings (so the file's validators
  apply); a refused one writes nothing. Applied, the container rebuilds the directory and
  the provider client (`apply`); every other node notices the new version within
  `config_poll_seconds` (`refresh`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import SecretStr, ValidationError

from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidOperation, InvalidRequest
from tidings.core.models import User
from tidings.core.rules import check_admin
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)

CONFIG_KEY = "runtime_config"
SECRET_OWNER = "runtime_config:"
SECRETS = frozenset({"ldap_bind_password", "oidc_client_secret"})
Settings = Any  # the app's Settings (app/settings.py: services do not import app)
Apply = Callable[[Settings], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ConfigSchema:
    """What the container tells about the settings (app/container.py:config_schema):
    `explicit`: the operator's settings (locked here); `editable`: the names admins may
    change, each with its default and description; `validate`: the would-be settings
    from explicit values (pydantic's ValidationError when they are refused)."""

    explicit: Mapping[str, object]
    editable: tuple[str, ...]
    defaults: Mapping[str, object]
    descriptions: Mapping[str, str]
    validate: Callable[[dict[str, object]], Settings]


def _group(name: str) -> str:
    """ldap, oidc, or limits (sizes, windows, login protection and rates)."""
    if name.startswith("ldap_"):
        return "ldap"
    return "oidc" if name.startswith("oidc_") else "limits"


def _plain(value: object) -> object:
    """A setting's value as JSON (a secret: never; paths as text)."""
    if isinstance(value, SecretStr):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class Stored:
    """The document in the meta table: version, plain values, sealed secrets."""

    def __init__(self, raw: str | None) -> None:
        doc: dict[str, Any] = json.loads(raw) if raw else {}
        self.version: int = int(doc.get("version", 0))
        self.values: dict[str, Any] = dict(doc.get("values", {}))
        self.secrets: dict[str, dict[str, str]] = dict(doc.get("secrets", {}))

    def dump(self) -> str:
        return json.dumps(
            {"version": self.version, "values": self.values, "secrets": self.secrets},
            sort_keys=True,
        )


async def secret_key_ids(tx: Tx) -> dict[str, int]:
    """How many stored configuration secrets each server key sealed (secrets.py)."""
    counts: dict[str, int] = {}
    for sealed in Stored(await tx.get_meta(CONFIG_KEY)).secrets.values():
        counts[sealed["key"]] = counts.get(sealed["key"], 0) + 1
    return counts


async def reseal_secrets(deps: Deps, tx: Tx, held: set[str]) -> tuple[int, list[str]]:
    """Seal every stored configuration secret under the newest key (`tidings secrets
    rotate`); those under a key not held (--forget-lost only) cannot be opened and are
    forgotten: an admin enters them again. Returns (resealed, names forgotten). A change
    is a new version, so that every node reads the secrets again."""
    keyring = deps.keyring
    current = keyring.current().id
    stored = Stored(await tx.get_meta(CONFIG_KEY))
    done, lost = 0, []
    for name, sealed in sorted(stored.secrets.items()):
        if sealed["key"] == current:
            continue
        if sealed["key"] not in held:
            del stored.secrets[name]
            lost.append(name)
            continue
        plain = keyring.open_secret(SECRET_OWNER + name, sealed["key"], sealed["sealed"])
        key_id, again = keyring.seal_secret(SECRET_OWNER + name, plain)
        stored.secrets[name] = {"key": key_id, "sealed": again}
        done += 1
    if done or lost:
        stored.version += 1
        await tx.set_meta(CONFIG_KEY, stored.dump())
    return done, lost


class ConfigService:
    """`schema`: the settings the process started with (None: nothing is editable, e.g.
    services built without a container); `apply`: puts effective settings in force."""

    def __init__(self, deps: Deps, schema: ConfigSchema | None, apply: Apply | None = None) -> None:
        self.d = deps
        self.schema = schema
        self._apply = apply
        self.limiter = RateLimiter(deps)
        self.applied_version: int | None = None

    # --- reading -----------------------------------------------------------------------
    def locked(self, name: str) -> bool:
        return self.schema is None or name in self.schema.explicit

    def _schema(self) -> ConfigSchema:
        if self.schema is None:
            raise InvalidOperation("this process has no editable configuration")
        return self.schema

    async def _stored(self, tx: Tx) -> Stored:
        return Stored(await tx.get_meta(CONFIG_KEY))

    def _open(self, name: str, sealed: Mapping[str, str]) -> str:
        return self.d.keyring.open_secret(SECRET_OWNER + name, sealed["key"], sealed["sealed"])

    def _effective(self, stored: Stored, overrides: Mapping[str, object] | None = None) -> Settings:
        """The settings in force: the base's explicit ones, the stored unlocked ones,
        then `overrides` (unvalidated; None: back to the default)."""
        schema = self._schema()
        values: dict[str, object] = dict(schema.explicit)
        for name, value in stored.values.items():
            if name in schema.editable and not self.locked(name):
                values[name] = value
        for name, sealed in stored.secrets.items():
            if name in SECRETS and not self.locked(name):
                values[name] = self._open(name, sealed)
        for name, value in (overrides or {}).items():
            if value is None:
                values.pop(name, None)
            else:
                values[name] = value
        return schema.validate(values)

    def _current(self, stored: Stored, name: str) -> object:
        """An unlocked setting's value before a change (stored, else the default)."""
        return stored.values.get(name, self._schema().defaults.get(name))

    async def effective(self) -> Settings:
        async with self.d.store.read() as tx:
            return self._effective(await self._stored(tx))

    async def show(self, actor: User | None) -> list[dict[str, object]]:
        """Every editable setting: its value in force (a secret: whether one is set), its
        default, whether the configuration file locks it."""
        check_admin(actor, "see the server's configuration")
        async with self.d.store.read() as tx:
            stored = await self._stored(tx)
        schema = self._schema()
        rows: list[dict[str, object]] = []
        for name in schema.editable:
            secret = name in SECRETS
            default = schema.defaults.get(name)
            if self.locked(name):
                current: object = schema.explicit[name]
            elif secret:
                current = name in stored.secrets or None
            else:
                current = stored.values.get(name, default)
            row: dict[str, object] = {
                "name": name,
                "group": _group(name),
                "value": None if secret else _plain(current),
                "secret": secret,
                "locked": self.locked(name),
                "default": None if secret else _plain(default),
                "description": schema.descriptions.get(name, ""),
            }
            if secret:
                row["set"] = current is not None
            rows.append(row)
        return rows

    # --- changing ----------------------------------------------------------------------
    def _check(self, values: Mapping[str, object]) -> None:
        limit = self.d.limits.config_max_value_chars
        if not values:
            raise InvalidRequest("name at least one setting", field="values")
        for name, value in values.items():
            where = f"values.{name[:80]}"
            if name not in self._schema().editable:
                raise InvalidRequest(f"{name[:80]!r} is no setting editable here", field=where)
            if self.locked(name):
                raise InvalidOperation(
                    f"{name} is set by the server's configuration: change it there"
                )
            if value is not None and not isinstance(value, (str, int, float, bool, dict)):
                raise InvalidRequest(f"{name}: not a value of this setting", field=where)
            if name in SECRETS and value is not None and not isinstance(value, str):
                raise InvalidRequest(f"{name} is text", field=where)
            if len(json.dumps(value)) > limit:
                raise InvalidRequest(f"{name}: at most {limit} characters", field=where)

    async def update(
        self, actor: User | None, values: Mapping[str, object]
    ) -> list[dict[str, object]]:
        """Change settings (`None`: back to the default), validated together with the ones
        in force; audited (secrets only named); then put in force on this node."""
        check_admin(actor, "change the server's configuration")
        if actor is not None:
            await self.limiter.check(Action.DIRECTORY, actor.id, None)
        self._check(values)
        async with self.d.store.write() as tx:
            stored = await self._stored(tx)
            try:
                after = self._effective(stored, values)
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first.get("loc", ())) or next(iter(values))
                message = str(first.get("msg", "invalid"))[:300]
                raise InvalidRequest(
                    f"{loc}: {message}", field=f"values.{loc}" if loc in values else "values"
                ) from None
            old: dict[str, object] = {}
            new: dict[str, object] = {}
            for name, value in values.items():
                if name in SECRETS:
                    if value is None:
                        stored.secrets.pop(name, None)
                    else:
                        key_id, sealed = self.d.keyring.seal_secret(SECRET_OWNER + name, str(value))
                        stored.secrets[name] = {"key": key_id, "sealed": sealed}
                    continue
                old[name] = _plain(self._current(stored, name))
                new[name] = _plain(getattr(after, name))
                if value is None:
                    stored.values.pop(name, None)
                else:
                    stored.values[name] = _plain(getattr(after, name))
            stored.version += 1
            await tx.set_meta(CONFIG_KEY, stored.dump())
            await record(
                tx,
                self.d.clock,
                AuditAction.SETTINGS_CHANGED,
                actor_id=None if actor is None else actor.id,
                details={"settings": sorted(values), "old": old, "new": new},
            )
        log.info("config_changed", settings=sorted(values), version=stored.version)
        await self._put_in_force(after, stored.version)
        return await self.show(actor)

    # --- in force ----------------------------------------------------------------------
    async def _put_in_force(self, settings: Settings, version: int) -> None:
        if self._apply is not None:
            await self._apply(settings)
        self.applied_version = version

    async def refresh(self, *, announce: bool = True) -> bool:
        """Put the stored configuration in force when its version is not the one this
        node applied (at start-up, and every `config_poll_seconds`); whether it did.
        `announce`: log it (not for a command-line tool, whose output is its answer)."""
        if self.schema is None:
            return False
        async with self.d.store.read() as tx:
            stored = await self._stored(tx)
        if stored.version == self.applied_version:
            return False
        if stored.version == 0 and not stored.values and not stored.secrets:
            self.applied_version = 0  # nothing was ever stored: the settings are in force
            return False
        try:
            settings = self._effective(stored)
        except ValidationError as exc:  # e.g. the file changed under stored values
            log.error("config_invalid", version=stored.version, errors=exc.error_count())
            self.applied_version = stored.version
            return False
        await self._put_in_force(settings, stored.version)
        if announce:
            log.info("config_applied", version=stored.version)
        return True
