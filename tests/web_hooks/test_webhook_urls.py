"""SSRF: which webhook URLs are refused, at creation and again at connection time (DNS rebinding)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from webhook_helpers import QuietHTTPServer, Receiver, make_handler, serve

from web_hooks.errors import WebhookUrlForbiddenError, WebhookUrlInvalidError, WebhookUrlUnresolvableError
from web_hooks.transport import CheckedTransport
from web_hooks.urls import address_category, parse_webhook_url, validate_webhook_url

PUBLIC = "93.184.215.14"


def resolver_for(table: dict[str, Sequence[str]]) -> object:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"{host} not found")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("93.184.215.14", "public"),
        ("2606:4700::1111", "public"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not-global"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a9fe:a9fe::", "link-local"),  # 6to4 of 169.254.169.254
    ],
)
def test_address_categories(address: str, category: str) -> None:
    assert address_category(ipaddress.ip_address(address)) == category


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://localhost/hook",
        "https://api.localhost/hook",
        "https://internal.example/hook",  # resolves to 127.0.0.1
        "https://mixed.example/hook",  # one public, one private record: refused
    ],
)
def test_forbidden_destinations_are_refused(url: str) -> None:
    resolver = resolver_for({"internal.example": ["127.0.0.1"], "mixed.example": [PUBLIC, "10.1.2.3"]})
    with pytest.raises(WebhookUrlForbiddenError) as caught:
        validate_webhook_url(url, resolver=resolver)  # type: ignore[arg-type]
    assert caught.value.code == "WEBHOOK_URL_FORBIDDEN"


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example/x",
        "ftp://hooks.example/x",
        "hooks.example/x",
        "https://user:secret@hooks.example/x",
        "https:///x",
        "https://hooks.example:99999/x",
        "https://hooks.example:0/x",
        "https://hooks example/x",
        "https://hooks.example\\@evil/x",
        "https://2130706433/x",
        "https://0x7f000001/x",
        "https://127.1/x",
        "https://-bad-.example/x",
        "https://" + "a" * 2050 + ".example/",
    ],
)
def test_invalid_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookUrlInvalidError) as caught:
        validate_webhook_url(url, resolver=resolver_for({"hooks.example": [PUBLIC]}))  # type: ignore[arg-type]
    assert caught.value.code == "WEBHOOK_URL_INVALID"


def test_a_public_https_url_returns_its_resolved_addresses() -> None:
    resolved = validate_webhook_url(
        "https://Hooks.Example:8443/v1?a=b",
        resolver=resolver_for({"hooks.example": [PUBLIC, "2606:4700::1111", PUBLIC]}),  # type: ignore[arg-type]
    )
    assert (resolved.scheme, resolved.host, resolved.port) == ("https", "hooks.example", 8443)
    assert resolved.addresses == (PUBLIC, "2606:4700::1111")


def test_an_unresolvable_name_is_refused_with_its_own_code() -> None:
    with pytest.raises(WebhookUrlUnresolvableError) as caught:
        validate_webhook_url("https://nowhere.example/", resolver=resolver_for({}))  # type: ignore[arg-type]
    assert caught.value.code == "WEBHOOK_URL_UNRESOLVABLE"


def test_development_allows_http_loopback_and_private_but_never_metadata() -> None:
    resolver = resolver_for({"localhost": ["127.0.0.1"], "lan.example": ["192.168.1.20"]})
    for url in ("http://localhost:8000/h", "http://127.0.0.1/h", "http://[::1]:9/h", "http://lan.example/h"):
        validate_webhook_url(url, allow_private=True, resolver=resolver)  # type: ignore[arg-type]
    for url in ("http://169.254.169.254/", "http://0.0.0.0/", "http://224.0.0.1/", "http://[fe80::1]/"):
        with pytest.raises(WebhookUrlForbiddenError):
            validate_webhook_url(url, allow_private=True, resolver=resolver)  # type: ignore[arg-type]


def test_parse_needs_no_dns() -> None:
    parsed = parse_webhook_url("https://hooks.example/x")
    assert (parsed.host, parsed.port) == ("hooks.example", 443)


# ------------------------------------------------------------------------------ at connection time


def test_rebinding_after_validation_is_refused_before_connecting(receiver: Receiver) -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> Sequence[str]:
        return next(answers)

    url = f"https://rebind.example:{receiver.port}/hooks"
    assert validate_webhook_url(url, resolver=rebinding).addresses == (PUBLIC,)
    with (
        httpx.Client(transport=CheckedTransport(resolver=rebinding)) as client,
        pytest.raises(WebhookUrlForbiddenError),
    ):
        client.post(url, content=b"{}")
    assert receiver.requests == []


def test_connects_to_the_checked_address_and_keeps_the_host_header(receiver: Receiver) -> None:
    calls: list[str] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return ["127.0.0.1"]

    transport = CheckedTransport(allow_private=True, resolver=resolve)
    with httpx.Client(transport=transport) as client:
        response = client.post(f"http://hooks.example:{receiver.port}/hooks", content=b"{}")
    assert response.status_code == 200
    assert calls == ["hooks.example"]
    assert receiver.requests[0].headers["host"] == f"hooks.example:{receiver.port}"


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    cert_path, key_path = _self_signed(tmp_path, "hooks.example")
    state = Receiver()
    server = QuietHTTPServer(("127.0.0.1", 0), make_handler(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    sni: list[str | None] = []
    context.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)  # type: ignore[assignment]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.sni = sni  # type: ignore[attr-defined]
    yield from ((r, cert_path) for r in serve(state, server))


def test_https_to_a_pinned_address_keeps_sni_and_verifies_the_name(tls_receiver: tuple[Receiver, Path]) -> None:
    receiver, cert_path = tls_receiver
    trust = ssl.create_default_context(cafile=str(cert_path))
    transport = CheckedTransport(allow_private=True, resolver=lambda host, port: ["127.0.0.1"], ssl_context=trust)
    with httpx.Client(transport=transport, timeout=5) as client:
        assert client.post(f"https://hooks.example:{receiver.port}/hooks", content=b"{}").status_code == 200
        # The same address under another name fails certificate verification: the name is what is checked.
        with pytest.raises(httpx.ConnectError):
            client.post(f"https://other.example:{receiver.port}/hooks", content=b"{}")
    assert receiver.sni[0] == "hooks.example"  # type: ignore[attr-defined]
