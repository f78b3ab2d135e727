"""Where stage runs are taken to run, for pricing them (``VIDLUXE_COST_ASSUMPTIONS``, a JSON object).

See :mod:`shared.costs.pricing` for how each assumption turns usage into billed units.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CostAssumptions(BaseModel):
    """Where runs are taken to run, for pricing. The defaults price an embedded run as the AWS
    deployment (Lambda x86, Step Functions, S3, Modal GPUs) would bill it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compute: Literal["cpu_equivalent", "lambda_duration"] = Field(
        default="cpu_equivalent",
        description="cpu_equivalent: CPU-seconds priced as Lambda GB-seconds at lambda_memory_mb (embedded); "
        "lambda_duration: wall time x lambda_memory_mb (on Lambda).",
    )
    lambda_architecture: Literal["x86", "arm"] = "x86"
    lambda_memory_mb: int | None = Field(
        default=None, ge=128, le=10240, description="Default: the price table's memory per vCPU (1,769 MB)."
    )
    gpu_provider: Literal["modal", "replicate"] = "modal"
    object_store: Literal["s3", "r2"] = "s3"
    orchestration: bool = Field(default=True, description="Price one Lambda request and one state transition per run.")
    storage_months: float = Field(default=1.0, ge=0, description="How long stored outputs are kept.")
    downloads_per_output: float = Field(default=1.0, ge=0, description="How often each output is downloaded.")
