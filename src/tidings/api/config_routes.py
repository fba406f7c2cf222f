"""REST routes of the settings admins edit at run time (services/config.py): the LDAP and
OpenID Connect settings and the limits (sizes, windows, login protection, rates), each with
whether the server's configuration file locks it; secrets never answered (only whether one
is set). Admins only (checked by the service); each change counts against
`rate_directory_per_user`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from tidings.api import schemas as s
from tidings.api.routes import ERRORS, Auth, Svc, json

router = APIRouter(prefix="/api/v1/admin/config", responses=ERRORS, tags=["identity"])

Value = str | int | float | bool | dict[str, str] | None


class SettingOut(BaseModel):
    name: str = Field(description="the setting's name, as in the configuration file")
    group: Literal["ldap", "oidc", "limits"]
    value: Any = Field(description="the value in force (a secret: always null)")
    set: bool | None = Field(None, description="a secret: whether one is set")
    secret: bool
    locked: bool = Field(
        description="set by the server's configuration (file or environment): not editable here"
    )
    default: Any = Field(description="the value when nobody sets it (a secret: null)")
    description: str


class ConfigOut(BaseModel):
    settings: list[SettingOut]


class ConfigIn(s.Body):
    values: dict[str, Value] = Field(
        max_length=100,
        description="setting name -> new value; null: back to the default (a secret: "
        "removed). Every change is validated with the settings in force: a refused one "
        "writes nothing",
    )


@router.get("", response_model=ConfigOut)
async def config_show(svc: Svc, me: Auth) -> Response:
    """The LDAP, OpenID Connect and limit settings: value in force, default, whether locked."""
    return json({"settings": await svc.config.show(me.user)})


@router.patch("", response_model=ConfigOut)
async def config_update(body: ConfigIn, svc: Svc, me: Auth) -> Response:
    """Change LDAP, OpenID Connect and limit settings; in force on this node at once, on the
    others within `config_poll_seconds`. Audited (`settings_changed`, secrets only
    named). A locked setting: invalid_operation; an unknown one or a bad value:
    invalid_request naming it."""
    return json({"settings": await svc.config.update(me.user, body.values)})
