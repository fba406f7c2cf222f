"""SCIM on the wire without IO (protocol/scim.py): what Okta and Entra ID send is read
as RFC 7644 means it; anything else is refused with its scimType."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.core.errors import InvalidRequest, TooLarge
from tidings.protocol import scim as wire
from tidings.services.scim import username_for


def patch(model: Any, *operations: dict[str, Any], limit: int = 10) -> Any:
    return wire.parse_patch(
        model, {"schemas": [wire.PATCH_SCHEMA], "Operations": list(operations)}, limit
    )


def user(**attributes: Any) -> wire.User:
    return wire.load_resource(
        wire.User, {"schemas": [wire.USER_SCHEMA], "id": "u1", "userName": "ann", **attributes}
    )


def scim_type(exc: pytest.ExceptionInfo[InvalidRequest]) -> object:
    return exc.value.details.get("scim_type")


@pytest.mark.parametrize(
    ("user_name", "username"),
    [
        ("Ann.Lee@corp.example", "ann.lee"),
        ("王小明@corp.example", "user"),
        ("o'brien+chat@x.example", "o-brien-chat"),
        ("_x_", "x"),
        ("a" * 40, "a" * 32),
    ],
)
def test_a_username_is_made_from_the_user_name(user_name: str, username: str) -> None:
    assert username_for(user_name) == username


def test_filters_tidings_answers_and_the_rest_refused() -> None:
    assert wire.parse_filter(wire.User, 'userName eq "Ann"', 100) == ("userName", "Ann")
    assert wire.parse_filter(wire.User, 'EXTERNALID eq "x\\"y"', 100) == ("externalId", 'x"y')
    assert wire.parse_filter(wire.Group, 'displayName eq "Sales"', 100) == ("displayName", "Sales")
    assert wire.parse_filter(wire.User, None, 100) == (None, "")
    for text in (
        'displayName eq "x"',
        'userName sw "a"',
        'userName eq "a" and active eq true',
        "userName pr",
        "userName eq",
        'emails.value eq "a"',
        "x" * 101,
    ):
        with pytest.raises(InvalidRequest) as exc:
            wire.parse_filter(wire.User, text, 100)
        assert scim_type(exc) == "invalidFilter", text


def test_pages_count_as_rfc_7644_says() -> None:
    assert wire.parse_page(None, None, 100) == (1, 100)
    assert wire.parse_page("0", "500", 100) == (1, 100)
    assert wire.parse_page("3", "-1", 100) == (3, 0)
    with pytest.raises(InvalidRequest):
        wire.parse_page("1e3", None, 100)


def test_entra_and_okta_patch_forms() -> None:
    current = user(emails=[{"value": "a@x.example", "type": "work"}], active=True)
    result = wire.apply_patch(
        patch(
            wire.User,
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@x.example"},
            {"op": "replace", "path": 'emails[type eq "home"].value', "value": "h@x.example"},
            {"op": "replace", "value": {"name.givenName": "Ann", "title": "ignored"}},
            {
                "op": "add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "x",
            },
            {"op": "add", "path": "phoneNumbers", "value": [{"value": "1"}]},
        ),
        current,
    )
    dumped = result.model_dump(scim_ctx=None, by_alias=True, exclude_none=True, mode="json")
    assert dumped["active"] is False and dumped["name"] == {"givenName": "Ann"}
    assert dumped["emails"] == [
        {"value": "b@x.example", "type": "work"},
        {"value": "h@x.example", "type": "home"},
    ]
    assert current.active is True  # applied to a copy


def test_entra_member_removal_is_the_rfc_path_filter() -> None:
    group = wire.load_resource(
        wire.Group,
        {
            "schemas": [wire.GROUP_SCHEMA],
            "id": "g",
            "displayName": "S",
            "members": [{"value": "u1"}, {"value": "u2"}],
        },
    )
    removed = wire.apply_patch(
        patch(wire.Group, {"op": "Remove", "path": "members", "value": [{"value": "u1"}]}), group
    )
    assert [m.value for m in removed.members or []] == ["u2"]
    added = wire.apply_patch(
        patch(
            wire.Group, {"op": "add", "path": "members", "value": [{"value": "u3", "display": "U"}]}
        ),
        removed,
    )
    assert [m.value for m in added.members or []] == ["u2", "u3"]


def test_bad_patches_are_refused_with_their_scim_type() -> None:
    with pytest.raises(InvalidRequest) as exc:
        patch(wire.User, {"op": "replace", "path": "nope", "value": 1})
    assert scim_type(exc) == "invalidPath"
    with pytest.raises(InvalidRequest):
        patch(wire.User, {"op": "frob", "path": "displayName", "value": "x"})
    with pytest.raises(TooLarge):
        patch(wire.User, *[{"op": "remove", "path": "displayName"}] * 11)
    with pytest.raises(InvalidRequest):
        wire.parse_patch(wire.User, {"Operations": [{"op": "remove", "path": "name"}]}, 10)
    with pytest.raises(InvalidRequest) as exc:
        wire.apply_patch(patch(wire.User, {"op": "remove", "path": "userName"}), user())
    assert scim_type(exc) == "mutability"


def test_bodies_too_deep_or_not_objects_are_refused() -> None:
    deep: Any = "x"
    for _ in range(wire.MAX_DEPTH):
        deep = {"a": deep}
    with pytest.raises(InvalidRequest):
        wire.check_depth(deep)
    wire.check_depth({"a": {"b": [1, 2]}})
    with pytest.raises(InvalidRequest):
        wire.parse_resource(wire.User, ["x"])
    with pytest.raises(InvalidRequest):
        wire.parse_resource(wire.User, {"schemas": [wire.GROUP_SCHEMA], "userName": "x"})


def test_attribute_selection() -> None:
    resource = {
        "schemas": ["s"],
        "id": "1",
        "userName": "a",
        "name": {"givenName": "g", "familyName": "f"},
    }
    assert wire.select_attributes(resource, ["name.givenName"], []) == {
        "schemas": ["s"],
        "id": "1",
        "name": {"givenName": "g"},
    }
    assert wire.select_attributes(resource, [], ["userName", "name.familyName", "id"]) == {
        "schemas": ["s"],
        "id": "1",
        "name": {"givenName": "g"},
    }
    assert wire.select_attributes(resource, [f"{wire.USER_SCHEMA}:userName"], []) == {
        "schemas": ["s"],
        "id": "1",
        "userName": "a",
    }


def test_the_published_schemas_are_what_round_trips() -> None:
    users = next(s for s in wire.schemas("http://x/scim/v2") if s["id"] == wire.USER_SCHEMA)
    names = {a["name"] for a in users["attributes"]}
    kept = {"userName", "name", "displayName", "emails", "active", "password"}
    assert names - {"id", "externalId", "meta"} == kept
    password = next(a for a in users["attributes"] if a["name"] == "password")
    assert (password["mutability"], password["returned"]) == ("writeOnly", "never")
