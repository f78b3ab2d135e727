"""The S3 object store configured for Cloudflare R2 (README, "Cloudflare R2"): the endpoint
``https://<account id>.r2.cloudflarestorage.com``, region ``auto``, and an R2 API token's access key pair
in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.

Nothing here reaches Cloudflare: the client built from R2-style settings is checked to sign for that
endpoint and region (a presigned URL is computed offline), and a moto server on loopback stands in for
the endpoint to show every request goes to the configured URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from shared.settings import Settings
from shared.storage.factory import build_object_store
from shared.storage.s3_objects import S3ObjectStore

ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def r2_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3's default session keeps the credentials it resolved first: start from a fresh one
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "r2-access-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "r2-secret-access-key")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def r2_settings(endpoint: str, bucket: str = "vidluxe-media") -> Settings:
    return Settings(object_store="s3", s3_bucket=bucket, s3_prefix="prod", s3_endpoint_url=endpoint, s3_region="auto")


def test_r2_settings_sign_for_the_account_endpoint_and_region_auto(r2_credentials: None) -> None:
    endpoint = f"https://{ACCOUNT}.r2.cloudflarestorage.com"
    store = build_object_store(r2_settings(endpoint))
    assert isinstance(store, S3ObjectStore)
    client = store.client
    assert client.meta.endpoint_url == endpoint
    assert client.meta.region_name == "auto"

    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "vidluxe-media", "Key": "prod/a.mp4"}, ExpiresIn=60
    )
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert parts.hostname is not None and parts.hostname.endswith(f"{ACCOUNT}.r2.cloudflarestorage.com")
    assert "vidluxe-media" in f"{parts.hostname}{parts.path}" and parts.path.endswith("/prod/a.mp4")
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]  # R2 accepts SigV4 only
    assert query["X-Amz-Credential"][0].split("/")[0] == "r2-access-key-id"
    assert query["X-Amz-Credential"][0].split("/")[2:] == ["auto", "s3", "aws4_request"]


def test_every_request_goes_to_the_configured_endpoint(
    r2_credentials: None, moto_endpoint: str, s3_client: Any, s3_bucket: str
) -> None:
    """moto on loopback stands in for https://<account>.r2.cloudflarestorage.com."""
    store = build_object_store(r2_settings(moto_endpoint, s3_bucket))
    assert isinstance(store, S3ObjectStore)
    store.put_bytes("tasks/t1/probe/output.json", b"{}", content_type="application/json")
    assert store.get_bytes("tasks/t1/probe/output.json") == b"{}"
    assert store.list_keys("tasks/") == ["tasks/t1/probe/output.json"]
    # What landed in the stand-in's bucket, seen through another client: under the configured prefix.
    keys = [item["Key"] for item in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["prod/tasks/t1/probe/output.json"]
