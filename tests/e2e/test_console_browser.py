"""The operations console in real Chromium, against the whole platform with the demo retailer.

Headquarters and a store manager sign in and open every page: the figures load with no error
in the browser's console and no request leaves the console's own host; a chart's numbers are
the gateway's answer for the same figure; a markdown is approved through the page; a store
manager cannot open another store by editing the URL; a form without its CSRF token changes
nothing; sign-out and the idle timeout end the session. Each page's screenshot is saved to
``.local/test-reports/console/``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)

from tests.conftest import Infra
from tests.e2e.test_gateway_process import REPO
from tests.support.browser import ensure_chromium
from tests.support.console import running_console
from tests.support.platform import Platform, running_platform

REPORTS = REPO / ".local" / "test-reports" / "console"
FIGURES_TIMEOUT_MS = 180_000
IDLE_TIMEOUT_SECONDS = 3


@pytest.fixture(scope="module")
def platform(infra: Infra, kit_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # Inventory plans every few seconds so that an overstock becomes a markdown suggestion promptly.
    settings = {"inventory": {"REPLENISHMENT_INTERVAL_SECONDS": "3"}}
    with running_platform(
        infra, kit_template, tmp_path_factory.mktemp("console-platform"), service_settings=settings
    ) as running:
        yield running


@pytest.fixture(scope="module")
def console_url(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_console(platform.base_url, tmp_path_factory.mktemp("console") / "console.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        chromium, _ = ensure_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        yield browser
        browser.close()


def launch(playwright: Playwright, chromium: Path) -> Browser:
    return playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-dev-shm-usage"])


@dataclass
class Watch:
    """What a browser context did that a page must never do: console errors, requests to other hosts."""

    host: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def route(self, route: Route, request: Request) -> None:
        if urlsplit(request.url).netloc == self.host:
            route.continue_()
        else:
            self.foreign.append(request.url)
            route.abort()

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def clean(self) -> None:
        assert self.errors == [], f"errors in the browser's console: {self.errors}"
        assert self.foreign == [], f"requests to another host: {self.foreign}"


@pytest.fixture
def watched(browser: Browser, console_url: str) -> Iterator[tuple[BrowserContext, Watch]]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=console_url)  # a phone
    watch = Watch(urlsplit(console_url).netloc)
    context.route("**/*", watch.route)
    context.on("page", lambda page: page.on("console", watch.console))
    context.on("weberror", lambda error: watch.errors.append(str(error.error)))
    yield context, watch
    context.close()


def sign_in(page: Page, platform: Platform, label: str) -> None:
    credential = platform.credentials[label]
    page.goto("/sign-in")
    page.fill("#client_id", credential["client_id"])
    page.fill("#client_secret", credential["client_secret"])
    page.click("#sign-in")
    page.wait_for_load_state("load")


def open_page(page: Page, path: str, shot: str) -> None:
    response = page.goto(path)
    assert response is not None, path
    assert response.status == 200, f"{path}: {response.status}"
    wait_for_figures(page)
    REPORTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(REPORTS / f"{shot}.png"), full_page=True)


def wait_for_figures(page: Page) -> None:
    """Until the page's script has drawn its figures (or failed to: then the test fails saying why)."""
    page.wait_for_selector("#blocks[data-loaded]", state="attached", timeout=FIGURES_TIMEOUT_MS)
    loaded = page.get_attribute("#blocks", "data-loaded")
    assert loaded == "true", f"{page.url}: the figures did not load: {page.inner_text('main')[:2000]}"


