"""What every service needs, injected by the container (app/container.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from tidings.bus.ports import Bus
from tidings.core.clock import Clock, IdGenerator
from tidings.services.keyring import Keyring
from tidings.services.metrics import Counts
from tidings.services.password_policy import PasswordPolicy
from tidings.store.ports import Store

# The limit classes declare no defaults: each field is the setting of the same name
# (app/settings.py holds every default, once) and the container fills them all from the
# settings (app/settings.py:limits_from); tests/unit/app/test_settings.py keeps it so.


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes, windows and page limits (settings of the same names)."""

    max_message_bytes: int
    edit_window_seconds: int
    max_reaction_emoji_per_message: int
    max_reactions_per_user_per_message: int
    max_pins_per_conversation: int
    max_saved_per_user: int
    max_scheduled_per_user: int
    scheduled_max_horizon_days: int
    token_ttl_seconds: int
    history_page_max: int
    thread_participants_max: int
    sync_page_max: int
    usage_stats_max_days: int
    audit_export_max_rows: int
    config_max_value_chars: int
    custom_status_max_chars: int
    mention_all_min_role: Literal["member", "moderator", "owner"]
    mention_all_large_min_role: Literal["member", "moderator", "owner"]
    mention_all_large_members: int
    mention_all_confirm_members: int

    @property
    def edit_window(self) -> timedelta:
        return timedelta(seconds=self.edit_window_seconds)

    @property
    def token_ttl(self) -> timedelta:
        return timedelta(seconds=self.token_ttl_seconds)


@dataclass(frozen=True, slots=True)
class SecurityLimits:
    """Passwords, login protection and rate limits (settings password_*, login_*, rate_*;
    0 disables a rate)."""

    password_min_length: int
    password_min_score: int
    login_failures_before_delay: int
    login_failures_before_lockout: int
    login_address_failures_before_lockout: int
    login_lockout_seconds: int
    login_failure_window_seconds: int
    login_max_delay_seconds: int
    rate_window_seconds: int
    rate_login_per_user: int
    rate_login_per_address: int
    rate_send_per_user: int
    rate_send_per_address: int
    rate_upload_per_user: int
    rate_upload_per_address: int
    rate_typing_per_conversation: int
    rate_typing_per_user: int
    rate_presence_per_user: int
    rate_edit_per_user: int
    rate_reaction_per_user: int
    rate_membership_per_user: int
    rate_conversation_create_per_hour: int
    rate_directory_per_user: int
    rate_incoming_webhook_per_hook: int
    rate_command_per_user: int
    rate_webhook_per_user: int
    rate_search_per_user: int
    rate_notify_per_user: int
    totp_issuer: str

    @property
    def password_policy(self) -> PasswordPolicy:
        return PasswordPolicy(self.password_min_length, self.password_min_score)

    @property
    def login_lockout(self) -> timedelta:
        return timedelta(seconds=self.login_lockout_seconds)

    @property
    def login_failure_window(self) -> timedelta:
        return timedelta(seconds=self.login_failure_window_seconds)

    @property
    def login_max_delay(self) -> timedelta:
        return timedelta(seconds=self.login_max_delay_seconds)


# When a provider's new identity names an existing account (services/identity.py).
LinkExisting = Literal["never", "provisioned", "all"]


@dataclass(frozen=True, slots=True)
class IdentityLimits:
    """Accounts kept by identity providers (settings identity_*; docs/identity.md)."""

    identity_link_existing: LinkExisting
    ldap_sync_interval_seconds: int
    ldap_sync_timeout_seconds: int


@dataclass(frozen=True, slots=True)
class JobLimits:
    """How jobs run (settings jobs_*): runners at once, how often the relay looks, the
    backoff between attempts, a lease's margin past the job's timeout, when a job the
    broker never delivered is published again, how long finished jobs are kept, and
    events read per round of the event consumers."""

    jobs_concurrency: int
    jobs_poll_seconds: float
    jobs_backoff_base_seconds: float
    jobs_backoff_max_seconds: float
    jobs_lease_grace_seconds: float
    jobs_requeue_seconds: float
    jobs_keep_done_seconds: int
    jobs_event_batch: int


