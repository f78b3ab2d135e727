"""Load test of the status endpoint, `GET /v1/videos/{id}`, on loopback, against SQLite and PostgreSQL.

For each backend, in a fresh data home (PostgreSQL: a fresh schema of 127.0.0.1:5432/test, dropped
afterwards), the benchmark
  1. creates an API key (`vidluxe keys create`) and starts `vidluxe serve` as a real process;
  2. creates --tasks tasks; --completed of them get a 1.5 s 360x640 clip uploaded and run to completion
     (their documents carry the journal's progress and signed output URLs), the rest await their upload;
  3. measures one client polling alone for --probe-seconds (the service's latency without queueing),
     and --clients clients on `GET /healthz` for --floor-seconds (the HTTP stack's floor on this
     machine now: one FastAPI route, no auth, no database);
  4. runs --clients concurrent clients for --seconds (after --warmup seconds not counted), each on its
     own keep-alive connection, polling the tasks in turn: every other request sends the ETag it last
     saw as If-None-Match and expects a 304; anything else, or a failed request, is an error.
It prints requests/s, p50/p90/p99/max latency, the 200/304 split, errors, and the CPU used by the
server process, by this client and by the whole machine, then PASS/FAIL against the issue's targets
(p99 <= 25 ms, zero errors).

Honesty note: the client runs on the same machine as the server (and PostgreSQL, and whatever else
runs there: the load average is printed) and competes with them for its cores. Latency is measured in
the client, from writing the request to having read the whole answer, so it includes the client's own
event-loop delays. The default client is a minimal asyncio HTTP/1.1 client (microseconds of CPU per
request); `--client httpx` uses httpx.AsyncClient, which costs about as much CPU per request as the
server and so takes half the machine. The clients are closed-loop with no think time, so mean latency
is clients / throughput (Little's law): p99 <= 25 ms at 50 clients needs well over 2,000 requests/s.
The server's CPU per request is printed as the server-side figure.

    python benchmarks/api_load.py [--backends sqlite,postgres] [--clients 50] [--seconds 20] [--client raw|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from serve_process import (
    POSTGRES_URL,
    ROOT,
    ServeProcess,
    backend_env,
    create_key,
    machine_cpu,
    make_clip,
    postgres_schema,
    process_cpu_seconds,
    upload,
)

TARGET_P99_MS = 25.0
SMALL = {"preset": "luxury", "output": {"width": 360, "height": 640, "fps": 30}}


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, requests started after the warm-up
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Result:
    backend: str
    seconds: float
    stats: Stats
    probe: Stats
    floor: Stats
    load_average: float  # 1-minute, as the load began
    load_wall: float  # seconds the load ran, warm-up included
    server_cpu: float
    client_cpu: float
    machine_busy: float
    machine_total: float

    @property
    def requests(self) -> int:
        return len(self.stats.latencies)

    @property
    def error_count(self) -> int:
        return sum(self.stats.errors.values())

    @property
    def p99_ms(self) -> float:
        return percentile(self.stats.latencies, 99) * 1000

    @property
    def passed(self) -> bool:
        return self.requests > 0 and self.p99_ms <= TARGET_P99_MS and self.error_count == 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


class RawHttpClient:
    """A minimal HTTP/1.1 keep-alive client over one asyncio connection: a few microseconds of CPU per
    request, so that less of the shared machine goes to the client (httpx spends milliseconds)."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self._host, self._port = host, port
        self._prefix = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._reader is not None
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        try:
            self._writer.write(f"GET {path} HTTP/1.1\r\n{self._prefix}{extra}\r\n".encode())
            head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            answer: dict[str, str] = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name:
                    answer[name.strip().lower()] = value.strip()
            if "chunked" in answer.get("transfer-encoding", ""):
                raise ValueError("chunked answers are not read by this client")
            length = int(answer.get("content-length", "0"))
            body = await self._reader.readexactly(length) if length else b""
        except BaseException:
            await self.close()
            raise
        if answer.get("connection", "").lower() == "close":
            await self.close()
        return int(head[0].split(" ", 2)[1]), answer, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer, self._reader = None, None


class HttpxClient:
    """The same requests through httpx.AsyncClient (one keep-alive connection per client)."""

    def __init__(self, base_url: str, key: str) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=10
        )

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        response = await self._http.get(path, headers=headers)
        return response.status_code, dict(response.headers), response.content

    async def close(self) -> None:
        await self._http.aclose()


