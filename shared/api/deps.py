"""Request dependencies: the process's services and the calling tenant (``Authorization: Bearer vlx_...``).

Both are ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, and that hand-off
costs more than these do (the tenant comes from the key cache or one read on the event loop,
:meth:`shared.storage.tenants.TenantStore.authenticate_async`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import AuthenticationError, ConfigurationError
from shared.service.services import Services
from shared.storage.tenants import Tenant

_bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="An API key: `Bearer vlx_...`.")


def _services(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):
        raise ConfigurationError("This app was built without services (create_app(services)).")
    return services


async def get_services(request: Request) -> Services:
    return _services(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """Raises AuthenticationError (401) for a missing, unknown or revoked key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("Send your API key as `Authorization: Bearer vlx_...`.")
    # The services straight from the app, not through ServicesDep: each dependency FastAPI resolves
    # costs microseconds on every request.
    tenant = await _services(request).tenants.authenticate_async(credentials.credentials)
    if tenant is None:
        raise AuthenticationError("This API key is unknown or revoked; create one with `vidluxe keys create`.")
    return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]