def gateway_get(platform: Platform, label: str, path: str, **params: Any) -> Any:
    answer = httpx.get(
        f"{platform.base_url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {platform.token(label)}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_headquarters_opens_every_page(platform: Platform, watched: tuple[BrowserContext, Watch]) -> None:
    context, watch = watched
    register_a_supplier(platform)
    page = context.new_page()
    sign_in(page, platform, "headquarters")
    assert page.url.endswith("/stores/all/overview")
    for path, shot in (
        ("/stores/all/overview", "headquarters-overview"),
        ("/stores/S001/overview", "headquarters-overview-S001"),
        ("/stores/S001/stock", "headquarters-stock"),
        ("/stores/S001/prices", "headquarters-prices"),
        ("/stores/all/members", "headquarters-members"),
        ("/stores/all/alerts", "headquarters-alerts"),
        ("/suppliers", "headquarters-suppliers"),
    ):
        open_page(page, path, shot)
        assert page.locator("#blocks section").count() > 0, path
    # Suppliers: the supply service answers, and every supplier has its scorecard row.
    assert "该服务尚未部署" not in page.inner_text("#blocks")
    suppliers = gateway_get(platform, "headquarters", "/v1/suppliers", page_size=100)["suppliers"]
    assert [supplier["supplier_id"] for supplier in suppliers] == ["SUPCONSOLE"]
    assert page.locator("#scorecards tbody tr").count() == 1
    assert page.locator("#scorecards tbody tr td").first.inner_text() == "SUPCONSOLE"
    # The overview compares with last year, or with the period before where last year has no sales.
    open_page(page, "/stores/all/overview", "headquarters-overview")
    assert page.locator("#kpis-days_7 .previous").first.inner_text().startswith(("去年同期", "上一周期"))
    # The member mix: the tier chart's numbers are the gateway's counts for the chain, one click away.
    open_page(page, "/stores/all/members", "headquarters-members")
    mix = gateway_get(platform, "headquarters", "/v1/members/mix")
    assert chart_numbers(page, "tier-mix") == {row["tier"]: float(row["members"]) for row in mix["tiers"]}
    lifecycle = chart_numbers(page, "lifecycle-mix")
    assert sum(lifecycle.values()) == mix["members"] > 0
    assert set(lifecycle) == {"new", "active", "at_risk", "sleeping"}
    assert chart_numbers(page, "churn-risk") == {row["risk"]: float(row["members"]) for row in mix["churn_risk"]}
    assert page.locator("#coupons-per-campaign, #campaigns").count() > 0
    # English on request; Chinese is the default.
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.click("a.lang")
    wait_for_figures(page)
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Members and campaigns" in page.inner_text("h1")
    page.screenshot(path=str(REPORTS / "headquarters-members-en.png"), full_page=True)
    watch.clean()


def chart_numbers(page: Page, chart_id: str) -> dict[str, float]:
    """A chart's numbers as its "show numbers" table gives them, by row key (after one click)."""
    chart = page.locator(f"#{chart_id}")
    table = chart.locator("table.numbers")
    assert table.is_hidden()
    chart.locator("button.toggle").click()
    assert table.is_visible()
    numbers = {
        str(row.get_attribute("data-key")): float(row.locator("td").first.get_attribute("data-value") or "nan")
        for row in table.locator("tbody tr").all()
    }
    chart.locator("button.toggle").click()
    return numbers


def test_the_stock_page_shows_categories_and_open_transfers(
    platform: Platform, watched: tuple[BrowserContext, Watch]
) -> None:
    context, watch = watched
    own = platform.credentials["store_manager"]["store_id"]
    other = next(store.location_id for store in platform.retailer.stores if store.location_id != own)
    plan = gateway_get(platform, "headquarters", f"/v1/locations/{own}/replenishment", page_size=5)
    sku = plan["suggestions"][0]["sku"]
    moved = httpx.post(
        f"{platform.base_url}/v1/transfers",
        json={"sku": sku, "quantity": "1", "from_location_id": own, "to_location_id": other},
        headers={
            "Authorization": f"Bearer {platform.token('headquarters')}",
            "Idempotency-Key": f"console-transfer-{uuid.uuid4()}",
        },
        timeout=60,
    )
    assert moved.status_code == 201, moved.text
    page = context.new_page()
    sign_in(page, platform, "store_manager")
    open_page(page, f"/stores/{own}/stock", "store-manager-stock")
    # The open transfer, as the gateway lists it for the store.
    listed = gateway_get(platform, "store_manager", f"/v1/locations/{own}/transfers", status="requested")
    assert moved.json()["transfer_id"] in {t["transfer_id"] for t in listed["transfers"]}
    rows = page.locator("#transfers tbody tr")
    assert rows.count() >= 1
    assert any(sku in row.inner_text() and other in row.inner_text() for row in rows.all())
    # A tile per category, with the gateway's stock-out rate for it; the rates chart beside it.
    kpis = gateway_get(platform, "store_manager", f"/v1/locations/{own}/kpis")
    assert kpis["categories"], "the demo's items have categories"
    tiles = page.locator("#category-kpis .tile")
    assert tiles.count() == len(kpis["categories"])
    for category in kpis["categories"]:
        tile = page.locator(f'#category-kpis .tile[data-key="{category["category_id"]}"]')
        shown = tile.get_attribute("data-value")
        assert (float(shown) if shown else None) == (
            float(category["stock_out_rate"]) if category["stock_out_rate"] is not None else None
        )
    rates = chart_numbers(page, "category-rates")
    assert set(rates) == {c["category_id"] or "–" for c in kpis["categories"]}
    watch.clean()
    # Another store's stock page and figures stay closed to this manager, URL edits or not.
    assert page.goto(f"/stores/{other}/stock").status == 403  # type: ignore[union-attr]
    assert page.locator("#blocks").count() == 0
    assert page.request.get(f"/api/stores/{other}/stock").status == 403
    assert page.request.get(f"/api/stores/{other}/members").status == 403
    assert watch.foreign == []


def test_store_manager_sees_their_store_only(
    platform: Platform, watched: tuple[BrowserContext, Watch], console_url: str
) -> None:
    context, watch = watched
    page = context.new_page()
    sign_in(page, platform, "store_manager")
    own = platform.credentials["store_manager"]["store_id"]
    other = next(store.location_id for store in platform.retailer.stores if store.location_id != own)
    assert page.url.endswith(f"/stores/{own}/overview")
    for name in ("overview", "stock", "prices", "members", "alerts"):
        open_page(page, f"/stores/{own}/{name}", f"store-manager-{name}")
    watch.clean()
    # Another store's pages, the chain's, and the suppliers' are refused, and nothing of them is shown.
    for path in (
        f"/stores/{other}/stock",
        f"/stores/{other}/overview",
        f"/stores/{other}/alerts",
        "/stores/all/overview",
        "/stores/all/alerts",
        "/suppliers",
    ):
        response = page.goto(path)
        assert response is not None, path
        assert response.status == 403, path
        assert page.locator("#blocks").count() == 0
        assert page.locator("#error-message").is_visible()
    refused = page.request.get(f"/api/stores/{other}/overview")
    assert refused.status == 403
    assert "blocks" not in refused.json()
    assert watch.foreign == []


def register_a_supplier(platform: Platform) -> None:
    """The small demo loads no supply data: one supplier for the suppliers page to show."""
    answer = httpx.post(
        f"{platform.base_url}/v1/suppliers",
        json={"supplier_id": "SUPCONSOLE", "code": "CONSOLE", "name": "控制台测试供应商"},
        headers={"Authorization": f"Bearer {platform.token('headquarters')}", "Idempotency-Key": "console-supplier"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text


def china_today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def test_a_chart_shows_the_gateways_numbers(platform: Platform, watched: tuple[BrowserContext, Watch]) -> None:
    context, watch = watched
    page = context.new_page()
    sign_in(page, platform, "headquarters")
    open_page(page, "/stores/all/overview", "headquarters-overview")
    chart = page.locator("#sales-per-store")
    table = chart.locator("table.numbers")
    assert table.is_hidden()
    chart.locator("button.toggle").click()
    assert table.is_visible()
    today = china_today()
    shown = {
        str(row.get_attribute("data-key")): float(row.locator("td").first.get_attribute("data-value") or "nan")
        for row in table.locator("tbody tr").all()
    }
    stores = sorted(store.location_id for store in platform.retailer.stores)
    assert sorted(shown) == stores
    for store_id in stores:
        answer = gateway_get(
            platform,
            "headquarters",
            "/v1/members/kpis",
            store_id=store_id,
            **{"from": (today - timedelta(days=27)).isoformat(), "to": today.isoformat()},
        )
        assert shown[store_id] == float(answer["net_sales"]), store_id
    assert any(value > 0 for value in shown.values()), "the demo's sales should show"
    watch.clean()


def test_a_store_manager_approves_a_markdown(platform: Platform, watched: tuple[BrowserContext, Watch]) -> None:
    context, watch = watched
    own = platform.credentials["store_manager"]["store_id"]
    markdown = overstocked_markdown(platform, own)
    page = context.new_page()
    sign_in(page, platform, "store_manager")
    open_page(page, f"/stores/{own}/prices", "store-manager-prices")
    row = page.locator(f'tr[data-markdown="{markdown}"]')
    row.locator("button.approve").click()
    page.wait_for_selector("#decision")
    assert page.locator("#decision").get_attribute("class") == "ok"
    approved = gateway_get(platform, "headquarters", f"/v1/stores/{own}/markdown-suggestions", state="approved")
    assert markdown in {suggestion["markdown_id"] for suggestion in approved["suggestions"]}
    assert page.locator(f'tr[data-markdown="{markdown}"]').count() == 0
    watch.clean()


def overstocked_markdown(platform: Platform, store_id: str) -> str:
    """Count far more of one of the store's SKUs than it sells; inventory's next planning run
    raises an overstock alert and pricing suggests a markdown. The suggestion's id."""
    token = platform.token("headquarters")
    plan = gateway_get(platform, "headquarters", f"/v1/locations/{store_id}/replenishment", page_size=50)
    sku = plan["suggestions"][0]["sku"]
    counted = httpx.post(
        f"{platform.base_url}/v1/locations/{store_id}/stock-counts",
        json={"lines": [{"sku": sku, "counted_quantity": "100000"}]},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"console-test-{uuid.uuid4()}"},
        timeout=60,
    )
    assert counted.status_code == 200, counted.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = gateway_get(platform, "headquarters", f"/v1/stores/{store_id}/markdown-suggestions")
        for suggestion in listed["suggestions"]:
            if suggestion["sku"] == sku:
                return str(suggestion["markdown_id"])
        time.sleep(0.5)
    raise AssertionError(f"no markdown suggestion for the overstocked {sku} at {store_id} within 120 s")


def overstock_alert(platform: Platform, store_id: str, rank: int) -> dict[str, Any]:
    """Count far more of one of the store's SKUs (the ``rank``-th planned) than it sells: inventory's
    next planning run raises an overstock, and the alerts service opens an alert for it."""
    plan = gateway_get(platform, "headquarters", f"/v1/locations/{store_id}/replenishment", page_size=50)
    sku = plan["suggestions"][rank]["sku"]
    counted = httpx.post(
        f"{platform.base_url}/v1/locations/{store_id}/stock-counts",
        json={"lines": [{"sku": sku, "counted_quantity": "100000"}]},
        headers={"Authorization": f"Bearer {platform.token('headquarters')}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=60,
    )
    assert counted.status_code == 200, counted.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        feed = gateway_get(platform, "headquarters", "/v1/alerts", store_id=store_id, kind="overstock")
        for alert in feed["alerts"]:
            if alert["subject"] == sku and alert["state"] == "open":
                return dict(alert)
        time.sleep(0.5)
    raise AssertionError(f"no overstock alert for {sku} at {store_id} within 120 s")


def test_a_store_manager_acknowledges_and_resolves_an_alert_of_their_store_only(
    platform: Platform, watched: tuple[BrowserContext, Watch]
) -> None:
    context, watch = watched
    manager = platform.credentials["store_manager"]
    own = manager["store_id"]
    other = next(store.location_id for store in platform.retailer.stores if store.location_id != own)
    alert, elsewhere = overstock_alert(platform, own, 1), overstock_alert(platform, other, 1)
    page = context.new_page()
    sign_in(page, platform, "store_manager")
    open_page(page, f"/stores/{own}/alerts", "store-manager-alerts")
    item = page.locator(f'li[data-alert="{alert["alert_id"]}"]')
    assert item.get_attribute("data-kind") == "overstock"
    assert alert["subject"] in item.inner_text()
    assert item.locator("a.act").get_attribute("href") == f"/stores/{own}/stock"
    assert page.locator(f'li[data-alert="{elsewhere["alert_id"]}"]').count() == 0, "another store's alert is shown"

    item.locator("button.acknowledge").click()
    page.wait_for_selector("#decision")
    assert page.locator("#decision").get_attribute("class") == "ok"
    item = page.locator(f'li[data-alert="{alert["alert_id"]}"]')
    assert item.locator(".acknowledged-by").inner_text() == manager["client_id"]
    answer = gateway_get(platform, "headquarters", f"/v1/alerts/{alert['alert_id']}")
    assert (answer["state"], answer["acknowledged_by"]) == ("acknowledged", manager["client_id"])

    item.locator("input[name=note]").fill("counted again, stock moved to the back room")
    item.locator("button.resolve").click()
    page.wait_for_selector("#decision")
    answer = gateway_get(platform, "headquarters", f"/v1/alerts/{alert['alert_id']}")
    assert (answer["state"], answer["resolved_by"]) == ("resolved", manager["client_id"])
    assert answer["resolution_note"] == "counted again, stock moved to the back room"

    # Another store's alert cannot be acted on through the manager's own store page either.
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(
        f"/stores/{own}/alerts/{elsewhere['alert_id']}/acknowledge", form={"csrf_token": csrf or ""}
    )
    assert "decision=failed-404" in refused.url, refused.url
    untouched = gateway_get(platform, "headquarters", f"/v1/alerts/{elsewhere['alert_id']}")
    assert (untouched["state"], untouched["version"]) == ("open", elsewhere["version"])
    watch.clean()


def test_a_form_without_its_csrf_token_changes_nothing(
    platform: Platform, watched: tuple[BrowserContext, Watch]
) -> None:
    context, _ = watched
    page = context.new_page()
    sign_in(page, platform, "store_manager")
    own = platform.credentials["store_manager"]["store_id"]
    refused = page.request.post("/sign-out", form={"other": "x"}, max_redirects=0)
    assert refused.status == 403
    wrong = page.request.post("/sign-out", form={"csrf_token": "forged"}, max_redirects=0)
    assert wrong.status == 403
    approve = page.request.post(f"/stores/{own}/markdowns/MDNONE/approve", form={}, max_redirects=0)
    assert approve.status == 403
    # Still signed in: the refused sign-outs ended nothing.
    assert page.goto(f"/stores/{own}/overview").status == 200  # type: ignore[union-attr]
    # The sign-in form too needs its token.
    credential = platform.credentials["store_manager"]
    anonymous = context.browser.new_context() if context.browser else None
    assert anonymous is not None
    fresh = anonymous.request.post(
        f"{page.url.split('/stores')[0]}/sign-in",
        form={"client_id": credential["client_id"], "client_secret": credential["client_secret"]},
        max_redirects=0,
    )
    assert fresh.status == 403
    anonymous.close()


def test_sign_out_ends_the_session(platform: Platform, watched: tuple[BrowserContext, Watch], console_url: str) -> None:
    context, watch = watched
    page = context.new_page()
    # The race between a slow figure and signing out, run the same way every time: the
    # overview's figures are held until the console has ended the session, and the sign-out's
    # answer is held until the figures' late 401 is back in the old page. That 401 must not turn
    # a sign-out into "your session has ended" (/sign-in?ended=1).
    figures: list[Route] = []
    page.route("**/api/**", lambda route, _request: figures.append(route))
    with page.expect_request("**/api/**"):
        sign_in(page, platform, "headquarters")
    cookies = context.cookies()
    session = next(cookie for cookie in cookies if cookie["name"] == "console_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"
    late: list[int] = []

    def sign_out_before_the_figures(route: Route, _request: Request) -> None:
        answer = route.fetch(max_redirects=0)
        with page.expect_response("**/api/**") as figures_answer:
            for figure in figures:
                figure.continue_()
        late.append(figures_answer.value.status)
        route.fulfill(response=answer)

    page.route("**/sign-out", sign_out_before_the_figures)
    page.click("#sign-out")
    page.wait_for_url("**/sign-in")
    assert late == [401]
    # The old cookie, sent again, opens nothing.
    replay = httpx.get(f"{console_url}/api/stores/all/overview", cookies={"console_session": session["value"]})
    assert replay.status_code == 401
    page_again = httpx.get(
        f"{console_url}/stores/all/overview", cookies={"console_session": session["value"]}, follow_redirects=False
    )
    assert page_again.status_code == 303
    assert page_again.headers["location"].startswith("/sign-in")
    # Chromium logs the held figures' 401 itself; that is the one error this test provokes.
    assert watch.errors == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
    watch.errors.clear()
    watch.clean()


def test_a_session_started_on_one_console_replica_works_on_another_and_a_tampered_cookie_does_not(
    platform: Platform, browser: Browser, console_url: str, tmp_path: Path
) -> None:
    context = browser.new_context(base_url=console_url)
    page = context.new_page()
    sign_in(page, platform, "headquarters")
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "console_session")
    context.close()
    # A second console process with the same session key (both run with the test's key) serves the session.
    with running_console(platform.base_url, tmp_path / "console-replica.log") as replica:
        assert httpx.get(f"{replica}/readyz").json() == {"status": "ready"}
        served = httpx.get(f"{replica}/api/stores/S001/stock", cookies={"console_session": cookie}, timeout=180)
        assert served.status_code == 200, served.text
        assert served.json()["blocks"]
        page_there = httpx.get(f"{replica}/stores/all/overview", cookies={"console_session": cookie})
        assert page_there.status_code == 200
        # Any byte changed, and the cookie opens nothing: JSON answers 401, pages send to sign-in.
        middle = len(cookie) // 2
        tampered = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
        assert httpx.get(f"{replica}/api/stores/all/overview", cookies={"console_session": tampered}).status_code == 401
        bounced = httpx.get(f"{replica}/stores/all/overview", cookies={"console_session": tampered})
        assert (bounced.status_code, bounced.headers["location"]) == (303, "/sign-in?ended=1")
    # A console with another key cannot open it either.
    other_key = "another-console-session-key-0123456789abcdef"
    with running_console(platform.base_url, tmp_path / "console-other.log", CONSOLE_SESSION_KEY=other_key) as other:
        assert httpx.get(f"{other}/api/stores/all/overview", cookies={"console_session": cookie}).status_code == 401


def test_an_idle_session_ends(platform: Platform, browser: Browser, tmp_path: Path) -> None:
    log = tmp_path / "console-idle.log"
    with running_console(platform.base_url, log, IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT_SECONDS)) as url:
        context = browser.new_context(base_url=url)
        page = context.new_page()
        sign_in(page, platform, "headquarters")
        assert page.url.endswith("/stores/all/overview")
        assert page.goto("/stores/S001/stock").status == 200  # type: ignore[union-attr]
        time.sleep(IDLE_TIMEOUT_SECONDS + 1)  # the idle time itself is what is tested
        page.goto("/stores/S001/stock")
        assert urlsplit(page.url).path == "/sign-in"
        assert page.locator(".error").is_visible()
        assert page.request.get("/api/stores/all/overview").status == 401
        context.close()


def test_wrong_secrets_and_other_clients_cannot_sign_in(
    platform: Platform, watched: tuple[BrowserContext, Watch]
) -> None:
    context, watch = watched
    page = context.new_page()
    page.goto("/sign-in")
    page.fill("#client_id", platform.credentials["headquarters"]["client_id"])
    page.fill("#client_secret", "not-the-secret")
    page.click("#sign-in")
    assert urlsplit(page.url).path == "/sign-in"
    assert page.locator(".error").is_visible()
    sign_in(page, platform, "pos_terminal")  # a till is not staff of the console
    assert urlsplit(page.url).path == "/sign-in"
    assert page.locator(".error").is_visible()
    assert all(cookie["name"] != "console_session" for cookie in context.cookies())
    assert watch.foreign == []


def test_a_revoked_client_is_signed_out(platform: Platform, watched: tuple[BrowserContext, Watch]) -> None:
    context, _ = watched
    headquarters = {"Authorization": f"Bearer {platform.token('headquarters')}"}
    client_id = f"S002-MGR-{uuid.uuid4().hex[:6]}"
    registered = httpx.post(
        f"{platform.base_url}/v1/admin/clients",
        json={
            "client_id": client_id,
            "kind": "staff",
            "display_name": "S002 manager (console test)",
            "store_id": "S002",
            "staff_role": "store_manager",
        },
        headers={**headquarters, "Idempotency-Key": f"register-{client_id}"},
        timeout=60,
    )
    assert registered.status_code == 201, registered.text
    page = context.new_page()
    page.goto("/sign-in")
    page.fill("#client_id", client_id)
    page.fill("#client_secret", registered.json()["client_secret"])
    page.click("#sign-in")
    page.wait_for_load_state("load")
    assert page.url.endswith("/stores/S002/overview")
    assert page.goto("/stores/S001/overview").status == 403  # type: ignore[union-attr]
    revoked = httpx.post(
        f"{platform.base_url}/v1/admin/clients/{client_id}/revoke",
        headers={**headquarters, "Idempotency-Key": f"revoke-{client_id}"},
        timeout=60,
    )
    assert revoked.status_code == 200, revoked.text
    # The gateway refuses the token once its registration cache has seen the revocation (seconds).
    deadline = time.monotonic() + 60
    while page.request.get("/api/stores/S002/overview").status == 200:
        assert time.monotonic() < deadline, "the console kept serving a revoked client's session"
        time.sleep(0.5)
    assert page.request.get("/api/stores/S002/overview").status == 401
    page.goto("/stores/S002/overview")
    assert urlsplit(page.url).path == "/sign-in"
