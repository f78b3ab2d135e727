"""JSONPath for ASL: selecting values with Paths and writing results with ResultPath.

ASL distinguishes *reference paths* (``$``, ``$.a.b``, ``$['a b'][0]``: they name exactly one
node) from general *paths*, which may use Jayway JSONPath operators (``*``, ``..``, slices,
filters) and then select a list of nodes. A reference path that does not resolve is an error;
a general path always yields a (possibly empty) list, as Jayway's indefinite paths do.
``ResultPath`` and ``ItemsPath`` accept reference paths only.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any

from jsonpath_ng.ext.parser import parse as jsonpath_parse

from shared.asl.errors import PathError

Segment = str | int

# One reference-path step: .name | ['name'] | ["name"] | [index]
_STEP = re.compile(
    r"""\.(?P<dot>[^.\[\]\s*@?()'"]+)"""
    r"""|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]"""
    r"""|\[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]"""
    r"""|\[\s*(?P<idx>\d+)\s*\]"""
)


def compact_json(value: Any) -> str:
    """JSON text without insignificant whitespace, as Step Functions prints payloads in causes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=1024)
def parse_reference_path(path: str) -> tuple[Segment, ...] | None:
    """The steps of a reference path, or None when ``path`` is not a reference path."""
    if not path.startswith("$"):
        return None
    steps: list[Segment] = []
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            return None
        if match.group("idx") is not None:
            steps.append(int(match.group("idx")))
        else:
            name = match.group("dot") or match.group("sq") or match.group("dq") or ""
            steps.append(re.sub(r"\\(.)", r"\1", name))
        pos = match.end()
    return tuple(steps)


@lru_cache(maxsize=1024)
def _compiled(path: str) -> Any:
    return jsonpath_parse(path)


def validate_path(path: str, *, reference_only: bool = False) -> None:
    """Check that ``path`` is a JSONPath starting at ``$``.

    Raises:
        ValueError: the text is not a path (or not a reference path when ``reference_only``).
    """
    if parse_reference_path(path) is not None:
        return
    if reference_only:
        raise ValueError(f"'{path}' is not a reference path (a single node: no *, .., [?], [:])")
    if not path.startswith("$"):
        raise ValueError(f"'{path}' is not a JSONPath (it must start with '$')")
    try:
        _compiled(path)
    except Exception as exc:  # jsonpath-ng raises bare Exception subclasses on syntax errors
        raise ValueError(f"'{path}' is not a valid JSONPath: {exc}") from exc


def normalized(steps: tuple[Segment, ...]) -> str:
    """Jayway's normalized form of a reference path (``$['a'][0]``), used in error causes."""
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f"['{s}']" for s in steps)


def select(path: str, data: Any) -> Any:
    """The value ``path`` selects in ``data``.

    A reference path yields the single node it names; any other path yields the list of
    matching nodes (Jayway semantics for indefinite paths).

    Raises:
        PathError: a reference path names a node that does not exist.
    """
    steps = parse_reference_path(path)
    if steps is None:
        return [match.value for match in _compiled(path).find(data)]
    node = data
    for step in steps:
        if isinstance(step, int):
            found = isinstance(node, list) and step < len(node)
        else:
            found = isinstance(node, dict) and step in node
        if not found:
            raise PathError(f"Invalid path '{path}' : No results for path: {normalized(steps)}")
        node = node[step]
    return node


def select_with_context(path: str, data: Any, context: dict[str, Any]) -> Any:
    """Like :func:`select`, but a ``$$``-prefixed path reads the context object instead.

    Raises:
        PathError: a reference path names a node that does not exist.
    """
    if path.startswith("$$"):
        return select(path[1:], context)
    return select(path, data)


def apply_result_path(state_input: Any, result: Any, result_path: str | None) -> Any:
    """Combine a state's input with its result as ``ResultPath`` says.

    ``None`` (JSON null) discards the result; ``$`` replaces the input; any other reference path
    writes the result into a copy of the input, creating missing intermediate objects.

    Raises:
        PathError: the path crosses a value that is not an object (or an index out of range).
    """
    if result_path is None:
        return state_input
    steps = parse_reference_path(result_path)
    if steps is None:
        raise PathError(f"ResultPath '{result_path}' is not a reference path")
    if not steps:
        return result
    output = copy.deepcopy(state_input)
    node = output
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if isinstance(step, int):
            if not (isinstance(node, list) and step < len(node)):
                raise _result_path_error(result_path, state_input)
        elif not isinstance(node, dict):
            raise _result_path_error(result_path, state_input)
        elif not last and step not in node:
            node[step] = {}
        if last:
            node[step] = result
        else:
            node = node[step]
    return output


def _result_path_error(result_path: str, state_input: Any) -> PathError:
    # The wording Step Functions uses for this failure.
    return PathError(f"Unable to apply ReferencePath {result_path} to input {json.dumps(compact_json(state_input))}")
