"""Intrinsic functions (``States.Format(...)`` and friends): parsing and evaluation.

The grammar (ASL spec, "Intrinsic Functions")::

    call     := 'States.' NAME '(' [ argument { ',' argument } ] ')'
    argument := 'string' | number | true | false | null | $path | $$path | call

String literals are single-quoted; inside them ``\\'``, ``\\{``, ``\\}`` and ``\\\\`` are the only
escapes (an "open" backslash is an error). An escaped brace is a literal brace even in a
``States.Format`` template, where ``{}`` is a placeholder.

Parsing happens at load time (syntax and argument counts are definition errors); evaluation
failures raise :class:`~shared.asl.errors.IntrinsicError`, reported as ``States.IntrinsicFailure``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.asl.errors import IntrinsicError
from shared.asl.paths import compact_json, select_with_context, validate_path

# Inputs of encoding/hashing intrinsics are limited to this many characters (AWS quota).
_MAX_STRING_INPUT = 10_000
# States.ArrayRange may build at most this many items (AWS quota).
_MAX_RANGE_ITEMS = 1000
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_NAME = re.compile(r"States\.[A-Za-z0-9]+")


@dataclass(frozen=True)
class PathArg:
    """A ``$``/``$$`` path argument, evaluated against the input or the context object."""

    path: str


@dataclass(frozen=True)
class LiteralArg:
    """A literal; for strings, ``pieces`` is the text split at unescaped ``{}`` placeholders."""

    value: Any
    pieces: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Arg, ...]


Arg = PathArg | LiteralArg | Call


def is_intrinsic(text: str) -> bool:
    """Whether a ``.$`` value is an intrinsic call rather than a path."""
    return text.startswith("States.")


@lru_cache(maxsize=512)
def parse_intrinsic(text: str) -> Call:
    """Parse an intrinsic invocation.

    Raises:
        ValueError: syntax error, unknown function or wrong number of arguments.
    """
    parser = _Parser(text)
    call = parser.call()
    parser.skip_spaces()
    if parser.pos != len(text):
        raise ValueError(f"unexpected text after the call at offset {parser.pos} in {text!r}")
    return call


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{what} at offset {self.pos} in {self.text!r}")

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def call(self) -> Call:
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected an intrinsic function name")
        name = match.group(0)
        if name not in ARITY:
            raise self.fail(f"unknown intrinsic function {name}")
        self.pos = match.end()
        self.skip_spaces()
        if self.text[self.pos : self.pos + 1] != "(":
            raise self.fail("expected '('")
        self.pos += 1
        args: list[Arg] = []
        self.skip_spaces()
        if self.text[self.pos : self.pos + 1] == ")":
            self.pos += 1
        else:
            while True:
                self.skip_spaces()
                args.append(self.argument())
                self.skip_spaces()
                char = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if char == ")":
                    break
                if char != ",":
                    self.pos -= 1
                    raise self.fail("expected ',' or ')'")
        low, high = ARITY[name]
        if not low <= len(args) <= (high if high is not None else len(args)):
            expected = f"{low}" if low == high else f"{low}..{high if high is not None else 'n'}"
            raise ValueError(f"{name} takes {expected} arguments, got {len(args)} in {self.text!r}")
        return Call(name, tuple(args))

    def argument(self) -> Arg:
        rest = self.text[self.pos :]
        if rest.startswith("'"):
            return self.string()
        if rest.startswith("$"):
            return self.path()
        if rest.startswith("States."):
            return self.call()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word):
                self.pos += len(word)
                return LiteralArg(value)
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected an argument")
        self.pos = match.end()
        number = match.group(0)
        return LiteralArg(int(number) if match.group(1) is None and match.group(2) is None else float(number))

    def string(self) -> LiteralArg:
        self.pos += 1  # opening quote
        pieces: list[str] = []
        current: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string literal")
            char = self.text[self.pos]
            if char == "\\":
                escaped = self.text[self.pos + 1 : self.pos + 2]
                if escaped not in ("'", "{", "}", "\\"):
                    raise self.fail("open escape '\\' in string literal")
                current.append(escaped)
                self.pos += 2
            elif char == "'":
                self.pos += 1
                break
            elif self.text.startswith("{}", self.pos):
                pieces.append("".join(current))
                current = []
                self.pos += 2
            else:
                current.append(char)
                self.pos += 1
        pieces.append("".join(current))
        return LiteralArg("{}".join(pieces), tuple(pieces))

    def path(self) -> PathArg:
        # A path runs to the next ',' or ')' outside brackets, parentheses and quotes.
        start, depth, quote = self.pos, 0, ""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])" and depth > 0:
                depth -= 1
            elif char in ",)":
                break
            self.pos += 1
        path = self.text[start : self.pos].strip()
        validate_path(path[1:] if path.startswith("$$") else path)
        return PathArg(path)


def evaluate(call: Call, data: Any, context: dict[str, Any], rng: random.Random) -> Any:
    """Evaluate a parsed call against the state's data and context object.

    Raises:
        IntrinsicError: an argument has the wrong type or value.
        PathError: a path argument names a missing node.
    """
    values = [_argument_value(arg, data, context, rng) for arg in call.args]
    if call.name == "States.Format":
        template = call.args[0]
        pieces = template.pieces if isinstance(template, LiteralArg) and template.pieces else None
        return _format(values, pieces)
    return _IMPLEMENTATIONS[call.name](values, rng)


def _argument_value(arg: Arg, data: Any, context: dict[str, Any], rng: random.Random) -> Any:
    if isinstance(arg, PathArg):
        return select_with_context(arg.path, data, context)
    if isinstance(arg, Call):
        return evaluate(arg, data, context, rng)
    return arg.value


def _format(values: list[Any], pieces: tuple[str, ...] | None) -> str:
    template = values[0]
    if not isinstance(template, str):
        raise IntrinsicError(f"States.Format needs a string template, got {compact_json(template)}")
    parts = pieces if pieces is not None else tuple(template.split("{}"))
    args = values[1:]
    if len(parts) - 1 != len(args):
        raise IntrinsicError(
            f"States.Format template has {len(parts) - 1} placeholders but {len(args)} arguments were given"
        )
    out = [parts[0]]
    for arg, part in zip(args, parts[1:], strict=True):
        if isinstance(arg, dict | list):
            # Spec: "The Value MUST NOT be a JSON array or object."
            raise IntrinsicError(f"States.Format cannot format a JSON object or array: {compact_json(arg)}")
        out.append(arg if isinstance(arg, str) else json.dumps(arg))
        out.append(part)
    return "".join(out)


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: unlike Python's ``==``, ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return bool(a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any, what: str) -> int:
    """An integer argument; a fractional number is rounded half up, as Step Functions does."""
    if not _is_number(value):
        raise IntrinsicError(f"{what} must be an integer, got {compact_json(value)}")
    return int(value) if isinstance(value, int) else math.floor(value + 0.5)


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise IntrinsicError(f"{what} must be an array, got {compact_json(value)}")
    return value


def _string(value: Any, what: str, *, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise IntrinsicError(f"{what} must be a string, got {compact_json(value)}")
    if limit is not None and len(value) > limit:
        raise IntrinsicError(f"{what} is longer than {limit} characters")
    return value


def _string_to_json(args: list[Any], _rng: random.Random) -> Any:
    text = _string(args[0], "States.StringToJson argument")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise IntrinsicError(f"States.StringToJson argument is not JSON: {exc}") from exc


def _array_partition(args: list[Any], _rng: random.Random) -> Any:
    items = _array(args[0], "States.ArrayPartition first argument")
    size = _integer(args[1], "States.ArrayPartition chunk size")
    if size <= 0:
        raise IntrinsicError(f"States.ArrayPartition chunk size must be positive, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_contains(args: list[Any], _rng: random.Random) -> Any:
    items = _array(args[0], "States.ArrayContains first argument")
    return any(json_equal(item, args[1]) for item in items)


def _array_range(args: list[Any], _rng: random.Random) -> Any:
    first, last, step = (_integer(v, "States.ArrayRange argument") for v in args)
    if step == 0:
        raise IntrinsicError("States.ArrayRange step must not be 0")
    items = list(range(first, last + (1 if step > 0 else -1), step))
    if len(items) > _MAX_RANGE_ITEMS:
        raise IntrinsicError(f"States.ArrayRange would create {len(items)} items (at most {_MAX_RANGE_ITEMS})")
    return items


def _array_get_item(args: list[Any], _rng: random.Random) -> Any:
    items = _array(args[0], "States.ArrayGetItem first argument")
    index = _integer(args[1], "States.ArrayGetItem index")
    if not 0 <= index < len(items):
        raise IntrinsicError(f"States.ArrayGetItem index {index} is out of bounds for length {len(items)}")
    return items[index]


def _array_unique(args: list[Any], _rng: random.Random) -> Any:
    unique: list[Any] = []
    for item in _array(args[0], "States.ArrayUnique argument"):
        if not any(json_equal(item, seen) for seen in unique):
            unique.append(item)
    return unique


def _base64_encode(args: list[Any], _rng: random.Random) -> Any:
    text = _string(args[0], "States.Base64Encode argument", limit=_MAX_STRING_INPUT)
    return base64.b64encode(text.encode()).decode("ascii")


def _base64_decode(args: list[Any], _rng: random.Random) -> Any:
    text = _string(args[0], "States.Base64Decode argument", limit=_MAX_STRING_INPUT)
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise IntrinsicError(f"States.Base64Decode argument is not Base64 of UTF-8 text: {exc}") from exc


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(args: list[Any], _rng: random.Random) -> Any:
    text = _string(args[0], "States.Hash data", limit=_MAX_STRING_INPUT)
    algorithm = args[1]
    if algorithm not in _HASHES:
        raise IntrinsicError(f"States.Hash algorithm must be one of {', '.join(_HASHES)}, got {algorithm!r}")
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _json_merge(args: list[Any], _rng: random.Random) -> Any:
    first, second, deep = args
    if not isinstance(first, dict) or not isinstance(second, dict):
        raise IntrinsicError("States.JsonMerge merges two JSON objects")
    if deep is not False:
        # AWS supports only the shallow mode; the flag must be the boolean false.
        raise IntrinsicError("States.JsonMerge supports only shallow merging: the third argument must be false")
    return {**first, **second}


def _math_random(args: list[Any], rng: random.Random) -> Any:
    start = _integer(args[0], "States.MathRandom start")
    end = _integer(args[1], "States.MathRandom end")
    if end <= start:
        raise IntrinsicError(f"States.MathRandom end ({end}) must be greater than start ({start})")
    source = random.Random(_integer(args[2], "States.MathRandom seed")) if len(args) == 3 else rng
    # The end is exclusive, like Java's Random.nextInt(bound) that the service is built on.
    return source.randrange(start, end)


def _math_add(args: list[Any], _rng: random.Random) -> Any:
    return _integer(args[0], "States.MathAdd argument") + _integer(args[1], "States.MathAdd argument")


def _string_split(args: list[Any], _rng: random.Random) -> Any:
    text = _string(args[0], "States.StringSplit first argument")
    delimiters = _string(args[1], "States.StringSplit delimiter")
    if not delimiters:
        return [text] if text else []
    # Every character of the second argument is a delimiter; empty tokens are dropped.
    tokens = re.split("|".join(re.escape(c) for c in delimiters), text)
    return [token for token in tokens if token]


def _uuid(_args: list[Any], rng: random.Random) -> Any:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_Function = Callable[[list[Any], random.Random], Any]

# States.Format is evaluated by evaluate() itself: it needs the unescaped structure of its
# template literal, not just the template's value.
_IMPLEMENTATIONS: dict[str, _Function] = {
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda args, _rng: compact_json(args[0]),
    "States.Array": lambda args, _rng: list(args),
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": lambda args, _rng: len(_array(args[0], "States.ArrayLength argument")),
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}

# name -> (fewest, most arguments); None: no upper bound.
ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.Array": (0, None),
    "States.MathRandom": (2, 3),
    "States.UUID": (0, 0),
    **{
        name: (n, n)
        for name, n in (
            ("States.StringToJson", 1),
            ("States.JsonToString", 1),
            ("States.ArrayLength", 1),
            ("States.ArrayUnique", 1),
            ("States.Base64Encode", 1),
            ("States.Base64Decode", 1),
            ("States.ArrayPartition", 2),
            ("States.ArrayContains", 2),
            ("States.ArrayGetItem", 2),
            ("States.Hash", 2),
            ("States.MathAdd", 2),
            ("States.StringSplit", 2),
            ("States.ArrayRange", 3),
            ("States.JsonMerge", 3),
        )
    },
}
