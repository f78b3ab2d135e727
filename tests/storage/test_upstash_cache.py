"""What only the Upstash cache does: the REST requests it sends, base64 values, auth and network errors.

The contract suite (test_cache_contract.py) runs the same cases as the other caches; here the loopback
REST server (upstash_rest_fake.py) is inspected, and the Redis behind it read directly.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from upstash_redis.errors import UpstashError

from shared.errors import ConfigurationError
from shared.settings import Settings
from shared.storage.factory import build_cache
from shared.storage.upstash_cache import DEFAULT_NAMESPACE, UpstashCache


@pytest.mark.redis
def test_requests_are_redis_commands_as_json_arrays(upstash_rest: Any, redis_namespace: str) -> None:
    cache = UpstashCache.from_url(upstash_rest.url, upstash_rest.token, namespace=redis_namespace)
    first = len(upstash_rest.requests)
    cache.set("k", b"\x00\xff", ttl_seconds=60)
    cache.get("k")
    cache.delete("k")
    cache.ping()
    cache.close()
    sent = upstash_rest.requests[first:]
    name = redis_namespace + "k"
    assert [(path, body) for path, _, body in sent] == [
        ("/", ["SET", name, base64.b64encode(b"\x00\xff").decode(), "EX", 60]),
        ("/", ["GET", name]),
        ("/", ["DEL", name]),
        ("/", ["PING"]),
    ]
    headers = {key.lower(): value for key, value in sent[0][1].items()}
    assert headers["authorization"] == f"Bearer {upstash_rest.token}"
    assert headers["content-type"] == "application/json"
    assert headers["upstash-encoding"] == "base64"
    assert not any(key.startswith("upstash-telemetry") for key in headers)


@pytest.mark.redis
def test_values_are_base64_text_with_a_server_side_ttl(
    upstash_rest: Any, redis_client: Any, redis_namespace: str
) -> None:
    cache = UpstashCache.from_url(upstash_rest.url, upstash_rest.token, namespace=redis_namespace)
    value = bytes(range(256))
    cache.set("bin", value, ttl_seconds=30)
    assert redis_client.get(redis_namespace + "bin") == base64.b64encode(value)
    assert 0 < redis_client.ttl(redis_namespace + "bin") <= 30
    assert cache.get("bin") == value
    cache.close()


@pytest.mark.redis
def test_an_entry_written_raw_is_refused_not_misread(
    upstash_rest: Any, redis_client: Any, redis_namespace: str
) -> None:
    redis_client.set(redis_namespace + "raw", b"\xff\x00 not base64", ex=30)
    cache = UpstashCache.from_url(upstash_rest.url, upstash_rest.token, namespace=redis_namespace)
    with pytest.raises(ValueError, match="not base64"):
        cache.get("raw")
    cache.close()


def test_default_namespace_differs_from_the_redis_cache() -> None:
    from shared.storage.redis_cache import RedisCache

    redis_cache = RedisCache.from_url("redis://127.0.0.1:6379/0")  # connects on first use only
    assert redis_cache.namespace != DEFAULT_NAMESPACE
    redis_cache.close()


@pytest.mark.redis
def test_wrong_token_is_the_sdk_error(upstash_rest: Any) -> None:
    cache = UpstashCache.from_url(upstash_rest.url, "not-the-token", retries=0)
    with pytest.raises(UpstashError, match="WRONGPASS"):
        cache.ping()
    with pytest.raises(UpstashError, match="WRONGPASS"):
        cache.get("k")
    cache.close()


def test_unreachable_endpoint_raises_after_the_retries() -> None:
    cache = UpstashCache.from_url("http://127.0.0.1:9", "token", retries=1, retry_interval=0.01)
    with pytest.raises(httpx.HTTPError):
        cache.ping()
    cache.close()


@pytest.mark.parametrize(("url", "token"), [("redis://host:6379", "t"), ("https://x.upstash.io", "")])
def test_from_url_checks_its_arguments(url: str, token: str) -> None:
    with pytest.raises(ValueError):
        UpstashCache.from_url(url, token)


@pytest.mark.redis
def test_factory_reads_upstash_variable_names(
    upstash_rest: Any, redis_namespace: str, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDLUXE_CACHE", "upstash")
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", upstash_rest.url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", upstash_rest.token)
    cache = build_cache(Settings(), clock)
    assert isinstance(cache, UpstashCache)
    assert cache.namespace == DEFAULT_NAMESPACE
    cache.ping()
    cache.close()

    monkeypatch.setenv("VIDLUXE_UPSTASH_REDIS_REST_TOKEN", "wins-over-the-vendor-name")
    settings = Settings()
    assert settings.upstash_redis_rest_token is not None
    assert settings.upstash_redis_rest_token.get_secret_value() == "wins-over-the-vendor-name"


def test_factory_says_what_to_set(clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"VIDLUXE_{name}", raising=False)
    with pytest.raises(ConfigurationError, match="UPSTASH_REDIS_REST_TOKEN"):
        build_cache(Settings(cache="upstash", upstash_redis_rest_url="https://x.upstash.io"), clock)
    with pytest.raises(ConfigurationError, match="UPSTASH_REDIS_REST_URL"):
        build_cache(
            Settings(cache="upstash", upstash_redis_rest_url="redis://x:6379", upstash_redis_rest_token="t"),
            clock,
        )
