"""Every refused password login costs one password check, so that its answer comes after
the same time whatever the reason (services/auth.py `login`); SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.core.errors import InvalidCredentials
from tidings.core.models import OrgRole
from tidings.services.hub import Services

PASSWORD = "plum-orbit-123"


async def test_each_refusal_does_one_password_check(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc: Services = container.services
    await svc.users.create(None, "alice", PASSWORD, None, OrgRole.MEMBER)
    dora = await svc.users.create(None, "dora", PASSWORD, None, OrgRole.MEMBER)
    await svc.users.update(None, dora.id, disabled=True)
    await svc.bots.create(None, "deploybot")

    passwords = svc.auth.passwords
    checked: list[str] = []
    real_verify = passwords.verify

    async def counting_verify(password_hash: str, password: str) -> bool:
        checked.append(password)  # waste_time checks through verify too
        return await real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify", counting_verify)
    cases = [
        ("alice", "wrong-password"),
        ("nobody", "guess-1"),
        ("deploybot", "guess-2"),
        ("dora", PASSWORD),
        ("dora", "guess-3"),
    ]
    messages = set()
    for username, password in cases:
        checked.clear()
        with pytest.raises(InvalidCredentials) as refused:
            await svc.auth.login(username, password)
        assert checked == [password], username
        messages.add(str(refused.value))
    assert len(messages) == 1
