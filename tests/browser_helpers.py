"""Helpers shared by the browser tests."""
import re

from playwright.sync_api import expect


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
