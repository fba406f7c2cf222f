"""SCIM 2.0 (RFC 7643, RFC 7644) on the wire, without IO: the resources Tidings
serves, the discovery documents, request parsing (bodies, PATCH operations, filters)
and the error shape. Built on scim2-models (pydantic), which validates SCIM payloads
with their mutability rules and applies PATCH operations, paths with value filters
(`members[value eq "…"]`, `emails[type eq "work"].value`) included.

What Tidings keeps of a User: `userName`, `externalId`, `displayName`, `name`, `emails`,
`active` and a write-only `password`; of a Group (a department): `displayName`,
`externalId` and `members` (users only). The published schemas list exactly these, so
a client (and the compliance checker) knows what round-trips. Other attributes of the
standard User schema or the enterprise extension (`title`, `phoneNumbers`,
`urn:…:enterprise:2.0:User:department`, …), which Entra ID and Okta send by default,
are accepted and ignored, and so are PATCH operations on them; a PATCH path that names
no attribute of any of these answers `invalidPath`.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

import orjson
from pydantic import Field, ValidationError
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ComplexAttribute,
    Context,
    Email,
    EnterpriseUser,
    ETag,
    Filter,
    Mutability,
    Name,
    Pagination,
    Patch,
    PatchOp,
    Reference,
    Required,
    Resource,
    ResourceType,
    Returned,
    SCIMException,
    ScimFilter,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import Group as StandardGroup
from scim2_models import User as StandardUser

from tidings.core.errors import InvalidRequest, TooLarge

MEDIA_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_DEPTH = 8  # JSON nesting of a SCIM body: a User is 3 deep, a PatchOp 5


# --- the resources Tidings serves ------------------------------------------------------
class Member(ComplexAttribute):
    """A member of a Group: a User (Tidings has no nested groups)."""

    value: Annotated[str | None, Mutability.immutable, Required.true] = None
    ref: Annotated[Reference[User] | None, Mutability.immutable] = Field(
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])


class User(Resource[Any]):
    """A Tidings account as SCIM sees it (the schema published at /Schemas)."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    name: Name | None = None
    display_name: str | None = None
    emails: list[Email] | None = None
    active: bool | None = None
    password: Annotated[str | None, Mutability.write_only, Returned.never] = None

    Emails: ClassVar[type[ComplexAttribute]] = Email


class Group(Resource[Any]):
    """A department as SCIM sees it."""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true] = None
    members: list[Member] | None = None

    Members: ClassVar[type[ComplexAttribute]] = Member


Member.model_rebuild()  # its `$ref` names User, defined after it
Group.model_rebuild()

R = TypeVar("R", User, Group)
UserPatch = PatchOp[User]
GroupPatch = PatchOp[Group]

# What a client may send beyond what Tidings keeps, ignored: the rest of the standard
# schemas (lower-cased names), and any extension (a key with a URN).
_STANDARD: dict[type[Resource[Any]], frozenset[str]] = {
    User: frozenset(
        f.serialization_alias or f.alias or n
        for n, f in StandardUser[EnterpriseUser].model_fields.items()
    ),
    Group: frozenset(
        f.serialization_alias or f.alias or n for n, f in StandardGroup.model_fields.items()
    ),
}
_STANDARD_LOWER = {m: frozenset(a.lower() for a in names) for m, names in _STANDARD.items()}


def _aliases(model: type[Any]) -> dict[str, str]:
    """The attribute names of a model, lower-cased -> as written on the wire."""
    found = {}
    for name, info in model.model_fields.items():
        alias = info.serialization_alias or info.alias or name
        found[alias.lower()] = alias
    return found


# --- errors ------------------------------------------------------------------------
def invalid(message: str, scim_type: str, field: str | None = None) -> InvalidRequest:
    """A request SCIM refuses, with its scimType (RFC 7644 3.12)."""
    if field is None:
        return InvalidRequest(message, scim_type=scim_type)
    return InvalidRequest(message, scim_type=scim_type, field=field)


