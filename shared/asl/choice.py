"""Choice rules: validation of their shape and evaluation against a state's input.

Semantics (ASL spec and the Step Functions guide):

* a comparison whose Variable (or compared value) has the wrong type is simply false;
* a Variable that names a missing node is a ``States.Runtime`` error, except for ``IsPresent``;
* string ordering is Java's ``String.compareTo`` (UTF-16 code units);
* ``StringMatches`` supports ``*`` wildcards, ``\\*`` for a literal star and ``\\\\`` for a
  backslash; nothing else is special.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from shared.asl.errors import PathError
from shared.asl.paths import select_with_context, validate_path
from shared.asl.timestamps import parse_timestamp

_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_key(value: Any) -> bytes | None:
    # UTF-16BE bytes order exactly as Java compares strings (by UTF-16 code unit).
    return value.encode("utf-16-be", "surrogatepass") if isinstance(value, str) else None


def _number_key(value: Any) -> float | int | None:
    return value if _is_number(value) else None


# Comparison family -> function giving a comparable key, or None when the value has the wrong type.
_KEYS: dict[str, Callable[[Any], Any]] = {
    "String": _string_key,
    "Numeric": _number_key,
    "Timestamp": parse_timestamp,
}


def _literal_check(family: str) -> Callable[[Any], bool]:
    if family == "Timestamp":
        return lambda value: parse_timestamp(value) is not None
    if family == "String":
        return lambda value: isinstance(value, str)
    return _is_number


def _ordered(family: str, relation: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    key = _KEYS[family]

    def compare(variable: Any, value: Any) -> bool:
        left, right = key(variable), key(value)
        return left is not None and right is not None and relation(left, right)

    return compare


def _boolean_equals(variable: Any, value: Any) -> bool:
    return isinstance(variable, bool) and isinstance(value, bool) and variable == value


def _string_matches(variable: Any, pattern: Any) -> bool:
    return isinstance(variable, str) and _wildcard_regex(pattern).fullmatch(variable) is not None


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif char == "*":
            parts.append(".*")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


# operator name -> (comparison of variable with the operand, check of a literal operand)
_COMPARISONS: dict[str, tuple[Callable[[Any, Any], bool], Callable[[Any], bool]]] = {
    f"{family}{name}": (_ordered(family, relation), _literal_check(family))
    for family in _KEYS
    for name, relation in _RELATIONS.items()
}
_COMPARISONS["BooleanEquals"] = (_boolean_equals, lambda value: isinstance(value, bool))
_COMPARISONS["StringMatches"] = (_string_matches, lambda value: isinstance(value, str))

_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda value: value is None,
    "IsNumeric": _is_number,
    "IsString": lambda value: isinstance(value, str),
    "IsBoolean": lambda value: isinstance(value, bool),
    "IsTimestamp": lambda value: parse_timestamp(value) is not None,
}

# Every operator that compares with another path's value: StringEqualsPath, ...
_PATH_OPERATORS = {f"{name}Path": name for name in _COMPARISONS if name != "StringMatches"}
OPERATORS = frozenset({*_COMPARISONS, *_PATH_OPERATORS, *_TYPE_TESTS, "IsPresent"})
_MISSING = object()


def validate_rule(rule: Any, *, top_level: bool) -> None:
    """Check the shape of a Choice Rule (recursively for And/Or/Not).

    Raises:
        ValueError: a missing or extra field, or an operand of the wrong type.
    """
    if not isinstance(rule, dict):
        raise ValueError("a Choice Rule must be an object")
    fields = set(rule) - {"Comment"}
    if top_level:
        if not isinstance(rule.get("Next"), str):
            raise ValueError("a top-level Choice Rule needs a 'Next' state name")
        fields.discard("Next")
    elif "Next" in rule:
        raise ValueError("'Next' is only allowed in a top-level Choice Rule")
    if fields & {"And", "Or", "Not"}:
        if len(fields) != 1:
            raise ValueError(f"a boolean Choice Rule has exactly one of And/Or/Not, got {sorted(fields)}")
        (name,) = fields
        operands = [rule["Not"]] if name == "Not" else rule[name]
        if name != "Not" and (not isinstance(operands, list) or not operands):
            raise ValueError(f"'{name}' must be a non-empty array of Choice Rules")
        for operand in operands:
            validate_rule(operand, top_level=False)
        return
    _validate_data_test(rule, fields)


def _validate_data_test(rule: dict[str, Any], fields: set[str]) -> None:
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise ValueError("a Choice Rule needs a string 'Variable' (or And/Or/Not)")
    validate_path(variable[1:] if variable.startswith("$$") else variable)
    operators = fields - {"Variable"}
    if len(operators) != 1 or not operators <= OPERATORS:
        raise ValueError(f"a Choice Rule needs exactly one comparison operator, got {sorted(operators)}")
    (name,) = operators
    operand = rule[name]
    if name in _PATH_OPERATORS:
        if not isinstance(operand, str):
            raise ValueError(f"'{name}' must be a path string")
        validate_path(operand[1:] if operand.startswith("$$") else operand)
    elif name in _COMPARISONS:
        if not _COMPARISONS[name][1](operand):
            raise ValueError(f"'{name}' has an operand of the wrong type: {operand!r}")
    elif not isinstance(operand, bool):
        raise ValueError(f"'{name}' must be true or false")


def choose(choices: list[dict[str, Any]], data: Any, context: dict[str, Any]) -> str | None:
    """The ``Next`` of the first matching rule, or None when none matches.

    Raises:
        PathError: a rule's Variable (or ``...Path`` operand) names a missing node.
    """
    for rule in choices:
        if matches(rule, data, context):
            return str(rule["Next"])
    return None


def matches(rule: dict[str, Any], data: Any, context: dict[str, Any]) -> bool:
    """Whether ``data`` satisfies a (validated) Choice Rule.

    Raises:
        PathError: the rule's Variable (or ``...Path`` operand) names a missing node.
    """
    if "And" in rule:
        return all(matches(sub, data, context) for sub in rule["And"])
    if "Or" in rule:
        return any(matches(sub, data, context) for sub in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    name = next(key for key in rule if key in OPERATORS)
    variable = _variable(rule["Variable"], data, context)
    if name == "IsPresent":
        return (variable is not _MISSING) is rule[name]
    if variable is _MISSING:
        raise PathError(
            f"Invalid path '{rule['Variable']}': The choice state's condition path references an invalid value."
        )
    if name in _TYPE_TESTS:
        return _TYPE_TESTS[name](variable) is rule[name]
    if name in _PATH_OPERATORS:
        operand = select_with_context(rule[name], data, context)
        return _COMPARISONS[_PATH_OPERATORS[name]][0](variable, operand)
    return _COMPARISONS[name][0](variable, rule[name])


def _variable(path: str, data: Any, context: dict[str, Any]) -> Any:
    try:
        return select_with_context(path, data, context)
    except PathError:
        return _MISSING
