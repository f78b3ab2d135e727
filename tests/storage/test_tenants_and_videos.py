"""Tenants, API keys, signing secrets and tenant-owned video records, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import pytest

import shared.storage.tenants as tenants_module
from shared.errors import InvalidInputError, NotFoundError
from shared.storage.sql import SqlDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import TaskRecord, TaskStatus, TransitionRecord
from shared.storage.tenants import TenantStore, hash_api_key
from shared.storage.videos import VideoRecord, VideoStore


def test_issued_key_authenticates_its_tenant_and_is_stored_hashed(database: SqlDatabase, clock: Any) -> None:
    tenants = TenantStore(database, clock)
    issued = tenants.issue_key("acme")
    assert issued.api_key.startswith("vlx_") and len(issued.api_key) >= 40
    assert issued.key_prefix == issued.api_key[:12]
    assert issued.signing_secret.startswith("whsec_")
    assert len(base64.b64decode(issued.signing_secret.removeprefix("whsec_"))) == 24
    assert tenants.authenticate(issued.api_key) == issued.tenant
    assert tenants.authenticate(issued.api_key + "x") is None
    assert tenants.authenticate("Bearer " + issued.api_key) is None

    with database.transaction(write=False) as tx:
        stored = tx.query(f"SELECT key_hash, key_prefix FROM {database.table('api_keys')}")
    assert stored == [(hash_api_key(issued.api_key), issued.key_prefix)]
    assert issued.api_key not in str(stored)

    again = tenants.issue_key("acme")  # a second key for the same tenant, same secret
    assert again.tenant == issued.tenant and again.api_key != issued.api_key
    assert again.signing_secret == issued.signing_secret
    assert tenants.revoke_api_key(issued.api_key)
    assert tenants.authenticate(issued.api_key) is None
    assert tenants.authenticate(again.api_key) == issued.tenant
    assert [k.revoked_at is not None for k in tenants.list_api_keys(issued.tenant.tenant_id)] == [True, False]


def test_the_loop_authentication_remembers_valid_keys_for_a_while(
    database: SqlDatabase, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(tenants_module.time, "monotonic", lambda: now[0])
    tenants, elsewhere = TenantStore(database, clock), TenantStore(database, clock)  # elsewhere: another process
    first, second, third = (tenants.issue_key("acme").api_key for _ in range(3))
    tenant = tenants.authenticate(first)
    assert tenant is not None

    async def authenticate(key: str) -> Any:
        return await tenants.authenticate_async(key)

    for key in (first, second, third):
        assert asyncio.run(authenticate(key)) == tenant
    assert asyncio.run(authenticate(first + "x")) is None and asyncio.run(authenticate("Bearer " + first)) is None

    assert tenants.revoke_api_key(first)  # revoked through this store: refused at once
    assert asyncio.run(authenticate(first)) is None
    assert elsewhere.revoke_api_key(second)  # revoked by another process: trusted until the entry expires
    assert asyncio.run(authenticate(second)) == tenant and tenants.authenticate(second) is None
    now[0] += tenants_module.KEY_CACHE_SECONDS + 0.1
    assert asyncio.run(authenticate(second)) is None
    assert asyncio.run(authenticate(third)) == tenant  # read again, still valid


def test_tenant_names_are_checked(database: SqlDatabase, clock: Any) -> None:
    tenants = TenantStore(database, clock)
    with pytest.raises(InvalidInputError):
        tenants.ensure_tenant("  ")
    with pytest.raises(NotFoundError):
        tenants.get_tenant("ten_missing")
    with pytest.raises(NotFoundError):
        tenants.create_api_key("ten_missing")


def test_rotation_keeps_the_previous_secret_for_the_grace_period(database: SqlDatabase, clock: Any) -> None:
    tenants = TenantStore(database, clock, rotation_grace=timedelta(hours=24))
    tenant = tenants.ensure_tenant("acme")
    first = tenants.signing_secrets(tenant.tenant_id)
    assert len(first) == 1
    clock.advance(60)
    rotated = tenants.rotate_secret(tenant.tenant_id)
    assert [s.secret for s in rotated][1:] == first
    assert rotated[0].expires_at is None and rotated[1].expires_at == clock.now() + timedelta(hours=24)
    assert tenants.signing_secrets(tenant.tenant_id) == [s.secret for s in rotated]
    assert tenants.current_secret(tenant.tenant_id).secret == rotated[0].secret
    clock.advance(24 * 3600 + 1)
    assert tenants.signing_secrets(tenant.tenant_id) == [rotated[0].secret]
    assert tenants.signing_secrets("ten_unknown") == []
    with pytest.raises(NotFoundError):
        tenants.rotate_secret("ten_unknown")


def _video(task_id: str, tenant_id: str, clock: Any, **fields: Any) -> VideoRecord:
    values: dict[str, Any] = {
        "task_id": task_id, "tenant_id": tenant_id, "pipeline": "enhance", "request_hash": "h",
        "upload_keys": [f"uploads/{task_id}/source.mp4"], "content_type": "video/mp4", "max_bytes": 10,
        "upload_expires_at": clock.now() + timedelta(minutes=15), "created_at": clock.now(),
        **fields,
    }
    return VideoRecord(**values)


def test_videos_belong_to_one_tenant_and_page_newest_first(database: SqlDatabase, clock: Any) -> None:
    tasks = SqlTaskStore(database, clock)
    videos = VideoStore(database)
    for i in range(5):
        now = clock.now()
        status = TaskStatus.FAILED if i % 2 else TaskStatus.AWAITING_UPLOAD
        tasks.create_task(TaskRecord(task_id=f"t{i}", pipeline="enhance", status=status, created_at=now,
                                     updated_at=now))
        stored, created = videos.create(_video(f"t{i}", "ten_a" if i < 4 else "ten_b", clock, metadata={"i": i}))
        assert created and stored.metadata == {"i": i}
        if i == 2:
            continue  # two videos with the same created_at: the id breaks the tie
        clock.advance(1)

    assert videos.get("t1", tenant_id="ten_a").metadata == {"i": 1}
    with pytest.raises(NotFoundError):
        videos.get("t4", tenant_id="ten_a")
    with pytest.raises(NotFoundError):
        videos.get("missing")
    tasks.record_transition(TransitionRecord(task_id="t1", position="A#1", state_name="A", state_type="Pass",
                                             recorded_at=clock.now()))
    video, task, journal_length, scalars = database.read(videos.with_task_plan("t1", tenant_id="ten_a"))
    assert video == videos.get("t1") and task == tasks.get_task("t1") and journal_length == 1 and scalars == ()
    # Another store's scalar subqueries come back beside them, from the same query.
    started = tasks.first_run_started_scalar
    *_, scalars = database.read(videos.with_task_plan("t1", tenant_id="ten_a", scalars=[started, "(SELECT 7)"]))
    assert scalars[1] == 7 and tasks.load_first_run_started(scalars[0]) is None
    for task_id in ("t4", "missing"):  # another tenant's video is reported exactly like a missing one
        with pytest.raises(NotFoundError, match=task_id):
            asyncio.run(database.read_async(videos.with_task_plan(task_id, tenant_id="ten_a")))

    seen: list[str] = []
    cursor = None
    while True:
        page = videos.list_videos("ten_a", limit=3, cursor=cursor)
        seen += [v.task_id for v in page.videos]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["t3", "t2", "t1", "t0"]
    failed = videos.list_videos("ten_a", statuses=[TaskStatus.FAILED])
    assert [v.task_id for v in failed.videos] == ["t3", "t1"] and failed.next_cursor is None
    with pytest.raises(InvalidInputError):
        videos.list_videos("ten_a", cursor="not-a-cursor")


def test_an_idempotency_key_is_unique_per_tenant(database: SqlDatabase, clock: Any) -> None:
    tasks = SqlTaskStore(database, clock)
    videos = VideoStore(database)
    for task_id in ("t1", "t2", "t3"):
        tasks.create_task(TaskRecord(task_id=task_id, pipeline="enhance", created_at=clock.now(),
                                     updated_at=clock.now()))
    first, created = videos.create(_video("t1", "ten_a", clock, idempotency_key="k"))
    assert created
    again, created = videos.create(_video("t2", "ten_a", clock, idempotency_key="k"))
    assert not created and again.task_id == "t1"
    other, created = videos.create(_video("t3", "ten_b", clock, idempotency_key="k"))
    assert created and other.task_id == "t3"
    assert videos.find_by_idempotency_key("ten_a", "k") == first
    assert videos.find_by_idempotency_key("ten_a", "nope") is None
