"""The TaskStore contract, run against every backend: SQLite, the real PostgreSQL, and the supabase-py
store over HTTP (a loopback stand-in of PostgREST, postgrest_fake.py, over the real PostgreSQL with the
Supabase migrations applied)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.errors import NotFoundError
from shared.storage.sql_tasks import PostgresTaskStore, SqliteTaskStore
from shared.storage.supabase_tasks import SupabaseTaskStore
from shared.storage.tasks import (
    ResourceUsage,
    StageReport,
    StageRunStatus,
    TaskRecord,
    TaskStatus,
    TaskStore,
    TransitionRecord,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)

StoreFactory = Callable[[], Any]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("supabase", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """How to open the backend: its kind and its location (a file, a DSN plus a fresh schema, or the
    REST API's URL and service key over emptied tables)."""
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": tmp_path / "db" / "tasks.sqlite3"}
    if request.param == "supabase":
        request.getfixturevalue("supabase_tables")
        server = request.getfixturevalue("postgrest")
        return {"kind": "supabase", "url": server.url, "key": server.service_key}
    return {
        "kind": "postgres",
        "dsn": request.getfixturevalue("postgres_url"),
        "schema": request.getfixturevalue("postgres_schema"),
    }


@pytest.fixture
def open_store(backend: dict[str, Any], clock: Any) -> Iterator[StoreFactory]:
    """Opens another store on the same data (a second process would do the same)."""
    opened: list[Any] = []

    def factory() -> Any:
        store: Any
        if backend["kind"] == "sqlite":
            store = SqliteTaskStore(backend["path"], clock)
        elif backend["kind"] == "supabase":
            store = SupabaseTaskStore.from_url(backend["url"], backend["key"], clock)
        else:
            store = PostgresTaskStore(backend["dsn"], clock, schema=backend["schema"])
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreFactory) -> TaskStore:
    result: TaskStore = open_store()
    return result


def make_task(task_id: str = "t1", *, created_at: datetime = T0, **fields: Any) -> TaskRecord:
    return TaskRecord(
        task_id=task_id, pipeline="premium", created_at=created_at, updated_at=created_at, **fields
    )


def make_transition(task_id: str, position: str, output: Any = None, **fields: Any) -> TransitionRecord:
    values: dict[str, Any] = {
        "state_name": f"State {position}",
        "state_type": "Task",
        "next_state": "Next",
        "recorded_at": T0,
    }
    values.update(fields)
    return TransitionRecord(task_id=task_id, position=position, output=output, **values)


def make_report(task_id: str, stage: str, started_at: datetime, **fields: Any) -> StageReport:
    values: dict[str, Any] = {
        "status": StageRunStatus.SUCCEEDED,
        "ended_at": started_at + timedelta(seconds=2.5),
        "duration_seconds": 2.5,
        "input_hash": "sha256:abc",
    }
    values.update(fields)
    return StageReport(task_id=task_id, stage=stage, started_at=started_at, **values)


# ---------------------------------------------------------------------------------------------- tasks


def test_create_and_get_round_trip(store: TaskStore) -> None:
    task = make_task(
        input={
            "video": "uploads/a.mp4",
            "options": {"style": "studio", "strength": 0.75, "tags": ["a", "ü"]},
        },
        output={"video": "out/a.mp4"},
        status=TaskStatus.RUNNING,
        current_stage="matting",
        error_code="X",
        error_message="message with 'quotes' and ünïcode",
    )
    created = store.create_task(task)
    assert created == task
    assert store.get_task("t1") == task


def test_create_existing_id_returns_the_stored_task(store: TaskStore) -> None:
    first = store.create_task(make_task(input={"n": 1}))
    again = store.create_task(make_task(input={"n": 2}, created_at=T0 + timedelta(hours=1)))
    assert again == first
    assert store.get_task("t1").input == {"n": 1}


def test_unknown_task_id_is_not_found(store: TaskStore) -> None:
    with pytest.raises(NotFoundError):
        store.get_task("missing")
    with pytest.raises(NotFoundError):
        store.update_task("missing", status=TaskStatus.FAILED)
    with pytest.raises(NotFoundError):
        store.record_transition(make_transition("missing", "p"))
    with pytest.raises(NotFoundError):
        store.get_transition("missing", "p")
    with pytest.raises(NotFoundError):
        store.list_transitions("missing")
    with pytest.raises(NotFoundError):
        store.record_stage_run(make_report("missing", "s", T0))
    with pytest.raises(NotFoundError):
        store.list_stage_runs("missing")


