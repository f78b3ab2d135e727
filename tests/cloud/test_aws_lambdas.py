"""The Lambda handlers under powertools, invoked with real-shaped events against moto's S3 (the stack's
three buckets), Step Functions, DynamoDB and SSM: the API (HTTP API v2), the upload trigger (S3
ObjectCreated:Put, delivered twice), a stage (the Payload Step Functions' lambda:invoke sends, from the
real ASL file), the execution events, the webhook events they and the API and the stages report (on
SQLite and PostgreSQL) and the webhook delivery each event wakes (at the boto3 client's boundary), and
the SSM secrets read at cold start."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_events import LambdaContext, execution_status_change, http_api, s3_object_created, step_functions_payload
from botocore.stub import Stubber

import functions.api
import functions.execution_events
import functions.stages
import functions.upload_trigger
import functions.webhook_wake
import state_machines
from functions.secrets import load_ssm_secrets
from shared.errors import InvalidInputError
from shared.pipeline.enhance import EnhanceOptions, submit_enhance
from shared.pipeline.execution import new_task_id
from shared.pipeline.stage import input_hash
from shared.stages.probe import PROBE
from web_hooks.events import EventType, derived_event_id, task_stage_completed_data

REGION = "us-east-1"
# As infra/aws/storage.yml names them for the stack vidluxe-test.
UPLOADS, ARTIFACTS, OUTPUTS = (
    f"vidluxe-test-{kind}-123456789012-us-east-1" for kind in ("uploads", "artifacts", "outputs")
)
DELIVERY_FUNCTION = "vidluxe-test-webhookDelivery"
WAKE = {"FunctionName": DELIVERY_FUNCTION, "InvocationType": "Event", "Payload": b"{}"}  # the invoke's request
HOOK_URL = "http://127.0.0.1:9/hooks"  # never called: the delivery Lambda is not run here
TABLE = "vidluxe-test-IdempotencyTable"
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass
class Stack:
    """What `osls deploy` would have created, made in moto with the same shapes."""

    machines: dict[str, str]
    s3: Any
    sfn: Any
    dynamodb: Any


def _deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Stack:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (UPLOADS, ARTIFACTS, OUTPUTS):
        s3.create_bucket(Bucket=bucket)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(  # infra/aws/storage.yml's IdempotencyTable
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machines = {}
    for pipeline in state_machines.available():
        # The definition as CloudFormation hands it to Step Functions: every ${...FunctionArn} substituted.
        text = (Path(state_machines.__file__).parent / f"{pipeline}.asl.json").read_text()
        text = SUBSTITUTION.sub(lambda m: f"arn:aws:lambda:{REGION}:123456789012:function:vidluxe-test-{m[1]}", text)
        machines[pipeline] = sfn.create_state_machine(
            name=f"vidluxe-test-{pipeline}",
            definition=text,
            roleArn="arn:aws:iam::123456789012:role/vidluxe-test-StatesRole",
        )["stateMachineArn"]
    for name, value in {
        "VIDLUXE_HOME": str(tmp_path / "home"),
        "VIDLUXE_TASK_STORE": "sqlite",
        "VIDLUXE_CACHE": "local",
        "VIDLUXE_OBJECT_STORE": "s3",
        "VIDLUXE_S3_BUCKET": ARTIFACTS,
        "VIDLUXE_S3_UPLOADS_BUCKET": UPLOADS,
        "VIDLUXE_S3_OUTPUTS_BUCKET": OUTPUTS,
        "VIDLUXE_S3_REGION": REGION,
        "VIDLUXE_STATE_MACHINE_ARNS": json.dumps(machines),
        "VIDLUXE_IDEMPOTENCY_TABLE": TABLE,
        "VIDLUXE_UPLOAD_MAX_BYTES": str(10 * 1024 * 1024),
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    return Stack(machines, s3, sfn, dynamodb)


def _api(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = functions.api.handler(event, LambdaContext("vidluxe-test-api"))
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], response.get("headers", {}), json.loads(body) if body else None


def _wakes(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """The Lambda client the wake-ups go through, behind botocore's Stubber, which checks each request
    against the Lambda API's model and the expected :data:`WAKE`. An invoke nobody expected is the
    Stubber's error, a BotoCoreError: logged as "webhook delivery not woken", which the tests count."""
    client = boto3.client("lambda", region_name=REGION)
    monkeypatch.setattr(functions.webhook_wake, "_lambda_client", lambda: client)
    return Stubber(client)


