"""Request dependencies: the process's services and the calling tenant (``Authorization: Bearer vlx_...``).

Both are ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, and that hand-off
costs more than these do (the tenant comes from the key cache or one read on the event loop,
:meth:`shared.storage.tenants.TenantStore.authenticate_async`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from shared.errors import AuthenticationError, ConfigurationError
from shared.service.services import Services
from shared.storage.tenants import Tenant


def services_of(request: Request) -> Services:
    """The app's services (what ServicesDep gives, without a dependency: the poll route's hot path)."""
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):
        raise ConfigurationError("This app was built without services (create_app(services)).")
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


class ApiKeyAuth(HTTPBearer):
    """``Authorization: Bearer vlx_...`` -> the calling tenant. An HTTPBearer, so the OpenAPI document
    names the scheme; resolving the tenant in the same call spares FastAPI a dependency on every request."""

    async def __call__(self, request: Request) -> Tenant:  # type: ignore[override]
        """Raises AuthenticationError (401) for a missing, unknown or revoked key."""
        credentials = await super().__call__(request)
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthenticationError("Send your API key as `Authorization: Bearer vlx_...`.")
        tenant = await services_of(request).tenants.authenticate_async(credentials.credentials)
        if tenant is None:
            raise AuthenticationError("This API key is unknown or revoked; create one with `vidluxe keys create`.")
        return tenant


get_tenant = ApiKeyAuth(auto_error=False, scheme_name="ApiKey", description="An API key: `Bearer vlx_...`.")

TenantDep = Annotated[Tenant, Depends(get_tenant)]
