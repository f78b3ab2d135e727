"""The cost dashboard over HTTP on a real server (SQLite and PostgreSQL): sign-in with an API key, the
session cookie, tenant isolation, escaping, and pages that never leave a valid session's tenant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from dashboard_helpers import seed_video
from service_helpers import issue_key

from shared.cli.serve import LocalService
from shared.storage.tasks import TaskStatus


@contextmanager
def _sign_in(service: LocalService, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=30) as http:
        answer = http.post("/dashboard/login", data={"api_key": api_key})
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard", answer.text
        yield http


def test_signing_in_sets_a_hardened_session_cookie(service: LocalService) -> None:
    key = issue_key(service)
    with httpx.Client(base_url=service.base_url) as http:
        assert http.get("/dashboard").headers["location"] == "/dashboard/login"
        form = http.get("/dashboard/login")
        assert form.status_code == 200 and 'name="api_key"' in form.text
        assert "default-src 'none'" in form.headers["content-security-policy"]
        assert form.headers["cache-control"] == "no-store" and form.headers["x-frame-options"] == "DENY"
        wrong = http.post("/dashboard/login", data={"api_key": key + "x"})
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.text and "set-cookie" not in wrong.headers
        signed = http.post("/dashboard/login", data={"api_key": key})
        cookie = signed.headers["set-cookie"]
        assert signed.status_code == 303
        assert cookie.startswith("vidluxe_session=") and key not in cookie
        assert all(flag in cookie for flag in ("HttpOnly", "SameSite=lax", "Path=/dashboard", "Max-Age=43200"))
        assert "Secure" not in cookie  # plain http on loopback; set behind https
        page = http.get("/dashboard")
        assert page.status_code == 200 and "Per-video cost" in page.text and "acme" in page.text
        assert http.get("/dashboard/login").headers["location"] == "/dashboard"  # signed in already
        out = http.post("/dashboard/logout")
        assert out.status_code == 303 and 'vidluxe_session=""' in out.headers["set-cookie"]
        assert http.get("/dashboard").headers["location"] == "/dashboard/login"


def test_a_tenant_sees_only_its_own_videos(service: LocalService) -> None:
    assert service.services is not None
    tenants = service.services.tenants
    mine, theirs = tenants.issue_key("acme"), tenants.issue_key("globex")
    seed_video(service, mine.tenant.tenant_id, "tsk_" + "a" * 32, day=0, status=TaskStatus.SUCCEEDED,
               duration=20.0, costs={"render_chunk": 0.2})
    seed_video(service, theirs.tenant.tenant_id, "tsk_" + "b" * 32, day=0, status=TaskStatus.SUCCEEDED,
               duration=20.0, costs={"render_chunk": 7.77})
    with _sign_in(service, mine.api_key) as http:
        page = http.get("/dashboard").text
        assert "tsk_" + "a" * 32 in page and "tsk_" + "b" * 32 not in page and "$7.77" not in page
        assert http.get(f"/dashboard/videos/tsk_{'a' * 32}").status_code == 200
        other = http.get(f"/dashboard/videos/tsk_{'b' * 32}")
        assert other.status_code == 404 and "$7.77" not in other.text  # as if it did not exist


def test_revoking_the_key_ends_its_sessions(service: LocalService) -> None:
    assert service.services is not None
    key = issue_key(service)
    with _sign_in(service, key) as http:
        assert http.get("/dashboard").status_code == 200
        service.services.tenants.revoke_api_key(key)
        assert http.get("/dashboard").headers["location"] == "/dashboard/login"


def test_a_forged_cookie_is_not_a_session(service: LocalService) -> None:
    key = issue_key(service)
    with _sign_in(service, key) as http:
        value = http.cookies["vidluxe_session"]
        payload, signature = value.split(".")
        forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
        http.cookies.set("vidluxe_session", f"{forged}.{signature}", domain="127.0.0.1", path="/dashboard")
        assert http.get("/dashboard").headers["location"] == "/dashboard/login"


def test_everything_shown_is_escaped(service: LocalService) -> None:
    assert service.services is not None
    issued = service.services.tenants.issue_key("<b>acme</b> & co")
    seed_video(service, issued.tenant.tenant_id, "tsk_" + "c" * 32, day=0, status=TaskStatus.FAILED,
               duration=None, costs={"<script>alert(1)</script>": 0.01})
    with _sign_in(service, issued.api_key) as http:
        page = http.get("/dashboard", params={"status": "<img src=x onerror=alert(1)>", "from": '"><svg>'}).text
        assert "<script>alert" not in page and "<img src=x" not in page and '"><svg>' not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;acme&lt;/b&gt; &amp; co" in page
        assert "is not a status" in page and "is not a date" in page
        assert not re.search(r"<script", page, re.IGNORECASE)  # the dashboard runs no script at all
