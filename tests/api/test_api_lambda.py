"""The AWS adapters: the API Lambda (Mangum, API Gateway HTTP API v2 events) and the upload-trigger
Lambda (S3 ObjectCreated events), with the S3 backend's presigned POST and GET against moto's S3
server on loopback and Step Functions executions on the same server."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

import functions.api
import functions.service
import functions.upload_trigger

CONTEXT = SimpleNamespace(
    function_name="vidluxe-api",
    memory_limit_in_mb=1024,
    aws_request_id="c6af9ac6-7b61-11e6-9a41-93e812345678",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:vidluxe-api",
)


def http_api_event(
    method: str, path: str, *, headers: dict[str, str] | None = None, body: str | None = None, query: str = ""
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, shaped like the real ones."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "*/*",
            "content-length": str(len(body or "")),
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": "Root=1-6742f8a0-3c1d2e4f5a6b7c8d9e0f1a2b",
            "x-forwarded-for": "203.0.113.9",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **({"content-type": "application/json"} if body is not None else {}),
            **(headers or {}),
        },
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "CRLjHgF5IAMEVxw=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1795449600000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def s3_put_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    """An S3 ObjectCreated:Post notification as Lambda receives it (the key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-23T16:00:01.123Z",
                "eventName": "ObjectCreated:Post",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.9"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "vidluxe-uploads",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def _call(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = functions.api.handler(event, CONTEXT)
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], response.get("headers", {}), json.loads(body) if body else None


@pytest.fixture
def fresh_lambdas() -> Iterator[None]:
    functions.service.cloud_services.cache_clear()
    functions.api._adapter.cache_clear()
    yield
    if functions.service.cloud_services.cache_info().currsize:
        functions.service.cloud_services().close()
    functions.service.cloud_services.cache_clear()
    functions.api._adapter.cache_clear()


def test_api_lambda_answers_http_api_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_lambdas: None
) -> None:
    monkeypatch.setenv("VIDLUXE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIDLUXE_TASK_STORE", "sqlite")
    monkeypatch.setenv("VIDLUXE_OBJECT_STORE", "local")
    monkeypatch.setenv("VIDLUXE_PUBLIC_URL", "https://api.example.com")
    key = functions.service.cloud_services().tenants.issue_key("acme").api_key
    auth = {"authorization": f"Bearer {key}"}

    assert _call(http_api_event("GET", "/healthz"))[::2] == (200, {"status": "ok"})
    status, headers, created = _call(
        http_api_event(
            "POST",
            "/v1/videos",
            headers={**auth, "idempotency-key": "k1"},
            body=json.dumps({"pipeline": "enhance", "options": {"title": "Hi"}}),
        )
    )
    assert status == 201, created
    assert created["upload"]["url"].startswith("https://api.example.com/v1/uploads/uploads/tsk_")
    assert headers["location"] == f"/v1/videos/{created['task_id']}"

    status, headers, document = _call(http_api_event("GET", f"/v1/videos/{created['task_id']}", headers=auth))
    assert status == 200 and document["status"] == "awaiting_upload" and headers["retry-after"] == "5"
    status, _, _ = _call(
        http_api_event("GET", f"/v1/videos/{created['task_id']}", headers={**auth, "if-none-match": headers["etag"]})
    )
    assert status == 304
    status, _, listed = _call(http_api_event("GET", "/v1/videos", headers=auth, query="limit=1&status=awaiting_upload"))
    assert status == 200 and [v["task_id"] for v in listed["data"]] == [created["task_id"]]

    status, _, error = _call(http_api_event("GET", f"/v1/videos/{created['task_id']}"))
    assert status == 401 and error["error"]["code"] == "UNAUTHORIZED"
    status, _, error = _call(http_api_event("POST", "/v1/videos", headers=auth, body='{"pipeline": "x"}'))
    assert status == 422 and error["error"]["field"] == "pipeline"
    status, _, error = _call(http_api_event("GET", "/nope", headers=auth))
    assert status == 404 and error["error"]["code"] == "NOT_FOUND"


# ---------------------------------------------------------------------------------- S3 + Step Functions



