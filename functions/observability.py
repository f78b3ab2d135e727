"""Powertools for the Lambdas: one Logger, Tracer and Metrics per container, configured from the environment.

serverless.yml sets ``POWERTOOLS_SERVICE_NAME`` per function (``vidluxe-probe``, ``vidluxe-api``...); the
metrics go out as CloudWatch embedded metric format (EMF) lines under the namespace ``VidLuxe``, so
CloudWatch extracts them from the log with no API call. The Tracer sends X-Ray segments on Lambda
(tracing is Active in serverless.yml) and is a no-op anywhere else. The pipeline's own structlog lines
(task_id and stage bound by the stage runner) are switched to JSON on Lambda by :func:`configure_lambda_logging`.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

from shared.logging import configure_logging
from shared.settings import Settings

NAMESPACE = "VidLuxe"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "vidluxe"))
tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "vidluxe"))
metrics = Metrics(namespace=NAMESPACE, service=os.environ.get("POWERTOOLS_SERVICE_NAME", "vidluxe"))


def configure_lambda_logging(settings: Settings) -> None:
    """JSON structlog lines on Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set); nothing elsewhere, so tests
    and local runs keep the process's logging as it is."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        configure_logging("json", settings.log_level)
