"""What only the S3 object store does: prefixes, content types, pagination, temporary downloads, and the
routing of keys to the uploads, artifacts and outputs buckets (presigned requests included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.clock import SystemClock
from shared.errors import ConfigurationError, StorageKeyError
from shared.settings import Settings
from shared.storage.s3_objects import OUTPUT_STAGES, S3ObjectStore, key_class, prefix_class
from shared.storage.s3_presign import S3Presigner


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


# ------------------------------------------------------------------------------------ three buckets

ROUTED = {
    "uploads/tsk_1/source.mp4": "uploads",
    "tasks/tsk_1/probe/0123456789abcdef/output.json": "artifacts",
    "tasks/tsk_1/matte-gpu/0123/matte.mp4": "artifacts",
    "tasks/tsk_1/input/source-0123.mp4": "artifacts",
    "tasks/tsk_1/assemble/0123456789abcdef/final.mp4": "outputs",
    "tasks/tsk_1/finalize/0123456789abcdef/comparison.jpg": "outputs",
    "tasks/tsk_1/finalize/0123456789abcdef/output.json": "outputs",
    "tasks/tsk_1/showcase_preview/0123456789abcdef/preview.gif": "outputs",
    "readyz/probe": "artifacts",
}


def three_bucket_store(s3_client: Any, buckets: dict[str, str], prefix: str = "") -> S3ObjectStore:
    return S3ObjectStore(
        s3_client, buckets["artifacts"], prefix, uploads_bucket=buckets["uploads"], outputs_bucket=buckets["outputs"]
    )


def names_in(s3_client: Any, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize(("key", "kind"), ROUTED.items())
def test_key_class_follows_the_key_layout(key: str, kind: str) -> None:
    assert key_class(key) == kind


def test_the_stages_that_hold_deliverables_exist() -> None:
    from shared.stages import ALL_STAGES

    assert {stage.name for stage in ALL_STAGES} >= OUTPUT_STAGES


def test_uploads_are_the_keys_the_service_hands_out() -> None:
    from shared.service.videos import upload_key

    assert key_class(upload_key("tsk_1", "source", "video/mp4")) == "uploads"


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [("", None), ("uploads", None), ("uploads/", "uploads"), ("readyz/", "artifacts"), ("tasks/", None),
     ("tasks/t/", None), ("tasks/t/finalize", None), ("tasks/t/finalize/", "outputs"), ("tasks/t/probe/", "artifacts"),
     ("tasks/t/finalize/0123/", "outputs")],
)
def test_prefix_class_is_known_only_when_every_key_under_it_shares_one(prefix: str, kind: str | None) -> None:
    assert prefix_class(prefix) == kind


def test_each_key_lives_in_its_bucket(s3_client: Any, s3_buckets: dict[str, str]) -> None:
    store = three_bucket_store(s3_client, s3_buckets, prefix="env")
    for key in ROUTED:
        store.put_bytes(key, key.encode())
    for kind, bucket in s3_buckets.items():
        assert names_in(s3_client, bucket) == sorted(f"env/{k}" for k, c in ROUTED.items() if c == kind)
    for key, kind in ROUTED.items():
        assert store.get_bytes(key) == key.encode() and store.exists(key) and store.size(key) == len(key)
        assert store.uri(key) == f"s3://{s3_buckets[kind]}/env/{key}"
        with store.local_copy(key) as path:
            assert path.read_bytes() == key.encode()
    store.delete("tasks/tsk_1/finalize/0123456789abcdef/comparison.jpg")
    assert not store.exists("tasks/tsk_1/finalize/0123456789abcdef/comparison.jpg")


def test_list_keys_merges_the_buckets_a_prefix_may_reach(s3_client: Any, s3_buckets: dict[str, str]) -> None:
    store = three_bucket_store(s3_client, s3_buckets)
    for key in ROUTED:
        store.put_bytes(key, b"")
    # An object in a bucket its key does not route to is not the store's (another tool wrote it).
    s3_client.put_object(Bucket=s3_buckets["artifacts"], Key="uploads/tsk_1/stray.mp4", Body=b"")
    assert store.list_keys("") == sorted(ROUTED)
    assert store.list_keys("tasks/tsk_1/") == sorted(k for k in ROUTED if k.startswith("tasks/"))
    assert store.list_keys("tasks/tsk_1/finalize/") == [
        "tasks/tsk_1/finalize/0123456789abcdef/comparison.jpg", "tasks/tsk_1/finalize/0123456789abcdef/output.json"
    ]
    assert store.list_keys("uploads/") == ["uploads/tsk_1/source.mp4"]


def test_from_settings_keeps_the_classes_apart_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, s3_buckets: dict[str, str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("VIDLUXE_S3_UPLOADS_BUCKET", s3_buckets["uploads"])
    monkeypatch.setenv("VIDLUXE_S3_OUTPUTS_BUCKET", s3_buckets["outputs"])
    base = {"object_store": "s3", "s3_endpoint_url": moto_endpoint, "s3_region": "us-east-1"}
    apart = S3ObjectStore.from_settings(Settings(**base, s3_bucket=s3_buckets["artifacts"]))
    assert {kind: apart.bucket_of(key) for key, kind in ROUTED.items()} == {
        kind: s3_buckets[kind] for kind in ROUTED.values()
    }
    one = S3ObjectStore.from_settings(
        Settings(**base, s3_bucket="vidluxe-one", s3_uploads_bucket=None, s3_outputs_bucket=None)
    )
    assert {one.bucket_of(key) for key in ROUTED} == {"vidluxe-one"}


def test_presigned_posts_and_gets_reach_the_bucket_of_their_key(
    s3_client: Any, s3_buckets: dict[str, str], moto_endpoint: str
) -> None:
    store = three_bucket_store(s3_client, s3_buckets, prefix="env")
    presigner = S3Presigner(store, SystemClock())
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    upload = presigner.upload("uploads/tsk_1/source.mp4", content_type="video/mp4", max_bytes=1024,
                              expires_at=expires_at)
    assert upload.url.startswith(moto_endpoint) and s3_buckets["uploads"] in upload.url
    posted = httpx.post(upload.url, data=upload.fields, files={"file": ("clip.mp4", b"\x00movie", "video/mp4")})
    assert posted.status_code in (200, 201, 204), posted.text
    assert names_in(s3_client, s3_buckets["uploads"]) == ["env/uploads/tsk_1/source.mp4"]
    assert names_in(s3_client, s3_buckets["artifacts"]) == names_in(s3_client, s3_buckets["outputs"]) == []

    final = "tasks/tsk_1/assemble/0123456789abcdef/final.mp4"
    store.put_bytes(final, b"the video")
    url = presigner.download(final, expires_at=expires_at, filename="final.mp4")
    assert s3_buckets["outputs"] in url
    assert httpx.get(url).content == b"the video"
    assert httpx.get(presigner.download("uploads/tsk_1/source.mp4", expires_at=expires_at)).content == b"\x00movie"
