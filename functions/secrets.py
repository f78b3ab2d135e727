"""Secrets for the Lambdas: SecureString parameters of SSM Parameter Store, read once per container.

``VIDLUXE_SSM_SECRETS`` lists parameter names, comma-separated. The last segment of a name is the
environment variable it sets (``/vidluxe/prod/VIDLUXE_DATABASE_URL`` sets ``VIDLUXE_DATABASE_URL``), so
``Settings`` reads it like any other variable. CloudFormation cannot resolve a SecureString into a
Lambda's environment, and a plain String there would show in the console, hence this read at cold
start, decrypted, with the role allowed exactly the listed names (infra/aws/iam.yml).

A variable that is already set wins (a test, a local run). A parameter that does not exist is logged
and left unset: the setting that needs it then fails with its own message (an optional one, such as
the image provider's key with the procedural provider, is simply not created).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from functions.observability import logger

SECRETS_VARIABLE = "VIDLUXE_SSM_SECRETS"


def variable_of(parameter_name: str) -> str:
    """``/vidluxe/prod/VIDLUXE_DATABASE_URL`` -> ``VIDLUXE_DATABASE_URL``."""
    return parameter_name.rstrip("/").rsplit("/", 1)[-1]


def load_ssm_secrets(environ: MutableMapping[str, str] | None = None, *, provider: Any = None) -> list[str]:
    """Set each listed parameter's variable in ``environ`` (default ``os.environ``) unless already set.

    ``provider``: a powertools ``SSMProvider`` (default: one over a new boto3 client). Returns the
    variables it set. Raises botocore's ``ClientError`` (or ``BotoCoreError``) when SSM refuses the call or
    cannot be reached (access denied, throttled): the function cannot start without its secrets. A missing
    parameter, or one whose key cannot decrypt it, is logged and skipped.
    """
    env = os.environ if environ is None else environ
    names = [name.strip() for name in env.get(SECRETS_VARIABLE, "").split(",") if name.strip()]
    wanted = [name for name in names if variable_of(name) not in env]
    if not wanted:
        return []
    if provider is None:
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        provider = SSMProvider()
    values: dict[str, Any] = provider.get_parameters_by_name(
        parameters={name: {} for name in wanted}, decrypt=True, raise_on_error=False
    )
    missing = list(values.pop("_errors", []))
    if missing:
        logger.warning("SSM parameters not found", extra={"parameters": missing})
    for name, value in values.items():
        env[variable_of(name)] = str(value)
    return [variable_of(name) for name in values]
