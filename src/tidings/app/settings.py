"""Settings from (highest first) command-line options, TIDINGS_* environment variables,
a TOML file (--config or TIDINGS_CONFIG), then these defaults."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tidings.services.context import LinkExisting

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Role = Literal["gateway", "api", "worker"]
OrgRoleName = Literal["admin", "member", "guest"]  # what a directory may give (never owner)
ALL_ROLES: tuple[Role, ...] = ("gateway", "api", "worker")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDINGS_", extra="forbid")

    data_dir: Path = Field(Path("tidings-data"), description="where the embedded database lives")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    database_url: str | None = Field(None, description="default: SQLite in data_dir")
    replica_urls: list[str] = Field(
        default_factory=list, description="read replicas for history and sync reads"
    )
    redis_url: str | None = Field(None, description="default: the in-process bus")
    redis_prefix: str = Field("tidings", description="prefix of every Redis key and channel")
    roles: list[Role] = Field(default_factory=lambda: list(ALL_ROLES))
    argon2_time_cost: int = Field(3, ge=1, description="argon2id passes per password hash")
    argon2_memory_kib: int = Field(65536, ge=1024, description="argon2id memory per hash")
    node_name: str = Field("", description="this node's name in /healthz (default host:port)")
    presence_ttl_seconds: int = Field(60, ge=5, description="presence of a dead node expires")
    admin_username: str = "admin"
    admin_password: SecretStr | None = None
    max_message_bytes: int = Field(16 * 1024, ge=1, le=1024 * 1024)
    max_frame_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    edit_window_seconds: int = Field(3600, ge=0)
    max_reaction_emoji_per_message: int = Field(
        50, ge=1, description="distinct emoji on one message, at most"
    )
    max_reactions_per_user_per_message: int = Field(
        20, ge=1, description="one user's reactions on one message, at most"
    )
    max_pins_per_conversation: int = Field(
        100, ge=1, le=10_000, description="pinned messages in one conversation, at most"
    )
    max_saved_per_user: int = Field(
        1000, ge=1, le=100_000, description="saved messages of one user, at most"
    )
    max_scheduled_per_user: int = Field(
        100, ge=1, le=10_000, description="scheduled messages of one user not sent yet, at most"
    )
    scheduled_max_horizon_days: int = Field(
        365, ge=1, le=3650, description="how far ahead a message may be scheduled, in days"
    )
    audit_export_max_rows: int = Field(
        50_000, ge=1, le=10_000_000, description="entries in one audit log export, at most"
    )
    usage_stats_max_days: int = Field(
        90, ge=1, le=3660, description="the longest window of the admins' usage statistics"
    )
    token_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)
    custom_status_max_chars: int = Field(
        100, ge=1, le=1000, description="the longest custom status text (services/profile.py)"
    )
    mention_all_min_role: Literal["member", "moderator", "owner"] = Field(
        "member",
        description="who may use @all/@channel/@here in conversations of up to "
        "mention_all_large_members members (org admins always may)",
    )
    mention_all_large_min_role: Literal["member", "moderator", "owner"] = Field(
        "moderator", description="who may use @all/@channel/@here in larger conversations"
    )
    mention_all_large_members: int = Field(
        50, ge=1, le=10_000_000, description="a conversation of more members is large"
    )
    mention_all_confirm_members: int = Field(
        10,
        ge=0,
        le=10_000_000,
        description="the web client asks before @all/@channel/@here to more members (0: always)",
    )
    auth_timeout_seconds: float = Field(10.0, gt=0)
    # --- request and connection limits (docs/security.md) ---
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="largest request head (request line and headers)"
    )
    max_header_count: int = Field(100, ge=8, description="most header lines in a request")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="time for a new or idle connection to send a whole request head"
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="longest wait for the next piece of a request body"
    )
    max_connections: int = Field(
        0, ge=0, description="open connections at most (0: the open-files limit less fd_reserve)"
    )
    fd_reserve: int = Field(
        128, ge=16, description="file descriptors kept for the listener, database and logs"
    )
    max_connections_per_address: int = Field(
        1000, ge=1, description="open connections of one client address (trusted proxies: none)"
    )
    max_connections_per_user: int = Field(
        100, ge=1, description="WebSocket connections of one user on one node"
    )
    ws_send_queue: int = Field(2000, ge=10, description="frames queued per connection")
    session_check_seconds: float = Field(
        5.0,
        gt=0,
        description="how often a gateway checks that its connections' sessions still hold",
    )
    ws_compression: bool = Field(
        False,
        description="offer permessage-deflate: less traffic, but every frame is compressed "
        "per connection (CPU, and about 30 KiB of memory per connection)",
    )
    history_page_max: int = Field(200, ge=1)
    thread_participants_max: int = Field(
        10,
        ge=0,
        le=100,
        description="a thread summary names this many participants at most (the most "
        "recent repliers)",
    )
    sync_page_max: int = Field(1000, ge=1)
    db_pool_size: int = Field(5, ge=1)
    write_lock_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=600,
        description="how long a write waits for the database's write lock (another process "
        "or session holding it) before it answers unavailable, nothing written",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    drain_seconds: float = Field(5.0, ge=0)
    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"
    # --- security (docs/security.md) ---
    tls_cert: Path | None = Field(None, description="PEM certificate chain: serve HTTPS/WSS")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    insecure_http: bool = Field(False, description="allow plain HTTP on a non-loopback address")
    trusted_proxies: str = Field(
        "127.0.0.1", description="addresses whose X-Forwarded-For is believed ('*': any)"
    )
    hsts_max_age: int = Field(
        31_536_000,
        ge=0,
        description="Strict-Transport-Security max-age on HTTPS answers (0: no header)",
    )
    password_min_length: int = Field(8, ge=1, le=1024, description="shortest new password")
    password_min_score: int = Field(
        3,
        ge=0,
        le=4,
        description="least zxcvbn strength score (0-4) of a new password (0: no estimate)",
    )
    login_failures_before_delay: int = Field(3, ge=1)
    login_failures_before_lockout: int = Field(10, ge=1)
    login_address_failures_before_lockout: int = Field(50, ge=1)
    login_lockout_seconds: int = Field(900, ge=1)
    login_failure_window_seconds: int = Field(900, ge=1)
    login_max_delay_seconds: int = Field(60, ge=1)
    rate_window_seconds: int = Field(60, ge=1, description="window of every rate_* limit")
    rate_login_per_user: int = Field(20, ge=0, description="0: no limit")
    rate_login_per_address: int = Field(600, ge=0)
    rate_send_per_user: int = Field(600, ge=0)
    rate_send_per_address: int = Field(30000, ge=0)
    rate_upload_per_user: int = Field(60, ge=0)
    rate_upload_per_address: int = Field(600, ge=0)
    rate_typing_per_conversation: int = Field(
        30, ge=0, description="typing signals of one user in one conversation per window"
    )
    rate_typing_per_user: int = Field(
        90, ge=0, description="typing signals of one user per window, all conversations together"
    )
    rate_presence_per_user: int = Field(30, ge=0, description="presence changes per window")
    rate_edit_per_user: int = Field(
        120,
        ge=0,
        description="message edits and recalls, saves and unsaves, marks unread, per window",
    )
    rate_reaction_per_user: int = Field(300, ge=0, description="reactions added or taken back")
    rate_membership_per_user: int = Field(
        120, ge=0, description="members added or removed, conversations renamed, per window"
    )
    rate_conversation_create_per_hour: int = Field(
        100, ge=0, description="conversations one user creates per hour (0: no limit)"
    )
    rate_directory_per_user: int = Field(
        10, ge=0, description="an admin's directory tests and syncs per window"
    )
    totp_issuer: str = Field("Tidings", min_length=1, max_length=64)
    # --- durable jobs (docs/integrations.md) ---
    amqp_url: str | None = Field(
        None,
        description="RabbitMQ (amqp://user:pass@host:5672/vhost): jobs go through it; "
        "unset: in-process, from the database's outbox",
    )
    amqp_prefix: str = Field(
        "tidings",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="prefix of every RabbitMQ exchange and queue name",
    )
    jobs_concurrency: int = Field(4, ge=1, le=256, description="jobs one worker runs at once")
    jobs_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="how often the relay looks for due jobs and new events"
    )
    jobs_backoff_base_seconds: float = Field(
        2.0, gt=0, description="wait after a job's first failed attempt (doubles each time)"
    )
    jobs_backoff_max_seconds: float = Field(
        3600.0, gt=0, description="longest wait between two attempts of a job"
    )
    jobs_lease_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="a running job whose worker stopped answering is run again this long "
        "after its timeout",
    )
    jobs_requeue_seconds: float = Field(
        900.0,
        gt=0,
        description="a job published to RabbitMQ but not started after this long is "
        "published again",
    )
    jobs_keep_done_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="done jobs are kept this long (dead ones: until purged)"
    )
    jobs_event_batch: int = Field(
        500, ge=1, le=10_000, description="events the event consumers read per round"
    )
    # --- backups (docs/operations.md) ---
    backup_interval_seconds: float = Field(
        0.0,
        ge=0,
        description="the worker role makes a backup this often (0: no scheduled backups; "
        "at least 60 when set)",
    )
    backup_dir: Path | None = Field(
        None, description="where scheduled backups go (default data_dir/backups)"
    )
    backup_keep: int = Field(7, ge=1, description="scheduled backups kept: the newest this many")
    backup_timeout_seconds: float = Field(
        3600.0, gt=0, description="a scheduled backup taking longer is stopped and retried"
    )
    backup_restore_position_gap: int = Field(
        1_000_000_000,
        ge=1000,
        le=2**53,
        description="a restore moves the stream positions forward by this much: positions "
        "the lost server gave out after the backup are refused, never given out again",
    )
    # --- integrations: incoming webhooks and slash commands (docs/integrations.md) ---
    public_url: str = Field(
        "",
        max_length=500,
        description="the server's address as its clients reach it (https://chat.example.com): "
        "incoming webhook and response URLs start with it (empty: the address each request "
        "came to)",
    )
    webhook_allowed_networks: str = Field(
        "",
        description="comma-separated CIDRs that outgoing requests (webhooks, slash commands) "
        "may reach although private, loopback or link-local",
    )
    incoming_webhook_max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="largest body an incoming webhook accepts"
    )
    max_incoming_webhooks_per_conversation: int = Field(
        20, ge=1, description="incoming webhooks of one conversation, at most"
    )
    rate_incoming_webhook_per_hook: int = Field(
        60, ge=0, description="posts through one incoming webhook per window (0: no limit)"
    )
    audit_incoming_posts: bool = Field(
        False, description="an audit entry for every post through an incoming webhook "
        "(they are always counted)"
    )
    max_commands: int = Field(500, ge=1, description="slash commands registered, at most")
    rate_command_per_user: int = Field(
        30, ge=0, description="slash commands one user invokes per window (0: no limit)"
    )
    command_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="how long a slash command's URL has to answer"
    )
    command_max_attempts: int = Field(
        3, ge=1, le=20, description="tries of a slash command's target before the caller "
        "is told it failed"
    )
    command_response_ttl_seconds: int = Field(
        1800, ge=10, description="how long a slash command's response URL works"
    )
    command_response_uses: int = Field(
        5, ge=1, le=100, description="replies through one response URL, at most"
    )
    command_response_max_bytes: int = Field(
        64 * 1024, ge=1024, description="largest answer read from a slash command's URL"
    )
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="server keys, newest first (TOTP secrets at rest, the audit head); "
        "empty: the key file",
    )
    secret_key_file: Path | None = Field(
        None, description="key file used when secret_keys is empty (default data_dir/secret.key)"
    )
    # --- monitoring (docs/operations.md, Monitoring) ---
    metrics_token: SecretStr | None = Field(
        None,
        description="bearer token that /metrics accepts from any address (unset: only "
        "clients in metrics_networks may scrape)",
    )
    metrics_networks: str = Field(
        "127.0.0.0/8,::1/128",
        description="comma-separated CIDRs whose clients may read /metrics without the token, "
        "unless the request came through a proxy ('': none)",
    )
    metrics_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="how long /metrics reuses what it reads from the database (job queue, "
        "stream head) and the walk over the connections' queues",
    )
    # --- identity providers (docs/identity.md) ---
    identity_link_existing: LinkExisting = Field(
        "provisioned",
        description="when a provider's new identity names an existing account that no "
        "identity of that provider is linked to: never (refuse), provisioned (link "
        "accounts another provider made, never a local one), all (local accounts too; "
        "never the owner or a bot)",
    )
    # --- OpenID Connect single sign-on (docs/identity.md) ---
    oidc_issuer: str | None = Field(
        None, description="the provider's issuer URL (https; unset: OpenID Connect off)"
    )
    oidc_client_id: str = Field("", max_length=255, description="this server's client id there")
    oidc_client_secret: SecretStr | None = Field(
        None, description="the client secret (unset with oidc_token_auth_method none)"
    )
    oidc_token_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] = (
        Field("client_secret_basic", description="how the token endpoint is told the secret")
    )
    oidc_scopes: str = Field(
        "openid profile email", description="scopes asked for, space-separated ('openid' first)"
    )
    oidc_redirect_url: str = Field(
        "",
        description="the callback URL registered at the provider (default: this server's "
        "address as the browser reached it + /api/v1/auth/oidc/callback)",
    )
    oidc_post_logout_redirect_url: str = Field(
        "", description="where the provider sends the browser after logout (default: the web app)"
    )
    oidc_allowed_hosts: str = Field(
        "",
        description="hosts besides the issuer's that the provider's endpoints may be on "
        "(comma-separated)",
    )
    oidc_provider_name: str = Field(
        "SSO", min_length=1, max_length=40, description="shown on the button: 'Sign in with …'"
    )
    oidc_username_claim: str = Field("preferred_username", min_length=1, max_length=64)
    oidc_display_name_claim: str = Field("name", min_length=1, max_length=64)
    oidc_email_claim: str = Field("email", min_length=1, max_length=64)
    oidc_groups_claim: str = Field(
        "groups", max_length=64, description="claim listing the user's groups ('': none)"
    )
    oidc_department_claim: str = Field(
        "", max_length=64, description="claim naming the user's department ('': none)"
    )
    oidc_group_roles: str = Field(
        "",
        description="group=role pairs, comma-separated (role: admin, member or guest); the "
        "first listed group the user is in gives the role",
    )
    oidc_required_amr: str = Field(
        "",
        max_length=64,
        description="refuse ID tokens whose amr claim lacks this method (e.g. mfa; '': any)",
    )
    oidc_clock_skew_seconds: int = Field(
        60, ge=0, le=600, description="leeway on the ID token's exp, iat and nbf"
    )
    oidc_login_timeout_seconds: int = Field(
        600, ge=30, le=3600, description="time to finish a sign-in at the provider"
    )
    oidc_max_pending_logins: int = Field(
        10_000, ge=10, description="sign-ins started and not finished, at most"
    )
    oidc_http_timeout_seconds: float = Field(10.0, gt=0, le=120)
    oidc_cache_seconds: int = Field(
        3600, ge=0, description="how long the discovery document and JWKS are kept"
    )
    oidc_max_response_bytes: int = Field(
        1024 * 1024, ge=4096, description="largest answer read from the provider"
    )
    # --- the LDAP and OIDC settings admins edit at run time (docs/identity.md) ---
    config_max_value_chars: int = Field(
        4096, ge=64, le=65536, description="the longest value an admin may give a setting"
    )
    config_poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="how often a node looks for a changed configuration"
    )
    # --- LDAP / Active Directory (docs/identity.md); ldap_url unset: LDAP is off ---
    ldap_url: str | None = Field(
        None, description="ldap://host:389 or ldaps://host:636 (several: space-separated)"
    )
    ldap_bind_dn: str = Field(
        "", description="the service account that searches (empty: anonymous)"
    )
    ldap_bind_password: SecretStr | None = Field(None, description="the service account's password")
    ldap_user_base: str = Field(
        "", description="where the accounts are, e.g. ou=people,dc=example,dc=org"
    )
    ldap_user_filter: str = Field(
        "(uid={username})",
        description="finds one account by its username: (uid={username}) or "
        "(sAMAccountName={username}); the value is escaped",
    )
    ldap_sync_filter: str = Field(
        "",
        description="which entries the sync provisions (default: the user filter with * "
        "for the username)",
    )
    ldap_bind_mode: Literal["search", "direct"] = Field(
        "search",
        description="search: find the entry with the service account, then bind as it; "
        "direct: bind as ldap_user_dn_template",
    )
    ldap_user_dn_template: str = Field(
        "",
        description="direct bind: the DN (or AD user principal name) to bind as, e.g. "
        "uid={username},ou=people,dc=example,dc=org or {username}@corp.example.com",
    )
    ldap_start_tls: bool = Field(False, description="StartTLS on an ldap:// URL")
    ldap_ca_file: Path | None = Field(
        None, description="PEM CA certificates the server's certificate is checked against"
    )
    ldap_username_attribute: str = Field("", description="default: uid, else sAMAccountName")
    ldap_display_name_attribute: str = Field("", description="default: displayName, else cn")
    ldap_email_attribute: str = Field("mail", description="the email address (empty: none)")
    ldap_uuid_attribute: str = Field(
        "", description="a stable id of the entry (default: entryUUID, else objectGUID)"
    )
    ldap_disabled_attribute: str = Field(
        "",
        description="marks a disabled account (userAccountControl: the AD bit 2; another: "
        "true/1/yes/disabled); empty: none",
    )
    ldap_department_source: Literal["ou", "attribute", "none"] = Field(
        "ou",
        description="departments from the entry's OU path below ldap_user_base, from "
        "ldap_department_attribute, or not at all",
    )
    ldap_department_attribute: str = Field(
        "department", description="department source 'attribute': which one (a path A/B)"
    )
    ldap_group_base: str = Field(
        "", description="where the groups are (empty: the user base's parent)"
    )
    ldap_group_filter: str = Field(
        "(|(member={dn})(uniqueMember={dn})(memberUid={username}))",
        description="a user's groups; {dn} and {username} are escaped",
    )
    ldap_group_roles: dict[str, OrgRoleName] = Field(
        default_factory=dict,
        description="group DN (or cn) -> role (admin, member, guest); the highest wins; "
        "empty: the directory does not set roles",
    )
    ldap_default_role: OrgRoleName = Field(
        "member", description="the role of an account in none of ldap_group_roles' groups"
    )
    ldap_connect_timeout_seconds: float = Field(5.0, gt=0, le=120)
    ldap_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="longest wait for one directory operation"
    )
    ldap_max_concurrent: int = Field(
        8, ge=1, le=256, description="directory operations at once (each holds a thread)"
    )
    ldap_sync_interval_seconds: int = Field(
        3600, ge=0, description="how often the worker syncs the directory (0: never)"
    )
    ldap_sync_timeout_seconds: int = Field(
        1800, ge=10, description="longest one sync job may run (then it is retried)"
    )
    ldap_sync_max_entries: int = Field(
        100_000, ge=1, description="most entries one sync reads (paged searches)"
    )
    # --- server plugins (docs/integrations.md, "Plugins") ---
    plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="entry points of the group tidings.plugins to load, in this order "
        "(TIDINGS_PLUGINS=dlp,other); an unknown name stops the start",
    )
    plugin_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="each plugin's own settings: a [plugin_settings.NAME] table in the "
        "settings file, or TIDINGS_PLUGIN_SETTINGS as JSON {\"NAME\": {...}}",
    )
    plugins_fail_closed: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="plugins whose before_message hook, when it raises or overruns, refuses "
        "the send (unavailable); the others let it through (fail-open)",
    )
    plugin_timeout_seconds: float = Field(
        0.05, gt=0, le=10, description="time limit of one before_message hook call"
    )
    plugin_threads: int = Field(
        4, ge=1, le=64, description="threads running plugins' plain (non-async) hooks"
    )
    plugin_job_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="time limit of one after_event hook call (a job)"
    )
    plugin_job_max_attempts: int = Field(
        5, ge=1, le=100, description="after_event attempts before the job is a dead letter"
    )
    # --- outgoing webhooks (docs/integrations.md; webhook_allowed_networks: above) ---
    webhook_direct_conversations: bool = Field(
        False,
        description="admins' webhooks also get the events of direct conversations "
        "(compliance archiving); off: groups and channels only",
    )
    webhook_max_url_chars: int = Field(2048, ge=16, le=65536, description="longest webhook URL")
    webhook_max_per_owner: int = Field(20, ge=1, description="webhooks one user registers")
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="one delivery attempt, connecting to the answer's status"
    )
    webhook_connect_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="connecting to a webhook's receiver"
    )
    webhook_max_attempts: int = Field(
        8, ge=1, le=100, description="attempts of one delivery (with backoff) before it is given up"
    )
    webhook_max_failures: int = Field(
        10, ge=1, description="consecutive failed attempts that disable a webhook"
    )
    webhook_log_keep: int = Field(
        100, ge=1, le=100_000, description="delivery log rows kept per webhook (the newest)"
    )
    webhook_cache_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="how soon a webhook registered on another node starts getting events",
    )
    rate_webhook_per_user: int = Field(
        60, ge=0, description="webhook changes and test pings of one user per window"
    )
    rate_search_per_user: int = Field(
        120, ge=0, description="searches of one user per window (GET /api/v1/search)"
    )
    rate_notify_per_user: int = Field(
        30,
        ge=0,
        description="push subscription and notification setting changes of one user per window",
    )
    # --- notifications for closed tabs: Web Push and email digests (docs/notifications.md) ---
    push_enabled: bool = Field(True, description="send Web Push notifications (VAPID)")
    push_vapid_subject: str = Field(
        "",
        max_length=200,
        description="the VAPID contact (mailto: or https:); empty: public_url, else "
        "mailto:postmaster@localhost",
    )
    push_max_subscriptions_per_user: int = Field(
        10, ge=1, le=1000, description="devices one user may subscribe"
    )
    push_max_endpoint_chars: int = Field(
        1024, ge=64, le=8192, description="the longest push endpoint URL accepted"
    )
    push_ttl_seconds: int = Field(
        86400, ge=0, le=2419200, description="how long the push service keeps an undelivered push"
    )
    push_timeout_seconds: float = Field(10.0, gt=0, le=120)
    push_max_attempts: int = Field(6, ge=1, le=50)
    notify_previews: bool = Field(
        True,
        description="text previews in push notifications and digests (false: never, "
        "whatever users choose)",
    )
    digest_delay_seconds: float = Field(
        900.0, ge=0, le=7 * 86400, description="how long a message stays unread before it is mailed"
    )
    digest_max_items: int = Field(50, ge=1, le=500, description="messages listed in one digest")
    smtp_host: str | None = Field(None, description="the SMTP server (unset: no email)")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls (port 587), tls (implicit TLS, port 465) or none (a relay on "
        "localhost only)",
    )
    smtp_user: str = Field("", description="the SMTP login (empty: no AUTH)")
    smtp_password: SecretStr | None = Field(None, description="the SMTP password (a secret)")
    smtp_from: str = Field(
        "", max_length=254, description="the From address of digests (empty: tidings@<smtp_host>)"
    )
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=300)
    smtp_ca_file: Path | None = Field(
        None, description="PEM CA certificates the SMTP server's certificate is checked against"
    )

    # --- SCIM 2.0 provisioning (docs/identity.md) ---
    scim_page_max: int = Field(
        100, ge=1, le=1000, description="SCIM list pages: the default and largest count"
    )
    scim_max_request_bytes: int = Field(
        256 * 1024, ge=1024, description="largest SCIM request body"
    )
    scim_max_patch_operations: int = Field(
        200, ge=1, le=10_000, description="operations in one SCIM PATCH request, at most"
    )
    scim_max_filter_chars: int = Field(
        512, ge=16, le=8192, description="longest SCIM filter"
    )
    scim_max_members: int = Field(
        5000, ge=1, description="members one SCIM Group request may name, at most"
    )
    scim_group_roles: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="SCIM groups whose members get a role: 'Tidings Admins=admin,"
        "Contractors=guest' (roles admin, member, guest; never owner)",
    )
    rate_scim_per_token: int = Field(
        1200, ge=0, description="SCIM requests per window of one SCIM token (0: no limit)"
    )

    # --- files (docs/files.md); the blob store: docs/object-storage.md ---
    blob_url: str | None = Field(
        None,
        description="unset: the data directory; s3://bucket[/prefix]?endpoint=http://"
        "host:8333&region=us-east-1 for an S3-compatible object store",
    )
    blob_access_key: SecretStr | None = Field(
        None, description="the object store's access key (unset: the AWS_* variables)"
    )
    blob_secret_key: SecretStr | None = Field(None, description="the object store's secret key")
    blob_s3_part_bytes: int = Field(
        8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=512 * 1024 * 1024,
        description="an upload to S3 goes in parts of this size (S3's least: 5 MiB); one "
        "upload holds at most three parts in memory",
    )
    blob_s3_create_bucket: bool = Field(
        True, description="create the bucket at start-up when it does not exist"
    )
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, ge=1024, description="largest file one upload may carry"
    )
    avatar_max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="largest image upload a user may make their avatar from "
        "(services/avatars.py; the image limits apply too)",
    )
    upload_quota_bytes: int = Field(
        10 * 1024**3, ge=0, description="bytes of files one user may have uploaded (0: no quota)"
    )
    max_attachments_per_message: int = Field(
        10, ge=0, le=100, description="files attached to one message, at most"
    )
    max_file_name_chars: int = Field(
        200, ge=16, le=1000, description="an uploaded file's name is cut to this length"
    )
    file_link_ttl_seconds: int = Field(
        900, ge=10, le=7 * 24 * 3600, description="how long a signed file link works"
    )
    files_gc_grace_seconds: int = Field(
        24 * 3600,
        ge=0,
        description="an upload no message references is collected after this long",
    )
    files_gc_interval_seconds: float = Field(
        3600.0, gt=0, description="how often the worker collects unreferenced files"
    )
    upload_allowed_types: str = Field(
        "",
        description="comma-separated content types (or type/*) an upload may have "
        "(empty: every type not blocked)",
    )
    upload_blocked_types: str = Field(
        "application/x-executable,application/x-sharedlib,application/x-msdownload,"
        "application/x-dosexec,application/x-mach-binary,application/x-msi",
        description="comma-separated content types (or type/*) an upload may not have, as "
        "sniffed from its bytes (default: executables: ELF, PE/DOS, Mach-O, MSI)",
    )
    image_max_pixels: int = Field(
        50_000_000,
        ge=1,
        description="an image that claims more pixels (width x height) gets no thumbnail "
        "and stays a plain file: decompression bombs (workers/imaging.py)",
    )
    image_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="an image upload larger than this gets no thumbnail (the worker reads "
        "it whole to decode it)",
    )
    image_thumbnail_px: int = Field(
        320, ge=32, le=1024, description="the longer side of an image's thumbnail"
    )
    image_preview_px: int = Field(
        1280, ge=256, le=4096, description="the longer side of an image's preview (lightbox)"
    )
    image_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="images one process decodes and resizes at once (threads beside the "
        "event loop; more use more cores, and leave less to sends on the same node)",
    )
    # --- search (issue 16; docs/search.md) ---
    search_user_words: str = Field(
        "",
        description="comma-separated words of the organization (products, teams, jargon) "
        "the Chinese segmenter keeps whole (read at start-up)",
    )
    search_max_query_chars: int = Field(
        500, ge=16, le=10_000, description="a search query (q) has at most this many characters"
    )
    search_max_query_tokens: int = Field(
        24,
        ge=1,
        le=1000,
        description="index tokens one search looks up at most (the longest of its tokens); "
        "the matches are then checked against every token of the query",
    )
    search_page_default: int = Field(
        20, ge=1, le=1000, description="results on one search page when the client asks none"
    )
    search_page_max: int = Field(
        100, ge=1, le=1000, description="results on one search page, at most"
    )
    search_count_limit: int = Field(
        1000, ge=1, description="a conversation's count of matches is capped at this"
    )
    search_count_scan_max: int = Field(
        500,
        ge=1,
        description="the per-conversation counts look at this many matches at most (beyond: "
        "counts_capped)",
    )
    search_relevance_window: int = Field(
        500,
        ge=10,
        le=100_000,
        description="order=relevance ranks the newest this many matches (the rest are not "
        "ranked)",
    )
    search_verify_max: int = Field(
        2000,
        ge=10,
        description="candidates one search checks against the messages (phrases, index "
        "lag) before it returns a short page",
    )
    search_index_batch: int = Field(
        500,
        ge=1,
        le=10_000,
        description="messages one search.index job or reindex step writes in one transaction",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("TIDINGS_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @field_validator("ldap_url")
    @classmethod
    def _ldap_urls(cls, value: str | None) -> str | None:
        """Space-separated ldap:// or ldaps:// URLs, each with a host (empty: LDAP off)."""
        if value is None or not value.strip():
            return None
        for url in value.split():
            scheme, sep, rest = url.partition("://")
            host = rest.split("/", 1)[0].rsplit(":", 1)[0] if sep else ""
            if scheme.lower() not in ("ldap", "ldaps") or not host:
                raise ValueError(f"{url!r} is no ldap://host[:port] or ldaps://host[:port] URL")
        return " ".join(value.split())

    @field_validator("backup_interval_seconds")
    @classmethod
    def _backup_interval(cls, value: float) -> float:
        if 0 < value < 60:
            raise ValueError("scheduled backups are at least 60 seconds apart (0: none)")
        return value

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _key_list(cls, value: object) -> object:
        """TIDINGS_SECRET_KEYS: a JSON list, or keys separated by commas."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("plugins", "plugins_fail_closed", mode="before")
    @classmethod
    def _name_list(cls, value: object) -> object:
        """TIDINGS_PLUGINS: a JSON list, or names separated by commas."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("plugins")
    @classmethod
    def _plugin_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name or len(name) > 100 or not all(c.isalnum() or c in "_.-" for c in name):
                raise ValueError(f"not a plugin entry point name: {name[:100]!r}")
        if len(set(names)) != len(names):
            raise ValueError("a plugin is named twice")
        return names

    @model_validator(mode="after")
    def _fail_closed_are_loaded(self) -> Settings:
        unknown = sorted(set(self.plugins_fail_closed) - set(self.plugins))
        if unknown:
            raise ValueError(f"plugins_fail_closed names {unknown[0]!r}, which plugins does not")
        return self

    @field_validator("scim_group_roles", mode="before")
    @classmethod
    def _scim_group_roles(cls, value: object) -> object:
        """TIDINGS_SCIM_GROUP_ROLES: a JSON object, or `Group=role` pairs separated by
        commas."""
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                return json.loads(value)
            pairs = [p.rpartition("=") for p in value.split(",") if p.strip()]
            return {name.strip(): role.strip() for name, _, role in pairs}
        return value

    @field_validator("scim_group_roles")
    @classmethod
    def _scim_known_roles(cls, roles: dict[str, str]) -> dict[str, str]:
        for name, role in roles.items():
            if not name.strip() or role not in ("admin", "member", "guest"):
                raise ValueError(
                    f"scim_group_roles: {name!r}={role!r}: each group maps to admin, member "
                    "or guest"
                )
        return roles

    @field_validator("secret_keys")
    @classmethod
    def _long_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        if any(len(k.get_secret_value().strip()) < 32 for k in keys):
            raise ValueError(
                "each secret key has at least 32 characters (tidings secrets generate)"
            )
        return keys

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if not value:
            return None
        from tidings.identity.oidc import check_issuer

        return check_issuer(value)

    @field_validator("oidc_group_roles")
    @classmethod
    def _group_roles(cls, value: str) -> str:
        from tidings.services.oidc import parse_group_roles

        parse_group_roles(value)
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer is None:
            return self
        if not self.oidc_client_id:
            raise ValueError("oidc_issuer is set: set oidc_client_id too")
        if "openid" not in self.oidc_scopes.split():
            raise ValueError("oidc_scopes must include openid")
        if self.oidc_token_auth_method != "none" and self.oidc_client_secret is None:
            raise ValueError(
                "set oidc_client_secret, or oidc_token_auth_method=none for a public client"
            )
        return self

    @field_validator("blob_url")
    @classmethod
    def _blob_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from tidings.blobs.location import parse_blob_url

        value = value.strip()
        if value.startswith("file://"):
            if not value.removeprefix("file://").startswith("/"):
                raise ValueError("blob_url: file:// takes an absolute path (file:///srv/blobs)")
            return value
        parse_blob_url(value)
        return value

    @model_validator(mode="after")
    def _blob_keys(self) -> Settings:
        """Both keys, or neither (then the S3 client's own chain: AWS_* variables, an
        instance role)."""
        if (self.blob_access_key is None) != (self.blob_secret_key is None):
            raise ValueError("set both blob_access_key and blob_secret_key, or neither")
        return self

    @field_validator("metrics_networks", "webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str, info: ValidationInfo) -> str:
        from tidings.core.webhooks import parse_networks

        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"{info.field_name}: {exc}") from None
        return value

    @property
    def key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def backups_dir(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tidings.db').resolve()}"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings with CLI overrides (None values are ignored)."""
    if config is not None:
        if not config.is_file():
            raise FileNotFoundError(f"settings file not found: {config}")
        os.environ["TIDINGS_CONFIG"] = str(config)
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


L = TypeVar("L", bound="DataclassInstance")


def limits_from(settings: Settings, limits: type[L]) -> L:
    """One of the services' limit classes (services/context.py), each field the setting
    of the same name: the defaults live here in Settings only."""
    return limits(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(limits)})
