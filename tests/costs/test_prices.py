"""The versioned price tables in infra/prices: every one loads, names a source and a date for each price,
and a broken table is refused with a message that says what is wrong."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from shared.costs.prices import DEFAULT_PRICES_DIR, available_versions, load_price_table, select_price_table
from shared.errors import ConfigurationError
from shared.providers.images import NanoBananaProvider, ReplicateFluxProvider

TABLE = DEFAULT_PRICES_DIR / "2026-11.toml"


@pytest.mark.parametrize("version", available_versions(DEFAULT_PRICES_DIR))
def test_every_shipped_table_is_valid_and_sourced(version: str) -> None:
    table = load_price_table(DEFAULT_PRICES_DIR / f"{version}.toml")
    assert table.version == version
    prices = table.prices()
    assert len(prices) >= 25
    for name, price in prices:
        assert price.source.scheme == "https", name
        assert date(2024, 1, 1) <= price.as_of <= table.compiled_on, name
        assert price.per, name


def test_the_2026_11_figures() -> None:
    table = load_price_table(TABLE)
    assert table.verified is False  # compiled offline: to be checked against the sources
    assert table.aws_lambda.gb_second_x86.usd == 0.0000166667
    assert table.aws_lambda.gb_second_arm.usd == 0.0000133334
    assert table.aws_lambda.request.usd == 0.0000002
    assert table.aws_lambda.memory_mb_per_vcpu == 1769
    assert table.aws_step_functions.standard_transition.usd == 0.000025
    assert (table.aws_s3.storage_gb_month.usd, table.aws_s3.egress_gb.usd) == (0.023, 0.09)
    assert (table.cloudflare_r2.storage_gb_month.usd, table.cloudflare_r2.egress_gb.usd) == (0.015, 0.0)
    assert set(table.modal.gpu_second) >= {"T4", "L4", "A10G", "A100", "H100"}
    assert table.modal.gpu_second["H100"].usd == 0.001097
    assert table.replicate.gpu_second["A100-80GB"].sku == "gpu-a100-large"
    assert table.upstash_redis.command.usd == 0.000002


def test_every_model_api_the_code_calls_has_a_price() -> None:
    """A new image provider without a price would show up as unpriced usage: add it to the table."""
    table = load_price_table(TABLE)
    assert {ReplicateFluxProvider.name, NanoBananaProvider.name} <= set(table.provider_calls)


def test_newest_table_is_the_default_and_a_version_can_be_pinned(tmp_path: Path) -> None:
    shutil.copy(TABLE, tmp_path / "2026-11.toml")
    newer = TABLE.read_text().replace('version = "2026-11"', 'version = "2026-12"')
    (tmp_path / "2026-12.toml").write_text(newer.replace("usd = 0.023,", "usd = 0.021,"))
    assert select_price_table(tmp_path).version == "2026-12"
    assert select_price_table(tmp_path).aws_s3.storage_gb_month.usd == 0.021
    assert select_price_table(tmp_path, "2026-11").aws_s3.storage_gb_month.usd == 0.023
    with pytest.raises(ConfigurationError, match="2026-11, 2026-12") as caught:
        select_price_table(tmp_path, "2025-01")
    assert caught.value.code == "PRICE_VERSION_UNKNOWN"
    with pytest.raises(ConfigurationError) as empty:
        select_price_table(tmp_path / "none")
    assert empty.value.code == "PRICE_TABLE_MISSING"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('version = "2026-11"', 'version = "2026-10"', "name the file 2026-10.toml"),
        ("usd = 0.09,", "usd = -0.09,", "aws_s3.egress_gb.usd"),
        ('source = "https://modal.com/pricing"', 'source = "http://modal.com/pricing"', "https"),
        ("as_of = 2025-09-01", "as_of = 2027-01-01", "read after the table was compiled"),
        ("[upstash_redis]", "[upstash]", "upstash"),
        ('currency = "USD"', 'currency = "EUR"', "currency"),
    ],
)
def test_a_broken_table_is_refused_with_the_reason(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = TABLE.read_text()
    assert old in text
    path = tmp_path / "2026-11.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_price_table(path)
    assert caught.value.code == "PRICE_TABLE_INVALID"


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "2026-11.toml"
    path.write_text("version = ")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_price_table(path)
