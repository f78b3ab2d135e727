"""The GPU dispatch Lambda: a waitForTaskToken event in, ``modal.Function.from_name(...).spawn(...)`` out,
faked at the SDK boundary; then the spawned call's arguments run the real function body, which reports to
Step Functions with the token (moto's SendTaskSuccess, and a Stubber for the exact request)."""

from __future__ import annotations

from typing import Any

import modal
import pytest
from botocore.stub import ANY, Stubber

from functions import gpu_dispatch
from shared.errors import ConfigurationError, InvalidInputError, TransientError

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAeXampleTaskToken"


class FakeCall:
    object_id = "fc-01J0EXAMPLE"


class FakeFunction:
    def __init__(self, app: str, name: str, calls: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.app, self.name, self.calls = app, name, calls

    def spawn(self, **kwargs: Any) -> FakeCall:
        self.calls.append((self.app, self.name, kwargs))
        return FakeCall()


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    calls: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")  # what SSM gives the Lambda (functions/secrets.py)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    monkeypatch.delenv("VIDLUXE_SSM_SECRETS", raising=False)
    monkeypatch.setattr(modal.Function, "from_name", lambda app, name, **_: FakeFunction(app, name, calls))
    return calls


def _event(**changes: Any) -> dict[str, Any]:
    # the Payload of a Task with "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken"
    event = {"app": "vidluxe-matting", "function": "matte_rvm", "task_token": TOKEN, "stage": "matte",
             "output_name": "matte.mp4", "request": {"task_id": "t1", "source_key": "uploads/t1/clip.mp4"}}
    return {**event, **changes}


class _Context:
    function_name, memory_limit_in_mb, aws_request_id = "gpu-dispatch", 256, "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:gpu-dispatch"


def test_the_handler_spawns_the_function_with_the_token_and_returns_at_once(spawned: list[Any]) -> None:
    answer = gpu_dispatch.handler(_event(), _Context())

    [(app, name, kwargs)] = spawned
    assert (app, name) == ("vidluxe-matting", "matte_rvm")
    assert kwargs["task_token"] == TOKEN
    assert kwargs["request"]["output_key"].startswith("tasks/t1/matte-gpu/")
    assert kwargs["request"]["output_key"].endswith("/matte.mp4")
    assert answer == {"call_id": "fc-01J0EXAMPLE", "app": "vidluxe-matting", "function": "matte_rvm",
                      "output_key": kwargs["request"]["output_key"]}


def test_the_output_key_depends_on_the_request_only(spawned: list[Any]) -> None:
    first = gpu_dispatch.dispatch(_event())["output_key"]
    retried = gpu_dispatch.dispatch(_event(task_token="another-token"))["output_key"]
    other = gpu_dispatch.dispatch(_event(request={"task_id": "t1", "source_key": "uploads/t1/b.mp4"}))["output_key"]
    given = gpu_dispatch.dispatch(_event(request={"task_id": "t1", "output_key": "tasks/t1/x/m.mp4"}))
    assert first == retried != other
    assert given["output_key"] == "tasks/t1/x/m.mp4"


@pytest.mark.parametrize(("event", "error", "code"), [
    (_event(app="vidluxe-matting", function="shell"), ConfigurationError, "GPU_FUNCTION_UNKNOWN"),
    (_event(task_token=""), InvalidInputError, "GPU_REQUEST_INVALID"),
    (_event(stage="../x"), InvalidInputError, "GPU_REQUEST_INVALID"),
    (_event(request={"source_key": "a"}), InvalidInputError, "GPU_REQUEST_INVALID"),
])
def test_bad_events_start_nothing(spawned: list[Any], event: dict[str, Any], error: type, code: str) -> None:
    with pytest.raises(error) as caught:
        gpu_dispatch.dispatch(event)
    assert caught.value.code == code and spawned == []


def test_an_undeployed_function_is_a_configuration_error_and_a_network_error_is_transient() -> None:
    class Missing:
        def spawn(self, **_: Any) -> None:
            raise modal.exception.NotFoundError("Lookup failed for Function 'matte_rvm'")

    class Down:
        def spawn(self, **_: Any) -> None:
            raise ConnectionError("api.modal.com unreachable")

    with pytest.raises(ConfigurationError, match=r"modal deploy -m modal_apps\.matting"):
        gpu_dispatch.dispatch(_event(), lookup=lambda app, name: Missing())
    with pytest.raises(TransientError) as caught:
        gpu_dispatch.dispatch(_event(), lookup=lambda app, name: Down())
    assert caught.value.code == "GPU_DISPATCH_FAILED"


def test_dispatch_then_the_spawned_body_reports_success_with_the_token(
    spawned: list[Any], aws: Any, media: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from test_modal_matting import _request

    from modal_apps import matting
    from modal_apps.gpu import GpuEnvironment

    request = _request(media)
    del request["output_key"]
    gpu_dispatch.dispatch(_event(function="matte_modnet", request=request))
    [(_, _, kwargs)] = spawned

    # as Modal would run it, against moto: SendTaskSuccess is accepted
    assert "error" not in matting.matte_modnet.local(**kwargs)

    # and the exact calls, through a Stubber: a retry with a new token finds the output and reports it
    env = GpuEnvironment.from_env()
    stub = Stubber(env.stepfunctions)
    stub.add_response("send_task_heartbeat", {}, {"taskToken": "retry-token"})
    stub.add_response("send_task_success", {}, {"taskToken": "retry-token", "output": ANY})
    with stub:
        again = matting.serve("modnet", kwargs["request"], "retry-token", env)
    stub.assert_no_pending_responses()
    assert again["reused"] is True and again["matte_key"] == kwargs["request"]["output_key"]
