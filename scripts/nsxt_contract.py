#!/usr/bin/env python3
"""Generate the NSX-T upgrade-API contract (OpenAPI 3.0) from VMware's NSX-T Python SDK wheel.

The authority for what an NSX-T Manager serves is VMware's generated SDK
(``vmware/vsphere-automation-sdk-python``, ``lib/nsx-python-sdk/nsx_python_sdk-*.whl``):
``com/vmware/nsx/model_client.py`` declares every type's fields, required flags and
enum values; the ``*_client.py`` stubs every path, method, query parameter and
response type.  This script reads those files *as data* (Python's ``ast``: nothing of
the SDK is imported or run) and writes the subset this project touches
(``/upgrade/...``, ``/node``, ``/node/services/.../status``, ``/cluster/status``) as
one OpenAPI document with its provenance (repository, commit, file).

The SDK does not say which success code an operation answers (vAPI REST hides it) and
has no multipart operations; those few facts come from VMware's ``nsx_api.json``
swaggers / API guides and are listed in :data:`SUCCESS_CODES` and :data:`SUPPLEMENTS`
below, each marked in the document (``x-source``).

Usage (offline)::

    python scripts/nsxt_contract.py --wheel nsx_python_sdk-2.3.0.0.1.10604709-py2.py3-none-any.whl \\
        --commit <full commit> --out contracts/nsxt/nsxt-upgrade-api-2.3.json
    python scripts/nsxt_contract.py --mirror PATH/TO/vsphere-automation-sdk-python.git \\
        --commit e48733c3 --version 2.3 --out contracts/nsxt/nsxt-upgrade-api-2.3.json

With ``--mirror`` the wheel is read from the git object store at ``--commit`` (its
full hash is resolved there).  ``--check`` compares with ``--out`` instead of writing.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

REPOSITORY = "vmware/vsphere-automation-sdk-python"
#: the wheels in that repository, by the NSX-T version they describe
WHEELS = {
    "2.3": "lib/nsx-python-sdk/nsx_python_sdk-2.3.0.0.1.10604709-py2.py3-none-any.whl",
    "2.5.1": "lib/nsx-python-sdk/nsx_python_sdk-2.5.1.0.1.15419398-py2.py3-none-any.whl",
}
#: the stub modules read, and which of their operations belong to the subset
MODULES = (
    "com/vmware/nsx_client.py",
    "com/vmware/nsx/upgrade_client.py",
    "com/vmware/nsx/upgrade/bundles_client.py",
    "com/vmware/nsx/upgrade/eula_client.py",
    "com/vmware/nsx/upgrade/plan_client.py",
    "com/vmware/nsx/upgrade/upgrade_unit_groups_client.py",
    "com/vmware/nsx/upgrade/upgrade_units_client.py",
    "com/vmware/nsx/cluster_client.py",
    "com/vmware/nsx/node/services_client.py",
)
MODULE_DIRS = ("com/vmware/nsx/node/services/",)
MODEL = "com/vmware/nsx/model_client.py"
API = "/api/v1"

#: success codes other than 200 (VMware's nsx_api.json swaggers; the SDK does not carry them)
SUCCESS_CODES = {
    ("POST", "/upgrade/upgrade-unit-groups", None): 201,
    ("POST", "/upgrade", "execute_pre_upgrade_checks"): 202,
    ("POST", "/upgrade/{component-type}", "execute_post_upgrade_checks"): 202,
}
#: operations the SDK cannot express (multipart), from VMware's nsx_api.json / API guide
SUPPLEMENTS: list[dict[str, Any]] = [{
    "method": "POST", "path": "/upgrade/bundles", "action": "upload",
    "multipart": "file", "response": "UpgradeBundleId", "status": 200,
    "source": "VMware NSX-T API guide / nsx_api.json: POST /upgrade/bundles?action=upload "
              "(multipart/form-data, part 'file'); the SDK has no multipart operations",
}]
#: vAPI errors of the stubs as HTTP statuses (vAPI REST mapping)
ERROR_STATUS = {
    "invalid_request": (400, 412), "unauthenticated": (401,), "unauthorized": (403,),
    "not_found": (404,), "concurrent_change": (409,), "internal_server_error": (500,),
    "service_unavailable": (503,),
}
_SCALARS = {
    "StringType": {"type": "string"}, "IntegerType": {"type": "integer"},
    "DoubleType": {"type": "number"}, "BooleanType": {"type": "boolean"},
    "DateTimeType": {"type": "string"}, "URIType": {"type": "string"},
    "SecretType": {"type": "string"}, "BlobType": {"type": "string"},
    "IdType": {"type": "string"}, "OpaqueType": {}, "AnyErrorType": {},
}


# -- reading the wheel ---------------------------------------------------------------------


def read_wheel(data: bytes) -> dict[str, str]:
    """The wheel's ``com/vmware/...`` sources by path."""
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        return {n: wheel.read(n).decode() for n in wheel.namelist()
                if n.startswith("com/vmware/") and n.endswith(".py")}


