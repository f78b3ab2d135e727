"""The versioned price table: what each billed unit costs, with the page and date every figure comes from.

Tables are TOML files named by their version (``infra/prices/2026-11.toml``). A published table is
never edited: a price change is a new version, so recorded cost entries (which name their version)
keep their meaning. :func:`load_price_table` validates one file; :func:`select_price_table` picks the
configured version (``VIDLUXE_PRICE_VERSION``), by default the newest in the directory.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from shared.errors import ConfigurationError

DEFAULT_PRICES_DIR = Path(__file__).resolve().parents[2] / "infra" / "prices"
"""Where the tables live in a source checkout (an editable install); a wheel does not carry them."""

_VERSION = re.compile(r"^\d{4}-\d{2}(-[a-z0-9]+)?$")


class Price(BaseModel):
    """One list price: ``usd`` for one ``per`` (a GB-second, a request, an image)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd: Annotated[float, Field(ge=0)]
    per: str = Field(min_length=1)
    source: HttpUrl
    as_of: date = Field(description="When the figure was read from its source.")
    sku: str | None = Field(default=None, description="The provider's own name for what is priced.")
    note: str | None = None

    @field_validator("source")
    @classmethod
    def _https(cls, value: HttpUrl) -> HttpUrl:
        if value.scheme != "https":
            raise ValueError("a price's source must be an https:// page")
        return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LambdaPrices(_Section):
    memory_mb_per_vcpu: int = Field(gt=0, description="The memory size that buys one full vCPU.")
    memory_mb_per_vcpu_source: HttpUrl
    gb_second_x86: Price
    gb_second_arm: Price
    request: Price

    def gb_second(self, architecture: Literal["x86", "arm"]) -> Price:
        return self.gb_second_x86 if architecture == "x86" else self.gb_second_arm


class StepFunctionsPrices(_Section):
    standard_transition: Price


class ObjectStorePrices(_Section):
    storage_gb_month: Price
    put_request: Price
    get_request: Price
    egress_gb: Price


class ModalPrices(_Section):
    gpu_second: dict[str, Price] = Field(min_length=1)
    other: dict[Literal["cpu_core_second", "memory_gib_second"], Price]


class ReplicatePrices(_Section):
    gpu_second: dict[str, Price] = Field(min_length=1)
    other: dict[Literal["cpu_second"], Price]


class UpstashPrices(_Section):
    command: Price


class PriceTable(BaseModel):
    """One version of every price the cost ledger uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    currency: Literal["USD"]
    compiled_on: date
    verified: bool = Field(description="False until every figure was checked against its source.")
    aws_lambda: LambdaPrices
    aws_step_functions: StepFunctionsPrices
    aws_s3: ObjectStorePrices
    cloudflare_r2: ObjectStorePrices
    modal: ModalPrices
    replicate: ReplicatePrices
    upstash_redis: UpstashPrices
    provider_calls: dict[str, Price] = Field(description="Model APIs billed per call, by provider name.")

    @field_validator("version")
    @classmethod
    def _version_format(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("a version is YYYY-MM, optionally with a -suffix (2026-11, 2026-11-b)")
        return value

    @model_validator(mode="after")
    def _prices_read_before_compiled(self) -> PriceTable:
        late = [f"{name} ({price.as_of})" for name, price in self.prices() if price.as_of > self.compiled_on]
        if late:
            raise ValueError(f"prices read after the table was compiled ({self.compiled_on}): {', '.join(late)}")
        return self

    def prices(self) -> list[tuple[str, Price]]:
        """Every price with its dotted name (``modal.gpu_second.T4``), for listing and checks."""
        found: list[tuple[str, Price]] = []

        def walk(prefix: str, value: object) -> None:
            if isinstance(value, Price):
                found.append((prefix, value))
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    walk(f"{prefix}.{name}" if prefix else name, getattr(value, name))
            elif isinstance(value, dict):
                for key, item in value.items():
                    walk(f"{prefix}.{key}", item)

        walk("", self)
        return found


def load_price_table(path: Path) -> PriceTable:
    """Read and validate one table; its ``version`` must be its file name's stem.

    Raises ConfigurationError (PRICE_TABLE_INVALID) naming the file and every problem in it, or
    (PRICE_TABLE_MISSING) when it cannot be read.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the price table {path}: {exc}", code="PRICE_TABLE_MISSING") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"The price table {path} is not valid TOML: {exc}", code="PRICE_TABLE_INVALID"
        ) from exc
    try:
        table = PriceTable.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigurationError(f"The price table {path} is invalid: {problems}", code="PRICE_TABLE_INVALID") from exc
    if table.version != path.stem:
        raise ConfigurationError(
            f"The price table {path} says version {table.version!r}; name the file {table.version}.toml.",
            code="PRICE_TABLE_INVALID",
        )
    return table


def available_versions(directory: Path) -> list[str]:
    """The versions in ``directory``, oldest first (an absent directory has none)."""
    if not directory.is_dir():
        return []
    return sorted(path.stem for path in directory.glob("*.toml") if _VERSION.match(path.stem))


def select_price_table(directory: Path, version: str | None = None) -> PriceTable:
    """The table ``version`` in ``directory``, or the newest one there when ``version`` is None.

    Raises ConfigurationError: PRICE_VERSION_UNKNOWN (listing the versions there) or
    PRICE_TABLE_MISSING (no table at all), and load_price_table's errors.
    """
    versions = available_versions(directory)
    if version is None:
        if not versions:
            raise ConfigurationError(
                f"No price table in {directory}; set VIDLUXE_PRICES_DIR to a directory of <version>.toml files.",
                code="PRICE_TABLE_MISSING",
            )
        version = versions[-1]
    elif version not in versions:
        raise ConfigurationError(
            f"No price table {version!r} in {directory} (there: {', '.join(versions) or 'none'}); "
            "set VIDLUXE_PRICE_VERSION to one of them.",
            code="PRICE_VERSION_UNKNOWN",
        )
    return load_price_table(directory / f"{version}.toml")
