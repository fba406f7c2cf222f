"""`tidings conversation`: every conversation of the organization, its members, archiving,
members' roles (the operator's view: no membership needed; changes are audited with no
actor)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tidings.cli.common import JsonOut, console, print_json, run_with_container
from tidings.core.models import Conversation, ConversationKind, Member, MemberRole, User

if TYPE_CHECKING:
    from tidings.app.container import Container

conversation_app = typer.Typer(
    help="List conversations and channels, see their members, archive them, give roles.",
    no_args_is_help=True,
)


def _stamp(conv: Conversation) -> str | None:
    return None if conv.archived_at is None else conv.archived_at.isoformat()


def _conversation_json(conv: Conversation) -> dict[str, object]:
    return {
        "id": conv.id,
        "kind": conv.kind.value,
        "name": conv.name,
        "member_count": conv.member_count,
        "last_seq": conv.last_seq,
        "last_activity_at": conv.last_activity_at.isoformat(),
        "archived_at": _stamp(conv),
        "private": conv.private,
        "announcement": conv.announcement,
        "shared_history": conv.shared_history,
    }


@conversation_app.command("list")
def conversation_list(
    query: Annotated[str, typer.Option(help="Only names containing this.")] = "",
    kind: Annotated[ConversationKind | None, typer.Option(help="Only this kind.")] = None,
    archived: Annotated[
        bool | None,
        typer.Option("--archived/--active", help="Only archived ones, or only active ones."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="At most this many.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (the next page).")] = 0,
    as_json: JsonOut = False,
) -> None:
    """Every conversation, newest activity first."""

    async def action(c: Container) -> tuple[list[Conversation], int]:
        return await c.services.conversations.list_all(
            None, query=query, kind=kind, archived=archived, limit=limit, offset=offset
        )

    convs, total = run_with_container(action)
    if as_json:
        print_json({"conversations": [_conversation_json(v) for v in convs], "total": total})
        return
    table = Table("name", "kind", "members", "last activity", "archived", "id")
    for v in convs:
        table.add_row(
            v.name or "(direct)",
            v.kind.value,
            str(v.member_count),
            v.last_activity_at.strftime("%Y-%m-%d %H:%M"),
            "" if v.archived_at is None else v.archived_at.strftime("%Y-%m-%d"),
            v.id,
        )
    console.print(table)
    console.print(f"{len(convs)} of {total}")


@conversation_app.command("members")
def conversation_members(
    conversation_id: Annotated[str, typer.Argument(help="The conversation's id.")],
    as_json: JsonOut = False,
) -> None:
    """The current members of any conversation."""

    async def action(c: Container) -> tuple[Conversation, list[Member], list[User]]:
        conv, members = await c.services.conversations.members_of(None, conversation_id)
        async with c.store.read() as tx:
            users = await tx.get_users([m.user_id for m in members])
        return conv, members, users

    conv, members, users = run_with_container(action)
    names = {u.id: u for u in users}
    if as_json:
        print_json(
            [
                {
                    "user_id": m.user_id,
                    "username": names[m.user_id].username if m.user_id in names else None,
                    "role": m.role.value,
                    "joined_at": m.joined_at.isoformat(),
                }
                for m in members
            ]
        )
        return
    table = Table("username", "display name", "role", "joined", "user id")
    for m in members:
        u = names.get(m.user_id)
        table.add_row(
            u.username if u else "?",
            u.display_name if u else "",
            m.role.value,
            m.joined_at.strftime("%Y-%m-%d"),
            m.user_id,
        )
    console.print(f"{conv.name or conv.id} ({conv.kind.value})")
    console.print(table)


def _set_archived(conversation_id: str, archive: bool) -> None:
    async def action(c: Container) -> Conversation:
        svc = c.services.conversations
        if archive:
            return await svc.archive(None, conversation_id)
        return await svc.unarchive(None, conversation_id)

    conv = run_with_container(action)
    console.print(f"{'archived' if archive else 'unarchived'} {conv.name or conv.id}")


@conversation_app.command("archive")
def conversation_archive(
    conversation_id: Annotated[str, typer.Argument(help="The conversation's id.")],
) -> None:
    """Make a conversation read-only and hide it from its members' lists (audited)."""
    _set_archived(conversation_id, True)


@conversation_app.command("unarchive")
def conversation_unarchive(
    conversation_id: Annotated[str, typer.Argument(help="The conversation's id.")],
) -> None:
    """Make an archived conversation writable and listed again (audited)."""
    _set_archived(conversation_id, False)


@conversation_app.command("role")
def conversation_role(
    conversation_id: Annotated[str, typer.Argument(help="The conversation's id.")],
    user_id: Annotated[str, typer.Argument(help="The member's user id.")],
    role: Annotated[MemberRole, typer.Argument(help="owner, moderator or member.")],
) -> None:
    """Give a member a role in a conversation, e.g. name an owner of a channel whose
    owners left (members are told; audited with no actor)."""

    async def action(c: Container) -> Member:
        return await c.services.conversations.set_role(None, conversation_id, user_id, role)

    member = run_with_container(action)
    console.print(f"{member.user_id} is now {member.role.value} of {conversation_id}")
