"""The Remotion project compiles under TypeScript's strict mode (tsc --noEmit, remotion/tsconfig.json)."""

from __future__ import annotations

from pathlib import Path

from remotion_node import node


def test_the_remotion_project_typechecks(remotion_project: Path) -> None:
    result = node("node_modules/typescript/bin/tsc", "--noEmit", "-p", "tsconfig.json", cwd=remotion_project)
    assert result.returncode == 0, result.stdout + result.stderr
