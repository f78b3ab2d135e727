"""``/v1/webhooks/secret``: the tenant's webhook signing secret, and its rotation."""

from __future__ import annotations

from fastapi import APIRouter

from shared.api.deps import ServicesDep, TenantDep
from shared.api.errors import ERROR_RESPONSES
from shared.service.models import SigningSecretInfo, WebhookSecrets
from shared.storage.tenants import SigningSecret

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


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
