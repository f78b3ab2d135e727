"""Load test of the status endpoint, `GET /v1/videos/{id}`, on loopback, against SQLite and PostgreSQL.

For each backend, in a fresh data home (PostgreSQL: a fresh schema of 127.0.0.1:5432/test, dropped
afterwards), the benchmark
  1. creates an API key (`vidluxe keys create`) and starts `vidluxe serve` as a real process;
  2. creates --tasks tasks: --completed of them get a 1.5 s 360x640 clip uploaded and run to completion
     (their documents carry cost and signed output URLs); --running of them are frozen mid-run with the
     first half of a completed task's journal and its first stage run (written through the task store),
     so their documents carry the journal's progress and an ETA; the rest await their upload;
  3. measures one connection alone for --probe-seconds (the service's latency without queueing), and
     --clients connections on `GET /healthz` for --floor-seconds (the HTTP stack's floor on this machine
     now: one FastAPI route, no auth, no database);
  4. runs each phase of --phases with --clients keep-alive connections for --seconds (after --warmup
     seconds not counted), every connection polling the tasks in turn:
       mix  the default and the verdict's first phase: 4 requests in 5 send the task's ETag as
            If-None-Match and must get a 304, the 5th sends none and must get a 200 with an ETag;
       200  no If-None-Match: every answer a 200 (the full document);
       304  every request conditional: every answer a 304.
     Anything else (another status, a 200 where a 304 was due, a socket error or timeout) is an error.

Why 4 in 5 (the "realistic mix"): a browser polls with the ETag it has and waits Retry-After (2 s while
queued or running, 5 s awaiting the upload). The document changes when the execution records a state
(progress, stage), every few seconds for a running enhance task, and not at all while a task awaits its
upload or after it finished; so most polls are answered 304. A poller sees a 200 on its first poll, then
on about one poll in two to five while its task runs, then never: 4 in 5 conditional is on the side of
more 200s than that, and the phases 200 and 304 bound the mix on both sides.

The load generator is wrk (C, one thread, epoll), driven by a Lua script this benchmark writes: it costs
a few microseconds of CPU per request, so most of the shared machine stays with the server (a Python
client cost about as much per request as the server did). Install it with `apt-get install wrk`
(Debian, Ubuntu) or `brew install wrk`. Latency is wrk's, from writing the request to reading the whole
answer; the CPU used by the server process, by wrk and by the whole machine (PostgreSQL, anything else
running) is printed beside each phase, with the load average as it began. The connections are
closed-loop with no think time, so mean latency is connections / throughput (Little's law): p99 <= 25 ms
at 50 connections needs well over 2,000 requests/s. Targets (the issue's): p99 <= 25 ms, zero errors,
in every phase.

    python benchmarks/api_load.py [--backends sqlite,postgres] [--clients 50] [--seconds 20] [--phases mix,200,304]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from proc_stats import machine_cpu
from serve_process import (
    POSTGRES_URL,
    ROOT,
    ServeProcess,
    backend_env,
    create_key,
    make_clip,
    postgres_schema,
    upload,
)

from shared.clock import SystemClock
from shared.settings import Settings
from shared.storage.factory import build_database
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import TaskStatus

TARGET_P99_MS = 25.0
SMALL = {"preset": "luxury", "output": {"width": 360, "height": 640, "fps": 30}}
PLAIN_PER_20 = {"mix": 4, "200": 20, "304": 0}  # requests without If-None-Match in every 20

# The Lua script wrk runs: one thread, so the counters need no locking; done() sums them over threads.
WRK_SCRIPT = """\
local paths = {%(paths)s}
local etags = {%(etags)s}
local auth = "Bearer %(key)s"
local plain_per_20 = %(plain_per_20)d
n, sent_plain, sent_conditional, answered_200, answered_304, invalid = 0, 0, 0, 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  local i = n %% #paths + 1
  -- the plain/conditional pattern advances once per round of the tasks, so every task gets both
  local plain = (math.floor(n / #paths) %% 20) < plain_per_20
  n = n + 1
  local headers = {["Authorization"] = auth}
  if plain then
    sent_plain = sent_plain + 1
  else
    sent_conditional = sent_conditional + 1
    headers["If-None-Match"] = etags[i]
  end
  return wrk.format("GET", paths[i], headers)
end

function response(status, headers, body)
  if status == 200 and headers["etag"] and string.find(body, '"task_id":"tsk_', 1, true) then
    answered_200 = answered_200 + 1
  elseif status == 304 and #body == 0 then
    answered_304 = answered_304 + 1
  else
    invalid = invalid + 1
  end
end

function done(summary, latency, requests)
  local totals = {sent_plain = 0, sent_conditional = 0, answered_200 = 0, answered_304 = 0, invalid = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "timeouts": %%d, "non_2xx_3xx": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f, ' ..
    '"sent_plain": %%d, "sent_conditional": %%d, "answered_200": %%d, "answered_304": %%d, "invalid": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    totals.sent_plain, totals.sent_conditional, totals.answered_200, totals.answered_304, totals.invalid))
end
"""


@dataclass
class Run:
    """One wrk run and what the machine spent on it."""

    phase: str
    connections: int
    seconds: int
    wrk: dict[str, float]
    load_average: float  # 1-minute, as the run began
    server_cpu: float  # seconds
    client_cpu: float
    machine_busy: float
    machine_total: float

    @property
    def requests(self) -> int:
        return int(self.wrk["requests"])

    @property
    def rate(self) -> float:
        return self.requests / (self.wrk["duration_us"] / 1e6)

    def ms(self, name: str) -> float:
        return self.wrk[name] / 1000

    @property
    def mismatched(self) -> int:
        """Answers of the wrong kind: a 200 where a 304 was due (the ETag moved) or the other way round."""
        return max(0, int(self.wrk["answered_200"] - self.wrk["sent_plain"])) + max(
            0, int(self.wrk["answered_304"] - self.wrk["sent_conditional"])
        )

    @property
    def errors(self) -> int:
        w = self.wrk
        return int(w["socket_errors"] + w["timeouts"] + w["non_2xx_3xx"] + w["invalid"]) + self.mismatched

    @property
    def passed(self) -> bool:
        return self.requests > 0 and self.ms("p99_us") <= TARGET_P99_MS and self.errors == 0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(url: str, script: Path | None, connections: int, seconds: int) -> dict[str, float]:
    """Run wrk (one thread) and return what the script's done() printed (no script: wrk's own text)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    result = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    if script is None:
        return _wrk_text(result.stdout)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _wrk_text(text: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) and non-2xx answers from wrk's own report (the /healthz floor)."""
    values: dict[str, float] = {"non_2xx_3xx": 0.0, "socket_errors": 0.0}
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for line in text.splitlines():
        words = line.split()
        if words[:1] in (["50%"], ["99%"]):
            number = words[1].rstrip("usm")
            values[f"p{words[0][:-1]}_ms"] = float(number) * units[words[1][len(number):]]
        elif line.startswith("Requests/sec:"):
            values["rate"] = float(words[1])
        elif "Non-2xx" in line:
            values["non_2xx_3xx"] = float(words[-1])
        elif line.strip().startswith("Socket errors"):
            values["socket_errors"] = float(sum(int(part.split()[-1]) for part in line.split(":", 1)[1].split(",")))
    return values


def measure(
    server: ServeProcess, phase: str, script: Path, connections: int, warmup: int, seconds: int
) -> Run:
    url = f"{server.base_url}/"
    if warmup > 0:
        wrk(url, script, connections, warmup)
    server_before, client_before = server.cpu_seconds(), children_cpu_seconds()
    busy_before, total_before = machine_cpu()
    load_average = os.getloadavg()[0]
    result = wrk(url, script, connections, seconds)
    busy_after, total_after = machine_cpu()
    return Run(phase, connections, seconds, result, load_average, server.cpu_seconds() - server_before,
               children_cpu_seconds() - client_before, busy_after - busy_before, total_after - total_before)


def write_script(path: Path, key: str, task_ids: list[str], etags: dict[str, str], phase: str) -> Path:
    def lua(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid Lua string for these characters

    path.write_text(WRK_SCRIPT % {
        "paths": ", ".join(lua(f"/v1/videos/{task_id}") for task_id in task_ids),
        "etags": ", ".join(lua(etags[task_id]) for task_id in task_ids),
        "key": key,
        "plain_per_20": PLAIN_PER_20[phase],
    })
    return path


def prepare_tasks(server: ServeProcess, key: str, args: argparse.Namespace, clip: Path) -> list[str]:
    """Create the tasks; run the first --completed to completion. The ids, in creation order."""
    headers = {"Authorization": f"Bearer {key}"}
    task_ids: list[str] = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        for index in range(args.tasks):
            response = http.post("/v1/videos", json={"pipeline": "enhance", "options": SMALL,
                                                     "metadata": {"bench": index}})
            response.raise_for_status()
            created = response.json()
            task_ids.append(created["task_id"])
            if index < args.completed and upload(created, clip).status_code != 201:
                sys.exit("the upload failed")
        deadline = time.monotonic() + 300
        for task_id in task_ids[: args.completed]:
            while True:
                status = http.get(f"/v1/videos/{task_id}").json()["status"]
                if status == "completed":
                    break
                if status in ("failed", "cancelled") or time.monotonic() > deadline:
                    sys.exit(f"task {task_id} ended {status}; see {server.log_path}")
                time.sleep(0.2)
    return task_ids


def freeze_running(settings: Settings, source: str, task_ids: list[str]) -> None:
    """Make ``task_ids`` (awaiting their upload) running tasks stopped halfway through ``source``'s
    journal: its first half of transitions and its first stage run, recorded through the task store."""
    database = build_database(settings)
    try:
        store = SqlTaskStore(database, SystemClock())
        transitions = store.list_transitions(source)
        first_run = store.list_stage_runs(source)[0]
        half = transitions[: max(1, len(transitions) // 2)]
        for task_id in task_ids:
            started = store.update_status_if(task_id, expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.RUNNING)
            if started is None:
                sys.exit(f"task {task_id} was not awaiting its upload")
            for transition in half:
                store.record_transition(transition.model_copy(update={"task_id": task_id}))
            store.record_stage_run(first_run.model_copy(update={"task_id": task_id}))
            store.update_task(task_id, current_stage=half[-1].state_name)
    finally:
        database.close()


def current_etags(server: ServeProcess, key: str, task_ids: list[str]) -> dict[str, str]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        return {task_id: http.get(f"/v1/videos/{task_id}").headers["etag"] for task_id in task_ids}


@dataclass
class BackendResult:
    backend: str
    statuses: dict[str, int]
    runs: list[Run]
    probe: Run
    floor: dict[str, float]


def run_backend(
    backend: str, args: argparse.Namespace, work: Path, clip: Path, database_url: str | None
) -> BackendResult:
    home = work / backend
    # Download links (and so a completed task's ETag) change when their expiry window does: a week's
    # window keeps the expected 304s from turning into 200s when a run crosses the hour.
    env = backend_env(backend, home, database_url, VIDLUXE_LOG_LEVEL="WARNING",
                      VIDLUXE_DOWNLOAD_EXPIRES_SECONDS=str(7 * 24 * 3600))
    key = create_key(env)["api_key"]
    settings = Settings(home=home, task_store=backend, database_url=database_url)
    with ServeProcess(env, work / f"serve-{backend}.log", api_processes=args.api_processes) as server:
        task_ids = prepare_tasks(server, key, args, clip)
        freeze_running(settings, task_ids[0], task_ids[args.completed : args.completed + args.running])
        etags = current_etags(server, key, task_ids)
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as http:
            statuses: dict[str, int] = {}
            for task_id in task_ids:
                status = http.get(f"/v1/videos/{task_id}").json()["status"]
                statuses[status] = statuses.get(status, 0) + 1
        scripts = {phase: write_script(work / f"{backend}-{phase}.lua", key, task_ids, etags, phase)
                   for phase in args.phases}
        probe = measure(server, args.phases[0], scripts[args.phases[0]], 1, 1, args.probe_seconds)
        floor = wrk(f"{server.base_url}/healthz", None, args.clients, args.floor_seconds)
        runs = [measure(server, phase, scripts[phase], args.clients, args.warmup, args.seconds)
                for phase in args.phases]
    return BackendResult(backend, statuses, runs, probe, floor)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(result: BackendResult, args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    tasks = ", ".join(f"{count} {status}" for status, count in sorted(result.statuses.items()))
    print(f"== {result.backend} ==  {args.clients} keep-alive connections, {args.seconds:g} s per phase after a "
          f"{args.warmup:g} s warm-up; {args.tasks} tasks ({tasks}); load generator: wrk, one thread")
    probe = result.probe
    print(f"alone:     1 connection, {probe.phase}: {probe.rate:.0f} req/s, p50 {probe.ms('p50_us'):.2f} ms, "
          f"p99 {probe.ms('p99_us'):.2f} ms, server {probe.server_cpu / probe.requests * 1000:.3f} ms CPU/request")
    floor = result.floor
    print(f"floor:     GET /healthz (no auth, no database), {args.clients} connections, {args.floor_seconds:g} s: "
          f"{floor.get('rate', 0):.0f} req/s, p50 {floor.get('p50_ms', float('nan')):.1f} ms, "
          f"p99 {floor.get('p99_ms', float('nan')):.1f} ms, errors {floor['non_2xx_3xx'] + floor['socket_errors']:.0f}")
    for run in result.runs:
        w = run.wrk
        print(f"-- {run.phase}: {run.requests} requests = {run.rate:.0f} req/s (200: {w['answered_200']:.0f}, "
              f"304: {w['answered_304']:.0f})   load average {run.load_average:.2f} as it began")
        print(f"   latency p50 {run.ms('p50_us'):.1f} ms  p90 {run.ms('p90_us'):.1f} ms  "
              f"p99 {run.ms('p99_us'):.1f} ms  max {run.ms('max_us'):.1f} ms  mean {run.ms('mean_us'):.1f} ms")
        print(f"   errors {run.errors} (socket {w['socket_errors']:.0f}, timeouts {w['timeouts']:.0f}, "
              f"non-2xx/3xx {w['non_2xx_3xx']:.0f}, invalid answers {w['invalid']:.0f}, "
              f"wrong 200/304 {run.mismatched})")
        other = run.machine_busy - run.server_cpu - run.client_cpu
        print(f"   cpu: server {run.server_cpu / run.seconds:.0%} of a core "
              f"({run.server_cpu / max(1, run.requests) * 1000:.3f} ms/request), load generator (wrk) "
              f"{run.client_cpu / run.seconds:.0%} of a core "
              f"({run.client_cpu / max(1, run.requests) * 1e6:.0f} us/request), everything else "
              f"{other / run.seconds:.0%} of a core; machine {run.machine_busy / run.machine_total:.0%} busy "
              f"of {cores} cores")
        latency_ok = run.ms("p99_us") <= TARGET_P99_MS
        print(f"   targets: p99 {run.ms('p99_us'):.1f} ms <= {TARGET_P99_MS:g} ms: {verdict(latency_ok)}; "
              f"zero errors: {verdict(run.errors == 0)}  => {verdict(run.passed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--phases", default="mix,200,304", help="comma-separated: mix, 200, 304 (the first one "
                        "also runs alone, with one connection)")
    parser.add_argument("--clients", type=int, default=50, help="keep-alive connections")
    # wrk takes whole seconds
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--probe-seconds", type=int, default=3)
    parser.add_argument("--floor-seconds", type=int, default=5, help="GET /healthz at the same concurrency")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--completed", type=int, default=2, help="of the tasks, how many are run to completion")
    parser.add_argument("--running", type=int, default=12, help="of the tasks, how many are frozen mid-run")
    parser.add_argument("--api-processes", type=int, default=min(2, os.cpu_count() or 1),
                        help="vidluxe serve --api-processes (default: 2, or 1 on one core)")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--keep", type=Path, help="keep the data homes, server logs and wrk scripts here")
    args = parser.parse_args()
    args.phases = [phase.strip() for phase in args.phases.split(",") if phase.strip()]
    if not args.phases or any(phase not in PLAIN_PER_20 for phase in args.phases):
        parser.error(f"--phases: choose from {', '.join(PLAIN_PER_20)}")
    if args.completed < 1 or args.completed + args.running > args.tasks:
        parser.error("--completed must be at least 1 (the running tasks copy its journal), and --completed plus "
                     "--running at most --tasks")
    if shutil.which("wrk") is None:
        sys.exit("This benchmark drives the load with wrk: install it (apt-get install wrk, or brew install wrk).")
    work = args.keep or Path(tempfile.mkdtemp(prefix="vidluxe-load-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(ROOT / "samples" / "talking_head.mp4", work / "clip.mp4", start=0, seconds=1.5)
    print(f"load test of GET /v1/videos/{{id}} on loopback, vidluxe serve --api-processes {args.api_processes}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start; work dir {work}")
    results: list[BackendResult] = []
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
        for run in result.runs:
            print(f"{result.backend:<9} {run.phase:<4} {run.rate:7.0f} req/s  p50 {run.ms('p50_us'):6.1f} ms  "
                  f"p99 {run.ms('p99_us'):6.1f} ms  errors {run.errors}  server {run.server_cpu / run.seconds:4.0%}  "
                  f"wrk {run.client_cpu / run.seconds:4.0%}  {verdict(run.passed)}")
    print(verdict(bool(results) and all(run.passed for result in results for run in result.runs)))


if __name__ == "__main__":
    main()
