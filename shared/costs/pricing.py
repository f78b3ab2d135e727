"""Pricing: a stage run's measured usage times the price table, as cost entries. Pure: no I/O.

What a run is billed for depends on where it runs, which :class:`CostAssumptions` states
(``VIDLUXE_COST_ASSUMPTIONS``, JSON). The embedded default answers "what would the cloud charge for
this run": each stage would be one Lambda invocation, entered by one Step Functions state transition,
and its measured CPU time is priced as the Lambda time that buys it.

CPU time as Lambda time (``compute="cpu_equivalent"``, the default): Lambda gives a function CPU in
proportion to its memory, one full vCPU at 1,769 MB (the table's ``memory_mb_per_vcpu``). A run that
used C CPU-seconds is priced as C seconds of a 1,769 MB function: C x 1769/1024 GB-seconds, so one
CPU-second costs 1.7275 x the GB-second price ($0.0000287924 at $0.0000166667). This assumes the work
parallelises no better on Lambda than it measured here and that a function sized to one vCPU has
enough memory for the stage. On Lambda itself (``compute="lambda_duration"``) a run is billed for its
wall time at the function's memory size, whatever CPU it used.

Other resources: GPU seconds by GPU type (Modal or Replicate per-second prices); model API calls per
call (image); the bytes a run stored, kept ``storage_months`` months, and one PUT request per object
(S3 or R2); a task's delivery: its outputs downloaded ``downloads_per_output`` times (egress and GET
requests). Sizes are in GiB (2**30 bytes), as AWS bills them.

Not priced: Step Functions transitions of Pass, Map and Parallel states (only each stage's own Task
state), cache commands (Upstash: stages do not count them), Modal's CPU and memory beside a GPU, and
free tiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.costs.assumptions import CostAssumptions
from shared.costs.prices import ObjectStorePrices, Price, PriceTable
from shared.storage.costs import CostEntry
from shared.storage.tasks import StageReport

GIB = 2**30
DELIVERY_STAGE = "delivery"


@dataclass(frozen=True)
class StoredOutput:
    """What one stage run left in the object store."""

    bytes: int
    objects: int


@dataclass
class Priced:
    """Cost entries, and the resources that were used but have no price in the table (by name)."""

    entries: list[CostEntry] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return sum(entry.amount_usd for entry in self.entries)


class _Pricer:
    """Builds the entries of one run, all with the same task, stage, run, version and time."""

    def __init__(self, table: PriceTable, task_id: str, stage: str, run: str, at: datetime) -> None:
        self.table = table
        self.task_id, self.stage, self.run, self.at = task_id, stage, run, at
        self.priced = Priced()

    def add(self, provider: str, resource: str, quantity: float, unit: str, unit_price: float) -> None:
        if quantity <= 0:
            return
        self.priced.entries.append(
            CostEntry(
                task_id=self.task_id,
                stage=self.stage,
                run=self.run,
                provider=provider,
                resource=resource,
                quantity=quantity,
                unit=unit,
                unit_price_usd=unit_price,
                amount_usd=quantity * unit_price,
                price_version=self.table.version,
                recorded_at=self.at,
            )
        )

    def add_price(self, provider: str, resource: str, quantity: float, price: Price) -> None:
        self.add(provider, resource, quantity, price.per, price.usd)


def lambda_memory_mb(table: PriceTable, assumptions: CostAssumptions) -> int:
    return assumptions.lambda_memory_mb or table.aws_lambda.memory_mb_per_vcpu


def cpu_second_price(table: PriceTable, assumptions: CostAssumptions) -> float:
    """What one CPU-second costs as Lambda time: the GB-second price x the memory that buys one vCPU."""
    gb_second = table.aws_lambda.gb_second(assumptions.lambda_architecture).usd
    return gb_second * lambda_memory_mb(table, assumptions) / 1024


def _gpu_price(table: PriceTable, provider: str, gpu_type: str) -> Price | None:
    prices: Mapping[str, Price] = table.modal.gpu_second if provider == "modal" else table.replicate.gpu_second
    if gpu_type in prices:
        return prices[gpu_type]
    folded = {name.casefold(): price for name, price in prices.items()}
    return folded.get(gpu_type.casefold())


def _object_store(table: PriceTable, assumptions: CostAssumptions) -> tuple[str, ObjectStorePrices]:
    if assumptions.object_store == "r2":
        return "cloudflare_r2", table.cloudflare_r2
    return "aws_s3", table.aws_s3


def price_stage_run(
    report: StageReport,
    table: PriceTable,
    assumptions: CostAssumptions,
    *,
    stored: StoredOutput | None = None,
) -> Priced:
    """The cost entries of one stage run (zero quantities give no entry).

    ``stored``: what the run wrote (measured by the caller; None prices no storage). A resource with no
    price in ``table`` (an unknown GPU type or model API) is listed in ``unpriced`` instead.
    """
    pricer = _Pricer(table, report.task_id, report.stage, report.input_hash[:16], report.ended_at)
    usage = report.usage
    lam = table.aws_lambda
    if assumptions.compute == "cpu_equivalent":
        pricer.add("aws_lambda", "cpu_seconds", usage.cpu_seconds, "CPU-second", cpu_second_price(table, assumptions))
    else:
        gb_seconds = report.duration_seconds * lambda_memory_mb(table, assumptions) / 1024
        pricer.add_price("aws_lambda", "lambda_gb_seconds", gb_seconds, lam.gb_second(assumptions.lambda_architecture))
    if assumptions.orchestration:
        pricer.add_price("aws_lambda", "lambda_requests", 1, lam.request)
        pricer.add_price("aws_step_functions", "state_transitions", 1, table.aws_step_functions.standard_transition)
    if usage.gpu_seconds > 0:
        gpu_type = usage.gpu_type or "unknown"
        resource = f"gpu_seconds:{gpu_type}"
        price = _gpu_price(table, assumptions.gpu_provider, gpu_type)
        if price is None:
            pricer.priced.unpriced.append(resource)
        else:
            pricer.add_price(assumptions.gpu_provider, resource, usage.gpu_seconds, price)
    for provider, calls in sorted(usage.provider_calls.items()):
        resource = f"provider_call:{provider}"
        call_price = table.provider_calls.get(provider)
        if call_price is None:
            pricer.priced.unpriced.append(resource)
        else:
            pricer.add_price(provider, resource, calls, call_price)
    if stored is not None:
        store_name, store = _object_store(table, assumptions)
        gb_months = stored.bytes / GIB * assumptions.storage_months
        pricer.add_price(store_name, "storage_gb_month", gb_months, store.storage_gb_month)
        pricer.add_price(store_name, "storage_put_requests", stored.objects, store.put_request)
    return pricer.priced


def price_delivery(
    task_id: str, output_bytes: list[int], table: PriceTable, assumptions: CostAssumptions, *, at: datetime
) -> Priced:
    """The cost of handing a finished task's outputs (``output_bytes``: one size per file) to its owner:
    egress and GET requests, each output downloaded ``downloads_per_output`` times."""
    pricer = _Pricer(table, task_id, DELIVERY_STAGE, "", at)
    store_name, store = _object_store(table, assumptions)
    downloads = assumptions.downloads_per_output
    egress_gb = sum(output_bytes) / GIB * downloads
    # An entry even at R2's price of zero: the egress is real, it is just free there.
    pricer.add_price(store_name, "egress_gb", egress_gb, store.egress_gb)
    pricer.add_price(store_name, "download_requests", len(output_bytes) * downloads, store.get_request)
    return pricer.priced
