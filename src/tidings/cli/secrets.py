"""`tidings secrets`: the server keys."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import (
    JsonOut,
    _settings,
    console,
    fail,
    print_json,
    run_with_container,
    say,
)

if TYPE_CHECKING:
    from tidings.app.container import Container

secrets_app = typer.Typer(
    help="The server keys that seal TOTP secrets and sign the audit log's head: "
    "make one, move everything to the newest (docs/security.md, Server keys).",
    no_args_is_help=True,
)


# --- server keys ---------------------------------------------------------------------------
@secrets_app.command("generate")
def secrets_generate(
    key_file: Annotated[
        bool,
        typer.Option(
            "--key-file",
            help="Add the key to the key file, first (the newest), instead of printing it.",
        ),
    ] = False,
) -> None:
    """Make a new server key (256 random bits): printed, or put first in the key file.

    Printed, for secret_keys: put it first on every node, keep the older keys after it
    until `tidings secrets rotate` has run. With --key-file it is written first into the
    key file (data_dir/secret.key by default); restart the server, then rotate."""
    from tidings.app.keys import BadKeyFile, read_key_file, write_key_file
    from tidings.services.keyring import new_key

    key = new_key()
    if not key_file:
        sys.stdout.write(key + "\n")
        return
    from tidings.store.sql.engines import engine_class

    settings = _settings()
    if settings.secret_keys:
        fail("secret_keys is set, so the key file is not used: add the printed key there")
    missing = engine_class(settings.db_url).missing(settings.db_url)
    if missing is not None:  # a mistyped --data-dir: no key file for nothing
        fail(f"{missing}: check --data-dir (or database_url); `tidings migrate` creates one")
    path = settings.key_file
    try:
        write_key_file(path, [key, *read_key_file(path)], replace=True)
    except (BadKeyFile, OSError) as exc:
        fail(str(exc))
    say(
        f"added a new key first in {path}: restart the server, then run `tidings secrets rotate`",
    )


@secrets_app.command("rotate")
def secrets_rotate(
    forget_lost: Annotated[
        bool,
        typer.Option(
            "--forget-lost",
            help="A key is lost for good: remove the second factors sealed under it (those "
            "users enrol again) and sign the audit head anew.",
        ),
    ] = False,
) -> None:
    """Move everything to the newest key: TOTP secrets resealed, the audit head signed.

    The audit log is checked first (nothing is signed over a broken or truncated log).
    Run it once every server holds the new key; then the older keys may be removed.
    Safe to run again, and while the server runs."""
    from tidings.services.secrets import Rotation

    async def action(c: Container) -> Rotation:
        return await c.services.secrets.rotate(forget_lost=forget_lost)

    done = run_with_container(action, check_keys=False)
    say(
        f"everything is under key {done.key_id}: {done.resealed} TOTP secrets resealed, "
        "the audit head signed"
        + (f", {done.forgotten} second factors of a lost key removed" if done.forgotten else "")
    )
    if done.unused:
        say(
            f"no longer used, may be removed: key {', '.join(done.unused)}",
        )


@secrets_app.command("status")
def secrets_status(as_json: JsonOut = False) -> None:
    """Which keys the server holds and which the database uses. --json: {"held": key
    ids, newest first; "totp", "webhooks", "commands", "config": sealed per key id
    ("none": TOTP secrets not sealed yet); "audit_head": the signed head's key}. Key
    ids only, never a key."""
    from tidings.services.secrets import KeyUse

    async def action(c: Container) -> tuple[list[str], KeyUse]:
        return c.keyring.ids, await c.services.secrets.usage()

    held, use = run_with_container(action, check_keys=False)
    if as_json:
        print_json(
            {
                "held": list(held),
                "totp": {("none" if k is None else k): n for k, n in use.totp.items()},
                "webhooks": dict(use.webhooks),
                "commands": dict(use.commands),
                "config": dict(use.config),
                "audit_head": use.head,
            }
        )
        return
    table = Table("key", "held", "TOTP secrets", "audit head")
    for key in sorted(
        {*held, *(k for k in use.totp if k is not None), *([use.head] if use.head else [])}
    ):
        table.add_row(
            key + (" (newest)" if held and key == held[0] else ""),
            "yes" if key in held else "NO",
            str(use.totp.get(key, 0)),
            "yes" if key == use.head else "",
        )
    if use.totp.get(None):
        table.add_row("(not sealed yet)", "", str(use.totp[None]), "")
    console.print(table)