Client = RawHttpClient | HttpxClient


async def poll(
    client: Client, task_ids: list[str], offset: int, measure_from: float, until: float, stats: Stats
) -> None:
    """One client: every other request conditional on the ETag it last saw (a 304 expected). No task
    ids: ``GET /healthz`` instead (the HTTP stack's floor: no auth, no database)."""
    etags: dict[str, str] = {}
    n = 0
    try:
        while True:
            started = time.perf_counter()
            if started >= until:
                return
            task_id = task_ids[(offset + n // 2) % len(task_ids)] if task_ids else ""
            conditional = n % 2 == 1 and task_id in etags
            n += 1
            error: str | None = None
            status = 0
            try:
                status, headers, body = await client.get(
                    f"/v1/videos/{task_id}" if task_id else "/healthz",
                    {"If-None-Match": etags[task_id]} if conditional else {},
                )
                elapsed = time.perf_counter() - started
                if not task_id:
                    error = None if status == 200 else f"HTTP {status}"
                elif status == 200 and headers.get("etag") and json.loads(body)["task_id"] == task_id:
                    etags[task_id] = headers["etag"]
                elif not (status == 304 and conditional):
                    error = f"HTTP {status}"
            except (OSError, asyncio.IncompleteReadError, httpx.HTTPError, ValueError, KeyError) as exc:
                elapsed = time.perf_counter() - started
                error = type(exc).__name__
            if started < measure_from:
                continue
            stats.latencies.append(elapsed)
            if error is None:
                stats.statuses[status] += 1
            else:
                stats.errors[error] += 1
    finally:
        await client.close()


async def load(
    base_url: str, key: str, task_ids: list[str], clients: int, warmup: float, seconds: float, kind: str = "raw"
) -> Stats:
    stats = Stats()
    url = httpx.URL(base_url)
    connections: list[Client] = [
        RawHttpClient(url.host, url.port or 80, key) if kind == "raw" else HttpxClient(base_url, key)
        for _ in range(clients)
    ]
    now = time.perf_counter()
    await asyncio.gather(
        *(poll(client, task_ids, index, now + warmup, now + warmup + seconds, stats)
          for index, client in enumerate(connections))
    )
    return stats


def prepare_tasks(server: ServeProcess, key: str, count: int, completed: int, clip: Path) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    task_ids: list[str] = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        for index in range(count):
            response = http.post("/v1/videos", json={"pipeline": "enhance", "options": SMALL,
                                                     "metadata": {"bench": index}})
            response.raise_for_status()
            created = response.json()
            task_ids.append(created["task_id"])
            if index < completed and upload(created, clip).status_code != 201:
                sys.exit("the upload failed")
        deadline = time.monotonic() + 300
        for task_id in task_ids[:completed]:
            while True:
                status = http.get(f"/v1/videos/{task_id}").json()["status"]
                if status == "completed":
                    break
                if status in ("failed", "cancelled") or time.monotonic() > deadline:
                    sys.exit(f"task {task_id} ended {status}; see {server.log_path}")
                time.sleep(0.2)
    return task_ids


def run_backend(backend: str, args: argparse.Namespace, work: Path, clip: Path, database_url: str | None) -> Result:
    home = work / backend
    env = backend_env(backend, home, database_url, VIDLUXE_LOG_LEVEL="WARNING")
    key = create_key(env)["api_key"]
    with ServeProcess(env, work / f"serve-{backend}.log") as server:
        task_ids = prepare_tasks(server, key, args.tasks, args.completed, clip)
        probe = asyncio.run(load(server.base_url, key, task_ids, 1, 0.5, args.probe_seconds, args.client))
        floor = asyncio.run(load(server.base_url, key, [], args.clients, 1.0, args.floor_seconds, args.client))
        server_before, client_before = server.cpu_seconds(), process_cpu_seconds(os.getpid())
        busy_before, total_before = machine_cpu()
        load_average, began = os.getloadavg()[0], time.perf_counter()
        stats = asyncio.run(load(server.base_url, key, task_ids, args.clients, args.warmup, args.seconds, args.client))
        # Includes the warm-up: CPU is read around the whole run, the requests counted after the warm-up.
        load_wall = time.perf_counter() - began
        server_cpu = server.cpu_seconds() - server_before
        client_cpu = process_cpu_seconds(os.getpid()) - client_before
        busy_after, total_after = machine_cpu()
    return Result(backend, args.seconds, stats, probe, floor, load_average, load_wall, server_cpu, client_cpu,
                  busy_after - busy_before, total_after - total_before)


def report(result: Result, args: argparse.Namespace) -> None:
    stats, ms = result.stats, [latency * 1000 for latency in result.stats.latencies]
    wall = result.load_wall
    cores = os.cpu_count() or 1
    print(f"== {result.backend} ==  (load average {result.load_average:.2f} as the load began)")
    print(f"load:      {args.clients} clients x {args.seconds:g} s (after a {args.warmup:g} s warm-up), keep-alive, "
          f"{args.tasks} tasks ({args.completed} completed), half of the requests If-None-Match, {args.client} client")
    print(f"requests:  {result.requests} in {result.seconds:g} s = {result.requests / result.seconds:.0f} req/s   "
          f"(200: {stats.statuses[200]}, 304: {stats.statuses[304]})")
    if ms:
        print(f"latency:   p50 {percentile(ms, 50):.1f} ms   p90 {percentile(ms, 90):.1f} ms   "
              f"p99 {percentile(ms, 99):.1f} ms   max {max(ms):.1f} ms   mean {statistics.fmean(ms):.1f} ms")
    probe = [latency * 1000 for latency in result.probe.latencies]
    if probe:
        print(f"alone:     1 client x {args.probe_seconds:g} s: {len(probe) / args.probe_seconds:.0f} req/s, "
              f"p50 {percentile(probe, 50):.2f} ms, p99 {percentile(probe, 99):.2f} ms (no queueing)")
    floor = [latency * 1000 for latency in result.floor.latencies]
    if floor:
        print(f"floor:     GET /healthz (no auth, no database), {args.clients} clients x {args.floor_seconds:g} s: "
              f"{len(floor) / args.floor_seconds:.0f} req/s, p50 {percentile(floor, 50):.1f} ms, "
              f"p99 {percentile(floor, 99):.1f} ms, errors {sum(result.floor.errors.values())}")
    errors = ", ".join(f"{name} x{count}" for name, count in result.stats.errors.most_common()) or "none"
    print(f"errors:    {result.error_count} ({errors})")
    per_request = result.server_cpu / max(1, len(stats.latencies)) * 1000 * args.seconds / wall
    print(f"cpu:       server {result.server_cpu / wall:.0%} of a core (~{per_request:.2f} ms CPU/request), "
          f"client {result.client_cpu / wall:.0%} of a core, machine {result.machine_busy / result.machine_total:.0%} "
          f"busy of {cores} cores (the client shares the machine with the server)")
    latency_ok, errors_ok = result.p99_ms <= TARGET_P99_MS, result.error_count == 0
    print(f"targets:   p99 {result.p99_ms:.1f} ms <= {TARGET_P99_MS:g} ms: {verdict(latency_ok)}; "
          f"zero errors: {verdict(errors_ok)}  => {verdict(result.passed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--probe-seconds", type=float, default=3.0)
    parser.add_argument("--floor-seconds", type=float, default=5.0, help="GET /healthz at the same concurrency")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="raw: a minimal asyncio HTTP/1.1 client (default); httpx: httpx.AsyncClient")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--completed", type=int, default=2, help="of the tasks, how many are run to completion")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--keep", type=Path, help="keep the data homes and server logs here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="vidluxe-load-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(ROOT / "samples" / "talking_head.mp4", work / "clip.mp4", start=0, seconds=1.5)
    print(f"load test of GET /v1/videos/{{id}} on loopback; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores at the start; work dir {work}")
    results = []
    for backend in [name.strip() for name in args.backends.split(",") if name.strip()]:
        if backend == "postgres":
            with postgres_schema(args.postgres_url, "bench_load") as url:
                results.append(run_backend(backend, args, work, clip, url))
        elif backend == "sqlite":
            results.append(run_backend(backend, args, work, clip, None))
        else:
            sys.exit(f"unknown backend {backend!r}")
        report(results[-1], args)
    print("== summary ==")
    for result in results:
        print(f"{result.backend:<9} {result.requests / result.seconds:7.0f} req/s  p50 "
              f"{percentile(result.stats.latencies, 50) * 1000:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
              f"errors {result.error_count}  {verdict(result.passed)}")
    print(verdict(bool(results) and all(result.passed for result in results)))


if __name__ == "__main__":
    main()
