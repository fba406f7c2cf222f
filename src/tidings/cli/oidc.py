"""`tidings oidc`: OpenID Connect single sign-on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tidings.cli.common import (
    console,
    fail,
    run_with_container,
)

if TYPE_CHECKING:
    from tidings.app.container import Container

oidc_app = typer.Typer(
    help="OpenID Connect single sign-on (settings oidc_*; docs/identity.md).",
    no_args_is_help=True,
)


@oidc_app.command("test")
def oidc_test() -> None:
    """Fetch the provider's discovery document and keys now and say what they hold
    (exit 1 when they cannot be used). Secrets are never printed."""

    async def action(c: Container) -> dict[str, object]:
        if not c.services.oidc.enabled:
            fail("OpenID Connect is off: set oidc_issuer, oidc_client_id, oidc_client_secret")
        return await c.services.oidc.test(None)

    report = run_with_container(action)
    table = Table("", "")
    for key, value in report.items():
        if value is not None:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            table.add_row(key, shown)
    console.print(table)
    if not report["ok"]:
        raise typer.Exit(1)
