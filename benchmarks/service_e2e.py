"""Upload-and-forget at scale: --tasks tasks (30) created and uploaded at once on a real `vidluxe serve`
with the local runner all reach `completed`, and each gets exactly one task.completed delivery, to a
webhook receiver that fails the first two attempts of every message.

  1. Cuts --tasks different short clips (--clip-seconds, longer side 640 px, no audio) from the people
     clips in ../shared/testdata/videos (samples/talking_head.mp4 when that folder is missing).
  2. Starts a receiver on loopback: every delivery is verified with the reference `standardwebhooks`
     package; the first two attempts of each message (by webhook-id) get a 503, later ones a 204.
  3. Starts `vidluxe serve` (a real process; SQLite, or --backend postgres in a fresh schema) with
     VIDLUXE_WEBHOOKS_ALLOW_PRIVATE=true and VIDLUXE_WEBHOOKS_RETRY_SCALE=--retry-scale (0.01: the
     schedule's 5 s and 5 min become 0.05 s and 3 s, so the third attempt comes from the real schedule
     without waiting real minutes), and a key from `vidluxe keys create`.
  4. Creates and uploads every task at once (one thread each), polls `GET /v1/videos` until all have
     finished, then `GET /v1/webhooks/deliveries?status=pending` until every message is delivered.
It prints the wall time (first create to last completion), tasks per minute, the delivery attempts
per message, the delay from event to delivery, and PASS/FAIL: all completed; exactly one accepted
task.completed per task (counted by webhook-id and task id); no message accepted twice; every
signature valid; every message delivered on its third attempt.

    python benchmarks/service_e2e.py [--tasks 30] [--clip-seconds 2] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import httpx
from serve_process import (
    POSTGRES_URL,
    ROOT,
    TESTDATA,
    ServeProcess,
    backend_env,
    create_key,
    make_clip,
    postgres_schema,
    upload,
)
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PRESETS = ("luxury", "cinematic", "minimal", "warm", "fresh")
FAIL_FIRST = 2
FINISHED = ("completed", "failed", "cancelled")


class FlakyReceiver:
    """A Standard Webhooks endpoint on loopback that fails the first ``fail_first`` attempts of each message."""

    def __init__(self, secret: str, fail_first: int) -> None:
        self.verifier = Webhook(secret)
        self.fail_first = fail_first
        self.attempts: Counter[str] = Counter()  # webhook-id -> attempts
        self.accepted: list[tuple[str, dict[str, Any], float]] = []  # (webhook-id, event, when)
        self.invalid = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver.answer({key.lower(): value for key, value in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        try:
            event = dict(self.verifier.verify(body, headers))
        except WebhookVerificationError:
            with self.lock:
                self.invalid += 1
            return 400
        with self.lock:
            message_id = headers["webhook-id"]
            self.attempts[message_id] += 1
            if self.attempts[message_id] <= self.fail_first:
                return 503
            self.accepted.append((message_id, event, time.monotonic()))
            return 204

    def completed_by_task(self) -> dict[str, list[str]]:
        """task id -> the webhook-ids of its accepted task.completed deliveries."""
        found: dict[str, list[str]] = {}
        with self.lock:
            for message_id, event, _ in self.accepted:
                if event["type"] == "task.completed":
                    found.setdefault(event["data"]["task_id"], []).append(message_id)
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_clips(count: int, seconds: float, folder: Path) -> list[Path]:
    """``count`` different cuts: the people clips in turn, each later cut starting further in."""
    sources = sorted(TESTDATA.glob("*.mp4")) or [ROOT / "samples" / "talking_head.mp4"]
    durations = []
    for source in sources:
        with av.open(str(source)) as container:
            durations.append(float(container.duration or 0) / 1_000_000)
    clips = []
    for index in range(count):
        source, duration = sources[index % len(sources)], durations[index % len(sources)]
        rounds = -(-count // len(sources))
        start = (index // len(sources)) * max(0.0, duration - seconds - 0.2) / max(1, rounds - 1)
        clips.append(make_clip(source, folder / f"clip{index:02d}.mp4", start=round(start, 2), seconds=seconds))
    return clips


def create_and_upload(http: httpx.Client, index: int, clip: Path, webhook_url: str) -> str:
    options = {"preset": PRESETS[index % len(PRESETS)], "title": f"Clip {index}",
               "output": {"width": 360, "height": 640, "fps": 30}}
    response = http.post("/v1/videos", json={"pipeline": "enhance", "options": options, "webhook_url": webhook_url,
                                             "metadata": {"clip": clip.name}})
    response.raise_for_status()
    created = response.json()
    put = upload(created, clip)
    if put.status_code != 201:
        raise RuntimeError(f"upload of {clip.name} answered {put.status_code}: {put.text}")
    return str(created["task_id"])


def all_deliveries(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = http.get("/v1/webhooks/deliveries", params={"limit": "500", **params,
                                                           **({"cursor": cursor} if cursor else {})})
        page.raise_for_status()
        items += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def run(args: argparse.Namespace, work: Path, clips: list[Path], database_url: str | None) -> bool:
    env = backend_env(args.backend, work / "home", database_url, VIDLUXE_WEBHOOKS_ALLOW_PRIVATE="true",
                      VIDLUXE_WEBHOOKS_RETRY_SCALE=str(args.retry_scale), VIDLUXE_LOG_LEVEL="WARNING")
    issued = create_key(env)
    receiver = FlakyReceiver(issued["webhook_secret"], FAIL_FIRST)
    headers = {"Authorization": f"Bearer {issued['api_key']}"}
    try:
        with ServeProcess(env, work / "serve.log") as server, \
                httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
            started = time.monotonic()
            with ThreadPoolExecutor(len(clips)) as pool:
                task_ids = list(pool.map(lambda item: create_and_upload(http, item[0], item[1], receiver.url),
                                         enumerate(clips)))
            uploaded = time.monotonic() - started
            statuses: dict[str, str] = {}
            finished_at: dict[str, float] = {}
            while len(finished_at) < len(task_ids):
                if time.monotonic() - started > args.timeout:
                    sys.exit(f"timed out: {Counter(statuses.values())}; see {server.log_path}")
                listed = http.get("/v1/videos", params={"limit": 100}).json()["data"]
                statuses = {item["task_id"]: item["status"] for item in listed if item["task_id"] in task_ids}
                for task_id, status in statuses.items():
                    if status in FINISHED and task_id not in finished_at:
                        finished_at[task_id] = time.monotonic() - started
                time.sleep(0.5)
            wall = max(finished_at.values())
            while True:  # every event delivered (task.completed is each task's last)
                done = set(receiver.completed_by_task()) >= {t for t, s in statuses.items() if s == "completed"}
                if done and not all_deliveries(http, status="pending"):
                    break
                if time.monotonic() - started > args.timeout:
                    sys.exit(f"timed out waiting for deliveries; see {server.log_path}")
                time.sleep(0.5)
            settled = time.monotonic() - started
            time.sleep(2.0)  # a duplicate delivery would arrive now
            deliveries = all_deliveries(http)
    finally:
        receiver.close()
    return report(args, task_ids, statuses, uploaded, wall, settled, receiver, deliveries)


def report(
    args: argparse.Namespace, task_ids: list[str], statuses: dict[str, str], uploaded: float, wall: float,
    settled: float, receiver: FlakyReceiver, deliveries: list[dict[str, Any]],
) -> bool:
    completed = [task_id for task_id in task_ids if statuses.get(task_id) == "completed"]
    by_task = receiver.completed_by_task()
    one_each = all(len(by_task.get(task_id, [])) == 1 for task_id in task_ids)
    accepted_ids = Counter(message_id for message_id, _, _ in receiver.accepted)
    duplicates = sum(count - 1 for count in accepted_ids.values() if count > 1)
    distinct_completed = len({message_id for ids in by_task.values() for message_id in ids})
    attempts = Counter(receiver.attempts.values())
    listed_attempts = Counter(item["attempt_count"] for item in deliveries)
    undelivered = [item for item in deliveries if item["status"] != "delivered"]
    lags = [
        (datetime.fromisoformat(item["delivered_at"]) - datetime.fromisoformat(item["event_timestamp"])).total_seconds()
        for item in deliveries if item["event_type"] == "task.completed" and item["delivered_at"]
    ]
    types = Counter(item["event_type"] for item in deliveries)

    print(f"tasks:        {len(task_ids)} created and uploaded at once in {uploaded:.1f} s; "
          f"{Counter(statuses.values())}")
    print(f"wall:         {wall:.1f} s from the first create to the last completion = "
          f"{len(task_ids) / wall * 60:.1f} tasks/minute ({os.cpu_count()} cores, runner workers: the CPU count)")
    print(f"deliveries:   {len(deliveries)} messages ({', '.join(f'{k} {v}' for k, v in sorted(types.items()))}); "
          f"all delivered {settled:.1f} s after the first create")
    print(f"attempts:     per message, seen by the receiver: {dict(sorted(attempts.items()))}; "
          f"listed by the API: {dict(sorted(listed_attempts.items()))}; "
          f"mean {statistics.fmean(receiver.attempts.values()):.2f}")
    if lags:
        print(f"task.completed event -> delivered: median {statistics.median(lags):.1f} s, max {max(lags):.1f} s "
              f"(schedule scaled by {args.retry_scale:g}: waits of 0 s, {5 * args.retry_scale:g} s, "
              f"{300 * args.retry_scale:g} s, plus the 1 s poll)")
    print(f"task.completed accepted: {sum(len(ids) for ids in by_task.values())} "
          f"({distinct_completed} distinct webhook-ids) for {len(task_ids)} tasks; duplicates accepted: {duplicates}; "
          f"invalid signatures: {receiver.invalid}")
    checks = {
        "every task completed": len(completed) == len(task_ids),
        "exactly one task.completed per task": one_each and distinct_completed == len(task_ids),
        "no message accepted twice": duplicates == 0,
        "every signature valid": receiver.invalid == 0,
        f"every message delivered on attempt {FAIL_FIRST + 1}": not undelivered
        and set(receiver.attempts.values()) == {FAIL_FIRST + 1} and set(listed_attempts) == {FAIL_FIRST + 1},
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    passed = all(checks.values())
    print("PASS" if passed else "FAIL")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--clip-seconds", type=float, default=2.0)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--retry-scale", type=float, default=0.01, help="VIDLUXE_WEBHOOKS_RETRY_SCALE")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before giving up")
    parser.add_argument("--keep", type=Path, help="keep the clips, data home and server log here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="vidluxe-e2e-"))
    (work / "clips").mkdir(parents=True, exist_ok=True)
    clips = make_clips(args.tasks, args.clip_seconds, work / "clips")
    print(f"service end to end: {args.tasks} tasks of {args.clip_seconds:g} s clips (360x640 out) on vidluxe serve "
          f"({args.backend}); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start; "
          f"work dir {work}")
    print(f"receiver:     verifies with standardwebhooks, answers 503 to the first {FAIL_FIRST} attempts of each "
          "message, then 204")
    if args.backend == "postgres":
        with postgres_schema(args.postgres_url, "bench_e2e") as url:
            passed = run(args, work, clips, url)
    else:
        passed = run(args, work, clips, None)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