def test_timestamps_round_trip_timezone_aware_in_utc(store: TaskStore) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2025, 6, 1, 12, 0, 0, 999999, tzinfo=ist)
    store.create_task(make_task("aware", created_at=local))
    got = store.get_task("aware")
    assert got.created_at == local  # the same instant...
    assert got.created_at.utcoffset() == timedelta(0)  # ...returned in UTC
    assert got.created_at.tzinfo is not None

    naive = datetime(2025, 6, 1, 12, 0, 0)
    store.create_task(make_task("naive", created_at=naive))
    assert store.get_task("naive").created_at == naive.replace(tzinfo=UTC)  # naive is taken as UTC

    store.record_transition(make_transition("aware", "p", recorded_at=local))
    recorded = store.get_transition("aware", "p")
    assert recorded is not None
    assert recorded.recorded_at == local
    assert recorded.recorded_at.utcoffset() == timedelta(0)


def test_list_tasks_newest_first_with_limit_and_status(store: TaskStore) -> None:
    for i in range(5):
        store.create_task(make_task(f"t{i}", created_at=T0 + timedelta(minutes=i)))
    store.create_task(make_task("older", created_at=T0 - timedelta(days=1)))
    store.update_task("t1", status=TaskStatus.SUCCEEDED)
    store.update_task("t3", status=TaskStatus.SUCCEEDED)

    assert [t.task_id for t in store.list_tasks()] == ["t4", "t3", "t2", "t1", "t0", "older"]
    assert [t.task_id for t in store.list_tasks(limit=2)] == ["t4", "t3"]
    assert [t.task_id for t in store.list_tasks(status=TaskStatus.SUCCEEDED)] == ["t3", "t1"]
    assert [t.task_id for t in store.list_tasks(status=TaskStatus.SUCCEEDED, limit=1)] == ["t3"]
    assert store.list_tasks(status=TaskStatus.CANCELLED) == []
    assert store.list_tasks(limit=0) == []
    with pytest.raises(ValueError):
        store.list_tasks(limit=-1)


def test_list_tasks_same_created_at_newest_insert_first(store: TaskStore) -> None:
    for task_id in ["b", "c", "a"]:
        store.create_task(make_task(task_id))
    assert [t.task_id for t in store.list_tasks()] == ["a", "c", "b"]


def test_update_task(store: TaskStore, clock: Any) -> None:
    store.create_task(make_task(input={"x": 1}))
    clock.current = T0 + timedelta(seconds=30)
    updated = store.update_task("t1", status=TaskStatus.RUNNING, current_stage="probe")
    assert updated.status is TaskStatus.RUNNING
    assert updated.current_stage == "probe"
    assert updated.updated_at == T0 + timedelta(seconds=30)
    assert updated.created_at == T0
    assert updated == store.get_task("t1")

    clock.advance(5)
    failed = store.update_task("t1", status=TaskStatus.FAILED, error_code="MEDIA_ERROR", error_message="bad")
    assert (failed.status, failed.current_stage, failed.error_code, failed.error_message) == (
        TaskStatus.FAILED,
        "probe",  # None leaves a field as it is
        "MEDIA_ERROR",
        "bad",
    )
    assert failed.updated_at == T0 + timedelta(seconds=35)

    retried = store.update_task("t1", status=TaskStatus.RUNNING, clear_error=True)
    assert (retried.error_code, retried.error_message) == (None, None)

    done = store.update_task("t1", status=TaskStatus.SUCCEEDED, output={"video": "out.mp4", "n": [1, 2]})
    assert done.output == {"video": "out.mp4", "n": [1, 2]}
    assert done.input == {"x": 1}

    touched = store.update_task("t1")
    assert touched.status is TaskStatus.SUCCEEDED


def test_clear_error_keeps_an_error_given_in_the_same_call(store: TaskStore) -> None:
    store.create_task(make_task(error_code="OLD", error_message="old"))
    updated = store.update_task("t1", error_code="NEW", clear_error=True)
    assert (updated.error_code, updated.error_message) == ("NEW", None)


# ---------------------------------------------------------------------------------------- transitions


def test_transitions_get_seq_in_recording_order(store: TaskStore) -> None:
    store.create_task(make_task())
    for position in ["Probe#0", "Parallel#0/0/Matte#0", "Parallel#0/1/Grade#0", "Encode#0"]:
        store.record_transition(make_transition("t1", position, seq=99))  # a given seq is ignored
    transitions = store.list_transitions("t1")
    assert [(t.seq, t.position) for t in transitions] == [
        (1, "Probe#0"),
        (2, "Parallel#0/0/Matte#0"),
        (3, "Parallel#0/1/Grade#0"),
        (4, "Encode#0"),
    ]


