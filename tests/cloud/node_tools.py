"""The node tooling of package.json (osls, asl-validator), installed once per lockfile.

``npm ci`` of that lockfile takes about a minute, so the test suite uses the repository's node_modules
when it holds the locked versions (a developer ran ``npm ci``), and otherwise installs into a cache
folder named by the lockfile's hash (``VIDLUXE_NODE_CACHE``, default ``~/.cache/vidluxe/node``), which
later runs on the machine reuse.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("osls", "asl-validator")


class NodeMissing(RuntimeError):
    """node or npm is not on PATH (CI installs Debian's nodejs and npm first: .ci/run)."""


def _installed(modules: Path, name: str) -> str | None:
    try:
        version: str = json.loads((modules / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


def node_modules() -> Path:
    """A node_modules folder holding the locked osls and asl-validator; installs one if there is none.

    Raises NodeMissing, or subprocess.CalledProcessError when ``npm ci`` fails (the registry unreachable).
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeMissing("node and npm are needed for the AWS template checks: apt-get install -y nodejs npm")
    lockfile = ROOT / "package-lock.json"
    locked = json.loads(lockfile.read_text())["packages"]
    wanted = {name: locked[f"node_modules/{name}"]["version"] for name in TOOLS}
    digest = hashlib.sha256(lockfile.read_bytes() + (ROOT / "package.json").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("VIDLUXE_NODE_CACHE", Path.home() / ".cache" / "vidluxe" / "node")) / digest
    for modules in (ROOT / "node_modules", cache / "node_modules"):
        if all(_installed(modules, name) == version for name, version in wanted.items()):
            return modules
    staging = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(ROOT / name, staging / name)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=staging, check=True, timeout=600,
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(cache, ignore_errors=True)
    staging.rename(cache)
    return cache / "node_modules"


def node(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run node with ``args`` (a script path first), capturing its output; never raises for its exit code."""
    executable = shutil.which("node")
    if executable is None:
        raise NodeMissing("node is not installed: apt-get install -y nodejs npm")
    return subprocess.run(
        [executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
