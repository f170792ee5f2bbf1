"""The console in a real browser: Debian's Chromium driven by Playwright, against `serve`'s app
on a loopback port with real PostgreSQL (or SQLite) and Redis. Never skipped: without
/usr/bin/chromium these fail, naming the package (./scripts/test installs it as root).

CONSOLE_SCREENSHOTS=DIR keeps the pages' screenshots (a phone's width and a desktop's) there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.inbox.store import Status
from service.kinds.users import users
from service.queue.client import RECONCILE_NOW_JOB_ID, connect, queue_name, reconcile_job_name
from service.queue.worker import cron_jobs
from tests.queue.test_worker import run_burst_worker
from tests.support.console import TOKEN, busy, console_settings, failed_event, served
from tests.support.replica_helpers import inbox_row, rows

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def settings(db_url: str, redis_url: str) -> Settings:
    return console_settings(db_url, redis_url, clerk_secret_key="sk_test_console")


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (./scripts/test does)")
    return str(CHROMIUM)


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(browser: Browser, base: str, viewport: dict[str, int] = DESKTOP) -> Page:
    page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    await page.goto(f"{base}/console/")
    assert page.url == f"{base}/console/login"
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console/")
    return page


async def screenshot(page: Page, name: str) -> None:
    """Full-page screenshots at both widths; kept when CONSOLE_SCREENSHOTS names a folder."""
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        shot = await page.screenshot(full_page=True)
        assert len(shot) > 1000
        # Nothing wider than the viewport: the page reads without sideways scrolling.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], (label, width)
        if folder:
            _keep(Path(folder, f"{name}-{label}.png"), shot)


def _keep(path: Path, shot: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(shot)


async def test_a_wrong_token_is_refused(browser: Browser, settings: Settings) -> None:
    async with served(settings) as (base, _app):
        page = await browser.new_page()
        await page.goto(f"{base}/console/")
        await page.fill("#token", "not-the-console-token-at-all")
        await page.click("button[type=submit]")
        await page.wait_for_selector("text=Not signed in.")
        assert await page.context.cookies() == []
        await page.goto(f"{base}/console/")
        assert page.url == f"{base}/console/login"


async def test_the_failed_event_is_listed_and_replay_requeues_it(
    browser: Browser, settings: Settings, engine: AsyncEngine
) -> None:
    svix_id, user_id = await failed_event(engine)
    async with served(settings) as (base, _app):
        page = await signed_in(browser, base)
        row = page.locator(f"tr.failed-event[data-svix-id='{svix_id}']")
        assert await row.count() == 1
        assert user_id in await row.inner_text()
        assert "jane@example.com" not in await page.content()
        await row.locator("button", has_text="Replay").click()
        await page.wait_for_selector("text=Re-queued 1 failed event(s)")
        assert await page.locator("#no-failed").count() == 1
    assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING.value
    redis = connect(settings)
    try:
        assert await redis.zcard(queue_name(settings)) == 1
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    # The job it queued is a real one: a worker applies the event.
    await run_burst_worker(settings)
    assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED.value
    assert [r["id"] for r in await rows(engine, users)] == [user_id]


async def test_starting_a_reconcile_queues_the_workers_job(
    browser: Browser, settings: Settings
) -> None:
    async with served(settings) as (base, _app):
        page = await signed_in(browser, base)
        await page.click("text=Start reconcile now")
        await page.wait_for_selector("text=Reconcile queued")
    redis = connect(settings)
    try:
        job = f"{settings.redis.queue_prefix}:{RECONCILE_NOW_JOB_ID}"
        assert await redis.zscore(queue_name(settings), job) is not None
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    # A worker with a key runs it: the job's name is its reconcile job's.
    assert reconcile_job_name(settings) in {job.name for job in cron_jobs(settings)}


async def test_the_pages_render_with_an_empty_database(
    browser: Browser, settings: Settings
) -> None:
    async with served(settings) as (base, _app):
        page = await signed_in(browser, base)
        text = await page.inner_text("main")
        assert "No failed events." in text and "No reconcile has run yet." in text
        assert "never" in text  # no delivery, no reconcile: both flagged
        assert await page.locator("svg.chart").count() == 2
        await screenshot(page, "empty")


async def test_the_pages_render_with_a_busy_database(
    browser: Browser, settings: Settings, engine: AsyncEngine
) -> None:
    await busy(engine)
    svix_id, _ = await failed_event(engine)
    async with served(settings) as (base, _app):
        page = await signed_in(browser, base)
        instance = await page.inner_text("section.instance")
        assert "3,041" in instance  # the day's deliveries: busy's, the failed one, 40 users
        assert await page.locator("svg.bars rect").count() > 100
        assert await page.locator("svg.line polyline").count() >= 1
        assert await page.locator("tr.run[data-status='running']").count() == 1
        await page.click("tr.run[data-status='running'] summary")
        assert "organizations" in await page.inner_text("tr.run[data-status='running']")
        replica = await page.inner_text("#replica")
        assert "clerk_users" in replica and "40" in replica
        await screenshot(page, "busy")
        await page.click(f"a:text('{svix_id}')")
        await page.wait_for_selector("text=Show the stored body")
        assert await page.locator("#body").count() == 0
        await page.click("text=Show the stored body")
        await page.wait_for_selector("#body")
        assert "user.created" in await page.inner_text("#body")
        await screenshot(page, "event")
