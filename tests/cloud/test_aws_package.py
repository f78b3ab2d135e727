"""serverless.yml renders offline to a CloudFormation template that cfn-lint passes with no error, and
every state machine passes the npm asl-validator, as a file and as deployed (variables substituted).

The template is also read the way a reviewer would: each ${<Stage>FunctionArn} of each ASL file maps
to the Lambda that runs that stage; the three buckets are private, encrypted, TLS-only and expire
objects, each after its own time; every role allows no wildcard action, S3 actions only on the buckets
its functions use, and each function's role may read exactly the SSM parameters it lists; the webhook
delivery runs on a schedule, with room for a pass.
No AWS account, credentials or network (beyond npm's registry for the first install) are involved.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from node_tools import NodeMissing, node, node_modules

import state_machines
from shared.pipeline.registry import CloudFunction, StageRegistry
from shared.stages import ALL_STAGES

SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
Template = dict[str, Any]


@pytest.fixture(scope="module")
def modules() -> Path:
    try:
        return node_modules()
    except NodeMissing as exc:
        if os.environ.get("CI"):
            raise  # .ci/run installs node; a CI without it must not pass silently
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def packaged(modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``osls package --stage ci`` with no AWS credentials in its environment."""
    out = tmp_path_factory.mktemp("serverless")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    result = node(
        str(modules / "osls" / "bin" / "serverless.js"), "package", "--stage", "ci", "--package", str(out),
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "cloudformation-template-update-stack.json"


@pytest.fixture(scope="module")
def template(packaged: Path) -> Template:
    document: Template = json.loads(packaged.read_text())
    return document


def _resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _get_att(value: Any) -> str:
    assert isinstance(value, dict) and "Fn::GetAtt" in value, value
    return str(value["Fn::GetAtt"][0])


def test_cfn_lint_finds_no_errors(packaged: Path) -> None:
    from cfnlint.api import ManualArgs, lint_file  # pip install cfn-lint (the test extras)

    matches = lint_file(packaged, ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
    # Serverless adds a DependsOn on each function's role and log group beside the GetAtt (W3005); any
    # other warning comes from our own resources.
    warnings = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id != "W3005"]
    assert warnings == []


# ----------------------------------------------------------------------------------- state machines


def test_state_machines_are_the_asl_files_with_each_stage_substituted(template: Template) -> None:
    registry = StageRegistry(ALL_STAGES)
    functions = _resources(template, "AWS::Lambda::Function")
    machines = {
        r["Properties"]["StateMachineName"].removeprefix("vidluxe-ci-"): r["Properties"]
        for r in _resources(template, "AWS::StepFunctions::StateMachine").values()
    }
    assert sorted(machines) == state_machines.available()
    for pipeline, machine in machines.items():
        assert machine["Definition"] == state_machines.definition(pipeline)  # the file, as it is
        text = json.dumps(machine["Definition"])
        assert set(machine["DefinitionSubstitutions"]) == set(SUBSTITUTION.findall(text))
        for variable, arn in machine["DefinitionSubstitutions"].items():
            resolved = registry.resolve_any(f"${{{variable}}}")
            function = functions[_get_att(arn)]["Properties"]
            handler = resolved.handler if isinstance(resolved, CloudFunction) else f"functions.stages.{resolved.name}"
            assert function["ImageConfig"]["Command"] == [handler], variable
        invoked = {_get_att(a) for a in machine["DefinitionSubstitutions"].values()}
        role = template["Resources"][_get_att(machine["RoleArn"])]
        allowed = _statements(role, "lambda:InvokeFunction")
        assert invoked <= {_get_att(r) for s in allowed for r in _list(s["Resource"])}


def test_gpu_matting_tasks_wait_for_the_token_the_dispatch_lambda_hands_to_modal(template: Template) -> None:
    machine = template["Resources"]["EnhanceStateMachine"]["Properties"]
    assert _get_att(machine["DefinitionSubstitutions"]["GpuDispatchFunctionArn"]) == "GpuDispatchLambdaFunction"
    text = json.dumps(machine["Definition"])
    assert text.count('"arn:aws:states:::lambda:invoke.waitForTaskToken"') == 2  # Prepare's and the Map's
    assert text.count('"task_token.$": "$$.Task.Token"') == 2
    dispatch = template["Resources"]["GpuDispatchLambdaFunction"]["Properties"]
    assert dispatch["Environment"]["Variables"]["VIDLUXE_SSM_SECRETS"].split(",") == [
        "/vidluxe/ci/MODAL_TOKEN_ID", "/vidluxe/ci/MODAL_TOKEN_SECRET"]
    # Its role: the Modal token and its own logs; no bucket, no database, nothing of Step Functions (the
    # Modal function answers the token with its own keys: modal_apps/README.md).
    role = template["Resources"][_get_att(dispatch["Role"])]
    actions = {a for s in _all_statements(role) for a in _list(s["Action"])}
    assert not any(a.startswith(("s3:", "states:", "dynamodb:")) for a in actions), actions


def test_execution_status_changes_reach_the_execution_events_function(template: Template) -> None:
    rule = template["Resources"]["ExecutionStatusRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    machines = _resources(template, "AWS::StepFunctions::StateMachine")
    assert sorted(r["Ref"] for r in pattern["detail"]["stateMachineArn"]) == sorted(machines)
    (target,) = rule["Targets"]
    assert _get_att(target["Arn"]) == "ExecutionEventsLambdaFunction"
    permission = template["Resources"]["ExecutionEventsPermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert _get_att(permission["SourceArn"]) == "ExecutionStatusRule"


def test_asl_validator_accepts_every_state_machine(modules: Path, template: Template) -> None:
    validator = str(modules / "asl-validator" / "dist" / "bin" / "asl-validator.js")
    files = [f"state_machines/{name}.asl.json" for name in state_machines.available()]
    result = node(validator, *(arg for path in files for arg in ("--json-path", path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("is valid") == len(files), result.stdout

    # As Step Functions receives them: every variable replaced by a Lambda ARN (the ARN check applies).
    for machine in _resources(template, "AWS::StepFunctions::StateMachine").values():
        text = SUBSTITUTION.sub(
            lambda m: f"arn:aws:lambda:us-east-1:123456789012:function:vidluxe-ci-{m[1]}",
            json.dumps(machine["Properties"]["Definition"]),
        )
        result = node(validator, "--json-definition", text)
        assert result.returncode == 0 and "is valid" in result.stdout, result.stdout + result.stderr


def test_asl_validator_rejects_a_broken_definition(modules: Path) -> None:
    broken = state_machines.definition("enhance")
    broken["States"]["Probe"]["Next"] = "NoSuchState"
    validator = str(modules / "asl-validator" / "dist" / "bin" / "asl-validator.js")
    result = node(validator, "--json-definition", json.dumps(broken))
    assert result.returncode != 0 and "NoSuchState" in result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ functions


def test_every_handler_is_importable_and_every_stage_has_a_function(template: Template) -> None:
    commands = [
        r["Properties"]["ImageConfig"]["Command"][0] for r in _resources(template, "AWS::Lambda::Function").values()
    ]
    for command in commands:
        module, _, name = command.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), command
    assert {c.removeprefix("functions.stages.") for c in commands if c.startswith("functions.stages.")} == {
        stage.name for stage in ALL_STAGES
    }
    assert {"functions.api.handler", "functions.upload_trigger.handler"} <= set(commands)


def test_http_api_routes_reach_the_api_function(template: Template) -> None:
    routes = {r["Properties"]["RouteKey"] for r in _resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert {"ANY /v1/{proxy+}", "GET /healthz", "GET /readyz", "ANY /dashboard", "ANY /dashboard/{proxy+}"} <= routes
    (integration,) = _resources(template, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_log_groups_keep_30_days(template: Template) -> None:
    groups = _resources(template, "AWS::Logs::LogGroup")
    assert len(groups) >= len(_resources(template, "AWS::Lambda::Function")) + 2
    assert {g["Properties"].get("RetentionInDays") for g in groups.values()} == {30}


# -------------------------------------------------------------------------------------------- storage


BUCKETS = {"uploads": "UploadsBucket", "artifacts": "ArtifactsBucket", "outputs": "OutputsBucket"}


def _bucket_name(template: Template, kind: str) -> str:
    return str(template["Resources"][BUCKETS[kind]]["Properties"]["BucketName"]["Fn::Sub"])


def test_buckets_are_private_encrypted_tls_only_and_expire_objects(template: Template) -> None:
    assert set(_resources(template, "AWS::S3::Bucket")) == {*BUCKETS.values(), "ServerlessDeploymentBucket"}
    days = {}
    for kind, name in BUCKETS.items():
        bucket = template["Resources"][name]["Properties"]
        assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        ), kind
        assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}], kind
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), kind
        (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
        assert lifecycle["Status"] == "Enabled" and "Prefix" not in lifecycle and "Filter" not in lifecycle, kind
        assert lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1, kind
        days[kind] = lifecycle["ExpirationInDays"]
        (policy,) = [
            r["Properties"] for r in _resources(template, "AWS::S3::BucketPolicy").values()
            if r["Properties"]["Bucket"] == {"Ref": name}
        ]
        (deny,) = policy["PolicyDocument"]["Statement"]
        assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*" and deny["Principal"] == "*", kind
        assert deny["Condition"]["Bool"]["aws:SecureTransport"] == "false", kind
        assert {r["Fn::Sub"] for r in deny["Resource"]} == {
            f"arn:${{AWS::Partition}}:s3:::${{{name}}}", f"arn:${{AWS::Partition}}:s3:::${{{name}}}/*"
        }, kind
    assert 0 < days["uploads"] < days["artifacts"] < days["outputs"]


def test_browsers_may_post_uploads_and_get_outputs_and_nothing_else(template: Template) -> None:
    def cors_methods(kind: str) -> list[list[str]]:
        cors = template["Resources"][BUCKETS[kind]]["Properties"].get("CorsConfiguration", {"CorsRules": []})
        return [rule["AllowedMethods"] for rule in cors["CorsRules"]]

    assert cors_methods("uploads") == [["POST"]]
    assert cors_methods("outputs") == [["GET"]]
    assert cors_methods("artifacts") == []


def test_uploads_notify_the_upload_trigger_and_every_function_uses_the_buckets(template: Template) -> None:
    bucket = template["Resources"]["UploadsBucket"]
    (notification,) = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    assert _get_att(notification["Function"]) == "UploadTriggerLambdaFunction"
    for kind in ("artifacts", "outputs"):
        assert "NotificationConfiguration" not in template["Resources"][BUCKETS[kind]]["Properties"], kind
    permission = template["Resources"]["UploadTriggerS3Permission"]["Properties"]
    assert permission["Principal"] == "s3.amazonaws.com" and "UploadTriggerS3Permission" in _list(bucket["DependsOn"])
    assert permission["SourceArn"]["Fn::Sub"] == f"arn:${{AWS::Partition}}:s3:::{_bucket_name(template, 'uploads')}"
    for function in _resources(template, "AWS::Lambda::Function").values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["VIDLUXE_OBJECT_STORE"] == "s3"
        assert env["VIDLUXE_S3_BUCKET"] == {"Fn::Sub": _bucket_name(template, "artifacts")}
        assert env["VIDLUXE_S3_UPLOADS_BUCKET"] == {"Fn::Sub": _bucket_name(template, "uploads")}
        assert env["VIDLUXE_S3_OUTPUTS_BUCKET"] == {"Fn::Sub": _bucket_name(template, "outputs")}


def test_upload_trigger_idempotency_table_has_powertools_layout(template: Template) -> None:
    table = template["Resources"]["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]  # DynamoDBPersistenceLayer's key_attr
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}  # its expiry_attr
    env = template["Resources"]["UploadTriggerLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert env["VIDLUXE_IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    machines = sorted(_resources(template, "AWS::StepFunctions::StateMachine"))
    for function in ("ApiLambdaFunction", "UploadTriggerLambdaFunction"):
        arns = template["Resources"][function]["Properties"]["Environment"]["Variables"]["VIDLUXE_STATE_MACHINE_ARNS"]
        assert set(json.loads(re.sub(r"\$\{(\w+)\}", r"\1", arns["Fn::Sub"])).values()) == set(machines)


# ------------------------------------------------------------------------------------------------ IAM

# Actions AWS grants on no narrower resource than "*".
_RESOURCE_STAR_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} | {
    f"logs:{a}"
    for a in (
        "CreateLogDelivery", "GetLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery", "ListLogDeliveries",
        "PutResourcePolicy", "DescribeResourcePolicies", "DescribeLogGroups",
    )
}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _all_statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def _statements(role: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in _all_statements(role) if s["Effect"] == "Allow" and action in _list(s["Action"])]


def test_roles_allow_no_wildcard_action_and_star_resources_only_where_aws_requires(template: Template) -> None:
    roles = _resources(template, "AWS::IAM::Role")
    assert "IamRoleLambdaExecution" not in roles  # no shared default role: each function names its own
    for name, role in roles.items():
        assert not role["Properties"].get("ManagedPolicyArns"), name
        for statement in _all_statements(role):
            actions = _list(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)
            if "*" in _list(statement["Resource"]):
                assert set(actions) <= _RESOURCE_STAR_ACTIONS, (name, actions)


def test_each_function_may_read_exactly_the_secrets_it_lists(template: Template) -> None:
    def parameter_of(resource: Any) -> str:
        return str(resource["Fn::Sub"]).split(":parameter", 1)[1]

    for name, function in _resources(template, "AWS::Lambda::Function").items():
        properties = function["Properties"]
        listed = set(properties["Environment"]["Variables"]["VIDLUXE_SSM_SECRETS"].split(","))
        if name != "GpuDispatchLambdaFunction":  # it only hands a token to Modal
            assert "/vidluxe/ci/VIDLUXE_DATABASE_URL" in listed, name
        role = template["Resources"][_get_att(properties["Role"])]
        readable = {
            parameter_of(r)
            for action in ("ssm:GetParameters", "ssm:GetParameter")
            for s in _statements(role, action)
            for r in _list(s["Resource"])
        }
        assert readable == listed, name
        (decrypt,) = _statements(role, "kms:Decrypt")
        assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}


def test_s3_grants_follow_what_each_function_does(template: Template) -> None:
    names = {_bucket_name(template, kind): kind for kind in BUCKETS}

    def grants(role_name: str, action: str) -> set[tuple[str, str]]:
        """(bucket kind, object pattern; "" for the bucket itself) of each resource ``action`` is allowed on."""
        role = template["Resources"][role_name]
        found = set()
        for statement in _statements(role, action):
            for resource in _list(statement["Resource"]):
                bucket, _, objects = str(resource["Fn::Sub"]).removeprefix("arn:${AWS::Partition}:s3:::").partition("/")
                found.add((names[bucket], objects))
        return found

    assert grants("ApiRole", "s3:PutObject") == {("uploads", "uploads/*")}  # what a presigned POST can write
    assert grants("ApiRole", "s3:GetObject") == {("outputs", "tasks/*"), ("artifacts", "readyz/*")}  # GETs, probe
    assert grants("ApiRole", "s3:ListBucket") == {("outputs", ""), ("artifacts", "")}
    assert grants("UploadTriggerRole", "s3:PutObject") == set()
    assert grants("UploadTriggerRole", "s3:GetObject") == {("uploads", "uploads/*")}
    assert grants("UploadTriggerRole", "s3:ListBucket") == {("uploads", "")}
    assert grants("ExecutionEventsRole", "s3:PutObject") == set()
    assert grants("ExecutionEventsRole", "s3:GetObject") == {("outputs", "tasks/*")}
    assert grants("StageRole", "s3:PutObject") == {("artifacts", "tasks/*"), ("outputs", "tasks/*")}
    assert grants("StageRole", "s3:GetObject") == {
        ("uploads", "uploads/*"), ("artifacts", "tasks/*"), ("outputs", "tasks/*")
    }
    assert grants("StageRole", "s3:ListBucket") == {("uploads", ""), ("artifacts", ""), ("outputs", "")}
    for role in _resources(template, "AWS::IAM::Role"):
        assert not _statements(template["Resources"][role], "s3:DeleteObject"), role


# ----------------------------------------------------------------------------------------- webhooks


def test_webhook_delivery_runs_every_minute_one_or_two_at_a_time(template: Template) -> None:
    from functions.webhook_delivery import BATCH_SIZE, MARGIN_SECONDS
    from web_hooks.delivery import DELIVERY_TIMEOUT_SECONDS, longest_pass_seconds

    function = template["Resources"]["WebhookDeliveryLambdaFunction"]["Properties"]
    assert function["ImageConfig"]["Command"] == ["functions.webhook_delivery.handler"]
    assert 1 <= function["ReservedConcurrentExecutions"] <= 2
    # Room for at least one pass, every message at its timeouts, and the margin after it.
    assert function["Timeout"] > longest_pass_seconds(BATCH_SIZE, BATCH_SIZE, DELIVERY_TIMEOUT_SECONDS) + MARGIN_SECONDS
    (schedule,) = [
        r["Properties"] for r in _resources(template, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    (target,) = schedule["Targets"]
    assert _get_att(target["Arn"]) == "WebhookDeliveryLambdaFunction"
    (config,) = _resources(template, "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["FunctionName"] == {"Ref": "WebhookDeliveryLambdaFunction"}
    assert config["Properties"]["MaximumRetryAttempts"] == 0  # the next minute's run retries anyway

    # Its role: its logs, traces and the database secret; no bucket, no state machine, no table.
    role = template["Resources"][_get_att(function["Role"])]
    actions = {a for s in _all_statements(role) for a in _list(s["Action"])}
    assert {a.split(":")[0] for a in actions} == {"xray", "kms", "ssm", "logs"}, actions


def test_the_functions_that_report_events_may_wake_exactly_the_webhook_delivery(template: Template) -> None:
    functions = _resources(template, "AWS::Lambda::Function")
    stages = {name for name, r in functions.items() if r["Properties"]["ImageConfig"]["Command"][0].startswith(
        "functions.stages.")}
    assert len(stages) == len(ALL_STAGES)
    reporting = {"ApiLambdaFunction", "ExecutionEventsLambdaFunction", *stages}
    for name, function in functions.items():
        properties = function["Properties"]
        variable = properties["Environment"]["Variables"].get("VIDLUXE_WEBHOOK_DELIVERY_FUNCTION")
        role = template["Resources"][_get_att(properties["Role"])]
        invoked = {  # the stack's functions (Remotion's, outside the stack, is an Fn::Sub ARN)
            _get_att(r) for s in _statements(role, "lambda:InvokeFunction") for r in _list(s["Resource"])
            if isinstance(r, dict) and "Fn::GetAtt" in r
        }
        if name in reporting:
            assert variable == {"Ref": "WebhookDeliveryLambdaFunction"}, name
            assert invoked == {"WebhookDeliveryLambdaFunction"}, name  # no other function of the stack
        else:  # the upload trigger, the GPU dispatch, the delivery itself: they report no event
            assert variable is None and invoked == set(), name
