"""Webhook URLs that cannot be turned against our own network (SSRF).

A webhook URL is https, without credentials, and every address its host resolves to must be publicly
routable. ``allow_private`` (``VIDLUXE_WEBHOOKS_ALLOW_PRIVATE=true``, a development setting) also
allows plain http and loopback or private addresses; link-local (the cloud metadata service at
169.254.169.254), multicast, reserved and unspecified addresses are refused even then.

An address embedding an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4,
Teredo) is judged by the IPv4 address it carries. Names are checked when the task is created
(:func:`validate_webhook_url`) and again at every connection (:mod:`web_hooks.transport` resolves,
checks and connects to that same address), so a name re-pointed after validation (DNS rebinding)
gets nowhere.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from web_hooks.errors import WebhookUrlForbiddenError, WebhookUrlInvalidError, WebhookUrlUnresolvableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[[str, int], Sequence[str]]
"""(host, port) -> the IP addresses to connect to, as text. Raises OSError when the name does not resolve."""

MAX_URL_LENGTH = 2048

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Refused whatever the setting; the others (loopback, private, not globally routable) only in production.
_ALWAYS_REFUSED = frozenset({"unspecified", "multicast", "link-local", "reserved"})


@dataclass(frozen=True)
class WebhookUrl:
    """A syntactically valid webhook URL, split."""

    url: str
    scheme: str
    host: str  # lower-case, IDNA-encoded; an IPv6 literal without brackets
    port: int


@dataclass(frozen=True)
class ResolvedWebhookUrl(WebhookUrl):
    """A webhook URL with the addresses its host resolved to, every one of them allowed."""

    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """The host's TCP addresses from the system resolver, in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_webhook_url(url: str, *, allow_private: bool = False) -> WebhookUrl:
    """Check the URL's syntax and scheme, without resolving it.

    Raises WebhookUrlInvalidError (bad syntax, scheme, credentials, port or host name) and
    WebhookUrlForbiddenError (an IP literal or ``localhost`` that may not be reached).
    """
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlInvalidError(f"The webhook URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F or char == "\\" for char in url):
        raise WebhookUrlInvalidError("The webhook URL contains spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlInvalidError(f"The webhook URL cannot be parsed: {exc}.") from exc
    scheme = parts.scheme.lower()
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed_schemes:
        hint = "" if allow_private else " (plain http only with VIDLUXE_WEBHOOKS_ALLOW_PRIVATE=true, for development)"
        raise WebhookUrlInvalidError(f"A webhook URL must use https, not {parts.scheme or 'no scheme'!r}{hint}.")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlInvalidError("A webhook URL may not carry credentials (user:password@).")
    host = _normalize_host(parts.hostname or "")
    if port == 0:
        raise WebhookUrlInvalidError("A webhook URL's port must be between 1 and 65535.")
    webhook_url = WebhookUrl(url=url, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80))
    literal = _ip_literal(host)
    if literal is not None:
        check_address(literal, allow_private=allow_private)
    elif (host == "localhost" or host.endswith(".localhost")) and not allow_private:
        raise WebhookUrlForbiddenError(f"The webhook host {host!r} is this machine (loopback).")
    return webhook_url


def validate_webhook_url(
    url: str, *, allow_private: bool = False, resolver: Resolver = system_resolver
) -> ResolvedWebhookUrl:
    """Check the URL and resolve its host; every address must be allowed. Returns them.

    Raises WebhookUrlInvalidError, WebhookUrlForbiddenError (any address refused: the reason is in the
    message and ``details``), WebhookUrlUnresolvableError (the name does not resolve).
    """
    parsed = parse_webhook_url(url, allow_private=allow_private)
    addresses = resolve_checked(parsed.host, parsed.port, allow_private=allow_private, resolver=resolver)
    return ResolvedWebhookUrl(
        url=parsed.url, scheme=parsed.scheme, host=parsed.host, port=parsed.port, addresses=addresses
    )


def resolve_checked(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = system_resolver
) -> tuple[str, ...]:
    """Resolve ``host`` and check every address (all must be allowed, not just one); return them.

    Raises WebhookUrlUnresolvableError or WebhookUrlForbiddenError.
    """
    literal = _ip_literal(host)
    if literal is not None:
        check_address(literal, allow_private=allow_private)
        return (str(literal),)
    try:
        resolved = list(resolver(host, port))
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlUnresolvableError(
            f"The webhook host {host!r} does not resolve ({exc}).", details={"host": host}
        ) from exc
    if not resolved:
        raise WebhookUrlUnresolvableError(f"The webhook host {host!r} has no addresses.", details={"host": host})
    addresses: list[str] = []
    for text in resolved:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError as exc:
            raise WebhookUrlUnresolvableError(f"The resolver gave {text!r} for {host!r}, not an address.") from exc
        check_address(address, allow_private=allow_private, host=host)
        addresses.append(str(address))
    return tuple(dict.fromkeys(addresses))


def check_address(address: IPAddress, *, allow_private: bool, host: str | None = None) -> None:
    """Raise WebhookUrlForbiddenError unless webhooks may connect to ``address``."""
    category = address_category(address)
    if category == "public" or (allow_private and category not in _ALWAYS_REFUSED):
        return
    where = f"The webhook host {host!r} resolves to {address}" if host and host != str(address) else str(address)
    hint = (
        ""
        if allow_private or category in _ALWAYS_REFUSED
        else " (allowed only with VIDLUXE_WEBHOOKS_ALLOW_PRIVATE=true)"
    )
    raise WebhookUrlForbiddenError(
        f"{where}, a {category} address that webhooks may not reach{hint}.",
        details={"address": str(address), "category": category},
    )


def address_category(address: IPAddress) -> str:
    """``public``, or why not: unspecified, multicast, link-local, loopback, reserved, private, not-global.

    An IPv6 address embedding an IPv4 one (mapped, NAT64, 6to4, Teredo) gets the IPv4 address's category.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_category(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback:
        return "loopback"
    if address.is_reserved:
        return "reserved"
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "private"
    if not address.is_global:
        return "not-global"  # e.g. 100.64.0.0/10, carrier-grade NAT
    return "public"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normalize_host(host: str) -> str:
    """Lower-case, IDNA-encoded host name or IP literal. Raises WebhookUrlInvalidError."""
    if not host:
        raise WebhookUrlInvalidError("A webhook URL needs a host name.")
    if _ip_literal(host) is not None:
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise WebhookUrlInvalidError(f"The webhook host {host!r} is not a valid host name.") from exc
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise WebhookUrlInvalidError(f"The webhook host {host!r} is not a valid host name.")
    if re.fullmatch(r"(0x[0-9a-f]*|[0-9]+)", labels[-1]):
        # 2130706433, 0x7f.1, 127.1: numeric forms some resolvers read as IPv4 addresses
        raise WebhookUrlInvalidError(f"The webhook host {host!r} is neither a host name nor a dotted IPv4 address.")
    return ascii_host.removesuffix(".")