def _not_woken(lines: list[dict[str, Any]]) -> list[str]:
    return [line["error"] for line in lines if line.get("message") == "webhook delivery not woken"]


def _metrics(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """name -> value over the EMF documents among ``lines`` (namespace VidLuxe only)."""
    found: dict[str, Any] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "VidLuxe"
            for metric in directive["Metrics"]:
                found[metric["Name"]] = line[metric["Name"]]
    return found


def _create_and_upload(
    stack: Stack, clip: Path, **request: Any
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """POST /v1/videos through the API Lambda, then the client's upload (the presigned POST's object)."""
    services = functions.api.cloud_services()
    auth = {"authorization": f"Bearer {services.tenants.issue_key('acme').api_key}"}
    status, _, created = _api(
        http_api(
            "POST", "/v1/videos", route="ANY /v1/{proxy+}", headers=auth,
            body=json.dumps({"pipeline": "enhance", "options": {"title": "Hi"}, **request}),
        )
    )
    assert status == 201, created
    upload = created["upload"]
    assert upload["method"] == "POST" and upload["fields"]["key"] == f"uploads/{created['task_id']}/source.mp4"
    assert upload["url"] == f"https://{UPLOADS}.s3.amazonaws.com/"  # the uploads bucket
    stack.s3.put_object(Bucket=UPLOADS, Key=upload["fields"]["key"], Body=clip.read_bytes(), ContentType="video/mp4")
    return created, upload["fields"]["key"], auth


def test_duplicate_s3_events_start_one_execution_named_by_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None, clip: Path,
    lambda_stdout: Callable[[], list[dict[str, Any]]],
) -> None:
    stack = _deploy(tmp_path, monkeypatch)
    created, key, auth = _create_and_upload(stack, clip)
    task_id = created["task_id"]
    context = LambdaContext("vidluxe-test-uploadTrigger")
    event = s3_object_created(UPLOADS, key, clip.stat().st_size)

    first = functions.upload_trigger.handler(event, context)
    again = functions.upload_trigger.handler(event, context)  # S3 delivers at least once
    assert first == {"started": [key], "ignored": []}
    assert again == {"started": [], "ignored": [key]}

    executions = stack.sfn.list_executions(stateMachineArn=stack.machines["enhance"])["executions"]
    assert [e["name"] for e in executions] == [task_id]
    started_with = json.loads(stack.sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    task = functions.upload_trigger.cloud_services().runtime.tasks.get_task(task_id)
    assert started_with == task.input and started_with["source_key"] == key

    # The redelivery was answered from the idempotency record, one item for the one S3 event record.
    items = stack.dynamodb.scan(TableName=TABLE)["Items"]
    assert len(items) == 1 and items[0]["status"]["S"] == "COMPLETED"
    assert "expiration" in items[0]

    # A new object event for the same key (a second PUT: another sequencer) passes the idempotency
    # layer, and the task's status stops it: still one execution.
    rewritten = s3_object_created(UPLOADS, key, clip.stat().st_size, sequencer="0055AED6DCD9028200")
    assert functions.upload_trigger.handler(rewritten, context) == {"started": [], "ignored": [key]}
    assert len(stack.sfn.list_executions(stateMachineArn=stack.machines["enhance"])["executions"]) == 1

    status, _, document = _api(http_api("GET", f"/v1/videos/{task_id}", route="ANY /v1/{proxy+}", headers=auth))
    assert status == 200 and document["status"] == "queued"

    lines = lambda_stdout()
    trigger_logs = [line for line in lines if line.get("message") == "upload event"]
    assert [(line["correlation_id"], line["task_id"], line["replay"]) for line in trigger_logs] == [
        (task_id, task_id, False), (task_id, task_id, True), (task_id, task_id, False),
    ]
    assert trigger_logs[0]["function_name"] == "vidluxe-test-uploadTrigger"
    assert {"UploadsStarted", "UploadsIgnored", "ApiRequests"} <= set(_metrics(lines))


def test_api_lambda_logs_the_request_id_and_counts_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None,
    lambda_stdout: Callable[[], list[dict[str, Any]]],
) -> None:
    _deploy(tmp_path, monkeypatch)
    status, _, body = _api(http_api("GET", "/healthz", route="GET /healthz"))
    assert (status, body) == (200, {"status": "ok"})
    status, _, error = _api(http_api("GET", "/v1/videos", route="ANY /v1/{proxy+}"))
    assert status == 401 and error["error"]["code"] == "UNAUTHORIZED"

    lines = lambda_stdout()
    emf = [line for line in lines if "_aws" in line and "ApiRequests" in line]
    assert len(emf) == 2 and all(line["service"] == "vidluxe" for line in emf)
    assert "ApiServerErrors" not in _metrics(lines)


def test_stage_lambda_runs_the_payload_step_functions_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None, clip: Path,
    lambda_stdout: Callable[[], list[dict[str, Any]]],
) -> None:
    stack = _deploy(tmp_path, monkeypatch, VIDLUXE_WEBHOOK_DELIVERY_FUNCTION=DELIVERY_FUNCTION)
    with _wakes(monkeypatch):  # no webhook URL anywhere: nothing to wake the delivery for
        created, key, _ = _create_and_upload(stack, clip)
        functions.upload_trigger.handler(s3_object_created(UPLOADS, key, clip.stat().st_size), LambdaContext("t"))
        task = functions.upload_trigger.cloud_services().runtime.tasks.get_task(created["task_id"])

        payload = step_functions_payload("enhance", "Probe", task.input, execution_name=task.task_id)
        assert payload["task_id"] == task.task_id and payload["source_key"] == key
        output = functions.stages.probe(payload, LambdaContext("vidluxe-test-probe"))
        assert output["source_key"] == key and output["chunks"] and output["frames"] > 0, output
        # A retried or replayed Task returns the stored output of the identical run.
        assert functions.stages.probe(payload, LambdaContext("vidluxe-test-probe")) == output
        manifests = stack.s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=f"tasks/{task.task_id}/probe/")["Contents"]
        assert any(item["Key"].endswith("/output.json") for item in manifests)

        with pytest.raises(InvalidInputError):  # its class name is what the ASL Retry/Catch match
            functions.stages.probe({**payload, "unexpected": 1}, LambdaContext("vidluxe-test-probe"))

        # A task of no tenant (a CLI's, in the same database): its stage runs report nothing either.
        cli_task = submit_enhance(functions.stages._runtime(), new_task_id(), clip, EnhanceOptions())
        cli_payload = step_functions_payload("enhance", "Probe", cli_task.input, execution_name=cli_task.task_id)
        assert functions.stages.probe(cli_payload, LambdaContext("vidluxe-test-probe"))["frames"] > 0

    services = functions.stages.cloud_services()
    tenant_id = services.videos.videos.get(task.task_id).tenant_id
    assert services.extras["webhook_outbox"].list_deliveries(tenant_id).items == []
    lines = lambda_stdout()
    assert _not_woken(lines) == []
    emf = [line for line in lines if "StageInvocations" in line]
    assert len(emf) == 4 and {line["stage"] for line in emf} == {"probe"}
    assert [line.get("StageErrors") for line in emf] == [None, None, [1.0], None]
    assert all(line["StageSeconds"][0] >= 0 for line in emf)
    failure = next(line for line in lines if line.get("message") == "stage failed")
    assert failure["correlation_id"] == task.task_id and failure["function_name"] == "vidluxe-test-probe"


