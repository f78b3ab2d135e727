"""The Remotion project (remotion/) with its node_modules, installed once per lockfile.

Installing remotion/package-lock.json takes about half a minute, so the tests use remotion/node_modules
when it holds the locked versions (a developer ran ``npm install`` there), and otherwise install into a cache
folder named by the lockfile's hash (``VIDLUXE_NODE_CACHE``, default ``~/.cache/vidluxe/node``) and run
a copy of the project whose node_modules links there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "remotion"
CHECKED = ("remotion", "zod", "esbuild", "@remotion/renderer", "@remotion/bundler")


class NodeMissing(RuntimeError):
    """node or npm is not on PATH (CI installs Debian's nodejs and npm first: .ci/run)."""


def _version(modules: Path, name: str) -> str | None:
    try:
        version: str = json.loads((modules / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


def _complete(modules: Path) -> bool:
    locked = json.loads((PROJECT / "package-lock.json").read_text())["packages"]
    return all(_version(modules, name) == locked[f"node_modules/{name}"]["version"] for name in CHECKED)


def installed_modules() -> Path:
    """A node_modules folder holding remotion/'s locked packages; runs ``npm install`` into the cache if none.

    Raises NodeMissing, or subprocess.CalledProcessError when ``npm install`` fails (the registry unreachable).
    """
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise NodeMissing("node and npm are needed for the Remotion tests: apt-get install -y nodejs npm")
    if _complete(PROJECT / "node_modules"):
        return PROJECT / "node_modules"
    manifest = (PROJECT / "package-lock.json").read_bytes() + (PROJECT / "package.json").read_bytes()
    digest = hashlib.sha256(manifest).hexdigest()[:16]
    cache = Path(os.environ.get("VIDLUXE_NODE_CACHE", Path.home() / ".cache" / "vidluxe" / "node"))
    cache = cache / f"remotion-{digest}"
    if _complete(cache / "node_modules"):
        return cache / "node_modules"
    staging = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(PROJECT / name, staging / name)
    # `npm install` from the lockfile, not `npm ci`: Remotion lists every platform's compositor binary as an
    # optional dependency, the lock holds only those the registry had (linux-x64-gnu, darwin-arm64), and
    # `npm ci` refuses a lock without all of them; `npm install` installs the locked versions as they are.
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=staging, check=True, timeout=600,
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(cache, ignore_errors=True)
    staging.rename(cache)
    return cache / "node_modules"


def project_with_modules(scratch: Path) -> Path:
    """remotion/ itself when its node_modules is complete, else a copy in ``scratch`` linking the cache."""
    modules = installed_modules()
    if modules == PROJECT / "node_modules":
        return PROJECT
    copy = scratch / "remotion"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("node_modules", "out", ".cache"))
    (copy / "node_modules").symlink_to(modules, target_is_directory=True)
    return copy


def node(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run node with ``args`` in ``cwd`` (NODE_PATH: that project's node_modules); never raises for its
    exit code."""
    executable = shutil.which("node")
    if executable is None:
        raise NodeMissing("node is not installed: apt-get install -y nodejs npm")
    env = {**os.environ, "NODE_PATH": str((cwd / "node_modules").resolve())}
    return subprocess.run([executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
