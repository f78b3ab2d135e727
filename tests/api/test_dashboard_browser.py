"""The cost dashboard in a real headless Chromium (Debian's, driven by Playwright) against a real
uvicorn server on loopback: sign in with an API key, read the seeded videos' figures, filter by status
and by date, sign out. Needs /usr/bin/chromium (.ci/run installs it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_helpers import seed_video

from shared.cli.serve import LocalService
from shared.settings import Settings
from shared.storage.tasks import TaskStatus

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does)"
)

A, B, C, D = ("tsk_" + letter * 32 for letter in "abcd")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the stores' queries are tested on PostgreSQL elsewhere; this is about the browser."""
    return Settings(home=tmp_path / "home", task_store="sqlite", max_workers=1)


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def test_sign_in_read_the_figures_and_filter(service: LocalService, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser) and service.services is not None
    tenants = service.services.tenants
    acme, other = tenants.issue_key("acme"), tenants.issue_key("globex")
    seed_video(service, acme.tenant.tenant_id, A, day=0, status=TaskStatus.SUCCEEDED, duration=30.0,
               costs={"probe": 0.01, "render_chunk": 0.24})
    seed_video(service, acme.tenant.tenant_id, B, day=1, status=TaskStatus.FAILED, duration=None,
               costs={"render_chunk": 0.05})
    seed_video(service, acme.tenant.tenant_id, C, day=2, status=TaskStatus.SUCCEEDED, duration=10.0,
               costs={"generate_assets": 0.5, "render_chunk": 1.5})
    seed_video(service, other.tenant.tenant_id, D, day=2, status=TaskStatus.SUCCEEDED, duration=10.0,
               costs={"render_chunk": 9.99})

    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{service.base_url}/dashboard")
    expect(page).to_have_url(f"{service.base_url}/dashboard/login")  # no session: the sign-in form
    page.fill("#api_key", acme.api_key + "x")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    page.fill("#api_key", acme.api_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{service.base_url}/dashboard")

    # The seeded figures: three videos, $2.30 in all; the other tenant's $9.99 video is nowhere.
    expect(page.locator("#video-count")).to_have_text("3")
    expect(page.locator("#total-cost")).to_have_text("$2.30")
    rows = page.locator("#videos tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(C)  # newest first
    expect(rows.nth(0)).to_contain_text("$2.00")
    expect(rows.nth(0)).to_contain_text("$0.20")  # per output second: $2.00 / 10 s
    expect(rows.nth(2)).to_contain_text(A)
    expect(rows.nth(2)).to_contain_text("$0.25")
    expect(rows.nth(2)).to_contain_text("$0.00833")  # $0.25 / 30 s
    expect(page.locator("#most-expensive tbody tr").first).to_contain_text(C)
    expect(page.locator(".chart svg rect.bar")).to_have_count(3)  # one bar per day
    assert D not in page.content() and "$9.99" not in page.content()

    # Filter by status: the table and the totals change.
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(f"{service.base_url}/dashboard?from=&to=&status=failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(B)
    expect(rows.first).to_contain_text("failed")
    expect(page.locator("#total-cost")).to_have_text("$0.05")

    # Filter by date instead: from the third day on.
    page.click("text=Clear")
    page.fill("input[name=from]", "2026-11-03")
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(C)
    expect(page.locator("#total-cost")).to_have_text("$2.00")

    # A video's own entries, then sign out.
    page.click(f"#videos a:has-text('{C}')")
    expect(page.locator("#entries tbody tr")).to_have_count(2)
    expect(page.locator("#total-cost")).to_have_text("$2.00")
    page.click("text=Sign out")
    expect(page).to_have_url(f"{service.base_url}/dashboard/login")
    page.goto(f"{service.base_url}/dashboard")
    expect(page).to_have_url(f"{service.base_url}/dashboard/login")
