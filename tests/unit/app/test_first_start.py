"""The owner's generated password at the first start (app/first_start.py): its own block
on standard output, and a file only its owner can read, 0600 from its creation on
(whatever the umask), replacing an older one whole."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidings.app.first_start import FILE_NAME, RULE, announce_owner


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # the most permissive: the mode must come from os.open itself
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_block_and_file_readable_only_by_the_owner(tmp_path: Path, open_umask: None) -> None:
    out = io.StringIO()
    path = announce_owner(tmp_path, "admin", "s3cret-Pass-word", out)
    assert path == tmp_path / FILE_NAME
    assert mode(path) == 0o600
    text = path.read_text()
    assert "username: admin\npassword: s3cret-Pass-word\n" in text
    assert "delete this file" in text
    lines = out.getvalue().splitlines()
    assert lines[0] == RULE and lines[-1] == RULE  # its own, delimited block
    assert "Created the owner account 'admin' with password: s3cret-Pass-word" in lines
    assert any(str(path) in line and "readable only" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]  # no temporary left


def test_an_older_world_readable_file_is_replaced(tmp_path: Path, open_umask: None) -> None:
    old = tmp_path / FILE_NAME
    old.write_text("password: old\n")
    old.chmod(0o644)
    path = announce_owner(tmp_path, "admin", "new-Pass-word-1", io.StringIO())
    assert path is not None and mode(path) == 0o600
    assert "password: new-Pass-word-1" in path.read_text()
    assert "old" not in path.read_text()


def test_unwritable_data_dir_still_prints_the_block(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")  # nothing can be created under it (root included)
    out = io.StringIO()
    assert announce_owner(not_a_dir, "admin", "s3cret-Pass-word", out) is None
    assert "with password: s3cret-Pass-word" in out.getvalue()
    assert "Not written to a file" in out.getvalue()
