"""Helpers shared by the browser tests: Debian's chromium, one per module, and page helpers."""
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

SHOTS = Path("/tmp/browser-shots")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 15_000
DESKTOP = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def chromium():
    """One headless chromium for the whole module."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def number(text):
    """'1,234' -> 1234."""
    return int(re.sub(r"[^\d]", "", text))


def log_in(page, base_url, username, password):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form[action$='/login/'] button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    expect(page.locator("form.who")).to_contain_text("Sign out")


def list_total(page):
    return int(page.locator("strong[data-count]").get_attribute("data-count"))