def error_json(status: int, detail: str, scim_type: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def _validation_message(exc: ValidationError) -> tuple[str, str]:
    """A pydantic error as SCIM's (detail, scimType)."""
    first = exc.errors()[0]
    kind = str(first.get("type", ""))
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first.get("msg", "invalid value")).strip().splitlines()[0]
    scim_type = kind.removeprefix("scim_") if kind.startswith("scim_") else "invalidValue"
    if kind == "missing":
        message = "a required attribute is missing"
    if kind == "extra_forbidden":
        scim_type = "invalidSyntax"
    return (f"{where}: {message}" if where else message)[:300], scim_type


def _scim_exception(exc: SCIMException) -> InvalidRequest:
    return invalid(str(exc)[:300] or "invalid request", exc.scim_type or "invalidValue")


# --- bodies --------------------------------------------------------------------------
def check_depth(value: object, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` (a hostile body costs nothing more)."""
    todo: list[tuple[object, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if depth > limit:
            raise invalid(f"the body is nested deeper than {limit} levels", "invalidSyntax")
        if isinstance(item, dict):
            todo.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, depth + 1) for v in item)


def _known_only(model: type[Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with only the attributes `model` has (case-insensitively), recursively
    into its complex attributes; anything else is dropped (see the module's doc)."""
    names = _aliases(model)
    kept: dict[str, Any] = {}
    for key, value in body.items():
        alias = names.get(key.lower())
        if alias is None:
            continue
        info = model.model_fields[_field_name(model, alias)]
        sub = _complex_type(info.annotation)
        if sub is not None and isinstance(value, dict):
            value = _known_only(sub, value)
        elif sub is not None and isinstance(value, list):
            value = [_known_only(sub, v) if isinstance(v, dict) else v for v in value]
        kept[alias] = value
    return kept


def _field_name(model: type[Any], alias: str) -> str:
    for name, info in model.model_fields.items():
        if (info.serialization_alias or info.alias or name) == alias:
            return str(name)
    raise KeyError(alias)


def _complex_type(annotation: object) -> type[ComplexAttribute] | None:
    """The complex attribute type inside `X | None` or `list[X] | None`, if any."""
    todo = [annotation]
    while todo:
        current = todo.pop()
        if isinstance(current, type) and issubclass(current, ComplexAttribute):
            return current
        todo.extend(getattr(current, "__args__", ()))
    return None


def parse_resource(model: type[R], body: object, *, replacing: bool = False) -> R:
    """A POSTed (or PUT) resource, validated; unknown attributes dropped."""
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object", "invalidSyntax")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or model.__schema__ not in schemas):
        raise invalid(f"schemas must list {model.__schema__}", "invalidValue", "schemas")
    clean = _known_only(model, body)
    clean["schemas"] = [str(model.__schema__)]
    context = (
        Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    )
    try:
        return model.model_validate(clean, scim_ctx=context)
    except ValidationError as exc:
        detail, scim_type = _validation_message(exc)
        raise invalid(detail, scim_type) from exc
    except SCIMException as exc:
        raise _scim_exception(exc) from exc


def load_resource(model: type[R], stored: Mapping[str, Any]) -> R:
    """A resource from its own wire form (what the server made: no request rules)."""
    return model.model_validate(dict(stored))


# --- PATCH -----------------------------------------------------------------------------
_PATH_HEAD = re.compile(r"^\s*(?:(urn:[^\s\[]+):)?([A-Za-z$][\w$-]*)")


def _ignored_path(model: type[Resource[Any]], path: str) -> bool:
    """A path to an attribute a client may send but Tidings does not keep."""
    if path.lower().startswith("urn:"):
        lowered = path.lower()
        own = str(model.__schema__).lower() + ":"
        if lowered.startswith(own):
            path = path[len(own) :]
        else:
            return True  # an extension's attribute (enterprise, a vendor's)
    found = _PATH_HEAD.match(path)
    if found is None:
        return False
    head = found.group(2).lower()
    return head not in _aliases(model) and head in _STANDARD_LOWER[model]


def _entra_member_removals(operation: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Entra ID removes members as `{"op": "Remove", "path": "members", "value":
    [{"value": id}]}`, which RFC 7644 writes as a path filter: rewritten so."""
    value = operation.get("value")
    if str(operation.get("op", "")).lower() != "remove" or not isinstance(value, list):
        return None
    if str(operation.get("path", "")).strip().lower() != "members":
        return None
    rewritten = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise invalid("members to remove are objects with a value", "invalidValue")
        quoted = ScimFilter.quote(item["value"])
        rewritten.append({"op": "remove", "path": f"members[value eq {quoted}]"})
    return rewritten


def parse_patch(model: type[R], body: object, max_operations: int) -> PatchOp[R]:
    """A PatchOp request for `model`, its operations on ignored attributes dropped."""
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object", "invalidSyntax")
    keys = {k.lower(): k for k in body}
    schemas = body.get(keys.get("schemas", "schemas"))
    if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
        raise invalid(f"schemas must list {PATCH_SCHEMA}", "invalidValue", "schemas")
    operations = body.get(keys.get("operations", "Operations"))
    if not isinstance(operations, list) or not operations:
        raise invalid("Operations must be a non-empty list", "invalidValue", "Operations")
    if len(operations) > max_operations:
        raise TooLarge(
            f"at most {max_operations} PATCH operations per request", limit=max_operations
        )
    kept: list[dict[str, Any]] = []
    for operation in operations:
        if not isinstance(operation, dict):
            raise invalid("each operation is an object", "invalidSyntax")
        operation = {k.lower(): v for k, v in operation.items()}
        path = operation.get("path")
        if path is not None and not isinstance(path, str):
            raise invalid("an operation's path is a string", "invalidPath")
        removals = _entra_member_removals(operation) if model is Group else None
        if removals is not None:
            kept.extend(removals)
            continue
        if isinstance(path, str) and _ignored_path(model, path):
            continue
        value = operation.get("value")
        if path is None and isinstance(value, dict):
            value = _known_pathless(model, value)
            if not value:
                continue
            operation["value"] = value
        elif isinstance(path, str) and isinstance(value, dict | list):
            operation["value"] = _known_value(model, path, value)
        kept.append(operation)
    try:
        return PatchOp[model].model_validate(  # type: ignore[valid-type]
            {"schemas": [PATCH_SCHEMA], "Operations": kept},
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
        )
    except ValidationError as exc:
        if not kept:
            return PatchOp[model].model_construct(  # type: ignore[valid-type]
                schemas=[PATCH_SCHEMA], operations=[]
            )
        detail, scim_type = _validation_message(exc)
        raise invalid(detail, scim_type) from exc
    except SCIMException as exc:
        raise _scim_exception(exc) from exc


def _known_pathless(model: type[Resource[Any]], value: dict[str, Any]) -> dict[str, Any]:
    """The value of a pathless add/replace, without the attributes Tidings ignores (its
    keys may be paths themselves, as Entra sends `{"name.givenName": "Ann"}`)."""
    kept = {}
    for key, item in value.items():
        if _ignored_path(model, key):
            continue
        if "." not in key and not key.lower().startswith("urn:"):
            names = _aliases(model)
            alias = names.get(key.lower())
            if alias is None:
                continue  # neither standard nor ours: ignored like in a POST
            sub = _complex_type(model.model_fields[_field_name(model, alias)].annotation)
            if sub is not None and isinstance(item, dict):
                item = _known_only(sub, item)
            elif sub is not None and isinstance(item, list):
                item = [_known_only(sub, v) if isinstance(v, dict) else v for v in item]
        kept[key] = item
    return kept


def _known_value(model: type[Resource[Any]], path: str, value: Any) -> Any:
    """The value of an operation on a complex attribute (`members`, `name`), without
    the sub-attributes Tidings does not keep (Okta sends members' `display`)."""
    found = re.fullmatch(r"\s*([A-Za-z]\w*)\s*", _local(path))
    alias = None if found is None else _aliases(model).get(found.group(1).lower())
    if alias is None:
        return value
    sub = _complex_type(model.model_fields[_field_name(model, alias)].annotation)
    if sub is None:
        return value
    if isinstance(value, dict):
        return _known_only(sub, value)
    return [_known_only(sub, v) if isinstance(v, dict) else v for v in value]


_FILTERED_SUB = re.compile(
    r'^\s*([A-Za-z]\w*)\[\s*([A-Za-z]\w*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*\]\.([A-Za-z]\w*)\s*$'
)


def apply_patch(patch: PatchOp[R], resource: R) -> R:
    """`resource` with the operations applied, in order, all or nothing (a copy)."""
    result = copy.deepcopy(resource)
    for operation in patch.operations or []:
        single = PatchOp[type(resource)].model_construct(  # type: ignore[misc]
            schemas=[PATCH_SCHEMA], operations=[operation]
        )
        try:
            single.patch(result)
        except SCIMException as exc:
            if exc.scim_type == "noTarget" and _add_filtered(result, operation):
                continue
            raise _scim_exception(exc) from exc
        except ValidationError as exc:
            detail, scim_type = _validation_message(exc)
            raise invalid(detail, scim_type) from exc
    try:  # the result must still be a valid resource (a required attribute removed, ...)
        type(resource).model_validate(
            result.model_dump(scim_ctx=None, by_alias=True, exclude_none=True)
        )
    except ValidationError as exc:
        detail, scim_type = _validation_message(exc)
        raise invalid(detail, scim_type) from exc
    return result


def _add_filtered(resource: Resource[Any], operation: Any) -> bool:
    """`replace emails[type eq "work"].value` where no work email is: add one (what
    Entra ID and Okta expect, RFC 7644 3.5.2.3 leaves it to the server)."""
    op = str(getattr(operation, "op", "")).lower()
    found = _FILTERED_SUB.match(str(getattr(operation, "path", "") or ""))
    if found is None or not op.endswith(("add", "replace")):
        return False
    attribute, key, wanted, sub = found.groups()
    names = _aliases(type(resource))
    alias = names.get(attribute.lower())
    if alias is None:
        return False
    name = _field_name(type(resource), alias)
    item_type = _complex_type(type(resource).model_fields[name].annotation)
    if item_type is None:
        return False
    sub_names = _aliases(item_type)
    if key.lower() not in sub_names or sub.lower() not in sub_names:
        return False
    raw = {
        sub_names[key.lower()]: wanted.replace('\\"', '"'),
        sub_names[sub.lower()]: operation.value,
    }
    try:
        item = item_type.model_validate(raw)
    except ValidationError as exc:
        detail, scim_type = _validation_message(exc)
        raise invalid(detail, scim_type) from exc
    current = list(getattr(resource, name) or [])
    current.append(item)
    setattr(resource, name, current)
    return True


# --- filters and pages --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Query:
    """A list request: the one equality filter Tidings answers (None: all), and a
    page (`start` counted from 1, as SCIM counts)."""

    attribute: str | None
    value: str
    start: int
    count: int


FILTERABLE: dict[type[Resource[Any]], dict[str, str]] = {
    User: {"username": "userName", "externalid": "externalId"},
    Group: {"displayname": "displayName", "externalid": "externalId"},
}


def parse_filter(
    model: type[Resource[Any]], text: str | None, max_chars: int
) -> tuple[str | None, str]:
    """`userName eq "x"` (and the other equality filters of FILTERABLE) -> (attribute,
    value); no filter -> (None, ""). Anything else answers invalidFilter."""
    if text is None or not text.strip():
        return None, ""
    if len(text) > max_chars:
        raise invalid(f"the filter is longer than {max_chars} characters", "invalidFilter")
    try:
        ast = ScimFilter(text).ast
    except SCIMException as exc:
        raise invalid(f"invalid filter: {exc}"[:300], "invalidFilter") from exc
    except (ValueError, RecursionError) as exc:
        raise invalid("invalid filter", "invalidFilter") from exc
    attr_path = getattr(ast, "attr_path", None)
    op = getattr(ast, "op", None)
    value = getattr(ast, "value", None)
    allowed = FILTERABLE[model]
    attr = None if attr_path is None else str(getattr(attr_path, "attr", ""))
    uri = None if attr_path is None else getattr(attr_path, "uri", None)
    sub = None if attr_path is None else getattr(attr_path, "sub_attr", None)
    if (
        attr is None
        or sub is not None
        or (uri is not None and str(uri).lower() != str(model.__schema__).lower())
        or attr.lower() not in allowed
        or str(getattr(op, "value", op)) != "eq"
        or not isinstance(value, str)
    ):
        names = " or ".join(f'{a} eq "…"' for a in allowed.values())
        raise invalid(f"Tidings answers only the filters {names}", "invalidFilter")
    return allowed[attr.lower()], value


def parse_page(start_index: str | None, count: str | None, page_max: int) -> tuple[int, int]:
    """startIndex (1-based; below 1 counts as 1) and count (0..page_max; absent:
    page_max), as RFC 7644 3.4.2.4 reads them."""

    def number(raw: str | None, name: str, default: int) -> int:
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"-?\d{1,18}", raw.strip()):
            raise invalid(f"{name} must be an integer", "invalidValue", name)
        return int(raw)

    start = max(1, number(start_index, "startIndex", 1))
    wanted = number(count, "count", page_max)
    return start, max(0, min(wanted, page_max))


def attribute_list(raw: object) -> list[str]:
    """`attributes=a,b` (query) or `["a", "b"]` (a SearchRequest)."""
    if raw is None:
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise invalid("attributes are a list of attribute names", "invalidValue")
    return [i.strip() for i in items if i.strip()][:64]


ALWAYS_RETURNED = frozenset({"schemas", "id"})


def select_attributes(
    resource: dict[str, Any], attributes: list[str], excluded: list[str]
) -> dict[str, Any]:
    """RFC 7644 3.9: with `attributes`, only those (and id, schemas); with
    `excludedAttributes`, all but those. Sub-attributes (`name.givenName`) work too."""
    if attributes:
        wanted: dict[str, set[str] | None] = {}
        for path in attributes:
            head, _, tail = _local(path).partition(".")
            subs = wanted.setdefault(head.lower(), set())
            if not tail:
                wanted[head.lower()] = None
            elif subs is not None:
                subs.add(tail.lower())
        out = {}
        for key, value in resource.items():
            if key in ALWAYS_RETURNED:
                out[key] = value
            elif key.lower() in wanted:
                subs = wanted[key.lower()]
                out[key] = value if subs is None else _only_subs(value, subs)
        return out
    if excluded:
        drop: dict[str, set[str] | None] = {}
        for path in excluded:
            head, _, tail = _local(path).partition(".")
            subs = drop.setdefault(head.lower(), set())
            if not tail:
                drop[head.lower()] = None
            elif subs is not None:
                subs.add(tail.lower())
        out = {}
        for key, value in resource.items():
            subs = drop.get(key.lower(), set()) if key not in ALWAYS_RETURNED else set()
            if subs is None:
                continue
            out[key] = _without_subs(value, subs) if subs else value
        return out
    return resource


def _local(path: str) -> str:
    """A path without its schema URN prefix."""
    for schema in (USER_SCHEMA, GROUP_SCHEMA):
        if path.lower().startswith(schema.lower() + ":"):
            return path[len(schema) + 1 :]
    return path


def _only_subs(value: Any, subs: set[str]) -> Any:
    pick: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: {  # noqa: E731
        k: v for k, v in d.items() if k.lower() in subs
    }
    if isinstance(value, dict):
        return pick(value)
    if isinstance(value, list):
        return [pick(v) if isinstance(v, dict) else v for v in value]
    return value


def _without_subs(value: Any, subs: set[str]) -> Any:
    drop: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: {  # noqa: E731
        k: v for k, v in d.items() if k.lower() not in subs
    }
    if isinstance(value, dict):
        return drop(value)
    if isinstance(value, list):
        return [drop(v) if isinstance(v, dict) else v for v in value]
    return value


def list_response(resources: list[dict[str, Any]], total: int, start: int) -> dict[str, object]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# --- discovery -----------------------------------------------------------------------
def service_provider_config(base_url: str, page_max: int) -> dict[str, Any]:
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=page_max),
        change_password=ChangePassword(supported=True),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        pagination=Pagination(
            cursor=False, index=True, default_page_size=page_max, max_page_size=page_max
        ),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="A SCIM token an admin issued (tidings scim token, or the admin "
                "page); sent as Authorization: Bearer <token>",
                primary=True,
            )
        ],
    )
    body = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    body["meta"] = {
        "resourceType": "ServiceProviderConfig",
        "location": f"{base_url}/ServiceProviderConfig",
    }
    return body


RESOURCE_MODELS: dict[str, type[Resource[Any]]] = {"User": User, "Group": Group}


def schemas(base_url: str) -> list[dict[str, Any]]:
    out = []
    for model in (User, Group):
        schema = model.to_schema().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        schema["name"] = model.__name__
        schema["description"] = "Tidings account" if model is User else "Tidings department"
        schema["meta"] = {
            "resourceType": "Schema",
            "location": f"{base_url}/Schemas/{schema['id']}",
        }
        out.append(schema)
    return out


def resource_types(base_url: str) -> list[dict[str, Any]]:
    out = []
    for model in (User, Group):
        body = ResourceType.from_resource(model).model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE
        )
        body["meta"] = {
            "resourceType": "ResourceType",
            "location": f"{base_url}/ResourceTypes/{body['id']}",
        }
        out.append(body)
    return out


# --- resources on the wire -------------------------------------------------------------
def etag(resource: Mapping[str, Any]) -> str:
    """A weak ETag of a resource: a digest of its attributes (meta aside), so that any
    change, by SCIM or by an admin in Tidings, gives a new version."""
    content = {k: v for k, v in resource.items() if k != "meta"}
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f'W/"{digest[:20]}"'


def user_resource(
    *,
    user_id: str,
    user_name: str,
    external_id: str | None,
    display_name: str | None,
    active: bool | None,
    attributes: Mapping[str, Any],
    created: str,
    modified: str,
    base_url: str,
) -> dict[str, Any]:
    """A User as served: the attributes kept (name, emails, displayName as given)."""
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": user_id}
    if external_id is not None:
        body["externalId"] = external_id
    body["userName"] = user_name
    for key in ("name", "emails"):
        if attributes.get(key):
            body[key] = attributes[key]
    if display_name is not None:
        body["displayName"] = display_name
    if active is not None:
        body["active"] = active
    return _with_meta(body, "User", f"{base_url}/Users/{user_id}", created, modified)


def group_resource(
    *,
    group_id: str,
    display_name: str,
    external_id: str | None,
    member_ids: list[str],
    created: str,
    modified: str,
    base_url: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": group_id}
    if external_id is not None:
        body["externalId"] = external_id
    body["displayName"] = display_name
    if member_ids:
        body["members"] = [
            {"value": uid, "$ref": f"{base_url}/Users/{uid}", "type": "User"} for uid in member_ids
        ]
    return _with_meta(body, "Group", f"{base_url}/Groups/{group_id}", created, modified)


def _with_meta(
    body: dict[str, Any], kind: str, location: str, created: str, modified: str
) -> dict[str, Any]:
    body["meta"] = {
        "resourceType": kind,
        "created": created,
        "lastModified": modified,
        "location": location,
        "version": etag(body),
    }
    return body


def wire_attributes(resource: User) -> dict[str, Any]:
    """What Tidings keeps of a User beside the account, as JSON values."""
    dumped = resource.model_dump(scim_ctx=None, by_alias=True, exclude_none=True, mode="json")
    kept: dict[str, Any] = {}
    for key in ("name", "emails", "displayName"):
        if dumped.get(key) not in (None, {}, []):
            kept[key] = dumped[key]
    return kept
