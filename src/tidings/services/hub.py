"""All services of a process, handed to the transports by the container."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tidings.blobs.ports import BlobStore
from tidings.identity.ports import Directory
from tidings.outbound.ports import NoOutbound, Outbound
from tidings.queue.ports import Queue
from tidings.search.ports import NoIndex, SearchIndex
from tidings.services.audit import AuditService
from tidings.services.auth import AuthService
from tidings.services.avatars import AvatarService
from tidings.services.backup import BackupService
from tidings.services.bots import BotService
from tidings.services.config import ConfigService
from tidings.services.context import Deps
from tidings.services.conversations import ConversationService
from tidings.services.departments import DepartmentService
from tidings.services.digests import DigestService
from tidings.services.files import FileService
from tidings.services.identity import IdentityService
from tidings.services.integrations import CommandService, IncomingWebhookService
from tidings.services.jobs import JobService
from tidings.services.ldap import LdapService
from tidings.services.messages import MessageService
from tidings.services.notifications import NotificationService
from tidings.services.notify_jobs import NotifyJobService
from tidings.services.oidc import OidcService
from tidings.services.passwords import Passwords
from tidings.services.plugins import PluginService, PluginSetup
from tidings.services.presence import PresenceService
from tidings.services.profile import ProfileService
from tidings.services.push import PushService
from tidings.services.ratelimit import RateLimiter
from tidings.services.saved import SavedService
from tidings.services.scheduled import ScheduledService
from tidings.services.scim import ScimService
from tidings.services.search import SearchService
from tidings.services.second_factor import SecondFactorService
from tidings.services.secrets import SecretsService
from tidings.services.sessions import SessionService
from tidings.services.sync import SyncService
from tidings.services.threads import ThreadService
from tidings.services.usage import UsageService
from tidings.services.users import UserService
from tidings.services.webhooks import WebhookService


@dataclass(frozen=True, slots=True)
class Services:
    deps: Deps
    auth: AuthService
    users: UserService
    departments: DepartmentService
    usage: UsageService
    conversations: ConversationService
    messages: MessageService
    threads: ThreadService
    saved: SavedService
    scheduled: ScheduledService
    sync: SyncService
    presence: PresenceService
    audit: AuditService
    second_factor: SecondFactorService
    sessions: SessionService
    profile: ProfileService
    avatars: AvatarService
    notifications: NotificationService
    bots: BotService
    limiter: RateLimiter
    secrets: SecretsService
    jobs: JobService
    identity: IdentityService
    oidc: OidcService
    ldap: LdapService
    plugins: PluginService
    backups: BackupService
    incoming_webhooks: IncomingWebhookService
    commands: CommandService
    scim: ScimService
    webhooks: WebhookService
    config: ConfigService
    files: FileService
    search: SearchService
    notify_jobs: NotifyJobService
    push: PushService
    digests: DigestService

    @classmethod
    def build(
        cls,
        deps: Deps,
        passwords: Passwords,
        queue: Queue | None = None,
        directory: Directory | None = None,
        *,
        oidc: Callable[[AuthService, IdentityService], OidcService] | None = None,
        plugins: PluginSetup | None = None,
        outbound: Outbound | None = None,
        config: Callable[[LdapService, OidcService], ConfigService] | None = None,
        blobs: BlobStore | None = None,
        search_index: SearchIndex | None = None,
    ) -> Services:
        """Every service on `deps`; `passwords` (the argon2id cost the settings chose)
        goes to the ones that hash or check passwords, `queue` (default in-process) to
        the jobs; `directory` (LDAP, when the settings name one) to sign-in and the
        sync; `oidc` makes the single sign-on service (the container builds its
        provider client from the settings; default: off); `plugins`: the server plugins
        app/plugins.py loaded (default none); `outbound` makes the requests users aim
        (webhooks, slash commands; none: every such request is refused); `config` makes
        the service of the settings admins edit at run time (default: none editable);
        `blobs` keeps uploaded files' bytes (none: uploads are unavailable);
        `search_index` the message search index of the store's engine (none: search
        finds nothing)."""
        outbound = outbound or NoOutbound()
        jobs = JobService(deps, queue)
        plugin_service = PluginService(deps, jobs, plugins or PluginSetup())
        identity = IdentityService(deps)
        ldap = LdapService(deps, identity, directory, jobs)
        # asked at each sign-in whether LDAP is on (admins turn it on at run time)
        second_factor = SecondFactorService(deps, passwords, ldap)
        auth = AuthService(deps, passwords, second_factor, ldap)
        users = UserService(deps, auth, passwords)
        audit = AuditService(deps)
        conversations = ConversationService(deps)
        messages = MessageService(deps, plugin_service)
        presence = PresenceService(deps)
        oidc_service = (
            OidcService(deps, auth, identity, None, None) if oidc is None else oidc(auth, identity)
        )
        notify_jobs = NotifyJobService(deps, jobs)
        return cls(
            deps=deps,
            auth=auth,
            users=users,
            departments=DepartmentService(deps),
            usage=UsageService(deps),
            conversations=conversations,
            messages=messages,
            threads=ThreadService(deps, auth.limiter),
            saved=SavedService(deps, messages.limiter),
            scheduled=ScheduledService(deps, jobs, messages, messages.limiter),
            sync=SyncService(deps),
            presence=presence,
            audit=audit,
            second_factor=second_factor,
            sessions=SessionService(deps, auth, passwords),
            profile=ProfileService(deps, auth.limiter),
            avatars=AvatarService(deps, blobs, auth.limiter),
            notifications=NotificationService(deps, auth.limiter),
            bots=BotService(deps, auth, users),
            limiter=auth.limiter,
            secrets=SecretsService(deps, audit),
            jobs=jobs,
            oidc=oidc_service,
            config=ConfigService(deps, None) if config is None else config(ldap, oidc_service),
            identity=identity,
            ldap=ldap,
            plugins=plugin_service,
            backups=BackupService(deps),
            incoming_webhooks=IncomingWebhookService(deps, messages, auth.limiter),
            commands=CommandService(deps, jobs, messages, presence, auth.limiter, outbound),
            scim=ScimService(deps, passwords, auth.limiter, identity),
            webhooks=WebhookService(deps, jobs, outbound, conversations, messages),
            files=FileService(deps, jobs, blobs, auth.limiter),
            search=SearchService(deps, jobs, search_index or NoIndex(), auth.limiter),
            notify_jobs=notify_jobs,
            push=PushService(deps, jobs, outbound, notify_jobs),
            digests=DigestService(deps, jobs, notify_jobs),
        )
