"""An httpx transport that connects only to checked addresses (the delivery-time SSRF guard).

Every new TCP connection resolves the URL's host once, checks every address with the same rules as
:func:`web_hooks.urls.resolve_checked`, and connects to one of THOSE addresses: there is no second
lookup that a rebinding DNS server could answer differently. The request keeps the host name in its
``Host`` header and, for https, in TLS SNI and certificate verification, exactly as without the pin.
Proxies from the environment are ignored (they would connect on our behalf, unchecked).

A refused or unresolvable host raises the :mod:`web_hooks.errors` error out of ``client.post``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpcore
import httpx

from web_hooks.urls import Resolver, resolve_checked, system_resolver


class _CheckedBackend(httpcore.NetworkBackend):
    def __init__(self, *, allow_private: bool, resolver: Resolver) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked(host, port, allow_private=self._allow_private, resolver=self._resolver)
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:  # each one checked; the first that answers wins
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"No address to connect to for {host!r}.")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("Webhooks are never delivered over a Unix socket.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class CheckedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connections go only to addresses allowed for webhooks."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits = httpx.Limits(max_connections=20, max_keepalive_connections=10),  # noqa: B008
    ) -> None:
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False, limits=limits)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(allow_private=allow_private, resolver=resolver),
        )
