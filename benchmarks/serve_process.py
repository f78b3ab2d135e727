"""What the service benchmarks share: a real `vidluxe serve` process on loopback, its API key, a fresh
PostgreSQL schema, small real clips, and CPU accounting from /proc.

Imported by benchmarks/api_load.py and benchmarks/service_e2e.py (run them as scripts, from the repo root).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
from proc_stats import process_cpu_seconds, process_tree

from shared.media.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata" / "videos"
POSTGRES_URL = os.environ.get("VIDLUXE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backend_env(backend: str, home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a `vidluxe` command on ``backend`` (sqlite, or postgres at ``database_url``)."""
    env = {**os.environ, "VIDLUXE_HOME": str(home), "VIDLUXE_TASK_STORE": backend, **extra}
    if backend == "postgres":
        if not database_url:
            raise ValueError("The postgres backend needs a database URL.")
        env["VIDLUXE_DATABASE_URL"] = database_url
    else:
        env.pop("VIDLUXE_DATABASE_URL", None)
    return env


@contextmanager
def postgres_schema(url: str = POSTGRES_URL, prefix: str = "bench") -> Iterator[str]:
    """A fresh schema (dropped afterwards); yields a DSN whose search_path is that schema."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            separator = "&" if "?" in url else "?"
            yield f"{url}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def create_key(env: dict[str, str], tenant: str = "bench") -> dict[str, str]:
    """`vidluxe keys create --tenant TENANT --json`: {api_key, webhook_secret, ...}."""
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "keys", "create", "--tenant", tenant, "--json"],
        env=env, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        sys.exit(f"vidluxe keys create failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout))


class ServeProcess:
    """`vidluxe serve --port PORT [--api-processes N]` as a child process; its log goes to ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path, *, port: int | None = None, api_processes: int = 1) -> None:
        self.env = env
        self.api_processes = api_processes
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", "--port", str(self.port),
             "--api-processes", str(self.api_processes)],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail("exited while starting")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self._fail("did not answer /healthz within 60 s")
        raise AssertionError("unreachable")

    def _fail(self, why: str) -> None:
        self.__exit__()
        sys.exit(f"vidluxe serve {why}; its log:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU so far of the server process (all its threads) and its API processes."""
        assert self.process is not None
        return sum(process_cpu_seconds(pid) for pid in process_tree(self.process.pid))

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # uvicorn stops; the runner and delivery close
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


def make_clip(source: Path, out: Path, *, start: float, seconds: float, long_side: int = 640) -> Path:
    """A short cut of ``source``, its longer side scaled to ``long_side`` (aspect kept), H.264 ultrafast,
    no audio."""
    fit = f"scale='if(gt(iw,ih),{long_side},-2)':'if(gt(iw,ih),-2,{long_side})',setsar=1"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-ss", f"{start}", "-i", str(source), "-t", f"{seconds}", "-an",
         "-vf", fit, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "26", "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )
    return out


def upload(created: dict[str, object], path: Path) -> httpx.Response:
    target = created["upload"]
    assert isinstance(target, dict)
    return httpx.request(
        target["method"], target["url"], content=path.read_bytes(), headers=target["headers"], timeout=60
    )
