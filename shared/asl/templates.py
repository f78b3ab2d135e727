"""Payload templates: ``Parameters``, ``ResultSelector`` and ``ItemSelector``.

A payload template is JSON copied as-is, except that a field whose name ends in ``.$`` is
replaced by a field without the suffix whose value is computed from the string: a path into
the data (``$...``), a path into the context object (``$$...``), or an intrinsic function.
Objects nested in objects or arrays are processed the same way, however deep.
"""

from __future__ import annotations

import random
from typing import Any

from shared.asl.errors import PathError
from shared.asl.intrinsics import evaluate, is_intrinsic, parse_intrinsic
from shared.asl.paths import compact_json, select_with_context, validate_path


def validate_template(template: Any) -> None:
    """Check every ``.$`` field of a payload template.

    Raises:
        ValueError: a ``.$`` value is not a string, not a path, or not a valid intrinsic call.
    """
    if isinstance(template, list):
        for item in template:
            validate_template(item)
        return
    if not isinstance(template, dict):
        return
    for key, value in template.items():
        if not key.endswith(".$"):
            validate_template(value)
            continue
        if not isinstance(value, str):
            raise ValueError(f"field '{key}' must be a string (a path or an intrinsic function)")
        try:
            if is_intrinsic(value):
                parse_intrinsic(value)
            else:
                validate_path(value[1:] if value.startswith("$$") else value)
        except ValueError as exc:
            raise ValueError(f"field '{key}': {exc}") from exc


def render(template: Any, data: Any, context: dict[str, Any], rng: random.Random) -> Any:
    """Evaluate a (validated) payload template against ``data`` and the context object.

    Raises:
        PathError: a ``.$`` path names a node missing from the data or context.
        IntrinsicError: an intrinsic function failed.
    """
    if isinstance(template, list):
        return [render(item, data, context, rng) for item in template]
    if not isinstance(template, dict):
        return template
    out: dict[str, Any] = {}
    for key, value in template.items():
        if not key.endswith(".$"):
            out[key] = render(value, data, context, rng)
        elif is_intrinsic(value):
            out[key[:-2]] = evaluate(parse_intrinsic(value), data, context, rng)
        else:
            try:
                out[key[:-2]] = select_with_context(value, data, context)
            except PathError as exc:
                source = context if value.startswith("$$") else data
                raise PathError(
                    f"The JSONPath '{value}' specified for the field '{key}' could not be found "
                    f"in the input '{compact_json(source)}'"
                ) from exc
    return out
