"""What only the S3 object store does: prefixes, content types, pagination, temporary downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.errors import ConfigurationError, StorageKeyError
from shared.settings import Settings
from shared.storage.s3_objects import S3ObjectStore


def test_prefix_is_a_folder_and_isolates_stores(s3_client: Any, s3_bucket: str) -> None:
    one = S3ObjectStore(s3_client, s3_bucket, prefix="tenant-1")
    two = S3ObjectStore(s3_client, s3_bucket, prefix="/tenant-1x/")
    one.put_bytes("k", b"1")
    two.put_bytes("k", b"2")
    assert one.get_bytes("k") == b"1"
    assert two.get_bytes("k") == b"2"
    assert one.list_keys("") == ["k"]
    assert two.list_keys("") == ["k"]
    names = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert names == ["tenant-1/k", "tenant-1x/k"]
    assert one.uri("a/b") == f"s3://{s3_bucket}/tenant-1/a/b"


@pytest.mark.parametrize("prefix", ["../x", "a//b", "a\\b"])
def test_unsafe_prefix_is_rejected(s3_client: Any, prefix: str) -> None:
    with pytest.raises(StorageKeyError):
        S3ObjectStore(s3_client, "bucket", prefix=prefix)


def test_content_type_is_stored(s3_client: Any, s3_bucket: str, tmp_path: Path) -> None:
    store = S3ObjectStore(s3_client, s3_bucket)
    store.put_bytes("a.json", b"{}", content_type="application/json")
    source = tmp_path / "v.mp4"
    source.write_bytes(b"v")
    store.put_file("v.mp4", source, content_type="video/mp4")
    assert s3_client.head_object(Bucket=s3_bucket, Key="a.json")["ContentType"] == "application/json"
    assert s3_client.head_object(Bucket=s3_bucket, Key="v.mp4")["ContentType"] == "video/mp4"


class SmallPages:
    """A client whose list paginators return 3 keys a page (S3's own page is 1000 keys)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.pages = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_paginator(self, name: str) -> Any:
        paginator = self._client.get_paginator(name)
        outer = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Any:
                for page in paginator.paginate(PaginationConfig={"PageSize": 3}, **kwargs):
                    outer.pages += 1
                    yield page

        return Paginator()


def test_list_keys_reads_every_page(s3_client: Any, s3_bucket: str) -> None:
    client = SmallPages(s3_client)
    store = S3ObjectStore(client, s3_bucket, prefix="p")
    keys = [f"frames/{i:05d}.png" for i in range(10)]
    for key in reversed(keys):
        store.put_bytes(key, b"")
    assert store.list_keys("frames/") == keys
    assert client.pages == 4


def test_foreign_object_names_are_not_listed(s3_client: Any, s3_bucket: str) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="ok", Body=b"")
    s3_client.put_object(Bucket=s3_bucket, Key="with space", Body=b"")
    s3_client.put_object(Bucket=s3_bucket, Key="a//b", Body=b"")
    assert S3ObjectStore(s3_client, s3_bucket).list_keys("") == ["ok"]


def test_local_copy_is_a_temporary_read_only_file(s3_client: Any, s3_bucket: str) -> None:
    store = S3ObjectStore(s3_client, s3_bucket)
    store.put_bytes("in/clip.mov", b"movie")
    with store.local_copy("in/clip.mov") as path:
        assert path.read_bytes() == b"movie"
        assert path.suffix == ".mov"
        assert not path.stat().st_mode & 0o222
    assert not path.exists()


def test_local_copy_is_removed_when_the_block_raises(s3_client: Any, s3_bucket: str) -> None:
    store = S3ObjectStore(s3_client, s3_bucket)
    store.put_bytes("x", b"x")
    with pytest.raises(RuntimeError), store.local_copy("x") as path:
        raise RuntimeError("ffmpeg failed")
    assert not path.exists()


def test_missing_bucket_is_not_reported_as_a_missing_key(s3_client: Any) -> None:
    from botocore.exceptions import ClientError

    store = S3ObjectStore(s3_client, "no-such-bucket-vidluxe")
    with pytest.raises(ClientError):
        store.get_bytes("k")


def test_from_settings(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, s3_bucket: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(
        object_store="s3",
        s3_bucket=s3_bucket,
        s3_prefix="pre",
        s3_endpoint_url=moto_endpoint,
        s3_region="us-east-1",
    )
    store = S3ObjectStore.from_settings(settings)
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"
    assert store.uri("k") == f"s3://{s3_bucket}/pre/k"


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_from_settings_presigns_with_signature_v4(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = S3ObjectStore.from_settings(Settings(object_store="s3", s3_bucket="b", s3_region=region))
    url = store.client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "Signature=" not in url.replace("X-Amz-Signature=", "")


def test_from_settings_needs_a_bucket() -> None:
    with pytest.raises(ConfigurationError, match="VIDLUXE_S3_BUCKET"):
        S3ObjectStore.from_settings(Settings(object_store="s3", s3_bucket=None))
