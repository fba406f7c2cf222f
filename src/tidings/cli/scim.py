"""`tidings scim`: SCIM provisioning tokens."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import (
    JsonOut,
    Quiet,
    console,
    print_json,
    run_with_container,
    say,
)

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.store.ports import ScimToken

scim_app = typer.Typer(
    help="SCIM 2.0 provisioning tokens: an identity provider (Okta, Entra ID, Feishu, "
    "DingTalk) manages accounts and departments at /scim/v2 with one (docs/identity.md).",
    no_args_is_help=True,
)


# --- SCIM --------------------------------------------------------------------------------
@scim_app.command("token")
def scim_token(
    name: Annotated[
        str, typer.Option("--name", help="What the token is for (e.g. Okta).")
    ] = "SCIM",
    quiet: Quiet = False,
) -> None:
    """Issue a new SCIM bearer token and print it, once (only its hash is kept).

    Paste it, with the base URL https://<this server>/scim/v2, into the identity
    provider's provisioning settings. Revoke it with: tidings scim revoke ID"""

    async def action(c: Container) -> tuple[str, str]:
        token, secret = await c.services.scim.issue_token(None, name)
        return token.id, secret

    token_id, secret = run_with_container(action)
    if quiet:
        sys.stdout.write(secret + "\n")
        return
    say(f"token: {secret}")
    console.print(
        f"id {token_id}. It is shown only this once. SCIM base URL: "
        "https://<this server>/scim/v2 (Authorization: Bearer <token>).",
        markup=False,
        highlight=False,
    )


@scim_app.command("tokens")
def scim_tokens(as_json: JsonOut = False) -> None:
    """List SCIM tokens: name, when issued and last used, whether revoked."""

    async def action(c: Container) -> list[ScimToken]:
        found: list[ScimToken] = await c.services.scim.tokens(None)
        return found

    tokens = run_with_container(action)
    if as_json:
        print_json(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": None if t.last_used_at is None else t.last_used_at.isoformat(),
                    "revoked_at": None if t.revoked_at is None else t.revoked_at.isoformat(),
                }
                for t in tokens
            ]
        )
        return
    table = Table("id", "name", "issued", "last used", "status")
    for t in tokens:
        table.add_row(
            t.id,
            t.name,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            "never" if t.last_used_at is None else f"{t.last_used_at:%Y-%m-%d %H:%M}",
            "active" if t.revoked_at is None else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@scim_app.command("revoke")
def scim_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (tidings scim tokens).")],
) -> None:
    """Revoke a SCIM token: its next request answers 401."""

    async def action(c: Container) -> None:
        await c.services.scim.revoke_token(None, token_id)

    run_with_container(action)
    console.print(f"revoked SCIM token {token_id}", markup=False)