def test_execution_status_changes_move_the_task_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None, clip: Path,
    lambda_stdout: Callable[[], list[dict[str, Any]]],
) -> None:
    stack = _deploy(tmp_path, monkeypatch)
    created, key, auth = _create_and_upload(stack, clip)
    functions.upload_trigger.handler(s3_object_created(UPLOADS, key, clip.stat().st_size), LambdaContext("t"))
    (execution,) = stack.sfn.list_executions(stateMachineArn=stack.machines["enhance"])["executions"]
    arn, task_id = execution["executionArn"], created["task_id"]
    context = LambdaContext("vidluxe-test-executionEvents")

    def send(status: str, **fields: Any) -> dict[str, Any]:
        return functions.execution_events.handler(execution_status_change(arn, status, **fields), context)

    output = {"task_id": task_id, "final_key": f"tasks/{task_id}/finalize/abc/final.mp4", "duration_seconds": 1.5}
    stack.s3.put_object(Bucket=OUTPUTS, Key=output["final_key"], Body=clip.read_bytes())  # what Finalize wrote
    assert send("SUCCEEDED", output=output)["moved"]  # EventBridge may deliver it before RUNNING
    assert send("RUNNING") == {"task_id": task_id, "status": "RUNNING", "moved": False}
    assert not send("SUCCEEDED", output=output)["moved"]  # at least once
    tasks = functions.execution_events.cloud_services().runtime.tasks
    task = tasks.get_task(task_id)
    assert task.status.value == "succeeded" and task.output == output

    status, _, document = _api(http_api("GET", f"/v1/videos/{task_id}", route="ANY /v1/{proxy+}", headers=auth))
    assert status == 200 and document["status"] == "completed"
    assert document["outputs"]["final.mp4"].startswith(f"https://{OUTPUTS}.s3.amazonaws.com/tasks/{task_id}/")
    lines = lambda_stdout()
    moves = [(line["correlation_id"], line["status"], line["moved"]) for line in lines if "moved" in line]
    assert moves == [(task_id, "SUCCEEDED", True), (task_id, "RUNNING", False), (task_id, "SUCCEEDED", False)]