def wheel_from_mirror(mirror: Path, commit: str, path: str) -> tuple[bytes, str]:
    """The wheel at ``commit:path`` of a git mirror, and the commit's full hash."""
    full = subprocess.run(["git", "-C", str(mirror), "rev-parse", f"{commit}^{{commit}}"],
                          check=True, capture_output=True, text=True).stdout.strip()
    blob = subprocess.run(["git", "-C", str(mirror), "show", f"{full}:{path}"],
                          check=True, capture_output=True).stdout
    return blob, full


# -- the vAPI type expressions as JSON schema ------------------------------------------------


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr
    return ""


def schema_of(node: ast.AST, refs: set[str]) -> tuple[dict[str, Any], bool]:
    """(JSON schema, required) of a ``type.XType(...)`` expression; refs collects names."""
    name = _call_name(node)
    assert isinstance(node, ast.Call), ast.dump(node)
    if name == "OptionalType":
        return schema_of(node.args[0], refs)[0], False
    if name == "ListType":
        return {"type": "array", "items": schema_of(node.args[0], refs)[0]}, True
    if name == "MapType":
        return {"type": "object", "additionalProperties": schema_of(node.args[1], refs)[0]}, True
    if name == "ReferenceType":
        target = node.args[1]
        assert isinstance(target, ast.Constant)
        refs.add(str(target.value))
        return {"$ref": f"#/components/schemas/{target.value}"}, True
    if name == "DynamicStructType":
        # a polymorphic field: any object (the listed base type, when given, still applies)
        if len(node.args) > 3 and isinstance(node.args[3], ast.List) and node.args[3].elts:
            return schema_of(node.args[3].elts[0], refs)[0], True
        return {"type": "object"}, True
    if name in _SCALARS:
        return dict(_SCALARS[name]), True
    if name == "VoidType":
        return {}, True
    raise ValueError(f"unknown vAPI type {name}: {ast.dump(node)[:200]}")


def _dict_items(node: ast.AST) -> list[tuple[str, ast.AST]]:
    assert isinstance(node, ast.Dict)
    out = []
    for k, v in zip(node.keys, node.values, strict=True):
        assert isinstance(k, ast.Constant)
        out.append((str(k.value), v))
    return out


