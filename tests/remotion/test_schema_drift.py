"""The zod props schema of PremiumTalkingVideo (remotion/src/schema.ts) mirrors the pydantic
CompositionSpec: same field names, types, required-ness, enums, bounds and defaults, recursively.

The zod side is exported to JSON Schema by remotion/scripts/export-schema.cjs (zod 4's own
``z.toJSONSchema``); the pydantic side is ``model_json_schema(mode="serialization")``, the shape of the
``model_dump(mode="json")`` that shared/providers/remotion.py sends as input props.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, create_model
from remotion_node import node
from remotion_schema import canonical, differences

from shared.composition import CompositionSpec, Effects


def _zod_schema(project: Path, source: Path | None = None) -> dict[str, Any]:
    args = ["scripts/export-schema.cjs", *([str(source)] if source else [])]
    result = node(*args, cwd=project)
    assert result.returncode == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def _pydantic_schema(model: type[CompositionSpec] = CompositionSpec) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


@pytest.fixture(scope="module")
def zod_schema(remotion_project: Path) -> dict[str, Any]:
    return _zod_schema(remotion_project)


def test_zod_schema_matches_the_pydantic_composition_spec(zod_schema: dict[str, Any]) -> None:
    assert differences(canonical(_pydantic_schema()), canonical(zod_schema)) == []


def test_a_field_added_to_the_zod_schema_only_is_caught(remotion_project: Path, tmp_path: Path) -> None:
    """A mutated copy of schema.ts, exported by the same script: the comparison must fail, by name."""
    source = (remotion_project / "src" / "schema.ts").read_text()
    marker = "\topacity: z.number().min(0).max(1).default(1),\n"
    assert marker in source
    mutated = tmp_path / "src" / "schema.ts"
    mutated.parent.mkdir()
    mutated.write_text(source.replace(marker, marker + "\tblend: z.enum(['normal', 'screen']),\n"))
    found = differences(canonical(_pydantic_schema()), canonical(_zod_schema(remotion_project, mutated)))
    assert found == ["$.overlays[].blend: only in the zod schema"]


def test_a_field_added_to_the_pydantic_model_only_is_caught(zod_schema: dict[str, Any]) -> None:
    """A copy of the CompositionSpec with one more field (and one with a bound changed) must fail."""
    widened = create_model("CompositionSpec", __base__=CompositionSpec, watermark=(str | None, None))
    found = differences(canonical(_pydantic_schema(widened)), canonical(zod_schema))
    assert found == ["$.watermark: only in the pydantic model"]

    effects = create_model("Effects", __base__=Effects, intensity=(float, Field(default=0.6, ge=0.0, le=2.0)))
    rebounded = create_model("CompositionSpec", __base__=CompositionSpec, effects=(effects, effects()))
    found = differences(canonical(_pydantic_schema(rebounded)), canonical(zod_schema))
    assert found == ["$.effects.intensity: maximum is 2.0 in pydantic, 1 in zod"]


@pytest.mark.parametrize(
    ("python", "zod", "expected"),
    [
        ({"type": "integer"}, {"type": "number"}, ["$: type is 'integer' in pydantic, 'number' in zod"]),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
         {"type": "object", "properties": {"a": {"type": "string"}}},
         ["$.a: required only in the pydantic schema"]),
        ({"enum": ["a", "b"], "type": "string"}, {"enum": ["a"], "type": "string"},
         ["$: enum is ['a', 'b'] in pydantic, ['a'] in zod"]),
        ({"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 0, "maximum": 9007199254740991}, []),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
         {"anyOf": [{"type": "integer"}, {"type": "null"}]},
         ["$: default only in the pydantic schema (None)"]),
    ],
)
def test_the_comparison_reports_each_kind_of_drift(python: Any, zod: Any, expected: list[str]) -> None:
    assert differences(canonical(python), canonical(zod)) == expected


def test_the_example_props_validate_on_both_sides(remotion_project: Path) -> None:
    """remotion/src/example-spec.json (the Studio's default props) is a valid CompositionSpec."""
    example = json.loads((remotion_project / "src" / "example-spec.json").read_text())
    spec = CompositionSpec.model_validate(example)
    assert json.loads(spec.model_dump_json()) == example
    assert shutil.which("node")
