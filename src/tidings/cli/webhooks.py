"""`tidings webhooks`: outgoing webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import (
    JsonOut,
    console,
    print_json,
    run_with_container,
    say,
)
from tidings.core.webhooks import Delivery, Webhook

if TYPE_CHECKING:
    from tidings.app.container import Container

webhooks_app = typer.Typer(
    help="Outgoing webhooks: list them, turn one off or on, delete one, read its delivery "
    "log (registering one: the web client or POST /api/v1/webhooks; docs/integrations.md).",
    no_args_is_help=True,
)


# --- webhooks ----------------------------------------------------------------------------
def _shown_url(url: str) -> str:
    from tidings.services.webhooks import shown_url

    return shown_url(url)


WebhookIdArg = Annotated[str, typer.Argument(help="The webhook's id (tidings webhooks list).")]


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOut = False) -> None:
    """List every webhook: where it posts, what it gets, whether it is on."""

    async def action(c: Container) -> list[Webhook]:
        found: list[Webhook] = await c.services.webhooks.all_for_operator()
        return found

    hooks = run_with_container(action)
    if as_json:
        print_json(
            [
                {
                    "id": w.id,
                    "url": _shown_url(w.url),
                    "events": list(w.events),
                    "conversation_id": w.conversation_id,
                    "enabled": w.enabled,
                    "disabled_reason": w.disabled_reason,
                    "failures": w.failures,
                    "owner_id": w.owner_id,
                }
                for w in hooks
            ]
        )
        return
    table = Table("id", "url", "events", "conversation", "status", "failures", "owner")
    for w in hooks:
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
    as_json: JsonOut = False,
) -> None:
    """The newest rows of a webhook's delivery log: one per attempt (--json: a list,
    each as GET /webhooks/{id}/deliveries answers it)."""

    async def action(c: Container) -> list[Delivery]:
        found: list[Delivery] = await c.services.webhooks.deliveries(None, webhook_id, None, limit)
        return found

    rows = run_with_container(action)
    if as_json:
        from tidings.protocol.wire import delivery_json

        print_json([delivery_json(d) for d in rows])
        return
    table = Table("at", "kind", "attempt", "status", "code", "ms", "delivery id", "error")
    for d in rows:
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