def test_a_failed_execution_records_the_stage_error_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None, clip: Path
) -> None:
    stack = _deploy(tmp_path, monkeypatch)
    created, key, _ = _create_and_upload(stack, clip)
    functions.upload_trigger.handler(s3_object_created(UPLOADS, key, clip.stat().st_size), LambdaContext("t"))
    (execution,) = stack.sfn.list_executions(stateMachineArn=stack.machines["enhance"])["executions"]
    context = LambdaContext("vidluxe-test-executionEvents")
    # The Cause a Lambda's unhandled exception gives Step Functions: the runtime's error document.
    cause = json.dumps({
        "errorMessage": "INPUT_NOT_VIDEO: clip.mp4 has no video stream.",
        "errorType": "InvalidInputError",
        "requestId": "b7b2a4e6-1f0e-4f1b-9d0e-6f3c2a1b0c9d",
        "stackTrace": ['  File "/var/task/functions/stages.py", line 53, in run\n'],
    })
    assert functions.execution_events.handler(execution_status_change(execution["executionArn"], "RUNNING"), context)[
        "moved"
    ]
    event = execution_status_change(execution["executionArn"], "FAILED", error="InvalidInputError", cause=cause)
    assert functions.execution_events.handler(event, context)["moved"]
    task = functions.execution_events.cloud_services().runtime.tasks.get_task(created["task_id"])
    assert (task.status.value, task.error_code, task.error_message) == (
        "failed", "INPUT_NOT_VIDEO", "clip.mp4 has no video stream."
    )
    timed_out = functions.execution_events.task_error("States.Timeout", "The execution timed out.")
    assert timed_out == ("States.Timeout", "The execution timed out.")