@dataclass(frozen=True, slots=True)
class IntegrationLimits:
    """Incoming webhooks and slash commands (docs/integrations.md; their rates are in
    SecurityLimits)."""

    public_url: str
    webhook_allowed_networks: str
    incoming_webhook_max_body_bytes: int
    max_incoming_webhooks_per_conversation: int
    audit_incoming_posts: bool
    max_commands: int
    command_timeout_seconds: float
    command_max_attempts: int
    command_response_ttl_seconds: int
    command_response_uses: int
    command_response_max_bytes: int


@dataclass(frozen=True, slots=True)
class ScimLimits:
    """SCIM provisioning (settings scim_*, rate_scim_*; docs/identity.md)."""

    scim_page_max: int
    scim_max_request_bytes: int
    scim_max_patch_operations: int
    scim_max_filter_chars: int
    scim_max_members: int
    scim_group_roles: dict[str, str]
    rate_scim_per_token: int


@dataclass(frozen=True, slots=True)
class WebhookLimits:
    """Outgoing webhooks (settings webhook_*, docs/integrations.md)."""

    webhook_allowed_networks: str
    webhook_direct_conversations: bool
    webhook_max_url_chars: int
    webhook_max_per_owner: int
    webhook_timeout_seconds: float
    webhook_connect_timeout_seconds: float
    webhook_max_attempts: int
    webhook_max_failures: int
    webhook_log_keep: int
    webhook_cache_seconds: float


@dataclass(frozen=True, slots=True)
class FileLimits:
    """Uploads, downloads and their collection (settings of the same names;
    docs/files.md)."""

    max_upload_bytes: int
    upload_quota_bytes: int
    max_attachments_per_message: int
    max_file_name_chars: int
    file_link_ttl_seconds: int
    files_gc_grace_seconds: int
    upload_allowed_types: str
    upload_blocked_types: str
    avatar_max_bytes: int


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What the worker makes of image uploads (settings of the same names;
    workers/files.py)."""

    image_max_pixels: int
    image_max_bytes: int
    image_thumbnail_px: int
    image_preview_px: int
    image_threads: int


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """Search (settings search_*; docs/search.md)."""

    search_max_query_chars: int
    search_max_query_tokens: int
    search_page_default: int
    search_page_max: int
    search_count_limit: int
    search_count_scan_max: int
    search_relevance_window: int
    search_verify_max: int
    search_index_batch: int


@dataclass(frozen=True, slots=True)
class NotifyLimits:
    """Web Push and email digests (settings push_*, digest_*, smtp_*;
    docs/notifications.md)."""

    public_url: str
    webhook_allowed_networks: str
    push_enabled: bool
    push_vapid_subject: str
    push_max_subscriptions_per_user: int
    push_max_endpoint_chars: int
    push_ttl_seconds: int
    push_timeout_seconds: float
    push_max_attempts: int
    notify_previews: bool
    digest_delay_seconds: float
    digest_max_items: int
    smtp_host: str | None
    smtp_port: int
    smtp_tls: str
    smtp_user: str
    smtp_password: SecretStr | None
    smtp_from: str
    smtp_timeout_seconds: float
    smtp_ca_file: Path | None


@dataclass(frozen=True, slots=True)
class Deps:
    store: Store
    bus: Bus
    clock: Clock
    ids: IdGenerator
    limits: Limits
    security: SecurityLimits
    keyring: Keyring
    jobs: JobLimits
    identity: IdentityLimits
    integrations: IntegrationLimits
    scim: ScimLimits
    webhooks: WebhookLimits
    files: FileLimits
    search: SearchLimits
    notify: NotifyLimits
    # what this process counts (services/metrics.py; read by /metrics)
    counts: Counts = field(default_factory=Counts)

    def put_limits(
        self, limits: Limits, security: SecurityLimits, files: FileLimits | None = None
    ) -> None:
        """Put limits an admin changed at run time in force (services/config.py, through
        the container): every service reads `deps.limits` / `deps.security` when it
        checks, so the next request obeys them; no lock and no cost on the hot path
        (one attribute read, as before). They are replaced whole, never edited."""
        object.__setattr__(self, "limits", limits)
        object.__setattr__(self, "security", security)
        if files is not None:
            object.__setattr__(self, "files", files)
