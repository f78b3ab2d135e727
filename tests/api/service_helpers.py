"""Helpers the API tests import (conftest.py is not importable by name once several directories have one)."""

from __future__ import annotations

from collections.abc import Callable

from shared.cli.serve import LocalService

ServiceFactory = Callable[..., LocalService]


def issue_key(service: LocalService, tenant: str = "acme") -> str:
    """A new API key for ``tenant`` (created if new) on the running service."""
    assert service.services is not None
    return service.services.tenants.issue_key(tenant).api_key