def test_the_api_and_each_move_wake_the_webhook_delivery_after_their_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None, clip: Path,
    lambda_stdout: Callable[[], list[dict[str, Any]]],
) -> None:
    stack = _deploy(
        tmp_path, monkeypatch, VIDLUXE_WEBHOOK_DELIVERY_FUNCTION=DELIVERY_FUNCTION, VIDLUXE_WEBHOOKS_ALLOW_PRIVATE="1"
    )
    stubber = _wakes(monkeypatch)
    stubber.add_client_error("invoke", "TooManyRequestsException", http_status_code=429, expected_params=WAKE)
    stubber.add_response("invoke", {"StatusCode": 202}, WAKE)
    stubber.add_client_error("invoke", "TooManyRequestsException", http_status_code=429, expected_params=WAKE)
    context = LambdaContext("vidluxe-test-executionEvents")
    with stubber:
        # task.created, then a throttled wake-up: the API still answers 201 (asserted in _create_and_upload).
        created, key, _ = _create_and_upload(stack, clip, webhook_url=HOOK_URL)
        functions.upload_trigger.handler(s3_object_created(UPLOADS, key, clip.stat().st_size), LambdaContext("t"))
        (execution,) = stack.sfn.list_executions(stateMachineArn=stack.machines["enhance"])["executions"]

        def send(status: str, **fields: Any) -> dict[str, Any]:
            event = execution_status_change(execution["executionArn"], status, **fields)
            return functions.execution_events.handler(event, context)

        assert send("RUNNING")["moved"]  # task.started in the outbox, the delivery woken
        assert not send("RUNNING")["moved"]  # a repeat moves nothing and wakes nothing
        assert send("FAILED", error="States.Timeout", cause="timed out")["moved"]  # a throttled wake-up ...
        stubber.assert_no_pending_responses()
    task = functions.execution_events.cloud_services().runtime.tasks.get_task(created["task_id"])
    assert task.status.value == "failed"  # ... leaves the move recorded

    services = functions.execution_events.cloud_services()
    tenant_id = services.videos.videos.get(task.task_id).tenant_id
    pending = services.extras["webhook_outbox"].list_deliveries(tenant_id).items  # for the next delivery run
    assert sorted(item.event_type.value for item in pending) == ["task.created", "task.failed", "task.started"]
    not_woken = _not_woken(lambda_stdout())  # the two throttled, and no invoke nobody expected
    assert len(not_woken) == 2 and all("TooManyRequestsException" in error for error in not_woken), not_woken


def test_a_stage_lambda_reports_task_stage_completed_once_per_run_and_wakes_the_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None, clip: Path,
    backend_env: dict[str, str], lambda_stdout: Callable[[], list[dict[str, Any]]],
) -> None:
    stack = _deploy(
        tmp_path, monkeypatch, VIDLUXE_WEBHOOK_DELIVERY_FUNCTION=DELIVERY_FUNCTION, VIDLUXE_WEBHOOKS_ALLOW_PRIVATE="1",
        **backend_env,
    )
    stubber = _wakes(monkeypatch)
    for _ in range(3):  # after task.created, the Probe run and the Probe run retried
        stubber.add_response("invoke", {"StatusCode": 202}, WAKE)
    context = LambdaContext("vidluxe-test-probe")
    with stubber:
        created, key, _ = _create_and_upload(stack, clip, webhook_url=HOOK_URL)
        functions.upload_trigger.handler(s3_object_created(UPLOADS, key, clip.stat().st_size), LambdaContext("t"))
        task_id = created["task_id"]
        task = functions.stages.cloud_services().runtime.tasks.get_task(task_id)
        payload = step_functions_payload("enhance", "Probe", task.input, execution_name=task_id)
        output = functions.stages.probe(payload, context)
        # Step Functions retrying the Task (its Lambda timed out after the run, say): the same run, reused.
        assert functions.stages.probe(payload, context) == output
        stubber.assert_no_pending_responses()

    services = functions.stages.cloud_services()
    video = services.videos.videos.get(task_id)
    outbox = services.extras["webhook_outbox"]
    events = {item.event_type: item for item in outbox.list_deliveries(video.tenant_id, task_id=task_id).items}
    assert sorted(events) == [EventType.TASK_CREATED, EventType.TASK_STAGE_COMPLETED]  # one stage event, not two
    # Its webhook-id is the local runner's: derived from the stage and the run's input hash.
    unit = input_hash(PROBE, PROBE.input_model.model_validate(payload))[:16]
    stage_event = events[EventType.TASK_STAGE_COMPLETED]
    assert stage_event.message_id == derived_event_id(
        video.tenant_id, task_id, EventType.TASK_STAGE_COMPLETED, f"probe/{unit}"
    )
    assert stage_event.url == HOOK_URL
    # Its body, as the woken delivery claims it: the local runner's payload.
    now = services.runtime.clock.now()
    (claimed,) = [m for m in outbox.claim_due(now, owner="test") if m.event_type is EventType.TASK_STAGE_COMPLETED]
    assert json.loads(claimed.body)["data"] == task_stage_completed_data(task_id, stage="probe")
    assert _not_woken(lambda_stdout()) == []


