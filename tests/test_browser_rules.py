"""Issue 14's flow in a real browser: a steward builds "PII columns that are not verified", previews it, saves
it, finds its card on the overview and its list, verifies three of them in bulk through a real Celery worker,
and sees the card and the list drop by three. With BROWSER_SHOTS=1, screenshots go to /tmp/browser-shots/rules-*.png."""
import os
import re

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect  # noqa: E402

from catalog_sync.models import Resource  # noqa: E402
from hygiene.bulk.models import ChangeSet  # noqa: E402
from hygiene.lifecycle.models import IssueInterval  # noqa: E402
from hygiene.rulebook.models import Rule  # noqa: E402
from tests.browser_helpers import list_total, log_in, number, shooter  # noqa: E402
from tests.test_browser_bulk import (  # noqa: E402, F401  (fixtures)
    WORKER_TIMEOUT_MS, mirror, quick_writes, tab, worker)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAME = "PII columns that are not verified"


shot = shooter("rules")


def flagged():
    return Resource.objects.filter(removed_at__isnull=True, archived=False, entity_type="column", pii=True,
                                   verified=False)


def card_count(page, key):
    return number(page.locator(f'a[data-rule="{key}"]').inner_text())


def test_a_steward_builds_previews_and_saves_a_rule_then_fixes_three_and_sees_the_count_drop(
        live_server, mirror, quick_writes, steward, worker, tab):
    base, page = live_server.url, tab
    expected = flagged().count()
    assert expected > 3
    log_in(page, base, "stella", "pw-steward-1")

    # Build it from the navigation, preview it: nothing saved yet.
    page.locator("nav.mainnav a", has_text="Rules").click()
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name", exact=True).fill(NAME)
    page.locator('.scope input[name="entity_type"][value="column"]').check()
    page.get_by_label("Clause 1: field").select_option("pii")
    page.get_by_label("Clause 1: test").select_option("is_true")
    page.get_by_label("Clause 2: field").select_option("verified")
    page.get_by_label("Clause 2: test").select_option("is_false")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("[data-preview-total]")).to_have_attribute("data-preview-total", str(expected))
    assert not Rule.objects.filter(builtin=False).exists(), "a preview saves nothing"
    shot(page, "01-preview")

    # Save: its list opens, with exactly those resources.
    page.locator(".preview").get_by_role("button", name="Save rule").click()
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/issues/[a-z_0-9]+/$"))
    key = page.url.rstrip("/").split("/")[-1]
    assert list_total(page) == expected
    rule = Rule.objects.get(key=key)
    assert IssueInterval.objects.filter(rule=key, closed_at__isnull=True).count() == expected

    # Its card on the overview, with the count.
    page.locator("nav.mainnav a", has_text="Overview").click()
    card = page.locator("article.rule-card", has=page.locator(f'a[data-rule="{key}"]'))
    expect(card).to_contain_text(NAME)
    assert card_count(page, key) == expected
    shot(page, "02-overview-card")

    # Fix three in bulk: tick three rows of its list, set Verified, preview, apply through the worker.
    card.get_by_role("link", name=NAME).click()
    page.wait_for_url(f"{base}/issues/{key}/")
    checks = page.locator("input.row-check")
    for index in range(3):
        checks.nth(index).check()
    picked = [checks.nth(index).get_attribute("value") for index in range(3)]
    with page.expect_navigation():
        page.locator("#edit-selected").click()
    page.get_by_label("Verified").select_option("true")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview the changes").click()
    expect(page.locator("[data-will-change]")).to_have_text("3")
    with page.expect_navigation():
        page.locator(".preview-summary").get_by_role("button", name=re.compile(r"^Apply 3 changes")).click()
    expect(page.locator(".page-head [data-status]")).to_have_attribute("data-status", "completed",
                                                                        timeout=WORKER_TIMEOUT_MS)
    assert ChangeSet.objects.get().status == ChangeSet.COMPLETED
    assert all(quick_writes.workspace.get(pk)["verified"] for pk in picked), "Secoda has them verified"

    # The card and the list count three fewer; the three issues closed as fixed by that change set.
    page.locator("nav.mainnav a", has_text="Overview").click()
    assert card_count(page, key) == expected - 3
    shot(page, "03-overview-after-fix")
    page.goto(f"{base}/issues/{key}/")
    assert list_total(page) == expected - 3
    closed = IssueInterval.objects.filter(rule=key, resource_id__in=picked)
    assert set(closed.values_list("close_reason", flat=True)) == {IssueInterval.FIXED}
    assert rule.name == NAME
