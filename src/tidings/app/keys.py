"""Where the server's keys come from (services/keyring.py uses them): the setting
`secret_keys` (newest first), or else the key file (`secret_key_file`, by default
`secret.key` in the data directory): one key a line, newest first, `#` comments. The
file is made, with mode 0600 and one fresh key, the first time something must be sealed
or signed and no key exists; never when the database already holds what an earlier key
made (services/secrets.py:SecretsService.check reports that instead)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tidings.app.settings import Settings
from tidings.services.keyring import KEY_MIN_CHARS, Keyring, new_key


class BadKeyFile(Exception):
    """The key file cannot be read, or holds something that is no key."""


def read_key_file(path: Path) -> list[str]:
    """The keys of the file, newest first (none if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BadKeyFile(f"cannot read the key file {path}: {exc.strerror}") from exc
    keys = [line.strip() for line in text.splitlines()]
    keys = [k for k in keys if k and not k.startswith("#")]
    if any(len(k) < KEY_MIN_CHARS for k in keys):
        raise BadKeyFile(f"{path}: a key has at least {KEY_MIN_CHARS} characters")
    return keys


def write_key_file(path: Path, keys: list[str], *, replace: bool) -> bool:
    """Write `keys` to `path` with mode 0600, atomically: a reader sees the old file or
    the new one. Without `replace`, only if no file exists (False: another process made
    one first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# Tidings server keys, newest first: see docs/security.md, Server keys\n")
            f.write("".join(k + "\n" for k in keys))
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(temp, path)
            return True
        try:
            os.link(temp, path)  # fails if the file exists: never two first keys
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def keyring_for(settings: Settings) -> Keyring:
    """The keyring of these settings: the keys given, or the key file's."""
    if settings.secret_keys:
        return Keyring([k.get_secret_value() for k in settings.secret_keys])
    path = settings.key_file

    def load(create: bool) -> list[str]:
        keys = read_key_file(path)
        if not keys and create:
            write_key_file(path, [new_key()], replace=False)
            keys = read_key_file(path)
        return keys

    return Keyring(load=load)
