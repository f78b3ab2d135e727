"""The cost ledger's store on SQLite and PostgreSQL (a schema per test), sharing the task store's database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.storage.costs import CostEntry, CostStore, CostSummary
from shared.storage.sql import SqlDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import TaskRecord

AT = datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)



@pytest.fixture
def costs(database: SqlDatabase, clock: Any) -> CostStore:
    tasks = SqlTaskStore(database, clock)
    for task_id in ("tsk_a", "tsk_b"):
        tasks.create_task(TaskRecord(task_id=task_id, pipeline="enhance", created_at=AT, updated_at=AT))
    return CostStore(database)


def entry(task_id: str, stage: str, resource: str, quantity: float, unit_price: float, **extra: Any) -> CostEntry:
    values: dict[str, Any] = {
        "task_id": task_id, "stage": stage, "run": "0123456789abcdef", "provider": "aws_lambda",
        "resource": resource, "quantity": quantity, "unit": "unit", "unit_price_usd": unit_price,
        "amount_usd": quantity * unit_price, "price_version": "2026-11", "recorded_at": AT, **extra,
    }
    return CostEntry(**values)


def test_entries_round_trip_in_order(costs: CostStore) -> None:
    written = [
        entry("tsk_a", "probe", "cpu_seconds", 0.5, 0.0000287924),
        entry("tsk_a", "probe", "lambda_requests", 1, 0.0000002),
        entry("tsk_a", "render_chunk", "gpu_seconds:T4", 30, 0.000164, provider="modal", run="fedcba9876543210"),
        entry("tsk_b", "probe", "cpu_seconds", 2, 0.0000287924),
    ]
    costs.record(written)
    assert costs.entries("tsk_a") == written[:3]
    assert costs.entries("tsk_b") == written[3:]
    assert costs.entries("tsk_unknown") == []
    assert costs.entries("tsk_a")[0].recorded_at == AT


def test_summary_totals_by_stage_in_billing_order(costs: CostStore) -> None:
    assert costs.summary("tsk_a") == CostSummary(total_usd=0.0, by_stage={}, price_versions=[])
    costs.record([entry("tsk_a", "probe", "cpu_seconds", 10, 0.0001)])
    costs.record([entry("tsk_a", "render_chunk", "cpu_seconds", 20, 0.0001, run="1")])
    costs.record([entry("tsk_a", "render_chunk", "cpu_seconds", 30, 0.0001, run="2", price_version="2026-12")])
    costs.record([entry("tsk_a", "assemble", "cpu_seconds", 1, 0.0001)])
    costs.record([entry("tsk_b", "probe", "cpu_seconds", 1000, 0.0001)])
    summary = costs.summary("tsk_a")
    assert summary.total_usd == 0.0061
    assert list(summary.by_stage.items()) == [("probe", 0.001), ("render_chunk", 0.005), ("assemble", 0.0001)]
    assert summary.price_versions == ["2026-11", "2026-12"]


def test_replacing_a_stage_does_not_count_it_twice(costs: CostStore) -> None:
    costs.record([entry("tsk_a", "probe", "cpu_seconds", 1, 0.5)])
    delivery = [entry("tsk_a", "delivery", "egress_gb", 0.02, 0.09, provider="aws_s3")]
    costs.replace_stage("tsk_a", "delivery", delivery)
    costs.replace_stage("tsk_a", "delivery", delivery)
    assert [e.stage for e in costs.entries("tsk_a")] == ["probe", "delivery"]
    assert costs.summary("tsk_a").by_stage == {"probe": 0.5, "delivery": 0.0018}
    with pytest.raises(ValueError, match="another task or stage"):
        costs.replace_stage("tsk_a", "probe", delivery)


def test_an_entry_needs_its_task(costs: CostStore) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        costs.record([entry("tsk_missing", "probe", "cpu_seconds", 1, 1)])
    assert costs.entries("tsk_missing") == []


def test_tables_are_named_by_the_engine(database: SqlDatabase, costs: CostStore) -> None:
    costs.record([entry("tsk_a", "probe", "cpu_seconds", 1, 1)])
    with database.transaction(write=False) as tx:
        rows = tx.query(f"SELECT task_id, day FROM {database.table('cost_entries')}")
    assert rows == [("tsk_a", "2026-11-20")]  # the UTC day the cost was incurred
