"""Compare two JSON Schemas structurally: the pydantic CompositionSpec's and the zod mirror's.

Both are reduced to one canonical form (references resolved, titles and descriptions dropped, zod's
safe-integer bounds dropped, nullable unions sorted), then walked together; every difference is
reported with its path, so a failing test says which field drifted and how.
"""

from __future__ import annotations

from typing import Any

SAFE_INTEGER = 9007199254740991
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems")
Schema = dict[str, Any]


def canonical(schema: Schema, root: Schema | None = None) -> Any:
    """The comparable form of ``schema`` (pure): types, properties, required names, enums, bounds and
    defaults; nothing that only documents."""
    root = schema if root is None else root
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return canonical({**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}, root)
    if isinstance(schema.get("type"), list):  # zod writes {"type": ["number", "null"]}, pydantic an anyOf
        rest = {key: value for key, value in schema.items() if key not in ("type", "default")}
        options = [{**rest, "type": kind} if kind != "null" else {"type": "null"} for kind in schema["type"]]
        return canonical({"anyOf": options, **({"default": schema["default"]} if "default" in schema else {})}, root)
    if "anyOf" in schema:
        options = sorted((canonical(option, root) for option in schema["anyOf"]), key=repr)
        out: dict[str, Any] = {"anyOf": options}
        if "default" in schema:
            out["default"] = schema["default"]
        return out
    out = {}
    if "const" in schema:
        out["const"] = schema["const"]  # zod says "number" for literal(1), pydantic "integer": the value decides
    elif "enum" in schema:
        out["enum"] = sorted(schema["enum"], key=repr)
    elif "type" in schema:
        out["type"] = schema["type"]
    for bound in BOUNDS:
        if bound in schema and abs(schema[bound]) != SAFE_INTEGER:
            out[bound] = schema[bound]
    if "default" in schema:
        out["default"] = schema["default"]
    if schema.get("type") == "object" or "properties" in schema:
        out["properties"] = {name: canonical(sub, root) for name, sub in schema.get("properties", {}).items()}
        out["required"] = sorted(schema.get("required", []))
        out["additionalProperties"] = schema.get("additionalProperties", True) is not False
    if "items" in schema:
        out["items"] = canonical(schema["items"], root)
    return out


def differences(python: Any, zod: Any, path: str = "$") -> list[str]:
    """Where the canonical schemas ``python`` and ``zod`` disagree, one line per difference (pure)."""
    if isinstance(python, dict) and isinstance(zod, dict):
        found: list[str] = []
        if "properties" in python and "properties" in zod:
            only_python = sorted(set(python["properties"]) - set(zod["properties"]))
            only_zod = sorted(set(zod["properties"]) - set(python["properties"]))
            found += [f"{path}.{name}: only in the pydantic model" for name in only_python]
            found += [f"{path}.{name}: only in the zod schema" for name in only_zod]
            for name in sorted(set(python["properties"]) & set(zod["properties"])):
                ours, theirs = python["properties"][name], zod["properties"][name]
                if name not in python["required"] and "default" not in ours:
                    # pydantic writes no default for a default_factory (overlays=[]): zod's stands
                    theirs = {key: value for key, value in theirs.items() if key != "default"}
                found += differences(ours, theirs, f"{path}.{name}")
            for name in sorted(set(python["required"]) ^ set(zod["required"])):
                if name in python["properties"] and name in zod["properties"]:
                    side = "pydantic" if name in python["required"] else "zod"
                    found.append(f"{path}.{name}: required only in the {side} schema")
        for key in sorted((set(python) | set(zod)) - {"properties", "required"}):
            if key not in python or key not in zod:
                side = "pydantic" if key in python else "zod"
                found.append(f"{path}: {key} only in the {side} schema ({python.get(key, zod.get(key))!r})")
            elif key == "anyOf" and len(python[key]) == len(zod[key]):
                for i, (a, b) in enumerate(zip(python[key], zod[key], strict=True)):
                    found += differences(a, b, f"{path}|{i}")
            elif key == "items":
                found += differences(python[key], zod[key], f"{path}[]")
            elif python[key] != zod[key]:
                found.append(f"{path}: {key} is {python[key]!r} in pydantic, {zod[key]!r} in zod")
        return found
    return [] if python == zod else [f"{path}: {python!r} in pydantic, {zod!r} in zod"]
