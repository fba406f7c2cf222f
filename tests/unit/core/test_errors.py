"""Every error code the server can send is a member of `ErrorCode`, has one HTTP status,
and is documented. Checked on the source with ast: a code written as a string literal
anywhere an error is built fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tidings.api.errors import STATUS, http_code
from tidings.core import errors
from tidings.core.errors import ErrorCode, TidingsError

ROOT = Path(__file__).resolve().parents[3]
PKG = ROOT / "src" / "tidings"
CLIENTS = ("sdk", "bench", "web")  # they read codes, they never send one


def server_sources() -> dict[str, ast.Module]:
    return {
        str(p.relative_to(PKG)): ast.parse(p.read_text(encoding="utf-8"))
        for p in sorted(PKG.rglob("*.py"))
        if p.relative_to(PKG).parts[0] not in CLIENTS
    }


def is_code_expression(node: ast.expr) -> bool:
    """`ErrorCode.X`, `ErrorCode.X.value`, `<error>.code(.value)`, or a name holding one
    (checked where it is bound: every binding is one of these, see below)."""
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    if isinstance(node, ast.Attribute):
        base = node.value
        return (isinstance(base, ast.Name) and base.id == "ErrorCode") or node.attr == "code"
    return isinstance(node, ast.Name) and node.id == "code"


def test_every_error_response_and_error_body_names_an_enum_member() -> None:
    bad = []
    for path, tree in server_sources().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "error_response" and not is_code_expression(node.args[1]):
                    bad.append(f"{path}:{node.lineno} {ast.unparse(node.args[1])}")
                if node.func.id == "error_body" and not is_code_expression(node.args[0]):
                    bad.append(f"{path}:{node.lineno} {ast.unparse(node.args[0])}")
            # {"code": ...} built by hand: only from an enum member or an error's code
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and not is_code_expression(value)
                    ):
                        bad.append(f"{path}:{node.lineno} {ast.unparse(value)}")
            # in a function, a name `code` is only bound to a code or an http_code(...)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if not isinstance(inner, ast.Assign | ast.AnnAssign) or inner.value is None:
                        continue
                    targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
                    if not any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                        continue
                    value = inner.value
                    if not is_code_expression(value) and not (
                        isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Name)
                        and value.func.id == "http_code"
                    ):
                        bad.append(f"{path}:{inner.lineno} code = {ast.unparse(value)}")
    assert bad == []


def test_the_scan_sees_the_error_builders() -> None:
    """The check above looks at something: the REST and frame error builders."""
    sources = server_sources()
    calls = {
        node.func.id
        for tree in sources.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert {"error_response", "error_body"} <= calls
    wire = sources["protocol/wire.py"]
    assert any(
        isinstance(n, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "code" for k in n.keys
        )
        for n in ast.walk(wire)
    )


def test_every_error_class_has_a_code_of_the_enum_and_a_status() -> None:
    classes = [
        c for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, TidingsError) and c is not TidingsError
    ]
    assert {c.code for c in classes} == set(ErrorCode)
    assert set(STATUS) == set(ErrorCode)
    assert STATUS[ErrorCode.INTERNAL] == 500


def test_every_http_status_maps_to_a_member() -> None:
    for status in range(400, 600):
        code = http_code(status)
        assert isinstance(code, ErrorCode)
        assert (code is ErrorCode.INTERNAL) == (status >= 500)
    assert http_code(405) is ErrorCode.METHOD_NOT_ALLOWED
    assert http_code(404) is ErrorCode.NOT_FOUND
    assert http_code(418) is ErrorCode.INVALID_REQUEST


def test_docs_list_every_code_with_its_status() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    documented: dict[str, int] = {}
    for status, codes in re.findall(r"^\| (\d{3}) \| (.+) \|$", text, re.MULTILINE):
        for code in re.findall(r"`([a-z_]+)`", codes):
            if code in set(ErrorCode):
                documented[code] = int(status)
    assert documented == {code.value: status for code, status in STATUS.items()}


def test_typed_details_are_the_json_details_as_given() -> None:
    from tidings.core.errors import InvalidRequest, NotFound, RateLimited
    from tidings.protocol.wire import error_json

    assert error_json(NotFound("message not found", seq=3)) == {
        "code": "not_found", "message": "message not found", "details": {"seq": 3},
    }
    assert error_json(RateLimited("slow down", 2.5))["details"] == {"retry_after": 2.5}
    problems = [{"loc": "seq", "msg": "not an integer"}]
    raised = InvalidRequest("invalid frame", errors=[{"loc": "seq", "msg": "not an integer"}],
                            ref=7)
    assert error_json(raised)["details"] == {"errors": problems, "ref": 7}
    assert error_json(errors.Internal("internal error"))["details"] == {}
