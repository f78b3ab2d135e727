"""``/v1/webhooks``: the tenant's signing secret and its rotation, the delivery log, re-enabling an endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from shared.api.deps import ServicesDep, TenantDep
from shared.api.errors import ERROR_RESPONSES, ErrorDocument
from shared.errors import ConfigurationError
from shared.service.models import (
    EnableWebhookEndpoint,
    SigningSecretInfo,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookSecrets,
)
from shared.storage.tenants import SigningSecret
from web_hooks.outbox import MessageStatus, WebhookOutbox

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def get_outbox(services: ServicesDep) -> WebhookOutbox:
    """The outbox the process emits to (``Services.extras["webhook_outbox"]``). Raises ConfigurationError
    (500) when the services were built without one."""
    outbox = services.extras.get("webhook_outbox")
    if not isinstance(outbox, WebhookOutbox):
        raise ConfigurationError("This service was built without a webhook outbox (Services.extras).")
    return outbox


OutboxDep = Annotated[WebhookOutbox, Depends(get_outbox)]


def _answer(secrets: list[SigningSecret]) -> WebhookSecrets:
    return WebhookSecrets(
        secret=secrets[0].secret,
        secrets=[SigningSecretInfo(**secret.model_dump()) for secret in secrets],
    )


@router.get("/secret", response_model=WebhookSecrets, summary="Your webhook signing secret")
def get_secret(services: ServicesDep, tenant: TenantDep) -> WebhookSecrets:
    """Verify deliveries with it (any Standard Webhooks library). During a rotation's grace period the
    previous secret is listed too, and deliveries carry a signature for each."""
    services.tenants.current_secret(tenant.tenant_id)  # makes one if the tenant has none
    return _answer(services.tenants.secrets(tenant.tenant_id))


@router.post("/secret/rotate", response_model=WebhookSecrets, summary="Make a new signing secret")
def rotate_secret(services: ServicesDep, tenant: TenantDep) -> WebhookSecrets:
    """The previous secret stays valid for the grace period (24 h by default): deliveries are signed
    with both meanwhile, so receivers can switch without missing one."""
    return _answer(services.tenants.rotate_secret(tenant.tenant_id))


@router.get("/deliveries", response_model=WebhookDeliveryList, summary="Your webhook deliveries, newest first")
def list_deliveries(
    outbox: OutboxDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    task_id: Annotated[str | None, Query(max_length=200, description="Only this task's events")] = None,
    status: Annotated[MessageStatus | None, Query(description="Only messages in this status")] = None,
) -> WebhookDeliveryList:
    """One entry per event and URL, with every attempt: when, the HTTP status or network error, and when
    the next one is due. A cursor this API did not return: 400 `INVALID_CURSOR`."""
    page = outbox.list_deliveries(tenant.tenant_id, limit=limit, cursor=cursor, task_id=task_id, status=status)
    return WebhookDeliveryList(
        data=[WebhookDelivery.model_validate(item.model_dump()) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/endpoints/enable",
    response_model=WebhookEndpoint,
    summary="Re-enable a webhook URL that answered 410 Gone",
    responses={404: {"model": ErrorDocument, "description": "None of your tasks used this URL"}},
)
def enable_endpoint(
    outbox: OutboxDep, tenant: TenantDep, request: Annotated[EnableWebhookEndpoint, Body()]
) -> WebhookEndpoint:
    """Its held messages are delivered again, oldest first; an enabled URL stays as it is. A URL none of
    your tasks used: 404 `WEBHOOK_ENDPOINT_NOT_FOUND`."""
    endpoint = outbox.enable_endpoint(tenant.tenant_id, request.url)
    return WebhookEndpoint(enabled=endpoint.enabled, **endpoint.model_dump(exclude={"tenant_id"}))
