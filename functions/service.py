"""The service's stores for the API, upload-trigger, execution-events and stage Lambdas, built once per
container from VIDLUXE_*.

On AWS the object store is S3 (presigned POST uploads, the S3 event starts the task) and executions run
on Step Functions (``VIDLUXE_STATE_MACHINE_ARNS``), named by the task id. Secrets come from SSM Parameter
Store (``VIDLUXE_SSM_SECRETS``) before the settings are read. Events go to the webhook outbox in the same
database, each followed by a wake-up of the webhook-delivery Lambda (functions/webhook_wake.py), which
also sends them on its schedule. As in ``vidluxe serve``, the runtime reports each finished stage run to
the service (task.stage_completed): the stage Lambdas run their stages over it.
"""

from __future__ import annotations

from functools import cache

from functions.observability import configure_lambda_logging
from functions.secrets import load_ssm_secrets
from functions.webhook_wake import WakingEventSink
from shared.clock import SystemClock
from shared.service.executions import StepFunctionsExecutions
from shared.service.services import Services
from shared.settings import Settings
from shared.settings_service import ServiceSettings
from shared.storage.factory import build_database
from web_hooks.outbox import WebhookOutbox
from web_hooks.urls import validate_webhook_url


@cache
def cloud_services() -> Services:
    """Raises ConfigurationError for incomplete settings, the database driver's errors, and botocore's
    errors when SSM refuses to hand over the secrets (:func:`functions.secrets.load_ssm_secrets`)."""
    load_ssm_secrets()
    settings, service_settings = Settings(), ServiceSettings()
    configure_lambda_logging(settings)
    clock = SystemClock()
    database = build_database(settings, pool_size=2)
    allow_private = service_settings.webhooks_allow_private
    outbox = WebhookOutbox(database, clock)
    services = Services.build(
        settings,
        service_settings,
        base_url=service_settings.public_url or "",
        clock=clock,
        database=database,
        events=WakingEventSink(outbox),
        check_webhook_url=lambda url: validate_webhook_url(url, allow_private=allow_private),
    )
    services.extras["webhook_outbox"] = outbox  # for the deliveries listing's router
    services.runtime.on_progress = services.videos.stage_progress
    if service_settings.state_machine_arns:
        import boto3

        services.videos.executions = StepFunctionsExecutions(
            boto3.client("stepfunctions"), service_settings.state_machine_arns
        )
    return services
