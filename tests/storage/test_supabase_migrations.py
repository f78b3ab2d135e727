"""The Supabase migrations (infra/supabase/migrations) on the real PostgreSQL, made Supabase-like by
supabase_shim.py (roles, auth.jwt(), default privileges) in a database of its own.

- They match the DDL the stores create: the migrations fill ``public``, the stores create theirs in
  another schema of the same database, and the catalogs (columns, types, defaults, constraints,
  indexes) must be identical. A store that gains a column or an index fails here until a migration
  adds it.
- Row-level security, queried the way PostgREST does it (``SET LOCAL ROLE authenticated`` and the JWT
  claims in ``request.jwt.claims``): a user's JWT reads its tenant's rows only; anon reads nothing;
  service_role reads everything.
- Realtime: public.tasks is in the supabase_realtime publication.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from supabase_shim import MIGRATIONS_DIR, apply_migrations, migration_files

from shared.storage.costs import CostEntry, CostStore
from shared.storage.sql import PostgresDatabase, SqlDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import StageReport, StageRunStatus, TaskRecord
from shared.storage.tenants import TenantStore
from shared.storage.videos import VideoRecord, VideoStore
from web_hooks.events import EventType
from web_hooks.outbox import WebhookOutbox

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# Every module that creates tables with SqlDatabase.create_schema, and how to build its store.
STORE_MODULES = {
    "shared/storage/sql_tasks.py",
    "shared/storage/tenants.py",
    "shared/storage/videos.py",
    "shared/storage/costs.py",
    "web_hooks/outbox.py",
}


def build_stores(database: SqlDatabase, clock: Any) -> dict[str, Any]:
    """All stores over ``database``, the task store first (the others reference its tasks table)."""
    tasks = SqlTaskStore(database, clock)
    return {
        "tasks": tasks,
        "tenants": TenantStore(database, clock),
        "videos": VideoStore(database),
        "costs": CostStore(database),
        "outbox": WebhookOutbox(database, clock),
    }


# --------------------------------------------------------------------------------------- catalog


def describe(connection: psycopg.Connection[Any], schema: str) -> dict[str, dict[str, Any]]:
    """Tables of ``schema``: columns, constraints and indexes, with the schema name left out."""
    tables: dict[str, dict[str, Any]] = {}
    for table, column, position, data_type, nullable, default, identity, generation in connection.execute(
        "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default, "
        "is_identity, identity_generation FROM information_schema.columns WHERE table_schema = %s",
        (schema,),
    ):
        entry = tables.setdefault(table, {"columns": [], "constraints": [], "indexes": []})
        entry["columns"].append((position, column, data_type, nullable, default, identity, generation))
    for table, name, kind, columns, foreign_table, foreign_columns, on_delete, on_update in connection.execute(
        """
        SELECT cl.relname, con.conname, con.contype,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(num, i)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.i),
               fcl.relname,
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(num, i)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i),
               con.confdeltype, con.confupdtype
        FROM pg_constraint con
        JOIN pg_class cl ON cl.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = cl.relnamespace
        LEFT JOIN pg_class fcl ON fcl.oid = con.confrelid
        WHERE n.nspname = %s
        """,
        (schema,),
    ):
        tables[table]["constraints"].append(
            (name, kind, tuple(columns), foreign_table, tuple(foreign_columns), on_delete, on_update)
        )
    for table, name, definition in connection.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (schema,)
    ):
        tables[table]["indexes"].append((name, definition.replace(f"{schema}.", "")))
    for entry in tables.values():
        for part in entry.values():
            part.sort()
    return tables


@pytest.fixture
def stores_schema(supabase_database: str) -> Iterator[str]:
    schema = f"vidluxe_stores_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(supabase_database, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_migrations_create_exactly_the_tables_the_stores_create(
    supabase_database: str, stores_schema: str, clock: Any
) -> None:
    with PostgresDatabase(supabase_database, schema=stores_schema) as database:
        build_stores(database, clock)
    with psycopg.connect(supabase_database) as connection:
        migrated = describe(connection, "public")
        created = describe(connection, stores_schema)
    assert sorted(migrated) == sorted(created)
    for table in created:
        for part in ("columns", "constraints", "indexes"):
            in_migrations = set(migrated[table][part]) - set(created[table][part])
            in_store = set(created[table][part]) - set(migrated[table][part])
            assert not in_migrations and not in_store, (
                f"{table} {part} drifted: only in the migrations {sorted(in_migrations)}, "
                f"only in the store's DDL {sorted(in_store)}"
            )


def test_every_module_creating_tables_is_covered() -> None:
    """A new store (a new create_schema call) must be added to STORE_MODULES and to the migrations."""
    callers = set()
    for folder in ("shared", "web_hooks", "functions", "modal_apps"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if re.search(r"\.create_schema\(", path.read_text()) and path.name != "sql.py":
                callers.add(path.relative_to(REPO_ROOT).as_posix())
    assert callers == STORE_MODULES


def test_migrations_are_named_and_written_for_the_supabase_cli() -> None:
    files = migration_files()
    assert files, f"no migrations in {MIGRATIONS_DIR}"
    for path in files:
        assert re.fullmatch(r"\d{14}_[a-z0-9_]+\.sql", path.name), path.name
        text = path.read_text().lower()
        # Supabase provides these; creating them would fail there (or shadow its own).
        for provided in (
            "create role",
            "create schema auth",
            "create function auth.",
            "create or replace function auth.",
        ):
            assert provided not in text, f"{path.name} creates what Supabase provides: {provided}"


def test_migrations_apply_again_without_error_or_change(supabase_database: str) -> None:
    with psycopg.connect(supabase_database) as connection:
        before = describe(connection, "public")
        policies = connection.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'").fetchone()
    apply_migrations(supabase_database)
    with psycopg.connect(supabase_database) as connection:
        assert describe(connection, "public") == before
        assert connection.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'").fetchone() == policies


def test_row_level_security_is_on_for_every_table(supabase_database: str) -> None:
    with psycopg.connect(supabase_database) as connection:
        off = connection.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind = 'r' AND NOT relrowsecurity"
        ).fetchall()
    assert off == []


def test_task_status_is_published_to_realtime(supabase_database: str) -> None:
    with psycopg.connect(supabase_database) as connection:
        published = connection.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
        ).fetchall()
        actions = connection.execute(
            "SELECT pubinsert, pubupdate, pubdelete FROM pg_publication WHERE pubname = 'supabase_realtime'"
        ).fetchone()
    assert ("public", "tasks") in published
    assert actions == (True, True, True)


def test_the_stores_work_on_the_migrated_database(supabase_database: str, clock: Any) -> None:
    """The service on Supabase: connected as the tables' owner, creating nothing new, reading its writes."""
    suffix = uuid.uuid4().hex[:8]
    with PostgresDatabase(supabase_database) as database:
        stores = build_stores(database, clock)
        tenant = stores["tenants"].issue_key(f"tenant {suffix}").tenant
        task = stores["tasks"].create_task(
            TaskRecord(task_id=f"tsk_{suffix}", pipeline="enhance", created_at=AT, updated_at=AT)
        )
        add_video(stores["videos"], task.task_id, tenant.tenant_id)
        stores["costs"].record([cost_entry(task.task_id)])
        stores["outbox"].emit(
            tenant.tenant_id, task.task_id, "https://example.com/hook", EventType.TASK_CREATED, {"id": task.task_id}
        )
        assert stores["videos"].get(task.task_id, tenant_id=tenant.tenant_id).tenant_id == tenant.tenant_id
        assert stores["costs"].summary(task.task_id).total_usd == 0.25


