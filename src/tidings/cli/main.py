"""`tidings`: run the server and administer it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.tree import Tree

import tidings
from tidings.cli.backup import backup_app
from tidings.cli.common import (
    _one_line_errors,
    _settings,
    console,
    err,
    fail,
    run_with_container,
    say,
    state,
)
from tidings.cli.integrations import commands_app, hooks_app
from tidings.cli.jobs import jobs_app
from tidings.core.errors import TidingsError
from tidings.core.models import BotInfo, Department, OrgRole, User
from tidings.core.webhooks import Delivery, Webhook

if TYPE_CHECKING:
    from tidings.app.container import Container
    from tidings.core.audit import ChainCheck
    from tidings.identity.ports import CheckStep
    from tidings.services.ldap import SyncReport
    from tidings.store.ports import ScimToken


app = typer.Typer(
    name="tidings",
    help="Tidings: self-hosted enterprise instant messaging.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
dept_app = typer.Typer(help="Manage the department tree.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(dept_app, name="dept")
bot_app = typer.Typer(
    help="Manage bot accounts: they sign in with a bot token, never a password.",
    no_args_is_help=True,
)
app.add_typer(bot_app, name="bot")
audit_app = typer.Typer(help="Check and export the audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
secrets_app = typer.Typer(
    help="The server keys that seal TOTP secrets and sign the audit log's head: "
    "make one, move everything to the newest (docs/security.md, Server keys).",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")
app.add_typer(commands_app, name="commands")
app.add_typer(hooks_app, name="incoming-webhooks")
oidc_app = typer.Typer(
    help="OpenID Connect single sign-on (settings oidc_*; docs/identity.md).",
    no_args_is_help=True,
)
app.add_typer(oidc_app, name="oidc")
app.add_typer(jobs_app, name="jobs")
ldap_app = typer.Typer(
    help="LDAP / Active Directory: check the ldap_* settings, sync the directory "
    "(docs/identity.md).",
    no_args_is_help=True,
)
app.add_typer(ldap_app, name="ldap")
plugins_app = typer.Typer(
    help="Server plugins: which are installed and enabled (docs/integrations.md).",
    no_args_is_help=True,
)
app.add_typer(plugins_app, name="plugins")
app.add_typer(backup_app, name="backup")
scim_app = typer.Typer(
    help="SCIM 2.0 provisioning tokens: an identity provider (Okta, Entra ID, Feishu, "
    "DingTalk) manages accounts and departments at /scim/v2 with one (docs/identity.md).",
    no_args_is_help=True,
)
app.add_typer(scim_app, name="scim")
webhooks_app = typer.Typer(
    help="Outgoing webhooks: list them, turn one off or on, delete one, read its delivery "
    "log (registering one: the web client or POST /api/v1/webhooks; docs/integrations.md).",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default ./tidings-data).", show_default=False),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (also TIDINGS_CONFIG).", show_default=False),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"tidings {tidings.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Tidings: self-hosted enterprise instant messaging."""
    state.data_dir = data_dir
    state.config = config


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    config: ConfigFile = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="gateway, api or worker; repeat for several (default: all three).",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="PEM certificate (chain): serve HTTPS and WSS."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
    ] = None,
    insecure_http: Annotated[
        bool | None,
        typer.Option(
            "--insecure-http",
            help="Serve plain HTTP on a non-loopback address (TLS ends at a proxy).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the server: every role in one process, on the embedded database by default.

    With TIDINGS_DATABASE_URL=postgresql://... and TIDINGS_REDIS_URL=redis://... (or the
    same keys in the settings file), nodes share PostgreSQL and Redis and can run behind
    a load balancer; see docs/deploy.md."""
    from tidings.app.server import serve as run

    if data_dir is not None:
        state.data_dir = data_dir
    if config is not None:
        state.config = config
    unknown = sorted(set(role or ()) - {"gateway", "api", "worker"})
    if unknown:
        fail(f"unknown role {unknown[0]!r}: use gateway, api or worker")
    settings = _settings(
        host=host,
        port=port,
        roles=sorted(set(role)) if role else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure_http=insecure_http,
    )
    from tidings.app.security import InsecureBind

    try:
        run(settings)
    except InsecureBind as exc:
        fail(str(exc), 2)
    except TidingsError as exc:  # e.g. an admin_password the password policy refuses
        fail(exc.message)
    except _one_line_errors() as exc:  # a setting, a key or the disk: one line
        fail(str(exc))


@app.command()
def migrate() -> None:
    """Create the database or bring it to the latest schema (Alembic's lines go to
    standard error as log lines: JSON with log_format=json)."""
    from tidings.app.fatal import report_fatal_signals
    from tidings.app.logging import configure_logging
    from tidings.store import migrations
    from tidings.store.sql.engines import UnusableDatabase

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    report_fatal_signals(settings.data_dir)
    try:
        migrations.upgrade(settings.db_url)
    except (OSError, UnusableDatabase) as exc:
        fail(str(exc))
    console.print(f"database at revision {migrations.current(settings.db_url)}")


# --- users -----------------------------------------------------------------------------
def _user_table(users: list[User]) -> Table:
    table = Table("username", "display name", "role", "status", "id")
    for u in users:
        table.add_row(
            u.username,
            u.display_name,
            u.role.value + (" (bot)" if u.bot else ""),
            "disabled" if u.disabled else "active",
            u.id,
        )
    return table


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name: letters, digits, . _ -")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Password (prompted when omitted).",
        ),
    ],
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    role: Annotated[OrgRole, typer.Option(help="Organization role.")] = OrgRole.MEMBER,
) -> None:
    """Create a user account."""

    async def action(c: Container) -> None:
        user = await c.services.users.create(None, username, password, display_name, role)
        console.print(f"created {user.role.value} {user.username} ({user.id})")

    run_with_container(action)


@user_app.command("list")
def user_list(
    query: Annotated[str, typer.Option(help="Filter by username or display name.")] = "",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 200,
) -> None:
    """List user accounts."""

    async def action(c: Container) -> None:
        console.print(_user_table(await c.services.users.search(None, query, None, limit)))

    run_with_container(action)


def _set_disabled(username: str, disabled: bool) -> None:
    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        await c.services.users.update(None, user.id, disabled=disabled)
        console.print(f"{'disabled' if disabled else 'enabled'} {user.username}")
        if user.bot and not disabled:
            console.print(f"give the bot a new token: tidings bot token {user.username}")

    run_with_container(action)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable an account: its sessions stop working at once."""
    _set_disabled(username, True)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled account."""
    _set_disabled(username, False)


@user_app.command("reset-password")
def user_reset_password(
    username: str,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="New password (prompted when omitted).",
        ),
    ],
) -> None:
    """Set a new password; every session of the user ends."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        await c.services.users.reset_password(None, user.id, password)
        console.print(f"password of {user.username} reset; their sessions were revoked")

    run_with_container(action)


@user_app.command("reset-totp")
def user_reset_totp(username: str) -> None:
    """Remove a user's second factor (a lost phone); every session of the user ends."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        await c.services.second_factor.reset(None, user.id)
        console.print(f"second factor of {user.username} removed; their sessions were revoked")

    run_with_container(action)


@user_app.command("second-factor-policy")
def user_second_factor_policy(
    policy: Annotated[str, typer.Argument(help="none, admins or everyone")],
) -> None:
    """Choose who must have a second factor (also PATCH /api/v1/settings)."""
    from tidings.core.models import SecondFactorPolicy

    try:
        chosen = SecondFactorPolicy(policy)
    except ValueError:
        fail("the policy is none, admins or everyone")

    async def action(c: Container) -> None:
        await c.services.second_factor.set_policy(None, chosen)
        console.print(f"second factor required for: {chosen.value}")

    run_with_container(action)


# --- bots ------------------------------------------------------------------------------
def _print_token(username: str, token: str, quiet: bool) -> None:
    if quiet:
        sys.stdout.write(token + "\n")  # the token alone, for scripts: T=$(tidings ...)
        return
    say(f"token: {token}")
    console.print(
        "It is shown only this once: give it to the bot now (TIDINGS_BOT_TOKEN). "
        f"A lost token is replaced with: tidings bot token {username}",
        markup=False,
        highlight=False,
    )


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print the token alone (for scripts).")]
BotName = Annotated[str, typer.Argument(help="The bot's username.")]


@bot_app.command("create")
def bot_create(
    name: Annotated[str, typer.Argument(help="The bot's username: letters, digits, . _ -")],
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    quiet: Quiet = False,
) -> None:
    """Create a bot account and print its token, once (only its hash is kept)."""

    async def action(c: Container) -> tuple[User, str]:
        return await c.services.bots.create(None, name, display_name)

    bot, token = run_with_container(action)
    if not quiet:
        console.print(f"created bot {bot.username} ({bot.id})", markup=False, highlight=False)
    _print_token(bot.username, token, quiet)


@bot_app.command("list")
def bot_list() -> None:
    """List bot accounts, with when their token was issued and last used."""

    async def action(c: Container) -> list[BotInfo]:
        found: list[BotInfo] = await c.services.bots.list(None)
        return found

    table = Table("username", "display name", "status", "token issued", "last seen", "id")
    for b in run_with_container(action):
        issued = "none" if b.token is None else f"{b.token.created_at:%Y-%m-%d %H:%M}"
        seen = b.token.last_seen_at if b.token is not None else None
        table.add_row(
            b.user.username,
            b.user.display_name,
            "disabled" if b.user.disabled else "active",
            issued,
            "never" if seen is None else f"{seen:%Y-%m-%d %H:%M}",
            b.user.id,
        )
    console.print(table)


@bot_app.command("token")
def bot_token(name: BotName, quiet: Quiet = False) -> None:
    """Issue a new token for a bot (printed once); the old one stops working at once.

    The bot's live connections close too: at once when the server nodes share Redis,
    otherwise (the embedded bus) within the server's session_check_seconds."""

    async def action(c: Container) -> tuple[User, str]:
        bot = await c.services.bots.by_username(name)
        return await c.services.bots.rotate_token(None, bot.id)

    bot, token = run_with_container(action)
    if not quiet:
        console.print(
            f"new token for bot {bot.username}; the old one no longer works",
            markup=False,
            highlight=False,
        )
    _print_token(bot.username, token, quiet)


@bot_app.command("disable")
def bot_disable(name: BotName) -> None:
    """Disable a bot: its token is revoked and it can no longer connect.

    To use it again: tidings user enable NAME, then tidings bot token NAME."""

    async def action(c: Container) -> User:
        bot = await c.services.bots.by_username(name)
        return await c.services.bots.disable(None, bot.id)

    bot = run_with_container(action)
    console.print(f"disabled bot {bot.username}; its token was revoked", markup=False)


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
def scim_tokens() -> None:
    """List SCIM tokens: name, when issued and last used, whether revoked."""

    async def action(c: Container) -> list[ScimToken]:
        found: list[ScimToken] = await c.services.scim.tokens(None)
        return found

    table = Table("id", "name", "issued", "last used", "status")
    for t in run_with_container(action):
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


# --- webhooks ----------------------------------------------------------------------------
def _shown_url(url: str) -> str:
    from tidings.services.webhooks import shown_url

    return shown_url(url)


WebhookIdArg = Annotated[str, typer.Argument(help="The webhook's id (tidings webhooks list).")]


@webhooks_app.command("list")
def webhooks_list() -> None:
    """List every webhook: where it posts, what it gets, whether it is on."""

    async def action(c: Container) -> list[Webhook]:
        found: list[Webhook] = await c.services.webhooks.all_for_operator()
        return found

    table = Table("id", "url", "events", "conversation", "status", "failures", "owner")
    for w in run_with_container(action):
        status = "on" if w.enabled else f"off ({w.disabled_reason or 'manual'})"
        table.add_row(
            w.id,
            _shown_url(w.url),
            ", ".join(w.events),
            w.conversation_id or "org-wide",
            status,
            str(w.failures),
            w.owner_id,
        )
    console.print(table)


def _set_webhook(webhook_id: str, enabled: bool) -> Webhook:
    async def action(c: Container) -> Webhook:
        return await c.services.webhooks.update(None, webhook_id, enabled=enabled)

    return run_with_container(action)


@webhooks_app.command("disable")
def webhooks_disable(webhook_id: WebhookIdArg) -> None:
    """Turn a webhook off: nothing more is delivered to it (audited)."""
    _set_webhook(webhook_id, False)
    say(f"webhook {webhook_id} is off")


@webhooks_app.command("enable")
def webhooks_enable(webhook_id: WebhookIdArg) -> None:
    """Turn a webhook on again, afresh: failures at 0, events from now on (audited)."""
    _set_webhook(webhook_id, True)
    say(f"webhook {webhook_id} is on")


@webhooks_app.command("delete")
def webhooks_delete(webhook_id: WebhookIdArg) -> None:
    """Delete a webhook and its delivery log (audited)."""

    async def action(c: Container) -> None:
        await c.services.webhooks.delete(None, webhook_id)

    run_with_container(action)
    say(f"webhook {webhook_id} deleted")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    webhook_id: WebhookIdArg,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Rows to show.")] = 20,
) -> None:
    """The newest rows of a webhook's delivery log: one per attempt."""

    async def action(c: Container) -> list[Delivery]:
        found: list[Delivery] = await c.services.webhooks.deliveries(None, webhook_id, None, limit)
        return found

    table = Table("at", "kind", "attempt", "status", "code", "ms", "delivery id", "error")
    for d in run_with_container(action):
        table.add_row(
            f"{d.at:%Y-%m-%d %H:%M:%S}",
            d.kind,
            str(d.attempt),
            d.status.value,
            "" if d.response_code is None else str(d.response_code),
            "" if d.latency_ms is None else str(d.latency_ms),
            d.delivery_id,
            d.error,
        )
    console.print(table)



