"""The owner's generated password at the very first start: printed once to standard
output in its own block (never a log line, so never in the JSON logs), and written to
`<data_dir>/initial-admin-password`, readable only by the data directory's owner (mode
0600 from the moment the file exists: created under a temporary name with that mode,
then renamed into place). Sign in, change the password, delete the file (README,
docs/operations.md)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TextIO

FILE_NAME = "initial-admin-password"
RULE = "=" * 72


def write_password_file(data_dir: Path, username: str, password: str) -> Path:
    """`data_dir/initial-admin-password`, mode 0600, replaced whole if it exists."""
    path = data_dir / FILE_NAME
    temp = data_dir / f".{FILE_NAME}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()  # a crashed earlier start's
    # O_EXCL: never a file (or a link) someone else placed; 0o600 from the start
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(
                "# The owner account Tidings created at its first start.\n"
                "# Sign in, change the password, then delete this file.\n"
                f"username: {username}\n"
                f"password: {password}\n"
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return path


def announce_owner(data_dir: Path, username: str, password: str, out: TextIO) -> Path | None:
    """Write the password file, then print the block (the file's place in it; when it
    cannot be written, the block says so and the password is only in the block)."""
    try:
        path: Path | None = write_password_file(data_dir, username, password)
    except OSError as exc:
        path, problem = None, f"{type(exc).__name__}: {exc}"
    lines = [
        RULE,
        "Tidings: first start",
        "",
        f"Created the owner account {username!r} with password: {password}",
        "",
    ]
    if path is not None:
        lines += [
            f"Also written to {path} (readable only by its owner).",
            "Sign in, change the password, then delete that file.",
        ]
    else:
        lines += [f"Not written to a file ({problem[:200]}): store it now."]
    lines += ["It is not shown again (tidings user reset-password changes it).", RULE]
    out.write("\n".join(lines) + "\n")
    out.flush()
    return path