@pytest.mark.parametrize("layout", ["one-bucket", "three-buckets"])
def test_s3_upload_event_starts_one_step_functions_execution(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, clip: Path,
    fresh_lambdas: None,
) -> None:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SFN": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    run = f"vidluxe-{uuid.uuid4().hex[:12]}"
    # One bucket: VIDLUXE_S3_BUCKET holds every key. Three: as the AWS stack keeps them (uploads, outputs apart).
    buckets = {kind: run if layout == "one-bucket" else f"{run}-{kind}" for kind in ("uploads", "artifacts", "outputs")}
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    for bucket in set(buckets.values()):
        s3.create_bucket(Bucket=bucket)
    sfn = boto3.client("stepfunctions", endpoint_url=moto_endpoint, region_name="us-east-1")
    machine = sfn.create_state_machine(
        name=f"enhance-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/vidluxe-sfn",
    )["stateMachineArn"]
    monkeypatch.setenv("VIDLUXE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIDLUXE_OBJECT_STORE", "s3")
    monkeypatch.setenv("VIDLUXE_S3_BUCKET", buckets["artifacts"])
    for kind in ("uploads", "outputs"):
        if layout == "one-bucket":
            monkeypatch.delenv(f"VIDLUXE_S3_{kind.upper()}_BUCKET", raising=False)
        else:
            monkeypatch.setenv(f"VIDLUXE_S3_{kind.upper()}_BUCKET", buckets[kind])
    monkeypatch.setenv("VIDLUXE_S3_PREFIX", "env/test")
    monkeypatch.setenv("VIDLUXE_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("VIDLUXE_S3_REGION", "us-east-1")
    monkeypatch.setenv("VIDLUXE_STATE_MACHINE_ARNS", json.dumps({"enhance": machine}))
    monkeypatch.setenv("VIDLUXE_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024))
    services = functions.service.cloud_services()
    auth = {"authorization": f"Bearer {services.tenants.issue_key('acme').api_key}"}

    status, _, created = _call(http_api_event("POST", "/v1/videos", headers=auth, body='{"pipeline": "enhance"}'))
    assert status == 201, created
    upload = created["upload"]
    assert upload["method"] == "POST" and upload["url"].startswith(moto_endpoint)
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", 1, 10 * 1024 * 1024] in policy["conditions"]
    assert {"Content-Type": "video/mp4"} in policy["conditions"]
    assert {"bucket": buckets["uploads"]} in policy["conditions"]
    full_key = upload["fields"]["key"]
    assert full_key.startswith("env/test/uploads/") and full_key.endswith("/source.mp4")

    posted = httpx.post(
        upload["url"], data=upload["fields"], files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    assert s3.head_object(Bucket=buckets["uploads"], Key=full_key)["ContentLength"] == clip.stat().st_size
    key = full_key.removeprefix("env/test/")
    if layout == "three-buckets":  # only the uploads bucket's events are uploads
        stray = functions.upload_trigger.handler(s3_put_event(buckets["artifacts"], full_key, 1), CONTEXT)
        assert stray == {"started": [], "ignored": [key]}

    event = s3_put_event(buckets["uploads"], full_key, clip.stat().st_size)
    first = functions.upload_trigger.handler(event, CONTEXT)
    again = functions.upload_trigger.handler(event, CONTEXT)  # S3 delivers at least once
    assert (first, again) == ({"started": [key], "ignored": []}, {"started": [], "ignored": [key]})
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [e["name"] for e in executions] == [created["task_id"]]
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"])["source_key"] == key

    status, _, document = _call(http_api_event("GET", f"/v1/videos/{created['task_id']}", headers=auth))
    assert status == 200 and document["status"] == "queued"

    # Outputs are presigned GETs of the bucket that holds the deliverables.
    final = f"tasks/{created['task_id']}/assemble/0123456789abcdef/final.mp4"
    s3.put_object(Bucket=buckets["outputs"], Key=f"env/test/{final}", Body=b"\x00\x00\x00\x18ftypmp42")
    url = services.videos.presigner.download(final, expires_at=services.videos.download_expiry(), filename="final.mp4")
    assert buckets["outputs"] in url
    downloaded = httpx.get(url)
    assert downloaded.status_code == 200 and downloaded.content[4:8] == b"ftyp"
    assert "response-content-disposition=attachment" in url  # moto ignores it; S3 sets the header
