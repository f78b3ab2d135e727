"""Fixtures for the Remotion tests: the project with its locked node_modules (installed once)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from remotion_node import NodeMissing, project_with_modules


@pytest.fixture(scope="session")
def remotion_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return project_with_modules(tmp_path_factory.mktemp("remotion"))
    except NodeMissing as exc:
        pytest.skip(str(exc))
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"npm install of remotion/package-lock.json failed (is the npm registry reachable?): {exc}")