def read_models(source: str) -> dict[str, dict[str, Any]]:
    """Every struct of model_client.py: {name: {"fields": {...}, "enums": {...}, "refs"}}."""
    tree = ast.parse(source)
    enums: dict[str, list[tuple[str, str]]] = {}
    models: dict[str, dict[str, Any]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef):
            enums[stmt.name] = [
                (t.id, str(s.value.value)) for s in stmt.body if isinstance(s, ast.Assign)
                for t in s.targets if isinstance(t, ast.Name) and t.id.isupper()
                and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)]
        elif (isinstance(stmt, ast.Expr) and _call_name(stmt.value) == "_set_binding_type"):
            call = stmt.value
            assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            owner = call.func.value
            assert isinstance(owner, ast.Name)
            struct = call.args[0]
            assert isinstance(struct, ast.Call)
            refs: set[str] = set()
            props: dict[str, Any] = {}
            required = []
            for field, expr in _dict_items(struct.args[1]):
                props[field], needed = schema_of(expr, refs)
                if needed:
                    required.append(field)
            models[owner.id] = {"properties": props, "required": required, "refs": refs}
    for name, model in models.items():
        fields = sorted(model["properties"], key=len, reverse=True)
        for const, value in enums.get(name, []):
            field = next((f for f in fields if const.startswith(f.upper() + "_")), None)
            if field is None:
                continue
            target = model["properties"][field]
            target = target.get("items", target) if target.get("type") == "array" else target
            if target.get("type") == "string":
                target.setdefault("enum", []).append(value)
    return models


# -- the operations ------------------------------------------------------------------------


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def read_operations(source: str, module: str) -> list[dict[str, Any]]:
    """The REST operations of one stub module."""
    out = []
    for cls in ast.parse(source).body:
        if not (isinstance(cls, ast.ClassDef) and cls.name.startswith("_")
                and cls.name.endswith("Stub")):
            continue
        init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
        inputs: dict[str, ast.AST] = {}
        metas: dict[str, ast.Call] = {}
        errors: dict[str, list[str]] = {}
        outputs: dict[str, ast.AST] = {}
        for stmt in init.body:
            if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
                continue
            var = stmt.targets[0].id
            if var.endswith("_input_type"):
                inputs[var[: -len("_input_type")]] = stmt.value
            elif var.endswith("_rest_metadata") and isinstance(stmt.value, ast.Call):
                metas[var[: -len("_rest_metadata")]] = stmt.value
            elif var.endswith("_error_dict"):
                errors[var[: -len("_error_dict")]] = [
                    k.split(".")[-1] for k, _ in _dict_items(stmt.value)]
            elif var == "operations":
                for op, spec in _dict_items(stmt.value):
                    outputs[op] = dict(_dict_items(spec))["output_type"]
        for op, meta in metas.items():
            method = ast.literal_eval(_keyword(meta, "http_method"))  # type: ignore[arg-type]
            url = ast.literal_eval(_keyword(meta, "url_template"))  # type: ignore[arg-type]
            body_node = _keyword(meta, "request_body_parameter")
            path_vars = dict((k, ast.literal_eval(v)) for k, v in
                             _dict_items(_keyword(meta, "path_variables") or ast.Dict([], [])))
            query = dict((k, ast.literal_eval(v)) for k, v in
                         _dict_items(_keyword(meta, "query_parameters") or ast.Dict([], [])))
            fields = dict(_dict_items(inputs[op].args[1])) if isinstance(
                inputs.get(op), ast.Call) else {}
            path, _, action = url.partition("?action=")
            out.append({"module": module, "stub": cls.name, "op": op, "method": method,
                        "url": url, "path": path, "action": action or None,
                        "body": ast.literal_eval(body_node) if body_node else None,
                        "path_vars": path_vars, "query": query, "fields": fields,
                        "output": outputs[op], "errors": errors.get(op, [])})
    return out


def in_subset(op: dict[str, Any]) -> bool:
    """Is this operation part of what the project touches?"""
    path, method = op["path"], op["method"]
    if path.startswith(API + "/upgrade"):
        return True
    if method != "GET":
        return False
    return path in (API + "/node", API + "/cluster/status",
                    API + "/node/services/install-upgrade") or (
        path.startswith(API + "/node/services/") and path.endswith("/status"))


# -- the document --------------------------------------------------------------------------


def _param(name: str, where: str, expr: ast.AST, refs: set[str]) -> dict[str, Any]:
    schema, required = schema_of(expr, refs)
    return {"name": name, "in": where, "required": True if where == "path" else required,
            "schema": schema}