def test_transition_seq_is_per_task(store: TaskStore) -> None:
    store.create_task(make_task("a"))
    store.create_task(make_task("b"))
    store.record_transition(make_transition("a", "x"))
    store.record_transition(make_transition("b", "x"))
    store.record_transition(make_transition("a", "y"))
    assert [t.seq for t in store.list_transitions("a")] == [1, 2]
    assert [t.seq for t in store.list_transitions("b")] == [1]


def test_same_position_twice_keeps_the_first(store: TaskStore) -> None:
    store.create_task(make_task())
    store.record_transition(make_transition("t1", "Matte#0", {"mask": "first"}, next_state="Grade"))
    store.record_transition(make_transition("t1", "Matte#0", {"mask": "second"}, next_state="Other"))
    store.record_transition(make_transition("t1", "Grade#0"))
    kept = store.get_transition("t1", "Matte#0")
    assert kept is not None
    assert (kept.output, kept.next_state, kept.seq) == ({"mask": "first"}, "Grade", 1)
    assert [(t.seq, t.position) for t in store.list_transitions("t1")] == [(1, "Matte#0"), (2, "Grade#0")]


def test_get_transition_not_recorded(store: TaskStore) -> None:
    store.create_task(make_task())
    assert store.get_transition("t1", "Never#0") is None
    assert store.list_transitions("t1") == []


@pytest.mark.parametrize(
    "output",
    [None, "just a string", 42, 1.5, True, [], [1, "two", None], {"nested": {"list": [{"a": None}]}}, {}],
)
def test_transition_output_json_round_trip(store: TaskStore, output: Any) -> None:
    store.create_task(make_task())
    store.record_transition(make_transition("t1", "p", output, next_state=None, state_type="Pass"))
    got = store.get_transition("t1", "p")
    assert got is not None
    assert got.output == output
    assert type(got.output) is type(output)
    assert got.next_state is None
    assert got.state_type == "Pass"


