"""A person links their FACEIT account in headless Chromium: from the link in the Discord
sandbox's /register reply, through the FACEIT sandbox's sign-in page, to the registry's result
page. Without a browser the test is skipped, except in CI (CI=true), where it fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from sandbox.link_browser import link_url
from sandbox.system import SystemOptions
from tests.sandbox.system_support import Harness

CHROMIUM_NAMES = ("chromium", "chromium-browser")
"""Debian's and Ubuntu's names of the system Chromium (Playwright cannot download one here)."""
NO_POLL_S = 3600.0


def system_chromium() -> str:
    """The path of the system's Chromium; skips the test, or fails it in CI, when there is none."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    message = f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + ": CI must install Debian's chromium")
    pytest.skip(message)


@pytest_asyncio.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Headless system Chromium."""
    executable = system_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def system(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """The whole system in its default mode (faceit_oauth)."""
    options = SystemOptions(
        log_dir=tmp_path / "logs", database_url=database_url, poll_interval_s=NO_POLL_S
    )
    async with Harness.running(options) as harness:
        yield harness


async def screenshot(page: Page, path: Path) -> None:
    """Save a full-page screenshot and say where (to look at it after the run)."""
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")  # noqa: T201 - the path is for the person running the test


async def test_a_person_links_their_faceit_account_in_a_real_browser(
    chromium: Browser, system: Harness, tmp_path: Path
) -> None:
    """Link page names the Discord account; FACEIT sign-in lists the player; result says linked."""
    await system.faceit.create_player("browser_player", skill_level=6)
    member = await system.discord.add_member(system.guild_id, "browser-person")
    reply = await system.discord.run_command(system.guild_id, member["user_id"], "register")
    page = await chromium.new_page()

    await page.goto(link_url(reply))
    await expect(page.locator("h1")).to_have_text("Link your FACEIT account")
    await expect(page.locator("main")).to_contain_text("browser-person")
    await screenshot(page, tmp_path / "1-link-page.png")
    await page.get_by_role("button", name="Continue to FACEIT as browser-person").click()

    await expect(page.locator("h1")).to_have_text("Sign in with FACEIT (sandbox)")
    assert page.url.startswith(system.info["faceit_url"] + "/accounts?")
    await page.get_by_label("browser_player", exact=True).check()
    await screenshot(page, tmp_path / "2-faceit-sign-in.png")
    await page.get_by_role("button", name="Allow").click()

    await expect(page.locator("h1")).to_have_text("FACEIT account linked")
    assert page.url.startswith(system.info["registry_http"] + "/link/callback?")
    main = page.locator("main")
    await expect(main).to_contain_text(
        "The Discord account browser-person is now linked to the FACEIT account browser_player"
    )
    await expect(page.locator("h2")).to_have_text("What next")
    await expect(main).to_contain_text("Go back to Discord: /whoami shows the link.")
    await screenshot(page, tmp_path / "3-linked.png")
    whoami = await system.discord.run_command(system.guild_id, member["user_id"], "whoami")
    (embed,) = whoami["embeds"]
    assert embed["description"] == "browser_player"
    assert {f["name"]: f["value"] for f in embed["fields"]}["Verified"].startswith("Yes: signed in")


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_without_chromium_the_browser_test_fails_in_ci_and_is_skipped_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    """No Chromium on PATH: CI=true fails the browser test; a developer's run skips it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome):
        system_chromium()
