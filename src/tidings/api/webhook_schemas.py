"""Request bodies and response shapes of outgoing webhooks (docs/integrations.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tidings.api.schemas import Body

# Generous bounds for the parser; the settings' (webhook_max_url_chars, the known event
# kinds) are checked by the service, each with its own clear error.
URL_MAX = 65536
EVENTS_MAX = 64


class WebhookIn(Body):
    url: str = Field(min_length=1, max_length=URL_MAX, description="http:// or https://")
    events: list[str] = Field(
        min_length=1,
        max_length=EVENTS_MAX,
        description="event kinds: conversation_created, conversation_updated, message, "
        "message_edited, message_deleted, reaction, member_added, member_removed, "
        "member_role_changed, file_updated, message_pinned, message_unpinned",
    )
    conversation_id: str | None = Field(
        default=None, max_length=64, description="one conversation; absent: org-wide (admins)"
    )


class WebhookPatchIn(Body):
    url: str | None = Field(default=None, min_length=1, max_length=URL_MAX)
    events: list[str] | None = Field(default=None, min_length=1, max_length=EVENTS_MAX)
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    conversation_id: str | None
    owner_id: str
    enabled: bool
    disabled_reason: Literal["manual", "failures", "gone"] | None
    failures: int = Field(description="consecutive failed attempts (0 after a success)")
    created_at: str
    updated_at: str
    secret: str | None = Field(
        default=None, description="only when created or rotated: shown once, never again"
    )


class WebhookEnvelope(BaseModel):
    webhook: WebhookOut


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]


class PingOut(BaseModel):
    delivery_id: str = Field(description="the ping's X-Tidings-Delivery, in the delivery log")


class DeliveryOut(BaseModel):
    id: str
    delivery_id: str = Field(description="X-Tidings-Delivery: the same on every attempt")
    kind: str
    position: str | None
    attempt: int
    at: str
    status: Literal["ok", "failed", "rejected", "refused"]
    response_code: int | None
    latency_ms: int | None
    error: str


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
    next: str | None = Field(description="pass as `before` for older rows; null: no more")
