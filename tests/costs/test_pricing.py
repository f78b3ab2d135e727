"""Pricing a stage run: measured quantities x the table's unit prices, under each assumption."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.costs.assumptions import CostAssumptions
from shared.costs.prices import DEFAULT_PRICES_DIR, PriceTable, load_price_table
from shared.costs.pricing import (
    GIB,
    StoredOutput,
    cpu_second_price,
    price_delivery,
    price_stage_run,
)
from shared.storage.tasks import ResourceUsage, StageReport, StageRunStatus

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table(DEFAULT_PRICES_DIR / "2026-11.toml")


def run(usage: ResourceUsage | None = None, *, duration: float = 10.0, stage: str = "render_chunk") -> StageReport:
    return StageReport(
        task_id="tsk_1",
        stage=stage,
        status=StageRunStatus.SUCCEEDED,
        started_at=AT,
        ended_at=AT,
        duration_seconds=duration,
        input_hash="ab" * 32,
        usage=usage or ResourceUsage(),
    )


def by_resource(entries: list) -> dict[str, tuple[float, float, float]]:  # type: ignore[type-arg]
    return {e.resource: (e.quantity, e.unit_price_usd, e.amount_usd) for e in entries}


def test_cpu_time_is_priced_as_the_lambda_time_that_buys_it(table: PriceTable) -> None:
    # 1,769 MB is one vCPU: a CPU-second is 1769/1024 GB-seconds at $0.0000166667.
    assert cpu_second_price(table, CostAssumptions()) == pytest.approx(0.0000166667 * 1769 / 1024)
    priced = price_stage_run(run(ResourceUsage(cpu_seconds=12.5)), table, CostAssumptions())
    entries = by_resource(priced.entries)
    assert set(entries) == {"cpu_seconds", "lambda_requests", "state_transitions"}
    quantity, unit_price, amount = entries["cpu_seconds"]
    assert quantity == 12.5
    assert unit_price == pytest.approx(0.0000287924, rel=1e-6)
    assert amount == pytest.approx(12.5 * 0.0000166667 * 1769 / 1024)
    assert entries["lambda_requests"] == (1, 0.0000002, 0.0000002)
    assert entries["state_transitions"] == (1, 0.000025, 0.000025)
    assert priced.total_usd == pytest.approx(12.5 * 0.0000287924 + 0.0000002 + 0.000025, rel=1e-6)
    entry = priced.entries[0]
    assert (entry.task_id, entry.stage, entry.run, entry.provider) == ("tsk_1", "render_chunk", "ab" * 8, "aws_lambda")
    assert (entry.unit, entry.price_version, entry.recorded_at) == ("CPU-second", "2026-11", AT)


@pytest.mark.parametrize(
    ("assumptions", "resource", "quantity", "unit_price"),
    [
        # on Lambda: wall time x memory, whatever the CPU did
        (CostAssumptions(compute="lambda_duration", lambda_memory_mb=2048), "lambda_gb_seconds", 20.0, 0.0000166667),
        (
            CostAssumptions(compute="lambda_duration", lambda_memory_mb=1024, lambda_architecture="arm"),
            "lambda_gb_seconds", 10.0, 0.0000133334,
        ),
        # a bigger function buys more CPU per second, so each CPU-second costs more
        (CostAssumptions(lambda_memory_mb=3538), "cpu_seconds", 4.0, 0.0000166667 * 3538 / 1024),
        (CostAssumptions(lambda_architecture="arm"), "cpu_seconds", 4.0, 0.0000133334 * 1769 / 1024),
    ],
)
def test_compute_assumptions(
    table: PriceTable, assumptions: CostAssumptions, resource: str, quantity: float, unit_price: float
) -> None:
    priced = price_stage_run(run(ResourceUsage(cpu_seconds=4.0), duration=10.0), table, assumptions)
    entries = by_resource(priced.entries)
    assert entries[resource][0] == pytest.approx(quantity)
    assert entries[resource][1] == pytest.approx(unit_price)
    assert entries[resource][2] == pytest.approx(quantity * unit_price)
    assert {"cpu_seconds", "lambda_gb_seconds"} - {resource} & set(entries) == set()


@pytest.mark.parametrize(
    ("provider", "gpu", "unit_price"),
    [("modal", "T4", 0.000164), ("modal", "a10g", 0.000306), ("modal", "H100", 0.001097),
     ("replicate", "A100-80GB", 0.0014), ("replicate", "H100", 0.001525)],
)
def test_gpu_seconds_by_type_and_provider(table: PriceTable, provider: str, gpu: str, unit_price: float) -> None:
    usage = ResourceUsage(gpu_seconds=30.0, gpu_type=gpu)
    priced = price_stage_run(run(usage), table, CostAssumptions(gpu_provider=provider))  # type: ignore[arg-type]
    gpu_entries = [e for e in priced.entries if e.resource.startswith("gpu_seconds:")]
    assert [(e.resource, e.provider, e.quantity, e.unit_price_usd) for e in gpu_entries] == [
        (f"gpu_seconds:{gpu}", provider, 30.0, unit_price)
    ]
    assert gpu_entries[0].amount_usd == pytest.approx(30 * unit_price)
    assert priced.unpriced == []


def test_usage_without_a_price_is_reported_not_invented(table: PriceTable) -> None:
    usage = ResourceUsage(gpu_seconds=5.0, gpu_type="B300", provider_calls={"replicate-flux": 2, "dall-e": 1})
    priced = price_stage_run(run(usage), table, CostAssumptions())
    assert priced.unpriced == ["gpu_seconds:B300", "provider_call:dall-e"]
    entries = by_resource(priced.entries)
    assert entries["provider_call:replicate-flux"] == (2, 0.003, 0.006)
    assert not any(r.startswith("gpu_seconds") or r == "provider_call:dall-e" for r in entries)


def test_model_api_calls(table: PriceTable) -> None:
    usage = ResourceUsage(provider_calls={"nano-banana": 3})
    (entry,) = [e for e in price_stage_run(run(usage), table, CostAssumptions()).entries if e.provider == "nano-banana"]
    assert (entry.resource, entry.quantity, entry.unit, entry.amount_usd) == ("provider_call:nano-banana", 3, "image",
                                                                             pytest.approx(0.117))


@pytest.mark.parametrize(
    ("store", "provider", "gb_month", "put"),
    [("s3", "aws_s3", 0.023, 0.000005), ("r2", "cloudflare_r2", 0.015, 0.0000045)],
)
def test_stored_outputs(table: PriceTable, store: str, provider: str, gb_month: float, put: float) -> None:
    assumptions = CostAssumptions(object_store=store, storage_months=3)  # type: ignore[arg-type]
    priced = price_stage_run(run(), table, assumptions, stored=StoredOutput(bytes=GIB // 2, objects=4))
    entries = {e.resource: e for e in priced.entries}
    assert entries["storage_gb_month"].provider == provider
    assert entries["storage_gb_month"].quantity == pytest.approx(1.5)  # half a GiB for three months
    assert entries["storage_gb_month"].amount_usd == pytest.approx(1.5 * gb_month)
    assert entries["storage_put_requests"].amount_usd == pytest.approx(4 * put)


def test_nothing_used_nothing_billed(table: PriceTable) -> None:
    priced = price_stage_run(run(), table, CostAssumptions(orchestration=False), stored=StoredOutput(0, 0))
    assert priced.entries == [] and priced.total_usd == 0


def test_delivery_is_egress_and_downloads(table: PriceTable) -> None:
    sizes = [GIB // 4, GIB // 4]
    priced = price_delivery("tsk_1", sizes, table, CostAssumptions(downloads_per_output=2), at=AT)
    entries = {e.resource: e for e in priced.entries}
    assert {e.stage for e in priced.entries} == {"delivery"}
    assert entries["egress_gb"].quantity == pytest.approx(1.0)
    assert entries["egress_gb"].amount_usd == pytest.approx(0.09)
    assert entries["download_requests"].quantity == 4
    r2 = price_delivery("tsk_1", sizes, table, CostAssumptions(object_store="r2"), at=AT)
    egress = next(e for e in r2.entries if e.resource == "egress_gb")
    assert (egress.quantity, egress.amount_usd) == (pytest.approx(0.5), 0.0)  # real egress, free on R2


def test_entries_carry_their_table_version(table: PriceTable) -> None:
    newer = table.model_copy(update={"version": "2027-01"})
    priced = price_stage_run(run(ResourceUsage(cpu_seconds=1)), newer, CostAssumptions())
    assert {e.price_version for e in priced.entries} == {"2027-01"}