# --- departments -------------------------------------------------------------------------
@dept_app.command("create")
def dept_create(
    name: str,
    parent: Annotated[
        str | None, typer.Option(help="Parent department (name, path A/B, or id).")
    ] = None,
) -> None:
    """Create a department."""

    async def action(c: Container) -> None:
        parent_id = None if parent is None else (await c.services.departments.resolve(parent)).id
        dep = await c.services.departments.create(None, name, parent_id)
        console.print(f"created department {dep.name} ({dep.id})")

    run_with_container(action)


@dept_app.command("list")
def dept_list() -> None:
    """Show the department tree."""

    async def action(c: Container) -> list[Department]:
        found: list[Department] = await c.services.departments.list(None)
        return found

    deps = run_with_container(action)
    tree = Tree("organization")
    nodes: dict[str | None, Tree] = {None: tree}
    pending = list(deps)
    while pending:
        progressed = False
        for d in list(pending):
            if d.parent_id in nodes:
                nodes[d.id] = nodes[d.parent_id].add(f"{d.name} [dim]({d.id})[/dim]")
                pending.remove(d)
                progressed = True
        if not progressed:
            break
    console.print(tree)


@dept_app.command("assign")
def dept_assign(
    username: str,
    department: Annotated[str, typer.Argument(help="Department name, path A/B, or id.")],
) -> None:
    """Put a user in a department."""

    async def action(c: Container) -> None:
        user = await c.services.users.by_username(username)
        dep = await c.services.departments.resolve(department)
        await c.services.departments.set_member(None, dep.id, user.id, True)
        console.print(f"{user.username} is in {dep.name}")

    run_with_container(action)


