"""The server keys on a real database (SQLite and, parametrized, PostgreSQL): TOTP
secrets are sealed at rest and still log in, recovery codes are argon2id hashes (older
SHA-256 ones still work once), rotation moves everything to the newest key so that the
older one can go, and a key the database needs but the server lacks is one clear error
(issue 13, item 18)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.fakes import FakeClock
from tests.security_helpers import code_for, step_now
from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.core.errors import InvalidTotp
from tidings.core.models import OrgRole
from tidings.services.keyring import Keyring
from tidings.services.passwords import Passwords
from tidings.services.second_factor import legacy_recovery_hash
from tidings.services.secrets import KeyProblem

PASSWORD = "plum-orbit-123"
K1 = "the first server key of this test, 32+ chars"
K2 = "the second server key of this test, 32+ chars"
K3 = "a third key that never sealed anything here"
EARLY_IN_A_STEP = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)


def key_id(material: str) -> str:
    return Keyring([material]).ids[0]


@pytest.fixture
def container_clock() -> FakeClock:
    return FakeClock(EARLY_IN_A_STEP)


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"secret_keys": [K1]}


def other(c: Container, **settings: Any) -> Container:
    """Another process on the same database, with other settings (its keys)."""
    return Container(
        Settings.model_validate({**dict(c.settings), **settings}),
        clock=c.deps.clock,
        passwords=Passwords(time_cost=1, memory_kib=8, parallelism=1),
    )


async def _rows(c: Container, statement: str) -> list[Any]:
    async with c.store.read() as tx:
        return list((await tx.conn.execute(text(statement))).all())  # type: ignore[attr-defined]


async def _sql(c: Container, statement: str, **params: Any) -> None:
    async with c.store.write() as tx:
        await tx.conn.execute(text(statement), params)  # type: ignore[attr-defined]


async def _enrolled(c: Container, name: str = "alice") -> tuple[str, list[str], int]:
    """A user with a second factor: (its secret, its recovery codes, the current step)."""
    svc = c.services
    await svc.users.create(None, name, PASSWORD)
    _, session = await svc.auth.login(name, PASSWORD)
    enrolment = await svc.second_factor.setup(session, PASSWORD)
    step = step_now(c.deps.clock)
    codes = await svc.second_factor.enable(session, PASSWORD, code_for(enrolment.secret, step - 1))
    return enrolment.secret, codes, step


def _database_bytes(c: Container) -> bytes:
    path = Path(c.settings.db_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_totp_secrets_are_sealed_at_rest_and_still_log_in(container: Container) -> None:
    secret, _codes, step = await _enrolled(container)
    [(stored, stored_key)] = await _rows(container, "SELECT secret, key_id FROM second_factors")
    assert stored_key == key_id(K1)
    assert secret not in stored and secret.lower() not in stored.lower()
    if not container.settings.db_url.startswith("postgres"):
        raw = _database_bytes(container)  # the file itself, WAL included
        assert secret.encode() not in raw and b"otpauth" not in raw
    # the real one logs in, once per code
    _, session = await container.services.auth.login("alice", PASSWORD, totp=code_for(secret, step))
    assert session.user.username == "alice"
    with pytest.raises(InvalidTotp):
        await container.services.auth.login("alice", PASSWORD, totp=code_for(secret, step))
    # a sealed secret copied into another user's row does not open there: mallory's own
    # authenticator does not become alice's
    mallory, _, _ = await _enrolled(container, "mallory")
    alice = await container.services.users.by_username("alice")
    await _sql(
        container,
        "UPDATE second_factors SET secret = (SELECT secret FROM second_factors WHERE user_id"
        " <> :a) WHERE user_id = :a",
        a=alice.id,
    )
    with pytest.raises(Exception, match="does not open"):
        await container.services.auth.login("alice", PASSWORD, totp=code_for(mallory, step + 1))


async def test_recovery_codes_are_argon2id_hashes_spent_once(container: Container) -> None:
    _secret, codes, _step = await _enrolled(container)
    hashes = [r[0] for r in await _rows(container, "SELECT code_hash FROM recovery_codes")]
    assert len(hashes) == 10 and all(h.startswith("$argon2id$v=19$") for h in hashes)
    assert len({h.rsplit("$", 1)[0] for h in hashes}) == 1  # one salt for the batch
    assert not any(c.replace("-", "") in h for c in codes for h in hashes)
    _, session = await container.services.auth.login("alice", PASSWORD, totp=codes[3].upper())
    assert session.user.username == "alice"
    with pytest.raises(InvalidTotp):
        await container.services.auth.login("alice", PASSWORD, totp=codes[3])
    assert (await container.services.second_factor.status(session)) == (True, 9)


async def test_sha256_recovery_codes_from_before_still_work_once(container: Container) -> None:
    """Codes stored before migration 0006 (SHA-256) keep working, each once."""
    await _enrolled(container)
    user = await container.services.users.by_username("alice")
    old = legacy_recovery_hash(user.id, "abcdefghjk")
    async with container.store.write() as tx:
        await tx.replace_recovery_codes(user.id, [old])
    _, session = await container.services.auth.login("alice", PASSWORD, totp="abcde-fghjk")
    assert session.user.id == user.id
    with pytest.raises(InvalidTotp):
        await container.services.auth.login("alice", PASSWORD, totp="abcde-fghjk")


async def test_secrets_stored_as_is_are_sealed_at_start(container: Container) -> None:
    """A database from before 0006 holds TOTP secrets as is: the server seals them when it
    starts (the key is a setting, so the migration cannot), and they log in after."""
    secret, _codes, step = await _enrolled(container)
    await _sql(container, "UPDATE second_factors SET secret = :s, key_id = NULL", s=secret)
    assert (await container.services.secrets.usage()).totp == {None: 1}
    await container.services.secrets.prepare()
    [(stored, stored_key)] = await _rows(container, "SELECT secret, key_id FROM second_factors")
    assert stored_key == key_id(K1) and secret not in stored
    _, session = await container.services.auth.login("alice", PASSWORD, totp=code_for(secret, step))
    assert session.user.username == "alice"


async def test_rotation_then_the_old_key_can_go(container: Container) -> None:
    secret, _codes, step = await _enrolled(container)
    await _enrolled(container, "bob")
    assert (await container.services.audit.verify()).signed_by == key_id(K1)

    # 1. every server gets the new key first, the old one after it
    both = other(container, secret_keys=[K2, K1])
    try:
        await both.services.secrets.check()
        rotation = await both.services.secrets.rotate()
        assert rotation.resealed == 2 and rotation.unused == [key_id(K1)]
        assert rotation.key_id == key_id(K2)
        again = await both.services.secrets.rotate()  # nothing left to do
        assert again.resealed == 0
    finally:
        await both.close()
    keys = {r[0] for r in await _rows(container, "SELECT key_id FROM second_factors")}
    assert keys == {key_id(K2)}

    # 2. the old key removed: everything still opens, and the log verifies
    newest = other(container, secret_keys=[K2])
    try:
        await newest.services.secrets.check()
        check = await newest.services.audit.verify()
        assert check.ok and check.signed_by == key_id(K2), check
        _, session = await newest.services.auth.login(
            "alice", PASSWORD, totp=code_for(secret, step)
        )
        assert session.user.username == "alice"
    finally:
        await newest.close()

    # 3. a server with only the old key is refused, by name
    stale = other(container, secret_keys=[K1])
    try:
        with pytest.raises(KeyProblem, match=f"2 TOTP secrets are sealed under key {key_id(K2)}"):
            await stale.services.secrets.check()
    finally:
        await stale.close()


async def test_a_missing_or_wrong_key_is_one_clear_error(
    container: Container, tmp_path: Path
) -> None:
    await _enrolled(container)
    for settings in (
        {"secret_keys": [K3]},  # a wrong key
        {"secret_keys": [], "secret_key_file": tmp_path / "absent.key"},  # no key at all
    ):
        c = other(container, **settings)
        try:
            with pytest.raises(KeyProblem) as caught:
                await c.services.secrets.prepare()
        finally:
            await c.close()
        message = str(caught.value)
        assert f"1 TOTP secrets are sealed under key {key_id(K1)}" in message
        assert f"the audit log's head is signed with key {key_id(K1)}" in message
        assert "docs/security.md" in message
    assert not (tmp_path / "absent.key").exists()  # no key made over the lost one


async def test_a_lost_key_can_be_forgotten(container: Container) -> None:
    """The key is gone for good: rotate --forget-lost removes the second factors sealed
    under it (their users enrol again) and signs the head with the new key."""
    await _enrolled(container)
    lost = other(container, secret_keys=[K3])
    try:
        rotation = await lost.services.secrets.rotate(forget_lost=True)
        assert rotation.forgotten == 1 and rotation.resealed == 0
        assert await _rows(container, "SELECT user_id FROM second_factors") == []
        check = await lost.services.audit.verify()
        assert check.ok and check.signed_by == key_id(K3), check
        await lost.services.secrets.check()
        _, session = await lost.services.auth.login("alice", PASSWORD)  # no factor now
        assert session.user.username == "alice"
    finally:
        await lost.close()


async def test_the_key_file_is_made_once_with_mode_0600(container: Container) -> None:
    """Without secret_keys, the first thing sealed or signed makes the key file (by
    default data_dir/secret.key): readable by the server's user only; other processes
    read the same one."""
    assert container.settings.model_copy(update={"secret_key_file": None}).key_file == (
        container.settings.data_dir / "secret.key"
    )
    path = container.settings.data_dir / "keys" / "secret.key"
    first = other(container, secret_keys=[], secret_key_file=path)
    try:
        assert first.keyring.ids == [] and not path.exists()
        await first.services.users.create(None, "carol", PASSWORD)  # audited: signs a head
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        keys = [k for k in path.read_text().splitlines() if k and not k.startswith("#")]
        assert len(keys) == 1 and len(keys[0]) == 43
        second = other(container, secret_keys=[], secret_key_file=path)
        try:
            assert second.keyring.ids == first.keyring.ids
        finally:
            await second.close()
    finally:
        await first.close()


async def test_webhook_secrets_are_sealed_and_move_with_the_keys(container: Container) -> None:
    """A webhook's signing secret is kept sealed (it must sign: no hash would do), opens
    after a rotation to the new key, and a lost key is named, then forgotten (its
    webhooks deleted, audited)."""
    svc = container.services
    await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
    boss = await svc.users.by_username("boss")
    other_c = other(container, webhook_allowed_networks="127.0.0.0/8")
    try:
        made = await other_c.services.webhooks.create(boss, "http://127.0.0.1:9/in", ["message"])
    finally:
        await other_c.close()
    assert made.secret.encode() not in _database_bytes(container)
    [(sealed, kid)] = await _rows(container, "SELECT secret, key_id FROM webhooks")
    assert kid == key_id(K1) and made.secret not in sealed

    both = other(container, secret_keys=[K2, K1])
    try:
        rotation = await both.services.secrets.rotate()
        assert rotation.unused == [key_id(K1)]
    finally:
        await both.close()
    [(sealed, kid)] = await _rows(container, "SELECT secret, key_id FROM webhooks")
    assert kid == key_id(K2)
    assert Keyring([K2]).open_webhook(made.webhook.id, kid, sealed) == made.secret

    stale = other(container, secret_keys=[K1])
    try:
        with pytest.raises(KeyProblem, match=f"1 webhook secrets are sealed under key {kid}"):
            await stale.services.secrets.check()
    finally:
        await stale.close()
    lost = other(container, secret_keys=[K3])
    try:
        await lost.services.secrets.rotate(forget_lost=True)
        assert await _rows(container, "SELECT id FROM webhooks") == []
        entries = [e async for e in lost.services.audit.entries()]
        gone = [e for e in entries if e.action == "webhook_deleted"]
        assert gone[-1].target_id == made.webhook.id
        assert gone[-1].details["reason"] == "secret_key_lost"
    finally:
        await lost.close()


async def test_slash_command_secrets_move_with_the_keys(container: Container) -> None:
    """A slash command's signing secret is sealed like a webhook's: a rotation reseals it
    under the newest key (it still opens to the same secret, so the command's service
    goes on checking signatures), a server without its key is told which key it lacks,
    and a key lost for good deletes those commands (audited) with --forget-lost."""
    svc = container.services
    await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
    boss = await svc.users.by_username("boss")
    command, secret = await svc.commands.create(boss, "deploy", url="https://ci.example/deploy")
    assert secret is not None and secret.encode() not in _database_bytes(container)
    [(sealed, kid)] = await _rows(container, "SELECT secret, key_id FROM slash_commands")
    assert kid == key_id(K1) and secret not in sealed

    both = other(container, secret_keys=[K2, K1])
    try:
        rotation = await both.services.secrets.rotate()
        assert rotation.unused == [key_id(K1)]
    finally:
        await both.close()
    [(sealed, kid)] = await _rows(container, "SELECT secret, key_id FROM slash_commands")
    assert kid == key_id(K2)
    assert Keyring([K2]).open_secret(command.id, kid, sealed) == secret

    stale = other(container, secret_keys=[K1])
    try:
        with pytest.raises(KeyProblem, match=f"1 slash-command secrets are sealed under key {kid}"):
            await stale.services.secrets.check()
    finally:
        await stale.close()
    lost = other(container, secret_keys=[K3])
    try:
        await lost.services.secrets.rotate(forget_lost=True)
        assert await _rows(container, "SELECT id FROM slash_commands") == []
        entries = [e async for e in lost.services.audit.entries()]
        gone = [e for e in entries if e.action == "command_deleted"]
        assert gone[-1].target_id == command.id
        assert gone[-1].details["reason"] == "secret_key_lost"
    finally:
        await lost.close()


async def test_runtime_configuration_secrets_move_with_the_keys(container: Container) -> None:
    """The bind password an admin stored (runtime configuration) is sealed like the
    other secrets: a rotation reseals it under the newest key and it still opens to the
    same value; a server without its key names it; --forget-lost forgets it (the admin
    enters it again), recorded in the rotation's audit entry."""
    svc = container.services
    await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
    boss = await svc.users.by_username("boss")
    await svc.config.update(boss, {"ldap_bind_password": "directory-bind-secret-42"})
    assert b"directory-bind-secret-42" not in _database_bytes(container)

    both = other(container, secret_keys=[K2, K1])
    try:
        rotation = await both.services.secrets.rotate()
        assert rotation.unused == [key_id(K1)]
        assert (await both.services.secrets.usage()).config == {key_id(K2): 1}
    finally:
        await both.close()
    after = other(container, secret_keys=[K2])
    try:
        await after.services.secrets.check()  # K1 may go now
    finally:
        await after.close()
    [(raw,)] = await _rows(container, "SELECT value FROM meta WHERE key = 'runtime_config'")
    sealed = json.loads(raw)["secrets"]["ldap_bind_password"]
    assert sealed["key"] == key_id(K2)
    owner = "runtime_config:ldap_bind_password"
    opened = Keyring([K2]).open_secret(owner, sealed["key"], sealed["sealed"])
    assert opened == "directory-bind-secret-42"

    lost = other(container, secret_keys=[K3])
    try:
        pattern = f"1 runtime configuration secrets are sealed under key {key_id(K2)}"
        with pytest.raises(KeyProblem, match=pattern):
            await lost.services.secrets.check()
        await lost.services.secrets.rotate(forget_lost=True)
        assert (await lost.services.secrets.usage()).config == {}
        [(raw,)] = await _rows(container, "SELECT value FROM meta WHERE key = 'runtime_config'")
        assert "ldap_bind_password" not in json.loads(raw)["secrets"]
        entries = [e async for e in lost.services.audit.entries()]
        rotated = [e for e in entries if e.action == "secrets_rotated"][-1]
        assert rotated.details["config_secrets_forgotten"] == ["ldap_bind_password"]
    finally:
        await lost.close()
