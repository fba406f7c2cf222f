"""REST routes of the security baseline: sessions, password change, second factor,
organization settings, the audit log. Thin, like routes.py."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from tidings.api import security_schemas as ss
from tidings.api.routes import ERRORS, AnyAuth, Auth, Svc, json, no_content
from tidings.core.clock import rfc3339
from tidings.core.errors import InvalidRequest
from tidings.core.models import AuditEntry, SecondFactorPolicy, SessionInfo
from tidings.services.audit import AuditFilters
from tidings.services.second_factor import png_data_uri

router = APIRouter(prefix="/api/v1", responses=ERRORS)


def session_json(info: SessionInfo, current_id: str | None) -> dict[str, object]:
    return {
        "id": info.token_id,
        "device": info.device,
        "created_at": rfc3339(info.created_at),
        "last_seen_at": None if info.last_seen_at is None else rfc3339(info.last_seen_at),
        "address": info.address,
        "expires_at": rfc3339(info.expires_at),
        "current": info.token_id == current_id,
    }


def audit_json(entry: AuditEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": rfc3339(entry.at),
        "action": entry.action,
        "actor_id": entry.actor_id,
        "target_id": entry.target_id,
        "address": entry.address,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


# --- sessions -----------------------------------------------------------------------
@router.get("/sessions", response_model=ss.SessionsOut, tags=["sessions"])
async def my_sessions(svc: Svc, me: AnyAuth) -> Response:
    found = await svc.sessions.mine(me)
    return json({"sessions": [session_json(s, me.token_id) for s in found]})


@router.delete("/sessions", response_model=ss.SessionsRevokedOut, tags=["sessions"])
async def revoke_other_sessions(svc: Svc, me: AnyAuth) -> Response:
    """Sign out every other session of yours ("sign out all others"): this one stays;
    the others' live connections close (4003 `revoked`). Audited (`sessions_revoked`)."""
    count = await svc.sessions.revoke_others(me)
    return json({"revoked": count})


@router.delete("/sessions/{sid}", status_code=204, tags=["sessions"])
async def revoke_session(sid: str, svc: Svc, me: AnyAuth) -> Response:
    await svc.sessions.revoke(me, sid)
    return no_content()


@router.post("/auth/password", status_code=204, tags=["auth"])
async def change_password(body: ss.PasswordChangeIn, svc: Svc, me: Auth) -> Response:
    await svc.sessions.change_password(me, body.current_password, body.new_password)
    return no_content()


@router.get("/users/{uid}/sessions", response_model=ss.SessionsOut, tags=["sessions"])
async def user_sessions(uid: str, svc: Svc, me: Auth) -> Response:
    found = await svc.sessions.of_user(me.user, uid)
    return json({"sessions": [session_json(s, me.token_id) for s in found]})


@router.delete("/users/{uid}/sessions", status_code=204, tags=["sessions"])
async def revoke_user_sessions(uid: str, svc: Svc, me: Auth) -> Response:
    await svc.sessions.revoke_all(me.user, uid)
    return no_content()


# --- second factor --------------------------------------------------------------------
@router.get("/auth/totp", response_model=ss.TotpStatusOut, tags=["auth"])
async def totp_status(svc: Svc, me: AnyAuth) -> Response:
    enabled, left = await svc.second_factor.status(me)
    return json({"enabled": enabled, "recovery_codes_left": left})


@router.post("/auth/totp/setup", response_model=ss.TotpSetupOut, tags=["auth"])
async def totp_setup(body: ss.PasswordIn, svc: Svc, me: AnyAuth) -> Response:
    enrolment = await svc.second_factor.setup(me, body.password)
    return json(
        {
            "secret": enrolment.secret,
            "otpauth_uri": enrolment.otpauth_uri,
            "qr_png": png_data_uri(enrolment.qr_png),
        }
    )


@router.post("/auth/totp/enable", response_model=ss.RecoveryCodesOut, tags=["auth"])
async def totp_enable(body: ss.PasswordAndCodeIn, svc: Svc, me: AnyAuth) -> Response:
    codes = await svc.second_factor.enable(me, body.password, body.code)
    return json({"recovery_codes": codes})


