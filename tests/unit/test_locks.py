"""The two lock files (scripts/lock): requirements.lock installs what the server needs and
nothing of the test toolchain (README's quick start, the Dockerfile); requirements-dev.lock
adds the toolchain at the same versions, so the tests exercise what production installs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {_norm(name): version for name, version in PIN.findall(text)}


def _requirements(group: list[str]) -> set[str]:
    return {_norm(m.group(1)) for r in group if (m := NAME.match(r))}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_server_lock_pins_every_runtime_dependency_and_no_test_tool() -> None:
    server = _pins("requirements.lock")
    assert _requirements(PROJECT["dependencies"]) <= server.keys()
    dev_only = _requirements(PROJECT["optional-dependencies"]["dev"]) - _requirements(
        PROJECT["dependencies"]
    )
    assert not dev_only & server.keys(), "test tools in the server's lock"
    assert "pytest" not in server and "mypy" not in server


def test_the_dev_lock_adds_the_toolchain_at_the_servers_versions() -> None:
    server, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert _requirements(PROJECT["optional-dependencies"]["dev"]) <= dev.keys()
    assert {name: dev.get(name) for name in server} == server


def test_every_pin_carries_hashes() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        for block in re.split(r"\n(?=[A-Za-z0-9])", text):
            if PIN.match(block):
                assert "--hash=sha256:" in block, (lock, block.splitlines()[0])
