"""Suggested owners in a real browser: a steward follows the overview's "have a suggested owner" link, filters
the suggestions (Snowflake columns, confidence at least 80), accepts every one of them, previews the change
set, applies it through a real Celery worker, and sees the unowned count drop by exactly the number of
resources accepted; Secoda (the emulator) holds the new owners and the suggestions are gone. Axe checks the
page on the way. With BROWSER_SHOTS=1, screenshots go to /tmp/browser-shots/suggestions-*.png."""
import os
import re

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect  # noqa: E402

from catalog_sync.models import Integration  # noqa: E402
from hygiene.bulk.models import ChangeSet  # noqa: E402
from hygiene.domain.lists import issue_queryset  # noqa: E402
from hygiene.suggestions.models import Suggestion  # noqa: E402
from tests.browser_helpers import (  # noqa: E402
    blocking_violations, list_total, log_in, number, shooter)
from tests.test_browser_bulk import (  # noqa: E402, F401  (fixtures)
    WORKER_TIMEOUT_MS, mirror, quick_writes, tab, worker)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LEAST = 80


shot = shooter("suggestions")


def unowned_on_overview(page):
    return number(page.locator('a[data-rule="unowned"]').inner_text())


def assert_accessible(page):
    violations = blocking_violations(page)
    assert not violations, [(v["id"], [node["target"] for node in v["nodes"][:3]]) for v in violations]


def test_a_steward_accepts_suggested_owners_for_a_filtered_list_and_sees_the_count_drop(
        live_server, mirror, quick_writes, steward, worker, tab):
    base, page = live_server.url, tab
    snowflake = Integration.objects.get(type="snowflake")
    # Worked out here, from the unowned list's own queryset: the suggestions the filter should show.
    expected = Suggestion.objects.filter(
        kind=Suggestion.OWNER, confidence__gte=LEAST,
        resource__in=issue_queryset("unowned").filter(integration=snowflake, entity_type="column").values("pk"))
    owners = {}
    for resource_id, value in expected.values_list("resource_id", "value"):
        owners.setdefault(resource_id, set()).add(value)
    assert len(owners) > 3

    log_in(page, base, "stella", "pw-steward-1")
    before = unowned_on_overview(page)
    share = page.locator('a[data-suggested="unowned"]')
    expect(share).to_contain_text(re.compile(rf"^[\d,]+ of {before:,} unowned have a suggested owner$"))
    shot(page, "01-overview")
    share.click()
    page.wait_for_url(f"{base}/suggestions/unowned/")
    assert list_total(page) > len(owners)

    # Filter: Snowflake columns with a confidence of at least 80.
    filters = page.locator("form.filters")
    filters.locator(f'input[name="integration"][value="{snowflake.pk}"]').check()
    filters.locator('input[name="entity_type"][value="column"]').check()
    filters.get_by_label("Confidence at least").fill(str(LEAST))
    with page.expect_navigation():
        filters.get_by_role("button", name="Apply filters").click()
    assert list_total(page) == expected.count()
    expect(page.locator(".result-count")).to_contain_text("Confidence at least: 80")
    assert_accessible(page)
    shot(page, "02-filtered")

    # Accept every suggestion at 80 or more matching this filter: the change set preview.
    expect(page.get_by_label("Confidence at least", exact=True).last).to_have_value(str(LEAST))
    with page.expect_navigation():
        page.get_by_test_id("accept-matching").click()
    expect(page.locator("[data-will-change]")).to_have_text(str(len(owners)))
    expect(page.locator("h1")).to_contain_text(f"Accept {expected.count():,} suggested owners (confidence ≥ 80)")
    shot(page, "03-preview")
    with page.expect_navigation():
        page.locator(".preview-summary").get_by_role("button", name=re.compile(r"^Apply ")).click()
    expect(page.locator(".page-head [data-status]")).to_have_attribute("data-status", "completed",
                                                                        timeout=WORKER_TIMEOUT_MS)
    assert ChangeSet.objects.get().status == ChangeSet.COMPLETED
    shot(page, "04-applied")

    # Secoda holds the new owners.
    for resource_id, values in owners.items():
        record = quick_writes.workspace.get(resource_id)
        assert set(record["owners"]) == {v.removeprefix("user:") for v in values if v.startswith("user:")}
        assert set(record["owners_groups"]) == {v.removeprefix("group:") for v in values if v.startswith("group:")}

    # The unowned count dropped by exactly the resources accepted; their suggestions are gone.
    page.locator("nav.mainnav a", has_text="Overview").click()
    page.wait_for_url(f"{base}/")
    assert unowned_on_overview(page) == before - len(owners)
    expect(page.locator('a[data-suggested="unowned"]')).to_contain_text(f"of {before - len(owners):,} unowned")
    shot(page, "05-overview-after")
    page.goto(f"{base}/suggestions/unowned/?integration={snowflake.pk}&entity_type=column&min_confidence={LEAST}")
    assert list_total(page) == 0
    assert not Suggestion.objects.filter(kind=Suggestion.OWNER, resource_id__in=list(owners)).exists()
