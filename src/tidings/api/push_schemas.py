"""Request bodies and response shapes of Web Push subscriptions and the notification
settings (docs/notifications.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tidings.api.schemas import Body

# Generous bounds for the parser; the settings' (push_max_endpoint_chars) and the keys'
# exact sizes are checked by the service, each with its own clear error.
ENDPOINT_MAX = 65536
KEY_MAX = 512


class PushKeysIn(Body):
    p256dh: str = Field(
        min_length=1, max_length=KEY_MAX, description="the P-256 public key, base64url"
    )
    auth: str = Field(
        min_length=1, max_length=KEY_MAX, description="the 16-byte auth secret, base64url"
    )


class PushSubscriptionIn(Body):
    endpoint: str = Field(min_length=1, max_length=ENDPOINT_MAX, description="the push URL")
    keys: PushKeysIn


class PushEndpointIn(Body):
    endpoint: str = Field(min_length=1, max_length=ENDPOINT_MAX)


class PushSubscriptionOut(BaseModel):
    id: str
    endpoint: str
    created_at: str
    this_device: bool = Field(description="made in the session of this request")


class PushSubscriptionEnvelope(BaseModel):
    subscription: PushSubscriptionOut


class PushSubscriptionsOut(BaseModel):
    subscriptions: list[PushSubscriptionOut]


class VapidKeyOut(BaseModel):
    public_key: str = Field(description="the applicationServerKey: P-256 point, base64url")


class OfflineNotificationsOut(BaseModel):
    email_digests: bool = Field(description="missed direct messages and mentions by email")
    previews: bool = Field(description="message text in push notifications and digests")
    email: str | None = Field(description="where digests go (none: no digests)")
    email_available: bool = Field(description="this server sends email (SMTP is set up)")
    push_available: bool = Field(description="this server sends Web Push")


class OfflineNotificationsEnvelope(BaseModel):
    notifications: OfflineNotificationsOut


class OfflineNotificationsIn(Body):
    email_digests: bool | None = None
    previews: bool | None = None
    email: str | None = Field(
        default=None,
        max_length=320,
        description='the address digests go to (local accounts); "" removes it',
    )