def build(files: dict[str, str], version: str, provenance: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document of the subset, from the wheel's sources."""
    models = read_models(files[MODEL])
    ops = []
    for module in sorted(files):
        if module in MODULES or (module.startswith(MODULE_DIRS) and module.endswith("_client.py")):
            ops += [o for o in read_operations(files[module], module) if in_subset(o)]
    refs: set[str] = {"ApiError"}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for op in ops:
        grouped.setdefault((op["path"][len(API):] or "/", op["method"]), []).append(op)
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), variants in sorted(grouped.items()):
        paths.setdefault(path, {})[method.lower()] = _operation(path, method, variants, refs)
    for sup in SUPPLEMENTS:
        _supplement(paths, sup, refs)
    schemas: dict[str, Any] = {}
    todo = sorted(refs)
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        model = models[name]
        schema: dict[str, Any] = {"type": "object", "properties": model["properties"],
                                  "additionalProperties": False}
        if model["required"]:
            schema["required"] = model["required"]
        schemas[name] = schema
        todo += sorted(model["refs"] - set(schemas))
    return {
        "openapi": "3.0.3",
        "info": {"title": f"NSX-T {version} Manager upgrade API (the subset nsxt-upgrade uses)",
                 "version": version, "x-provenance": provenance},
        "servers": [{"url": API}],
        "paths": {p: paths[p] for p in sorted(paths)},
        "components": {"schemas": {n: schemas[n] for n in sorted(schemas)},
                       "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "security": [{"basic": []}],
    }


def _operation(path: str, method: str, variants: list[dict[str, Any]], refs: set[str]
               ) -> dict[str, Any]:
    params: dict[tuple[str, str], dict[str, Any]] = {}
    actions: dict[str, Any] = {}
    bodies: list[dict[str, Any]] = []
    responses: dict[str, Any] = {}
    for v in variants:
        for field, expr in v["fields"].items():
            if field in v["path_vars"]:
                params[("path", v["path_vars"][field])] = _param(
                    v["path_vars"][field], "path", expr, refs)
            elif field in v["query"]:
                p = _param(v["query"][field], "query", expr, refs)
                old = params.get(("query", p["name"]))
                if old is not None:
                    p["required"] = p["required"] and old["required"]
                elif len(variants) > 1:
                    p["required"] = False  # one action's parameter is not every action's
                params[("query", p["name"])] = p
        body = None
        if v["body"]:
            body, _ = schema_of(v["fields"][v["body"]], refs)
            bodies.append(body)
        out, _ = schema_of(v["output"], refs)
        status = SUCCESS_CODES.get((v["method"], path, v["action"]), 200)
        key = str(status)
        if out:
            entry = responses.setdefault(key, {"description": "success", "content": {
                "application/json": {"schema": {"anyOf": []}}}})
            any_of = entry.setdefault("content", {"application/json": {"schema": {"anyOf": []}}})[
                "application/json"]["schema"]["anyOf"]
            if out not in any_of:
                any_of.append(out)
        else:
            responses.setdefault(key, {"description": "success (no body)"})
        for err in v["errors"]:
            for code in ERROR_STATUS.get(err, ()):
                responses.setdefault(str(code), {"description": err, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}})
        responses.setdefault("401", {"description": "unauthenticated", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}})
        actions[v["action"] or ""] = {
            "sdk": f"{v['module']}:{v['stub']}.{v['op']}", "status": status,
            "request": body or None, "response": out or None}
    for resp in responses.values():
        schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
        if "anyOf" in schema and len(schema["anyOf"]) == 1:
            resp["content"]["application/json"]["schema"] = schema["anyOf"][0]
    named = [a for a in actions if a]
    if named:
        params[("query", "action")] = {
            "name": "action", "in": "query", "required": "" not in actions,
            "schema": {"type": "string", "enum": sorted(named)}}
    op: dict[str, Any] = {
        "operationId": "_".join([method.lower(), *(
            p.strip("{}").replace("-", "_") for p in path.split("/") if p)]) or method.lower(),
        "parameters": [params[k] for k in sorted(params)],
        "responses": {k: responses[k] for k in sorted(responses)},
        "x-sdk": sorted(a["sdk"] for a in actions.values()),
    }
    if named:
        op["x-nsx-actions"] = {k: actions[k] for k in sorted(actions)}
    if bodies:
        unique = [b for i, b in enumerate(bodies) if b not in bodies[:i]]
        op["requestBody"] = {"required": len(bodies) == len(variants), "content": {
            "application/json": {"schema": unique[0] if len(unique) == 1
                                 else {"anyOf": unique}}}}
    return op


