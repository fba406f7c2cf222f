"""Rate limits per user and per address, on the bus's shared counters (no database work,
so that the send path stays fast). An excess raises RateLimited with the seconds to wait."""

from __future__ import annotations

from enum import StrEnum

import structlog

from tidings.core.errors import RateLimited
from tidings.services.context import Deps, SecurityLimits

log = structlog.get_logger(__name__)


class Action(StrEnum):
    LOGIN = "login"
    SEND = "send"
    UPLOAD = "upload"
    # every other write and fan-out signal, per user (typing: per user and conversation)
    TYPING = "typing"  # per user and conversation
    TYPING_TOTAL = "typing_total"  # per user, all conversations together
    PRESENCE = "presence"
    EDIT = "edit"  # edits and recalls
    REACTION = "reaction"
    MEMBERSHIP = "membership"  # members added or removed, a conversation renamed
    CONVERSATION = "conversation"  # conversations created
    DIRECTORY = "directory"  # an admin's directory checks and syncs (services/ldap.py)
    INCOMING_WEBHOOK = "incoming_webhook"  # posts, per incoming webhook
    COMMAND = "command"  # slash commands invoked, per user
    SCIM = "scim"  # SCIM requests, per SCIM token
    WEBHOOK = "webhook"  # webhooks registered, changed, rotated, deleted, pinged
    SEARCH = "search"  # searches, per user
    NOTIFY = "notify"  # push subscriptions and notification settings, per user


class RateLimiter:
    """The limits are the settings in force (`deps.security`, which an admin may change at
    run time): the table is rebuilt when that object is replaced (one identity check)."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self._sec: SecurityLimits | None = None
        self._limits: dict[Action, tuple[int, int]] = {}
        # every limit counts over `rate_window_seconds` but these
        self._windows: dict[Action, float] = {Action.CONVERSATION: 3600.0}

    def _rebuild(self) -> dict[Action, tuple[int, int]]:
        deps = self.d
        sec = deps.security
        self._limits = {
            Action.LOGIN: (sec.rate_login_per_user, sec.rate_login_per_address),
            Action.SEND: (sec.rate_send_per_user, sec.rate_send_per_address),
            Action.UPLOAD: (sec.rate_upload_per_user, sec.rate_upload_per_address),
            Action.TYPING: (sec.rate_typing_per_conversation, 0),
            Action.TYPING_TOTAL: (sec.rate_typing_per_user, 0),
            Action.PRESENCE: (sec.rate_presence_per_user, 0),
            Action.EDIT: (sec.rate_edit_per_user, 0),
            Action.REACTION: (sec.rate_reaction_per_user, 0),
            Action.MEMBERSHIP: (sec.rate_membership_per_user, 0),
            Action.CONVERSATION: (sec.rate_conversation_create_per_hour, 0),
            Action.DIRECTORY: (sec.rate_directory_per_user, 0),
            Action.INCOMING_WEBHOOK: (sec.rate_incoming_webhook_per_hook, 0),
            Action.COMMAND: (sec.rate_command_per_user, 0),
            Action.SCIM: (deps.scim.rate_scim_per_token, 0),
            Action.WEBHOOK: (sec.rate_webhook_per_user, 0),
            Action.SEARCH: (sec.rate_search_per_user, 0),
            Action.NOTIFY: (sec.rate_notify_per_user, 0),
        }
        self._sec = sec
        return self._limits

    async def check(self, action: Action, user_key: str | None, address: str | None) -> None:
        """Count one `action` for a user (an id, or for login the username) and for an
        address; raise RateLimited when either is over its limit. A request refused here
        has written nothing: the client retries after `retry_after` (sends with the same
        client_msg_id)."""
        # the limits in force: rebuilt only when an admin changed them (Deps.put_limits)
        table = self._limits if self.d.security is self._sec else self._rebuild()
        per_user, per_address = table[action]
        window = self._windows.get(action, self.d.security.rate_window_seconds)
        refusal: RateLimited | None = None
        for scope, key, limit in (("user", user_key, per_user), ("address", address, per_address)):
            if not key or limit <= 0:
                continue
            # every attempt counts on both keys, refused or not
            try:
                hits, retry_after = await self.d.bus.count_hit(f"rl:{action}:{scope}:{key}", window)
            except Exception as exc:  # noqa: BLE001 - counters unreachable: fail open
                log.warning("rate_limit_unavailable", action=str(action), error=str(exc))
                continue
            if hits > limit and refusal is None:
                refusal = RateLimited(
                    f"too many {action} requests from this {scope}: "
                    f"at most {limit} per {window:g} s",
                    retry_after=max(1.0, retry_after),
                )
        if refusal is not None:
            counts = self.d.counts
            counts.rate_limited.add(action.value)
            if action is Action.SEND:
                counts.sends_refused.add(refusal.code.value)
            raise refusal
