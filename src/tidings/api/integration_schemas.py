"""Bodies and shapes of the integration routes: incoming webhooks and slash commands."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tidings.api.schemas import Body, MessageOut


class IncomingWebhookIn(Body):
    name: str = Field(min_length=1, max_length=200, description="the sender's name it posts as")


class IncomingWebhookPatchIn(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    disabled: bool | None = Field(default=None, description="a disabled webhook's URL: 404")


class IncomingWebhookOut(BaseModel):
    id: str
    conversation_id: str
    name: str
    user_id: str = Field(description="the integration user (a bot account) it posts as")
    created_by: str | None
    created_at: str
    disabled: bool
    posts: int
    last_post_at: str | None
    url: str | None = Field(
        default=None, description="the secret URL: only when created or rotated (shown once)"
    )


class IncomingWebhookEnvelope(BaseModel):
    incoming_webhook: IncomingWebhookOut


class IncomingWebhooksOut(BaseModel):
    incoming_webhooks: list[IncomingWebhookOut]


class HookPostIn(BaseModel):
    """What `POST <url>` takes (JSON, or a form with `payload=<JSON>` as Slack sends it)."""

    text: str | None = Field(default=None, description="Slack-compatible: the message text")
    body: str | None = Field(default=None, description="Tidings: the message body")
    client_msg_id: str | None = Field(
        default=None, max_length=64, description="a retry with the same id posts once"
    )
    blocks: list[object] | None = Field(default=None, description="Slack: reduced to text")
    attachments: list[object] | None = Field(default=None, description="Slack: reduced to text")
    username: str | None = Field(default=None, description="Slack: accepted, ignored")
    icon_url: str | None = Field(default=None, description="Slack: accepted, ignored")
    icon_emoji: str | None = Field(default=None, description="Slack: accepted, ignored")


class HookPostOut(BaseModel):
    ok: bool
    message: MessageOut


class CommandIn(Body):
    name: str = Field(min_length=1, max_length=40, description="without its slash")
    url: str | None = Field(
        default=None, max_length=2000, description="an outgoing URL: requests are signed"
    )
    bot_id: str | None = Field(default=None, max_length=64, description="or a bot account")
    description: str = Field(default="", max_length=400)
    usage: str = Field(default="", max_length=200, description="e.g. [service] [version]")
    display_name: str | None = Field(
        default=None, max_length=200, description="who answers in the conversation (url)"
    )


class CommandPatchIn(Body):
    description: str | None = Field(default=None, max_length=400)
    usage: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    disabled: bool | None = None


class CommandOut(BaseModel):
    id: str
    name: str
    description: str
    usage: str
    target: Literal["url", "bot"] | None = Field(default=None, description="admins only")
    url: str | None = Field(default=None, description="admins only")
    user_id: str = Field(description="who answers in the conversation")
    disabled: bool = False
    created_at: str | None = Field(default=None, description="admins only")
    created_by: str | None = None


class CommandEnvelope(BaseModel):
    command: CommandOut
    secret: str | None = Field(
        default=None, description="the signing secret (url targets): only when made, once"
    )


class CommandsOut(BaseModel):
    commands: list[CommandOut]


class InvokeIn(Body):
    command: str = Field(min_length=1, max_length=40, description="its name, with or without /")
    text: str = Field(default="", max_length=4000, description="what follows the name")


class InvocationOut(BaseModel):
    id: str
    command: str
    conversation_id: str
    created_at: str
    expires_at: str


class InvocationEnvelope(BaseModel):
    invocation: InvocationOut


class CommandReplyIn(BaseModel):
    """A reply through a response URL (Slack-compatible)."""

    text: str | None = None
    body: str | None = None
    response_type: Literal["ephemeral", "in_channel"] = "ephemeral"
    blocks: list[object] | None = None
    attachments: list[object] | None = None


class OkOut(BaseModel):
    ok: bool
