"""What only the supabase-py task store does: the PostgREST requests it sends, the role it needs, and
sharing the tables with the SQL task store. The contract suite (test_task_store_contract.py) runs the
same cases as the SQL stores against it.

The server is postgrest_fake.py over the migrated database; the request shapes asserted here are the
ones PostgREST documents (docs.postgrest.org: Prefer: resolution=ignore-duplicates with on_conflict for
INSERT ... ON CONFLICT DO NOTHING, filters as ``column=op.value``, functions at /rpc/<name> with named
arguments in a JSON object).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from postgrest import APIError
from postgrest_fake import sign_jwt
from supabase import ClientOptions, create_client

from shared.errors import ConfigurationError, NotFoundError
from shared.settings import Settings
from shared.storage.factory import build_database, build_task_store
from shared.storage.sql import PostgresDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.supabase_tasks import SupabaseTaskStore
from shared.storage.tasks import StageReport, StageRunStatus, TaskRecord, TaskStatus, TransitionRecord
from shared.storage.videos import VideoRecord, VideoStore

pytestmark = pytest.mark.postgres

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def task(task_id: str, status: TaskStatus = TaskStatus.PENDING) -> TaskRecord:
    return TaskRecord(task_id=task_id, pipeline="enhance", status=status, created_at=AT, updated_at=AT)


@pytest.fixture
def store(postgrest: Any, supabase_tables: str, clock: Any) -> Any:
    opened = SupabaseTaskStore.from_url(postgrest.url, postgrest.service_key, clock)
    yield opened
    opened.close()


def sent_since(postgrest: Any, first: int) -> list[Any]:
    return postgrest.requests[first:]


def test_create_task_is_an_insert_ignoring_duplicates(store: Any, postgrest: Any) -> None:
    first = len(postgrest.requests)
    store.create_task(task("t1"))
    (request,) = sent_since(postgrest, first)
    assert (request.method, request.path, request.params) == ("POST", "/rest/v1/tasks", [("on_conflict", "task_id")])
    assert set(request.headers["prefer"].split(",")) == {"return=representation", "resolution=ignore-duplicates"}
    assert request.headers["apikey"] == postgrest.service_key
    assert request.headers["authorization"] == f"Bearer {postgrest.service_key}"
    assert request.body["task_id"] == "t1"
    assert request.body["created_at"] == "2026-11-23T12:00:00.000000+00:00"

    first = len(postgrest.requests)
    store.create_task(task("t1", TaskStatus.RUNNING))  # exists: nothing inserted, the stored task read back
    assert [(r.method, r.path) for r in sent_since(postgrest, first)] == [
        ("POST", "/rest/v1/tasks"),
        ("GET", "/rest/v1/tasks"),
    ]
    assert store.get_task("t1").status is TaskStatus.PENDING


def test_update_status_if_is_one_conditional_patch(store: Any, postgrest: Any) -> None:
    store.create_task(task("t1", TaskStatus.AWAITING_UPLOAD))
    first = len(postgrest.requests)
    won = store.update_status_if("t1", expected=[TaskStatus.AWAITING_UPLOAD], status=TaskStatus.PENDING)
    assert won is not None and won.status is TaskStatus.PENDING
    (request,) = sent_since(postgrest, first)
    assert (request.method, request.path) == ("PATCH", "/rest/v1/tasks")
    assert request.params == [("task_id", "eq.t1"), ("status", "in.(awaiting_upload)")]
    assert set(request.body) == {"status", "error_code", "error_message", "updated_at"}


def test_record_transition_calls_the_migrations_function(store: Any, postgrest: Any) -> None:
    store.create_task(task("t1"))
    first = len(postgrest.requests)
    store.record_transition(
        TransitionRecord(task_id="t1", position="Probe#0", state_name="Probe", state_type="Task", recorded_at=AT)
    )
    (request,) = sent_since(postgrest, first)
    assert (request.method, request.path) == ("POST", "/rest/v1/rpc/record_task_transition")
    assert request.body == {
        "p_task_id": "t1",
        "p_position": "Probe#0",
        "p_state_name": "Probe",
        "p_state_type": "Task",
        "p_output": None,
        "p_next_state": None,
        "p_recorded_at": "2026-11-23T12:00:00.000000+00:00",
    }


def test_a_stage_run_of_an_unknown_task_is_not_found(store: Any) -> None:
    report = StageReport(
        task_id="missing",
        stage="probe",
        status=StageRunStatus.SUCCEEDED,
        started_at=AT,
        ended_at=AT,
        duration_seconds=1.0,
        input_hash="h",
    )
    with pytest.raises(NotFoundError) as caught:
        store.record_stage_run(report)
    assert isinstance(caught.value.__cause__, APIError)
    assert caught.value.__cause__.code == "23503"  # PostgREST: foreign key violation, 409


def test_the_anon_key_is_refused(postgrest: Any, supabase_tables: str, clock: Any) -> None:
    """Only the service_role key reaches the tables: the migrations revoke anon's privileges."""
    anon = SupabaseTaskStore.from_url(postgrest.url, postgrest.anon_key, clock)
    with pytest.raises(APIError) as caught:
        anon.ping()
    assert caught.value.code == "42501"
    anon.close()


