"""``/dashboard``: a tenant's per-video costs as server-rendered HTML (Jinja2, no build step, no script).

Signing in takes the same API key as the API: the form posts it once, and the answer sets a signed
session cookie (HttpOnly, SameSite=Lax, path /dashboard; Secure over https or behind an https
VIDLUXE_PUBLIC_URL) that names the tenant and
the key's hash, never the key; every page checks the signature, the expiry and that the key is still
valid. A tenant sees only its own videos (another tenant's id is a 404, as in the API). Every value is
escaped by Jinja's autoescape; pages carry a strict Content-Security-Policy (no script at all, the
stylesheet by nonce) and are not cached.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shared.api.deps import ServicesDep
from shared.dashboard.chart import format_unit_price, format_usd
from shared.dashboard.pages import overview_page, parse_query, video_page
from shared.dashboard.session import COOKIE_NAME, Session, SessionSigner
from shared.errors import ConfigurationError, NotFoundError
from shared.service.models import api_status
from shared.service.services import Services, dashboard_session_key
from shared.storage.cost_reports import CostReports
from shared.storage.tasks import TaskStatus
from shared.storage.tenants import Tenant, hash_api_key

router = APIRouter(prefix="/dashboard", include_in_schema=False)

TEMPLATES = Path(__file__).resolve().parents[1] / "dashboard" / "templates"
_COOKIE_PATH = "/dashboard"
_SIGNER = "dashboard_session_signer"  # Services.extras key: one signer per process


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) and abs(value) < 1e12 else f"{value:.6g}"


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        usd=format_usd,
        unit_price=format_unit_price,
        when=_when,
        quantity=_quantity,
        status=lambda value: api_status(TaskStatus(value)),
        seconds=lambda value: "—" if value is None else f"{value:.1f} s",
    )
    return environment


_templates = _environment()


def _render(name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(name).render(nonce=nonce, **context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        },
    )


def _signer(services: Services) -> SessionSigner:
    """Raises ConfigurationError (DASHBOARD_SESSION_KEY_MISSING) when no key is set and none can be kept
    in the data home (a read-only file system, as on Lambda)."""
    signer = services.extras.get(_SIGNER)
    if not isinstance(signer, SessionSigner):
        try:
            key = dashboard_session_key(services.settings, services.service_settings)
        except OSError as exc:
            raise ConfigurationError(
                f"Set VIDLUXE_DASHBOARD_SESSION_KEY: no session key can be kept in {services.settings.home} ({exc}).",
                code="DASHBOARD_SESSION_KEY_MISSING",
            ) from exc
        signer = SessionSigner(key)
        services.extras[_SIGNER] = signer
    return signer


def signed_in_tenant(request: Request, services: ServicesDep) -> Tenant | None:
    """The tenant of a valid session cookie (signed, unexpired, its key not revoked), else None."""
    session = _signer(services).verify(request.cookies.get(COOKIE_NAME), now=services.runtime.clock.now())
    if session is None:
        return None
    tenant = services.tenants.tenant_for_key_hash(session.key_hash)
    return tenant if tenant is not None and tenant.tenant_id == session.tenant_id else None


SessionTenant = Annotated[Tenant | None, Depends(signed_in_tenant)]


async def _form_fields(request: Request) -> dict[str, str]:
    """A url-encoded form's fields (the first value of each); the body is small (the API's body limit)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, max_num_fields=10).items()}


FormFields = Annotated[dict[str, str], Depends(_form_fields)]


def _to_login() -> RedirectResponse:
    return RedirectResponse("/dashboard/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(tenant: SessionTenant) -> Response:
    if tenant is not None:
        return RedirectResponse("/dashboard", status_code=303)
    return _render("login.html", error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, services: ServicesDep, form: FormFields) -> Response:
    """A valid API key signs its tenant in (303 to the dashboard); anything else is the form again, 401."""
    api_key = form.get("api_key", "").strip()
    tenant = services.tenants.authenticate(api_key) if api_key else None
    if tenant is None:
        return _render("login.html", status_code=401, error="This API key is unknown or revoked.")
    lifetime = services.service_settings.dashboard_session_seconds
    expires_at = services.runtime.clock.now() + timedelta(seconds=lifetime)
    value = _signer(services).sign(
        Session(tenant_id=tenant.tenant_id, key_hash=hash_api_key(api_key), expires_at=int(expires_at.timestamp()))
    )
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE_NAME, value, max_age=lifetime, path=_COOKIE_PATH, httponly=True, samesite="lax",
        secure=request.url.scheme == "https" or (services.service_settings.public_url or "").startswith("https:"),
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = _to_login()
    response.delete_cookie(COOKIE_NAME, path=_COOKIE_PATH, httponly=True, samesite="lax")
    return response


@router.get("", response_class=HTMLResponse)
def overview(
    services: ServicesDep,
    tenant: SessionTenant,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    if tenant is None:
        return _to_login()
    query = parse_query(start, end, status)
    costs = services.runtime.costs
    if costs is None:
        return _render("index.html", tenant=tenant, page=None, prices=None, query=query)
    page = overview_page(CostReports(services.database), tenant.tenant_id, query)
    return _render("index.html", tenant=tenant, page=page, prices=costs.prices, query=query)


@router.get("/videos/{task_id}", response_class=HTMLResponse)
def video(services: ServicesDep, tenant: SessionTenant, task_id: str) -> Response:
    if tenant is None:
        return _to_login()
    costs = services.runtime.costs
    try:
        if costs is None:
            raise NotFoundError("Costs are not recorded here.")
        page = video_page(CostReports(services.database), costs.store, tenant.tenant_id, task_id)
    except NotFoundError:
        return _render("not_found.html", status_code=404, tenant=tenant, task_id=task_id)
    return _render("video.html", tenant=tenant, page=page, prices=costs.prices)