@router.post("/auth/totp/disable", status_code=204, tags=["auth"])
async def totp_disable(body: ss.PasswordAndCodeIn, svc: Svc, me: Auth) -> Response:
    await svc.second_factor.disable(me, body.password, body.code)
    return no_content()


@router.post("/auth/totp/recovery-codes", response_model=ss.RecoveryCodesOut, tags=["auth"])
async def totp_recovery_codes(body: ss.PasswordAndCodeIn, svc: Svc, me: Auth) -> Response:
    codes = await svc.second_factor.regenerate_codes(me, body.password, body.code)
    return json({"recovery_codes": codes})


@router.delete("/users/{uid}/totp", status_code=204, tags=["users"])
async def reset_totp(uid: str, svc: Svc, me: Auth) -> Response:
    await svc.second_factor.reset(me.user, uid)
    return no_content()


# --- organization settings ----------------------------------------------------------
@router.get("/settings", response_model=ss.OrgSettingsOut, tags=["organization"])
async def org_settings(svc: Svc, me: Auth) -> Response:
    policy = await svc.second_factor.policy()
    return json({"settings": {"second_factor_policy": policy.value}})


@router.patch("/settings", response_model=ss.OrgSettingsOut, tags=["organization"])
async def patch_org_settings(body: ss.OrgSettingsIn, svc: Svc, me: Auth) -> Response:
    raw = body.second_factor_policy
    policy = await svc.second_factor.update_settings(
        me.user, None if raw is None else SecondFactorPolicy(raw)
    )
    return json({"settings": {"second_factor_policy": policy.value}})


# --- audit log ----------------------------------------------------------------------
def audit_filters(
    action: Annotated[str | None, Query(max_length=64, description="one action")] = None,
    actor_id: Annotated[str | None, Query(max_length=64, description="who did it")] = None,
    target_id: Annotated[
        str | None, Query(max_length=64, description="what it was done to")
    ] = None,
    since: Annotated[datetime | None, Query(description="at or after (RFC 3339)")] = None,
    until: Annotated[datetime | None, Query(description="before (RFC 3339)")] = None,
) -> AuditFilters:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidRequest(f"{name} needs a time zone (RFC 3339)", field=name)
    return AuditFilters(action, actor_id, target_id, since, until)


Filters = Annotated[AuditFilters, Depends(audit_filters)]


@router.get("/audit", response_model=ss.AuditOut, tags=["organization"])
async def audit_log(
    svc: Svc,
    me: Auth,
    filters: Filters,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Entries after `after`, oldest first, filtered by action, actor, target and time."""
    entries = await svc.audit.page(me.user, after, limit, filters=filters)
    return json(
        {
            "entries": [audit_json(e) for e in entries],
            "next": entries[-1].seq if entries else after,
        }
    )


CSV_COLUMNS = ("seq", "at", "action", "actor_id", "target_id", "address", "details", "hash")


@router.get(
    "/audit/export",
    tags=["organization"],
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
async def audit_export(
    svc: Svc,
    me: Auth,
    filters: Filters,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> Response:
    """A download of the filtered audit log, oldest first: JSON lines (each line one
    entry, as in `GET /audit`) or CSV (details as JSON). At most the setting
    audit_export_max_rows entries; `X-Tidings-Truncated: true` says more were left out."""
    limit = svc.deps.limits.audit_export_max_rows
    entries, truncated = await svc.audit.export(me.user, filters, limit)
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for e in entries:
            row = audit_json(e)
            row["details"] = orjson.dumps(e.details).decode()
            writer.writerow(["" if row[k] is None else row[k] for k in CSV_COLUMNS])
        content, media = out.getvalue().encode(), "text/csv; charset=utf-8"
    else:
        content = b"".join(orjson.dumps(audit_json(e)) + b"\n" for e in entries)
        media = "application/x-ndjson"
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="tidings-audit.{format}"',
            "X-Tidings-Truncated": "true" if truncated else "false",
        },
    )