def test_concurrent_record_transition_from_8_threads(store: TaskStore) -> None:
    """Threads race on shared positions (first write wins) and add their own: seq stays 1..n, gapless."""
    store.create_task(make_task("t1"))
    store.create_task(make_task("t2"))
    threads_n, shared_n, own_n = 8, 15, 10
    start = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            start.wait()
            for i in range(max(shared_n, own_n)):
                if i < shared_n:
                    store.record_transition(make_transition("t1", f"shared#{i}", {"by": thread}))
                if i < own_n:
                    store.record_transition(make_transition("t1", f"own{thread}#{i}", {"by": thread}))
                    store.record_transition(make_transition("t2", f"own{thread}#{i}", {"by": thread}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors

    transitions = store.list_transitions("t1")
    assert len(transitions) == shared_n + threads_n * own_n
    assert [t.seq for t in transitions] == list(range(1, len(transitions) + 1))
    assert len({t.position for t in transitions}) == len(transitions)
    for n in range(threads_n):  # each thread's own transitions kept their order
        own = [t.position for t in transitions if t.position.startswith(f"own{n}#")]
        assert own == [f"own{n}#{i}" for i in range(own_n)]
    t2 = store.list_transitions("t2")
    assert [t.seq for t in t2] == list(range(1, threads_n * own_n + 1))


# ----------------------------------------------------------------------------------------- stage runs


def test_stage_runs_round_trip_in_start_order(store: TaskStore) -> None:
    store.create_task(make_task())
    usage = ResourceUsage(
        cpu_seconds=1.25, gpu_seconds=0.1 + 0.2, gpu_type="H100", provider_calls={"replicate": 2}
    )
    late = make_report("t1", "encode", T0 + timedelta(seconds=10), usage=usage, attempt=2)
    early = make_report(
        "t1",
        "matting",
        T0,
        status=StageRunStatus.FAILED,
        error_code="TRANSIENT",
        error_message="provider busy",
    )
    reused = make_report("t1", "grade", T0 + timedelta(seconds=5), status=StageRunStatus.REUSED)
    for report in [late, early, reused]:
        store.record_stage_run(report)
    assert store.list_stage_runs("t1") == [early, reused, late]
    assert store.list_stage_runs("t1")[2].usage.gpu_seconds == 0.1 + 0.2  # full double precision


def test_stage_runs_recorded_twice_are_kept_twice(store: TaskStore) -> None:
    store.create_task(make_task())
    report = make_report("t1", "matting", T0)
    store.record_stage_run(report)
    store.record_stage_run(report)
    assert store.list_stage_runs("t1") == [report, report]


def test_no_stage_runs(store: TaskStore) -> None:
    store.create_task(make_task())
    assert store.list_stage_runs("t1") == []


# ------------------------------------------------------------------------------------ lifecycle, etc.


def test_ping(store: TaskStore) -> None:
    store.ping()


def test_reopening_keeps_data_and_schema_creation_is_idempotent(open_store: StoreFactory) -> None:
    first = open_store()
    first.create_task(make_task())
    first.record_transition(make_transition("t1", "p"))
    first.close()
    second = open_store()
    third = open_store()  # opening again while another store is open
    assert second.get_task("t1").task_id == "t1"
    third.record_transition(make_transition("t1", "q"))
    assert [t.seq for t in second.list_transitions("t1")] == [1, 2]


def test_two_stores_on_the_same_data_write_concurrently(open_store: StoreFactory) -> None:
    """Like two processes (CLI and worker) sharing a database: no lock errors, one gapless seq."""
    one, two = open_store(), open_store()
    one.create_task(make_task())
    errors: list[BaseException] = []

    def work(store: Any, name: str) -> None:
        try:
            for i in range(20):
                store.record_transition(make_transition("t1", f"{name}#{i}"))
                store.update_task("t1", current_stage=f"{name}{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, n)) for s, n in [(one, "a"), (two, "b")]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [t.seq for t in one.list_transitions("t1")] == list(range(1, 41))


KILL_SCRIPT = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from shared.clock import SystemClock
from shared.storage.sql_tasks import PostgresTaskStore, SqliteTaskStore
from shared.storage.supabase_tasks import SupabaseTaskStore
from shared.storage.tasks import TaskRecord, TaskStatus, TransitionRecord

kind, location, schema = sys.argv[1:4]
clock = SystemClock()
if kind == "sqlite":
    store = SqliteTaskStore(Path(location), clock)
elif kind == "supabase":
    store = SupabaseTaskStore.from_url(location, schema, clock)
else:
    store = PostgresTaskStore(location, clock, schema=schema)
now = datetime.now(UTC)
store.create_task(TaskRecord(task_id="k", pipeline="p", created_at=now, updated_at=now))
store.record_transition(
    TransitionRecord(task_id="k", position="A#0", state_name="A", state_type="Task", recorded_at=now)
)
store.update_task("k", status=TaskStatus.RUNNING, current_stage="B")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_writes_survive_kill_9_right_after_returning(
    backend: dict[str, Any], open_store: StoreFactory
) -> None:
    if backend["kind"] == "sqlite":
        args = ["sqlite", str(backend["path"]), ""]
    elif backend["kind"] == "supabase":
        args = ["supabase", backend["url"], backend["key"]]
    else:
        args = ["postgres", backend["dsn"], backend["schema"]]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, *args], cwd=REPO_ROOT, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    store = open_store()
    task = store.get_task("k")
    assert (task.status, task.current_stage) == (TaskStatus.RUNNING, "B")
    assert [t.position for t in store.list_transitions("k")] == ["A#0"]


def test_closed_store_refuses_calls(open_store: StoreFactory) -> None:
    store = open_store()
    store.close()
    store.close()  # twice is fine
    with pytest.raises(Exception):  # noqa: B017 - the driver's own "closed" error
        store.get_task("t1")


def test_update_status_if_is_a_compare_and_set(store: TaskStore, clock: Any) -> None:
    store.create_task(make_task(status=TaskStatus.AWAITING_UPLOAD))
    clock.advance(5)
    expected_time = clock.now()
    won = store.update_status_if("t1", expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.PENDING)
    assert won is not None and won.status == TaskStatus.PENDING and won.updated_at == expected_time
    assert store.update_status_if("t1", expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.PENDING) is None
    assert store.update_status_if("t1", expected=[], status=TaskStatus.RUNNING) is None
    failed = store.update_status_if(
        "t1", expected={TaskStatus.PENDING, TaskStatus.RUNNING}, status=TaskStatus.FAILED,
        error_code="X", error_message="m",
    )
    assert failed is not None and (failed.error_code, failed.error_message) == ("X", "m")
    with pytest.raises(NotFoundError):
        store.update_status_if("nope", expected=[TaskStatus.PENDING], status=TaskStatus.RUNNING)


def test_update_status_if_one_of_many_concurrent_callers_wins(open_store: StoreFactory) -> None:
    first = open_store()
    first.create_task(make_task(status=TaskStatus.AWAITING_UPLOAD))
    stores = [first, open_store()]
    wins: list[bool] = []

    def claim(store: Any) -> None:
        for _ in range(5):
            result = store.update_status_if("t1", expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.PENDING)
            wins.append(result is not None)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1
