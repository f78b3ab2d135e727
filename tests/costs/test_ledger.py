"""The ledger the runtime composes: recorded stage runs are priced into cost entries beside them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from shared.clock import SystemClock
from shared.costs.assumptions import CostAssumptions
from shared.costs.ledger import CostLedger, CostRecordingTaskStore, build_cost_ledger
from shared.costs.prices import DEFAULT_PRICES_DIR, load_price_table
from shared.costs.pricing import cpu_second_price
from shared.errors import ConfigurationError
from shared.pipeline.report import DELIVERABLES, build_report
from shared.pipeline.runtime import Runtime
from shared.settings import Settings
from shared.storage.costs import CostStore
from shared.storage.local_objects import LocalObjectStore
from shared.storage.sql import SqliteDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import ResourceUsage, StageReport, StageRunStatus, TaskRecord, TaskStatus

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TABLE = load_price_table(DEFAULT_PRICES_DIR / "2026-11.toml")
HASH = "cd" * 32


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[CostRecordingTaskStore, LocalObjectStore]]:
    database = SqliteDatabase(tmp_path / "db.sqlite3")
    objects = LocalObjectStore(tmp_path / "objects")
    tasks = SqlTaskStore(database, SystemClock())
    ledger = CostLedger(CostStore(database), TABLE, objects, SystemClock(), output_fields=DELIVERABLES)
    tasks.create_task(TaskRecord(task_id="tsk_1", pipeline="enhance", created_at=AT, updated_at=AT))
    try:
        yield CostRecordingTaskStore(tasks, ledger), objects
    finally:
        database.close()


def report(status: StageRunStatus = StageRunStatus.SUCCEEDED, cpu: float = 10.0) -> StageReport:
    return StageReport(task_id="tsk_1", stage="assemble", status=status, started_at=AT, ended_at=AT,
                       duration_seconds=12.0, input_hash=HASH, usage=ResourceUsage(cpu_seconds=cpu))


def test_a_recorded_run_is_priced_with_what_it_stored(store: tuple[CostRecordingTaskStore, LocalObjectStore]) -> None:
    tasks, objects = store
    prefix = f"tasks/tsk_1/assemble/{HASH[:16]}"
    objects.put_bytes(f"{prefix}/video.mp4", b"v" * 3000)
    objects.put_bytes(f"{prefix}/output.json", b"{}")
    objects.put_bytes("tasks/tsk_1/assemble/0000000000000000/other.mp4", b"x" * 99)  # another run's
    tasks.record_stage_run(report())
    assert [r.stage for r in tasks.list_stage_runs("tsk_1")] == ["assemble"]  # the run itself, as before
    entries = {e.resource: e for e in tasks.ledger.store.entries("tsk_1")}
    assert set(entries) == {"cpu_seconds", "lambda_requests", "state_transitions", "storage_gb_month",
                            "storage_put_requests"}
    assert entries["cpu_seconds"].amount_usd == pytest.approx(10 * cpu_second_price(TABLE, CostAssumptions()))
    assert entries["storage_gb_month"].quantity == pytest.approx(3002 / 2**30)
    assert entries["storage_put_requests"].quantity == 2
    assert {e.run for e in entries.values()} == {HASH[:16]}


def test_reused_and_failed_runs_store_nothing_new(store: tuple[CostRecordingTaskStore, LocalObjectStore]) -> None:
    tasks, objects = store
    objects.put_bytes(f"tasks/tsk_1/assemble/{HASH[:16]}/output.json", b"{}")
    tasks.record_stage_run(report(StageRunStatus.REUSED, cpu=0))
    tasks.record_stage_run(report(StageRunStatus.FAILED, cpu=2))
    resources = [e.resource for e in tasks.ledger.store.entries("tsk_1")]
    assert resources == ["lambda_requests", "state_transitions", "cpu_seconds", "lambda_requests", "state_transitions"]


def test_a_succeeded_task_is_billed_its_delivery_once(store: tuple[CostRecordingTaskStore, LocalObjectStore]) -> None:
    tasks, objects = store
    objects.put_bytes("tasks/tsk_1/finalize/x/final.mp4", b"f" * 2**20)
    objects.put_bytes("tasks/tsk_1/finalize/x/comparison.jpg", b"c" * 2**19)
    output = {"final_key": "tasks/tsk_1/finalize/x/final.mp4",
              "comparison_key": "tasks/tsk_1/finalize/x/comparison.jpg",
              "spec_key": "tasks/tsk_1/plan/spec.json", "gif_key": None}
    tasks.update_task("tsk_1", status=TaskStatus.RUNNING)
    assert tasks.ledger.store.entries("tsk_1") == []
    tasks.update_task("tsk_1", status=TaskStatus.SUCCEEDED, output=output)
    tasks.update_task("tsk_1", status=TaskStatus.SUCCEEDED)  # recorded again: replaced, not added
    entries = {e.resource: e for e in tasks.ledger.store.entries("tsk_1")}
    assert set(entries) == {"egress_gb", "download_requests"}
    assert entries["egress_gb"].quantity == pytest.approx(1.5 / 1024)  # 1.5 MiB, the spec is not delivered
    assert entries["egress_gb"].amount_usd == pytest.approx(1.5 / 1024 * 0.09)
    assert entries["download_requests"].quantity == 2
    assert tasks.ledger.summary("tsk_1").by_stage == {"delivery": pytest.approx(1.5 / 1024 * 0.09 + 2 * 4e-7, abs=1e-6)}


def test_a_pricing_failure_never_fails_the_run_or_the_task(
    store: tuple[CostRecordingTaskStore, LocalObjectStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks, _ = store

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("the object store is unreachable")

    monkeypatch.setattr(tasks.ledger, "_stored", broken)
    monkeypatch.setattr(tasks.ledger.store, "replace_stage", broken)
    with capture_logs() as logs:
        tasks.record_stage_run(report())
        done = tasks.update_task("tsk_1", status=TaskStatus.SUCCEEDED, output={})
    assert [(log["event"], log["log_level"]) for log in logs] == [
        ("stage run not priced", "error"), ("delivery not priced", "error")]
    assert [r.stage for r in tasks.list_stage_runs("tsk_1")] == ["assemble"] and done.status == TaskStatus.SUCCEEDED
    assert tasks.ledger.store.entries("tsk_1") == []


def test_the_runtime_prices_its_runs_and_reports_the_cost(tmp_path: Path) -> None:
    with Runtime.from_settings(Settings(home=tmp_path / "home")) as runtime:
        assert runtime.costs is not None and runtime.costs.prices.version == "2026-11"
        assert isinstance(runtime.tasks, CostRecordingTaskStore)
        task = runtime.tasks.create_task(TaskRecord(task_id="tsk_1", pipeline="enhance", created_at=AT, updated_at=AT))
        runtime.tasks.record_stage_run(report(cpu=100))
        cost = build_report(runtime, task)["cost"]
    assert cost["total_usd"] == pytest.approx(100 * 0.0000287924 + 0.0000002 + 0.000025, abs=1e-6)
    assert list(cost["by_stage"]) == ["assemble"] and cost["price_versions"] == ["2026-11"]


def test_settings_choose_the_table_and_assumptions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = SqliteDatabase(tmp_path / "db.sqlite3")
    objects = LocalObjectStore(tmp_path / "objects")
    clock = SystemClock()
    try:
        SqlTaskStore(database, clock)
        monkeypatch.setenv("VIDLUXE_COST_ASSUMPTIONS", '{"compute": "lambda_duration", "object_store": "r2"}')
        monkeypatch.setenv("VIDLUXE_PRICE_VERSION", "2026-11")
        ledger = build_cost_ledger(Settings(), database, objects, clock, output_fields=())
        assert ledger is not None and ledger.assumptions.compute == "lambda_duration"
        assert ledger.assumptions.object_store == "r2"
        with pytest.raises(ConfigurationError) as unknown:
            build_cost_ledger(Settings(price_version="1999-01"), database, objects, clock, output_fields=())
        assert unknown.value.code == "PRICE_VERSION_UNKNOWN"
        monkeypatch.delenv("VIDLUXE_PRICE_VERSION")
        with pytest.raises(ConfigurationError) as missing:  # an explicit directory must hold tables
            build_cost_ledger(Settings(prices_dir=tmp_path / "empty"), database, objects, clock, output_fields=())
        assert missing.value.code == "PRICE_TABLE_MISSING"
        # An installed wheel carries no infra/: no ledger, no made-up figures, nothing breaks.
        monkeypatch.setattr("shared.costs.ledger.DEFAULT_PRICES_DIR", tmp_path / "not-installed")
        with capture_logs() as logs:
            assert build_cost_ledger(Settings(), database, objects, clock, output_fields=()) is None
        assert [log["log_level"] for log in logs] == ["warning"] and "VIDLUXE_PRICES_DIR" in logs[0]["event"]
    finally:
        database.close()