def test_every_stage_of_every_state_machine_has_a_lambda_handler() -> None:
    import importlib

    from shared.pipeline.registry import CloudFunction, StageRegistry
    from shared.stages import ALL_STAGES

    registry = StageRegistry(ALL_STAGES)
    for pipeline in state_machines.available():
        text = (Path(state_machines.__file__).parent / f"{pipeline}.asl.json").read_text()
        for variable in set(SUBSTITUTION.findall(text)):
            resolved = registry.resolve_any(f"${{{variable}}}")
            if isinstance(resolved, CloudFunction):  # the GPU dispatch: a Lambda of its own, no stage
                module, _, name = resolved.handler.rpartition(".")
                assert callable(getattr(importlib.import_module(module), name)), resolved.handler
                continue
            assert callable(getattr(functions.stages, resolved.name)), resolved.name


# ------------------------------------------------------------------------------------------- secrets


def test_secrets_come_from_ssm_securestrings(monkeypatch: pytest.MonkeyPatch, aws: None) -> None:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/vidluxe/test/VIDLUXE_DATABASE_URL", Value="postgresql://u:p@db/x", Type="SecureString")
    ssm.put_parameter(Name="/vidluxe/test/VIDLUXE_REDIS_URL", Value="rediss://u:t@cache:6379", Type="SecureString")
    env = {
        "VIDLUXE_SSM_SECRETS": "/vidluxe/test/VIDLUXE_DATABASE_URL, /vidluxe/test/VIDLUXE_REDIS_URL,"
        "/vidluxe/test/VIDLUXE_IMAGE_API_KEY",
        "VIDLUXE_REDIS_URL": "redis://already-set",
    }
    provider = SSMProvider(boto3_client=ssm)
    assert load_ssm_secrets(env, provider=provider) == ["VIDLUXE_DATABASE_URL"]
    assert env["VIDLUXE_DATABASE_URL"] == "postgresql://u:p@db/x"  # decrypted
    assert env["VIDLUXE_REDIS_URL"] == "redis://already-set"  # a variable already set wins
    assert "VIDLUXE_IMAGE_API_KEY" not in env  # a missing parameter is skipped, not fatal
    assert load_ssm_secrets({"A": "b"}, provider=object()) == []  # nothing listed: no call at all


def test_api_lambda_reads_its_secrets_at_cold_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: None, fresh_containers: None
) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/vidluxe/test/VIDLUXE_URL_SIGNING_KEY", Value="k" * 32, Type="SecureString")
    ssm.put_parameter(Name="/vidluxe/test/VIDLUXE_PUBLIC_URL", Value="https://api.example.com", Type="SecureString")
    for name, value in {
        "VIDLUXE_HOME": str(tmp_path / "home"),
        "VIDLUXE_TASK_STORE": "sqlite",
        "VIDLUXE_OBJECT_STORE": "local",
        "VIDLUXE_SSM_SECRETS": "/vidluxe/test/VIDLUXE_URL_SIGNING_KEY,/vidluxe/test/VIDLUXE_PUBLIC_URL",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("VIDLUXE_URL_SIGNING_KEY", "VIDLUXE_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    services = functions.api.cloud_services()
    auth = {"authorization": f"Bearer {services.tenants.issue_key('acme').api_key}"}
    status, _, created = _api(
        http_api("POST", "/v1/videos", route="ANY /v1/{proxy+}", headers=auth, body='{"pipeline": "enhance"}')
    )
    assert status == 201, created
    assert created["upload"]["url"].startswith("https://api.example.com/v1/uploads/")
