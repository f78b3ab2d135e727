"""Request dependencies: the process's services and the calling tenant (``Authorization: Bearer vlx_...``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import AuthenticationError, ConfigurationError
from shared.service.services import Services
from shared.storage.tenants import Tenant

_bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="An API key: `Bearer vlx_...`.")


def get_services(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):
        raise ConfigurationError("This app was built without services (create_app(services)).")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_tenant(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """Raises AuthenticationError (401) for a missing, unknown or revoked key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("Send your API key as `Authorization: Bearer vlx_...`.")
    tenant = services.tenants.authenticate(credentials.credentials)
    if tenant is None:
        raise AuthenticationError("This API key is unknown or revoked; create one with `vidluxe keys create`.")
    return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]