def test_sql_and_http_stores_share_the_tables(store: Any, supabase_tables: str, postgrest: Any, clock: Any) -> None:
    """The service (SQL, as the tables' owner) and a Lambda (HTTP) on one Supabase project."""
    with PostgresDatabase(supabase_tables) as database:
        sql_store = SqlTaskStore(database, clock)
        sql_store.create_task(task("shared"))
        sql_store.record_transition(
            TransitionRecord(task_id="shared", position="A#0", state_name="A", state_type="Task", recorded_at=AT)
        )
        store.record_transition(
            TransitionRecord(task_id="shared", position="B#0", state_name="B", state_type="Task", recorded_at=AT)
        )
        sql_store.record_transition(
            TransitionRecord(task_id="shared", position="C#0", state_name="C", state_type="Task", recorded_at=AT)
        )
        assert [(t.seq, t.position) for t in store.list_transitions("shared")] == [(1, "A#0"), (2, "B#0"), (3, "C#0")]
        store.update_task("shared", status=TaskStatus.RUNNING, current_stage="B")
        assert sql_store.get_task("shared") == store.get_task("shared")


def test_a_front_end_with_a_user_jwt_reads_its_tenants_tasks(
    postgrest: Any, supabase_tables: str, store: Any, clock: Any
) -> None:
    """What a browser does with supabase-js, done with supabase-py: the anon key plus the user's session."""
    with PostgresDatabase(supabase_tables) as database:
        SqlTaskStore(database, clock)
        videos = VideoStore(database)
        for task_id, tenant in (("mine", "ten_a"), ("theirs", "ten_b")):
            store.create_task(task(task_id))
            videos.create(
                VideoRecord(
                    task_id=task_id,
                    tenant_id=tenant,
                    pipeline="enhance",
                    request_hash="h",
                    upload_keys=[],
                    content_type="video/mp4",
                    max_bytes=1,
                    upload_expires_at=AT,
                    created_at=AT,
                )
            )
    user_jwt = sign_jwt(
        {"sub": str(uuid.uuid4()), "role": "authenticated", "app_metadata": {"tenant_id": "ten_a"}},
        postgrest.jwt_secret,
    )
    front_end = create_client(
        postgrest.url,
        postgrest.anon_key,
        ClientOptions(headers={"Authorization": f"Bearer {user_jwt}"}, httpx_client=httpx.Client()),
    )
    rows = front_end.table("tasks").select("task_id,status").execute().data
    assert rows == [{"task_id": "mine", "status": "pending"}]
    with pytest.raises(APIError) as caught:
        front_end.table("tasks").update({"status": "cancelled"}).eq("task_id", "mine").execute()
    assert caught.value.code == "42501"
    front_end.postgrest.aclose()


def test_factory_reads_supabase_variable_names(
    postgrest: Any, supabase_tables: str, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDLUXE_TASK_STORE", "supabase")
    monkeypatch.setenv("SUPABASE_URL", postgrest.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", postgrest.service_key)
    built = build_task_store(Settings(), clock)
    assert isinstance(built, SupabaseTaskStore)
    built.ping()
    built.close()
    with pytest.raises(ConfigurationError, match="VIDLUXE_DATABASE_URL"):
        build_database(Settings())


def test_factory_says_what_to_set(clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"VIDLUXE_{name}", raising=False)
    with pytest.raises(ConfigurationError, match="SUPABASE_SERVICE_ROLE_KEY"):
        build_task_store(Settings(task_store="supabase", supabase_url="https://x.supabase.co"), clock)


def test_closed_store_says_so(postgrest: Any, clock: Any) -> None:
    closed = SupabaseTaskStore.from_url(postgrest.url, postgrest.service_key, clock)
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.record_transition(
            TransitionRecord(task_id="t", position="p", state_name="s", state_type="Task", recorded_at=AT)
        )