# --- audit log ---------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain and its signed head; exit 1 if either fails.

    The chain is walked from its first entry (an entry changed, removed, inserted or
    moved: BROKEN), and must reach the entry its signed head names (the newest entries
    removed: TRUNCATED). See docs/security.md, Audit log."""

    async def action(c: Container) -> ChainCheck:
        return await c.services.audit.verify()

    check = run_with_container(action, check_keys=False)  # a head of a lost key: reported
    if not check.ok:
        what = "TRUNCATED" if check.truncated else f"BROKEN at entry {check.broken_seq}"
        say(
            f"audit log {what}: {check.reason} "
            f"({check.entries} entries read; last good entry {check.head_seq})",
            err,
        )
        raise typer.Exit(1)
    signed = "" if check.signed_by is None else f", signed head (key {check.signed_by})"
    say(
        f"audit log intact: {check.entries} entries, head {check.head_seq} "
        f"{check.head_hash}{signed}"
    )


@audit_app.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option(help="Only entries at or after this time (RFC 3339 or YYYY-MM-DD, UTC)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default stdout).")
    ] = None,
) -> None:
    """Write the audit log as JSON lines, oldest first."""
    from datetime import UTC, datetime

    import orjson

    from tidings.core.clock import rfc3339

    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--since {since!r} is not a date or time (use e.g. 2026-11-01T00:00:00Z)")
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)

    async def action(c: Container) -> int:
        sink = output.open("wb") if output is not None else sys.stdout.buffer
        count = 0
        try:
            async for e in c.services.audit.entries(start):
                line = {
                    "seq": e.seq,
                    "at": rfc3339(e.at),
                    "action": e.action,
                    "actor_id": e.actor_id,
                    "target_id": e.target_id,
                    "address": e.address,
                    "details": e.details,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
                sink.write(orjson.dumps(line) + b"\n")
                count += 1
        finally:
            if output is not None:
                sink.close()
            else:
                sink.flush()
        return count

    count = run_with_container(action, check_keys=False)  # reads only
    if output is not None:
        console.print(f"wrote {count} entries to {output}", markup=False, highlight=False)


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
def secrets_status() -> None:
    """Which keys the server holds and which the database uses."""
    from tidings.services.secrets import KeyUse

    async def action(c: Container) -> tuple[list[str], KeyUse]:
        return c.keyring.ids, await c.services.secrets.usage()

    held, use = run_with_container(action, check_keys=False)
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


# --- LDAP / Active Directory ---------------------------------------------------------
@ldap_app.command("test")
def ldap_test(
    username: Annotated[
        str | None,
        typer.Option("--username", "-u", help="Also find this account in the directory."),
    ] = None,
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="With --username: ask for its password (hidden) and sign it in.",
        ),
    ] = False,
) -> None:
    """Connect to the directory, bind as the service account, search the user base;
    with --username find that account and show what it maps to. Exit 1 if a step fails.
    Writes nothing but an audit entry; never prints a secret."""
    secret = None
    if password:
        if not username:
            fail("--password needs --username")
        secret = typer.prompt(f"Directory password of {username}", hide_input=True)

    async def action(c: Container) -> list[CheckStep]:
        return await c.services.ldap.check(None, username, secret)

    steps = run_with_container(action)
    table = Table("step", "", "detail", title="LDAP check")
    for step in steps:
        table.add_row(step.step, "ok" if step.ok else "FAILED", step.detail)
    console.print(table)
    if not all(step.ok for step in steps):
        raise typer.Exit(1)


@ldap_app.command("sync")
def ldap_sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change; write nothing.")
    ] = False,
) -> None:
    """Run the directory sync once (the worker runs it every ldap_sync_interval_seconds):
    create accounts, bring them in step, disable those gone or disabled in the directory.
    Prints a table of what changed (or, with --dry-run, would change). Exit 1 when the
    directory cannot answer or the run refused to disable (a wrong base or filter)."""

    async def action(c: Container) -> SyncReport:
        return await c.services.ldap.sync(None, dry_run=dry_run)

    report = run_with_container(action)
    title = "LDAP sync (dry run: nothing written)" if dry_run else "LDAP sync"
    table = Table("username", "action", "changes", title=title)
    for row in report.changed:
        changes = ", ".join(f"{k}={v}" for k, v in row.fields.items()) or row.detail
        table.add_row(row.username, row.action, changes)
    console.print(table)
    counts = ", ".join(
        f"{report.count(a)} {a}"
        for a in ("created", "updated", "disabled", "linked", "unchanged", "skipped", "error")
        if report.count(a)
    )
    say(f"{report.entries} directory entries: {counts or 'nothing to do'}")
    if report.error:
        fail(report.error)


# --- plugins ---------------------------------------------------------------------------
@plugins_app.command("list")
def plugins_list() -> None:
    """The plugins installed in this Python environment (entry points of the group
    tidings.plugins) and whether the settings enable them; then loads the enabled ones
    with their settings, as `serve` would: a problem is one line and exit 1."""
    from tidings.app.plugins import PluginLoadError, installed, load_plugins

    settings = _settings()
    enabled = {name: i for i, name in enumerate(settings.plugins, 1)}
    table = Table("name", "entry point", "distribution", "enabled", "on failure")
    found = installed()
    for name in sorted(found, key=lambda n: (n not in enabled, enabled.get(n, 0), n)):
        ep = found[name]
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "(source tree)"
        order = f"yes ({enabled[name]})" if name in enabled else "no"
        closed = "refuse" if name in settings.plugins_fail_closed else "let through"
        table.add_row(name, ep.value, dist, order, closed if name in enabled else "")
    console.print(table)
    try:
        loaded = load_plugins(settings)
    except PluginLoadError as exc:
        fail(str(exc))
    for plugin in loaded:
        say(f"{plugin.name}: loaded, hooks: {', '.join(plugin.hooks) or 'none'}")




def _mount_optional() -> None:
    try:
        from tidings.bench.cli import bench_app
    except ImportError:
        return
    app.add_typer(bench_app, name="bench")


def main() -> None:
    _mount_optional()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