def _supplement(paths: dict[str, dict[str, Any]], sup: dict[str, Any], refs: set[str]) -> None:
    op = paths[sup["path"]][sup["method"].lower()]
    refs.add(sup["response"])
    ref = {"$ref": f"#/components/schemas/{sup['response']}"}
    actions = op.setdefault("x-nsx-actions", {"": {"sdk": op["x-sdk"][0], "status": 200,
                                                   "request": _json_body(op),
                                                   "response": ref}})
    actions[sup["action"]] = {"source": sup["source"], "status": sup["status"],
                              "request": "multipart", "response": ref}
    params = [p for p in op["parameters"] if p["name"] != "action"]
    params.append({"name": "action", "in": "query", "required": False,
                   "schema": {"type": "string", "enum": sorted(a for a in actions if a)}})
    op["parameters"] = params
    body = op.setdefault("requestBody", {"content": {}})
    body["required"] = False
    body["content"]["multipart/form-data"] = {"schema": {
        "type": "object", "required": [sup["multipart"]],
        "properties": {sup["multipart"]: {"type": "string", "format": "binary"}}}}
    op["x-source"] = sup["source"]


def _json_body(op: dict[str, Any]) -> Any:
    return op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", type=Path, help="the SDK wheel file")
    source.add_argument("--mirror", type=Path, help="a git mirror of " + REPOSITORY)
    parser.add_argument("--commit", required=True,
                        help="the commit of " + REPOSITORY + " the wheel comes from")
    parser.add_argument("--version", choices=sorted(WHEELS), default=None,
                        help="which NSX-T version's wheel (default: from the wheel's name)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when --out differs from what would be generated")
    args = parser.parse_args(argv)
    if args.mirror is not None:
        if args.version is None:
            parser.error("--mirror needs --version")
        data, commit = wheel_from_mirror(args.mirror, args.commit, WHEELS[args.version])
        version, wheel_path = args.version, WHEELS[args.version]
    else:
        data, commit = args.wheel.read_bytes(), args.commit
        version = args.version or next(
            (v for v, p in WHEELS.items() if p.endswith(args.wheel.name)), None)
        if version is None:
            parser.error(f"cannot tell the NSX-T version of {args.wheel.name}: give --version")
        wheel_path = WHEELS[version]
    if len(commit) != 40:
        parser.error("--commit must be the full 40-digit hash (use --mirror to resolve one)")
    files = read_wheel(data)
    provenance = {"repository": REPOSITORY, "commit": commit, "file": wheel_path,
                  "read": sorted([MODEL, *(m for m in files if m in MODULES or (
                      m.startswith(MODULE_DIRS) and m.endswith("_client.py")))]),
                  "generator": "scripts/nsxt_contract.py",
                  "supplements": "success codes other than 200 and the multipart upload: "
                                 "VMware nsx_api.json (see SUCCESS_CODES, SUPPLEMENTS)"}
    text = json.dumps(build(files, version, provenance), indent=1, sort_keys=False) + "\n"
    if args.check:
        same = args.out.is_file() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if same else 'differs from the SDK wheel'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}: {len(json.loads(text)['paths'])} paths, NSX-T {version}, "
          f"{REPOSITORY}@{commit[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