# -------------------------------------------------------------------------------- row-level security


def add_video(videos: VideoStore, task_id: str, tenant_id: str) -> None:
    videos.create(
        VideoRecord(
            task_id=task_id,
            tenant_id=tenant_id,
            pipeline="enhance",
            request_hash="h",
            upload_keys=[f"uploads/{task_id}/source.mp4"],
            content_type="video/mp4",
            max_bytes=1000,
            upload_expires_at=AT,
            created_at=AT,
        )
    )


def cost_entry(task_id: str) -> CostEntry:
    return CostEntry(
        task_id=task_id,
        stage="probe",
        provider="aws_lambda",
        resource="lambda_gb_seconds",
        quantity=1.0,
        unit="GB-s",
        unit_price_usd=0.25,
        amount_usd=0.25,
        price_version="test",
        recorded_at=AT,
    )


@pytest.fixture
def two_tenants(supabase_database: str, clock: Any) -> dict[str, list[str]]:
    """Tenants A and B with two tasks each (video, stage run, cost entry, transition), plus a task no
    tenant owns (a ``vidluxe enhance`` task): tenant id -> its task ids."""
    suffix = uuid.uuid4().hex[:8]
    owned: dict[str, list[str]] = {}
    with PostgresDatabase(supabase_database) as database:
        stores = build_stores(database, clock)
        for name in ("a", "b"):
            tenant = stores["tenants"].issue_key(f"rls {name} {suffix}").tenant
            owned[tenant.tenant_id] = []
            for n in range(2):
                task = stores["tasks"].create_task(
                    TaskRecord(task_id=f"tsk_{name}{n}_{suffix}", pipeline="enhance", created_at=AT, updated_at=AT)
                )
                add_video(stores["videos"], task.task_id, tenant.tenant_id)
                stores["tasks"].record_stage_run(
                    StageReport(
                        task_id=task.task_id,
                        stage="probe",
                        status=StageRunStatus.SUCCEEDED,
                        started_at=AT,
                        ended_at=AT,
                        duration_seconds=0.1,
                        input_hash="sha256:x",
                    )
                )
                stores["costs"].record([cost_entry(task.task_id)])
                owned[tenant.tenant_id].append(task.task_id)
        stores["tasks"].create_task(
            TaskRecord(task_id=f"tsk_cli_{suffix}", pipeline="enhance", created_at=AT, updated_at=AT)
        )
    return owned


