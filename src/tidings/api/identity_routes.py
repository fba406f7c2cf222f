"""REST routes of the identity providers' administration: LDAP / Active Directory's
configuration (secrets never shown), its check and its sync. Admins only (checked by
the services); each check and sync counts against `rate_directory_per_user`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.api.routes import ERRORS, Auth, Svc, json
from tidings.core.rules import MAX_PASSWORD_CHARS
from tidings.identity.ports import CheckStep
from tidings.services.ldap import SyncReport

router = APIRouter(
    prefix="/api/v1/admin/identity",
    responses={**ERRORS, 503: {"model": s.ErrorOut}},
    tags=["identity"],
)


class LdapConfigOut(BaseModel):
    ldap: dict[str, Any] = Field(
        description="`enabled`, and when it is the settings in force: the URL, bind DN, "
        "bases, filters, attribute mapping, group -> role mapping, timeouts; the bind "
        "password only as `bind_password_set`"
    )


class LdapTestIn(s.Body):
    username: str | None = Field(
        None, min_length=1, max_length=64, description="also find this account"
    )
    password: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PASSWORD_CHARS,
        description="and sign it in (counts against the login rate limit)",
    )


class CheckStepOut(BaseModel):
    step: str = Field(description="connect, bind, search, find, sign-in or configuration")
    ok: bool
    detail: str


class LdapTestOut(BaseModel):
    ok: bool
    steps: list[CheckStepOut]


class LdapSyncIn(s.Body):
    dry_run: bool = Field(True, description="only say what would change (the default)")


class SyncRowOut(BaseModel):
    username: str
    action: str = Field(
        description="created, updated, disabled, linked, unchanged, skipped or error"
    )
    fields: dict[str, Any]
    detail: str


class LdapSyncOut(BaseModel):
    dry_run: bool
    entries: int = Field(description="entries the directory returned")
    counts: dict[str, int]
    rows: list[SyncRowOut] = Field(description="every account that changes (or would)")
    error: str = Field(description="why nothing was disabled, when the run refused to")


def step_json(step: CheckStep) -> dict[str, object]:
    return {"step": step.step, "ok": step.ok, "detail": step.detail}


def report_json(report: SyncReport) -> dict[str, object]:
    actions = ("created", "updated", "disabled", "linked", "unchanged", "skipped", "error")
    return {
        "dry_run": report.dry_run,
        "entries": report.entries,
        "counts": {a: report.count(a) for a in actions},
        "rows": [
            {"username": r.username, "action": r.action, "fields": r.fields, "detail": r.detail}
            for r in report.changed
        ],
        "error": report.error,
    }


@router.get("/ldap", response_model=LdapConfigOut)
async def ldap_config(svc: Svc, me: Auth) -> Response:
    """The LDAP configuration in force (settings: docs/identity.md), secrets left out."""
    return json({"ldap": svc.ldap.describe(me.user)})


@router.post("/ldap/test", response_model=LdapTestOut)
async def ldap_test(body: LdapTestIn, svc: Svc, me: Auth) -> Response:
    """Connect, bind as the service account, search; with `username` find that account
    (and with `password` sign it in). Writes nothing but an audit entry; a failed step
    says why."""
    steps = await svc.ldap.check(me.user, body.username, body.password)
    return json({"ok": all(st.ok for st in steps), "steps": [step_json(st) for st in steps]})


@router.post("/ldap/sync", response_model=LdapSyncOut)
async def ldap_sync(body: LdapSyncIn, svc: Svc, me: Auth) -> Response:
    """Sync the directory now (`dry_run`, the default: only report what would change)."""
    return json(report_json(await svc.ldap.sync(me.user, dry_run=body.dry_run)))
