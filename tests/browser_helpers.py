"""Helpers shared by the browser tests (their chromium, one per test process, is in conftest.py)."""
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

SHOTS = Path("/tmp/browser-shots")
# Screenshots of the pages the flows pass through, for a person to look at: `BROWSER_SHOTS=1 bin/test -m browser`.
# Off by default: a full-page PNG costs chromium about half a second of CPU, half a minute over the suite.
# (A page that fails its accessibility check is always pictured.)
SHOTS_WANTED = os.environ.get("BROWSER_SHOTS", "") not in ("", "0")
# Debian's chromium-headless-shell when installed (bin/test installs it): the same chromium build in the old
# headless mode, the one Playwright itself runs headless; a third less CPU a page than the full browser's new
# headless mode. Debian's full chromium otherwise.
CHROMIUM = "/usr/bin/chromium-headless-shell" if os.path.exists("/usr/bin/chromium-headless-shell") \
    else "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 15_000
DESKTOP = {"width": 1440, "height": 900}
# axe-core 4.14.1 (MPL-2.0, from npm's axe-core package, unmodified) kept in tests/vendor: no network at run time.
# 4.14 checks colour contrast in half the time 4.12 took (0.45 s against 0.93 s of chromium's CPU on a 50-row list).
AXE_SCRIPT = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
# The WCAG 2.0/2.1 A and AA rules, the bar the issue sets (axe's best-practice rules are left out: they are
# advice, not WCAG, and double the time of every check).
AXE_OPTIONS = {"resultTypes": ["violations"],
               "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
BLOCKING = ("critical", "serious")


def axe_results(page):
    """What axe-core finds on the page as it is now (its whole result: violations in full)."""
    if page.evaluate("typeof window.axe === 'undefined'"):  # once for each document
        page.evaluate(AXE_SCRIPT)
    return page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)


def blocking_violations(page):
    """axe's critical and serious violations on the page."""
    return [v for v in axe_results(page)["violations"] if v["impact"] in BLOCKING]


@pytest.fixture
def new_tab(chromium):
    """Opens pages in fresh browser contexts (own cookies), all closed after the test. `clipboard_for`
    (an origin) lets that site read and write the clipboard."""
    contexts = []

    def open_tab(viewport=DESKTOP, clipboard_for=None):
        context = chromium.new_context(viewport=viewport, accept_downloads=True)
        if clipboard_for:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=clipboard_for)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_tab
    for context in contexts:
        context.close()


def shot(page, name, full_page=True):
    """A picture of the page as /tmp/browser-shots/<name>.png, when screenshots are wanted."""
    if SHOTS_WANTED:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def shooter(prefix):
    """`shot` for one test file, whose pictures' names start with `prefix`-."""
    return lambda page, name, full_page=True: shot(page, f"{prefix}-{name}", full_page)


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