def as_role(dsn: str, role: str, claims: dict[str, Any] | None, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` the way PostgREST runs a request: in a transaction, with the JWT's role and claims."""
    with psycopg.connect(dsn) as connection, connection.transaction(force_rollback=True):
        connection.execute(f"SET LOCAL ROLE {role}")
        connection.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims or {}),))
        return connection.execute(sql).fetchall()


def user_claims(tenant_id: str | None, *, where: str = "app_metadata") -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated"}
    if tenant_id is not None:
        claims[where] = {"tenant_id": tenant_id}
    return claims


TENANT_TABLES = ("tasks", "videos", "stage_runs", "cost_entries")


def test_a_user_reads_only_its_tenants_rows(supabase_database: str, two_tenants: dict[str, list[str]]) -> None:
    (tenant_a, tasks_a), (tenant_b, tasks_b) = two_tenants.items()
    for tenant, own in ((tenant_a, tasks_a), (tenant_b, tasks_b)):
        claims = user_claims(tenant)
        for table in TENANT_TABLES:
            rows = as_role(supabase_database, "authenticated", claims, f"SELECT task_id FROM public.{table}")
            assert sorted(row[0] for row in rows) == sorted(own), table
        other = tasks_b[0] if tenant == tenant_a else tasks_a[0]
        assert (
            as_role(supabase_database, "authenticated", claims, f"SELECT * FROM public.tasks WHERE task_id = '{other}'")
            == []
        )


def test_claims_a_user_can_edit_or_no_tenant_read_nothing(
    supabase_database: str, two_tenants: dict[str, list[str]]
) -> None:
    tenant_a = next(iter(two_tenants))
    for claims in (user_claims(tenant_a, where="user_metadata"), user_claims(None), {}):
        for table in TENANT_TABLES:
            assert as_role(supabase_database, "authenticated", claims, f"SELECT 1 FROM public.{table}") == []


@pytest.mark.parametrize(
    "table",
    [
        "transitions",
        "tenants",
        "api_keys",
        "signing_secrets",
        "webhook_endpoints",
        "webhook_messages",
        "webhook_attempts",
    ],
)
def test_server_side_tables_are_closed_to_users(
    supabase_database: str, two_tenants: dict[str, list[str]], table: str
) -> None:
    claims = user_claims(next(iter(two_tenants)))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role(supabase_database, "authenticated", claims, f"SELECT 1 FROM public.{table}")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE public.tasks SET status = 'cancelled' RETURNING 1",
        "DELETE FROM public.videos RETURNING 1",
        "INSERT INTO public.cost_entries (task_id, stage, run, provider, resource, quantity, unit, "
        "unit_price_usd, amount_usd, price_version, recorded_at, day) "
        "SELECT task_id, 's', '', 'p', 'r', 0, 'u', 0, 0, 'v', now(), 'd' FROM public.tasks LIMIT 1 RETURNING 1",
        "SELECT public.record_task_transition('t', 'p', 's', 'Task', 'null', NULL, now())",
    ],
)
def test_users_write_nothing(supabase_database: str, two_tenants: dict[str, list[str]], sql: str) -> None:
    claims = user_claims(next(iter(two_tenants)))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role(supabase_database, "authenticated", claims, sql)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_anon_reads_nothing(supabase_database: str, two_tenants: dict[str, list[str]], table: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role(supabase_database, "anon", {"role": "anon"}, f"SELECT 1 FROM public.{table}")


def test_service_role_bypasses_row_level_security(supabase_database: str, two_tenants: dict[str, list[str]]) -> None:
    every = {task for tasks in two_tenants.values() for task in tasks}
    rows = as_role(supabase_database, "service_role", {"role": "service_role"}, "SELECT task_id FROM public.tasks")
    seen = {row[0] for row in rows}
    assert every <= seen
    assert any(task.startswith("tsk_cli_") for task in seen)  # tasks without a tenant too
    assert as_role(supabase_database, "service_role", {"role": "service_role"}, "SELECT count(*) FROM public.api_keys")
