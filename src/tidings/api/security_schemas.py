"""Request bodies and response shapes of the security endpoints (sessions, second factor,
organization settings, audit log)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tidings.api.schemas import Body


class PasswordChangeIn(Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordIn(Body):
    password: str = Field(
        min_length=1, max_length=1024, description="the caller's current password"
    )


class PasswordAndCodeIn(PasswordIn):
    code: str = Field(
        min_length=1,
        max_length=16,
        description="a 6-digit code from the authenticator (disable: or a recovery code)",
    )


class OrgSettingsIn(Body):
    second_factor_policy: Literal["none", "admins", "everyone"] | None = None


class SessionOut(BaseModel):
    id: str
    device: str
    created_at: str
    last_seen_at: str | None
    address: str
    expires_at: str
    current: bool


class SessionsOut(BaseModel):
    sessions: list[SessionOut]


class SessionsRevokedOut(BaseModel):
    revoked: int


class TotpSetupOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_png: str = Field(description="the QR code of otpauth_uri, as a data:image/png URI")


class TotpStatusOut(BaseModel):
    enabled: bool
    recovery_codes_left: int


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class OrgSettingsOut(BaseModel):
    settings: dict[str, str]


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    action: str
    actor_id: str | None
    target_id: str | None
    address: str
    details: dict[str, object]
    prev_hash: str
    hash: str


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next: int
