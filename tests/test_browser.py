"""Browser tests: a real chromium (Debian's) drives the dashboard on pytest-django's live server.

One browser per test process (conftest.py); every test gets its own context (cookies) and page. The mirror is filled
from the in-process Secoda emulator. Screenshots of the main pages go to /tmp/browser-shots/; of each flow's
steps too with BROWSER_SHOTS=1.
"""
import csv
import io
import os
import re
from calendar import monthrange
from datetime import date, datetime, time
from pathlib import Path

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.utils import timezone  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from catalog_sync.models import Resource  # noqa: E402
from hygiene.dashboard.models import Snapshot, Snooze  # noqa: E402
from hygiene.domain.snapshots import take_snapshot  # noqa: E402
from tests.browser_helpers import (  # noqa: E402, F401  (new_tab is a fixture)
    DESKTOP, SHOTS, list_total, log_in, new_tab, number, shot)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1280, "height": 800}


# -- fixtures --------------------------------------------------------------------------

@pytest.fixture
def tab(new_tab):
    return new_tab()


@pytest.fixture
def mirror(transactional_db, emulator, synced_mirror):
    """The mirror filled from the 600-resource emulated workspace (also stores the overview's snapshot)."""
    run = synced_mirror
    assert run.status == "succeeded", run.error
    return run


# -- helpers ---------------------------------------------------------------------------


def column_index(page, header):
    """The position of a column in the resource table, by its header text."""
    headers = [t.strip() for t in page.locator("table.resource-table thead th").all_inner_texts()]
    return headers.index(header)


def column_texts(page, header):
    index = column_index(page, header)
    return [t.strip() for t in page.locator(f"table.resource-table tbody tr td:nth-child({index + 1})").all_inner_texts()]


def owner_lists(page):
    """Each row's whole owner list (a long one shows "Ada L. +2" and keeps the list in its title)."""
    index = column_index(page, "Owners")
    return page.locator(f"table.resource-table tbody tr td:nth-child({index + 1})").evaluate_all(
        "cells => cells.map(c => { const l = c.querySelector('.owner-list'); return l ? l.title : c.innerText.trim(); })")


def apply_filters(page):
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()


def next_month(today):
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return date(year, month, min(today.day, monthrange(year, month)[1]))


def assert_no_server_error(page):
    expect(page.locator("body")).not_to_contain_text("Server Error")
    expect(page.locator("body")).not_to_contain_text("Traceback")


# -- 1. the steward's flow ------------------------------------------------------------------

def test_steward_finds_filters_sorts_exports_and_snoozes_an_unowned_resource(live_server, mirror, steward, tab):
    base = live_server.url
    page = tab
    log_in(page, base, "stella", "pw-steward-1")

    # The overview: the unowned count, and which integration has unowned resources.
    expect(page.locator("h1")).to_have_text("Catalog overview")
    unowned_link = page.locator('a[data-rule="unowned"]')
    unowned_before = number(unowned_link.inner_text())
    assert unowned_before > 0
    by_integration = page.locator("section.breakdown", has=page.locator("h2", has_text="By integration"))
    candidates = []
    for link in by_integration.locator('a[href*="/issues/unowned/?integration="]').all():
        integration_id = link.get_attribute("href").split("integration=")[1]
        row_label = link.locator("xpath=ancestor::tr/td[1]/a[1]").inner_text().strip()  # not its "trend" link
        candidates.append((number(link.inner_text()), integration_id, row_label))
    assert candidates, "the overview's 'By integration' table links no unowned counts"
    # The biggest one whose rows still fit on one page (50 rows), so sorting can be checked fully.
    integration_unowned, integration_id, integration_name = max(c for c in candidates if 1 < c[0] <= 50)

    # Click the count: the list's total is the same number.
    unowned_link.click()
    page.wait_for_url(f"{base}/issues/unowned/")
    expect(page.locator("h1")).to_contain_text("Unowned")
    assert list_total(page) == unowned_before
    expect(page.locator("table.resource-table tbody tr")).to_have_count(min(unowned_before, 50))

    # Filter by that integration.
    page.check(f"input[type=checkbox][name=integration][value='{integration_id}']")  # several choices: checkboxes
    apply_filters(page)
    assert f"integration={integration_id}" in page.url
    assert list_total(page) == integration_unowned
    expect(page.locator("p.result-count")).to_contain_text(f"Integration: {integration_name}")
    assert set(column_texts(page, "Integration")) == {integration_name}

    # ...and by owner "No owner": on the unowned list, every row already has none.
    page.select_option("select[name=owner]", value="none")
    apply_filters(page)
    assert "owner=none" in page.url
    assert list_total(page) == integration_unowned
    expect(page.locator("p.result-count")).to_contain_text("Owner: No owner")
    assert set(column_texts(page, "Owners")) == {"No owner"}
    # The filter form shows what is applied.
    assert page.locator("select[name=owner]").input_value() == "none"
    assert page.locator("input[name=integration]:checked").evaluate_all("boxes => boxes.map(b => b.value)") == [
        integration_id]

    # Sort by Usage, then reverse it.
    page.locator("table.resource-table thead th a", has_text=re.compile(r"^\s*Usage\s*$")).click()
    page.wait_for_url(re.compile(r"[?&]sort=external_usage(&|$)"))
    ascending_cells = column_texts(page, "Usage")
    ascending = [number(v) for v in ascending_cells if v.strip() != "—"]
    page.locator("table.resource-table thead th a", has_text=re.compile(r"^\s*Usage\s*$")).click()
    page.wait_for_url(re.compile(r"[?&]sort=-external_usage(&|$)"))
    descending_cells = column_texts(page, "Usage")
    descending = [number(v) for v in descending_cells if v.strip() != "—"]
    assert len(ascending_cells) == len(descending_cells) == integration_unowned
    assert len(set(ascending)) > 1, "every row has the same usage: the sort check would prove nothing"
    assert ascending == sorted(ascending)
    assert descending == sorted(descending, reverse=True)
    assert descending == ascending[::-1]
    # Sorting keeps the filters.
    assert list_total(page) == integration_unowned

    # Download the CSV: the same rows as the list.
    download_link = page.locator("a[download]", has_text="Download CSV")
    with page.expect_download() as download_info:
        download_link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("catalog-unowned-")
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    header, data = rows[0], rows[1:]
    assert "title_full" in header
    assert len(data) == list_total(page) == integration_unowned
    assert {row[header.index("integration")] for row in data} == {integration_name}
    assert {row[header.index("owners")] for row in data} == {""}

    # Open the first resource of the list.
    first = page.locator("table.resource-table tbody tr").first.locator("td.col-title a")
    resource_path = first.get_attribute("href")
    resource_id = resource_path.strip("/").split("/")[-1]
    first.click()
    page.wait_for_url(f"{base}{resource_path}")
    resource = Resource.objects.get(pk=resource_id)
    expect(page.locator("h1")).to_have_text(resource.title or resource.pk)
    issues_card = page.locator("section.card", has=page.locator("h2", has_text="Issues"))
    expect(issues_card.locator(".rule-pill.rule-unowned")).to_have_text("Unowned")
    expect(page.locator("dl.facts dd").first).to_have_text("Nobody")

    # Snooze its unowned issue until next month.
    until = next_month(timezone.localdate())
    snooze_form = page.locator("form.snooze-form")
    expect(snooze_form).to_be_hidden()
    page.locator("summary", has_text="Snooze an issue…").click()
    expect(snooze_form).to_be_visible()
    snooze_form.locator("select[name=rule]").select_option("unowned")
    snooze_form.locator("input[name=until]").fill(until.isoformat())
    snooze_form.locator("textarea[name=reason]").fill("Scratch table, dropped in the next migration.")
    with page.expect_navigation():
        snooze_form.get_by_role("button", name="Snooze").click()
    page.wait_for_url(f"{base}{resource_path}")
    success = page.locator(".messages .msg-success")
    expect(success).to_have_count(1)
    expect(success).to_contain_text("Snoozed unowned for")
    expect(success).to_contain_text(f"until {until:%b} {until.day}, {until.year}")
    expect(issues_card.locator(".rule-pill.rule-unowned")).to_have_count(0)
    expect(issues_card).to_contain_text("Scratch table, dropped in the next migration.")
    shot(page, "flow1-resource-after-snooze")
    assert Snooze.objects.filter(resource_id=resource_id, rule="unowned", cancelled_at__isnull=True).count() == 1

    # The overview's unowned count dropped by exactly one.
    page.locator("nav.mainnav a", has_text="Overview").click()
    page.wait_for_url(f"{base}/")
    assert number(page.locator('a[data-rule="unowned"]').inner_text()) == unowned_before - 1
    expect(page.locator(".page-head")).to_contain_text("1 snoozed")
    shot(page, "flow1-overview-after-snooze")

    # The snoozed list shows the resource, and the open list no longer does.
    page.goto(f"{base}/issues/unowned/?snoozed=only")
    expect(page.locator("h1 .pill")).to_have_text("snoozed")
    assert list_total(page) == 1
    expect(page.locator(f'table.resource-table tbody a[href="{resource_path}"]')).to_have_count(1)
    shot(page, "flow1-snoozed-list")
    page.goto(f"{base}/issues/unowned/")
    assert list_total(page) == unowned_before - 1


def test_steward_filters_a_rule_list_by_one_person(live_server, mirror, steward, tab):
    """Undocumented resources owned by one person: every row's Owners cell names that person."""
    base = live_server.url
    page = tab
    log_in(page, base, "stella", "pw-steward-1")

    # The Owners page: pick the first person with undocumented resources.
    page.locator("nav.mainnav a", has_text="Owners").click()
    page.wait_for_url(f"{base}/owners/")
    link = page.locator('table.data tbody a[href*="/issues/undocumented/?owner=user"]').first
    expect(link).to_be_visible()
    expected = number(link.inner_text())
    owner_value = link.get_attribute("href").split("owner=")[1].replace("%3A", ":")
    person = link.locator("xpath=ancestor::tr/td[1]/a[1]").inner_text().strip()  # not its "trend and fixes" link
    assert owner_value.startswith("user:") and person

    # The undocumented list, filtered with the form.
    page.goto(f"{base}/issues/undocumented/")
    total_before = list_total(page)
    page.select_option("select[name=owner]", value=owner_value)
    apply_filters(page)
    assert list_total(page) == expected < total_before
    expect(page.locator("p.result-count")).to_contain_text(f"Owner: {person}")
    owners = owner_lists(page)
    assert len(owners) == min(expected, 50)
    assert all(person in cell.split(", ") for cell in owners), owners
    assert all(issue for issue in column_texts(page, "Issues")) and "Undocumented" in column_texts(page, "Issues")[0]
    shot(page, "flow1b-undocumented-by-owner")


# -- 2. viewers read, never snooze ------------------------------------------------------------

def test_viewer_sees_no_snooze_controls_and_cannot_post_a_snooze(live_server, mirror, viewer, tab):
    base = live_server.url
    page = tab
    resource = Resource.objects.filter(is_owned=False, archived=False, removed_at__isnull=True).order_by("pk").first()
    log_in(page, base, "victor", "pw-viewer-1")

    page.goto(f"{base}/resources/{resource.pk}/")
    expect(page.locator("h1")).to_have_text(resource.title or resource.pk)
    expect(page.locator(".rule-pill.rule-unowned")).to_have_count(1)  # the issue is there...
    expect(page.locator("summary", has_text="Snooze an issue")).to_have_count(0)  # ...but no way to snooze it
    expect(page.locator('form[action$="/snoozes/new"]')).to_have_count(0)
    shot(page, "flow2-viewer-resource")

    # A filtered list offers no filter-wide snooze to a viewer either.
    page.goto(f"{base}/issues/unowned/?q=a")
    expect(page.locator("summary", has_text="Snooze this filter")).to_have_count(0)

    # A hand-made POST from the viewer's own session, with a valid CSRF token, is refused.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(f"{base}/snoozes/new", form={
        "csrfmiddlewaretoken": csrf, "resource": resource.pk, "rule": "unowned",
        "until": next_month(timezone.localdate()).isoformat(), "reason": "I should not be able to do this",
        "next": f"/resources/{resource.pk}/",
    }, headers={"X-CSRFToken": csrf, "Referer": f"{base}/resources/{resource.pk}/"}, max_redirects=0)
    assert response.status == 403
    assert "CSRF" not in response.text()  # refused for the role, not for a missing token
    assert not Snooze.objects.exists()
    # The counts did not move.
    page.goto(f"{base}/")
    assert number(page.locator('a[data-rule="unowned"]').inner_text()) == \
        Snapshot.objects.first().totals["unowned"]
    expect(page.locator(".page-head")).not_to_contain_text("snoozed")


# -- 3. bad input in the address bar -----------------------------------------------------------

def test_bad_filter_values_give_messages_not_a_server_error(live_server, mirror, viewer, tab):
    base = live_server.url
    page = tab
    log_in(page, base, "victor", "pw-viewer-1")

    response = page.goto(f"{base}/issues/?updated_after=not-a-date&page=-1"
                         "&integration=00000000-0000-0000-0000-000000000000")
    assert response.status == 200
    assert_no_server_error(page)
    messages = page.locator(".messages li")
    expect(messages.filter(has_text="Updated on or after")).to_contain_text("Enter a valid date")
    expect(messages.filter(has_text="Integration")).to_contain_text("Select a valid choice")
    expect(messages.filter(has_text="“-1” is not a page number")).to_contain_text("showing the first page")
    expect(messages).to_have_count(3)
    # The list still renders, unfiltered, from the first page.
    expect(page.locator("h1")).to_contain_text("All issues")
    table = page.locator("table.resource-table")
    expect(table).to_be_visible()
    total = list_total(page)
    assert total > 50
    expect(table.locator("tbody tr")).to_have_count(50)
    expect(page.locator("nav.pager")).to_contain_text("Page 1 of")
    # The bad values are not kept in the form.
    assert page.locator("form.filters input[name=updated_after]").input_value() == ""
    shot(page, "flow3-bad-input")

    # A page past the end shows the last page with a message, too.
    response = page.goto(f"{base}/issues/?page=9999")
    assert response.status == 200
    expect(page.locator(".messages li")).to_contain_text("There is no page 9999")
    expect(page.locator("table.resource-table tbody tr").first).to_be_visible()


# -- 4. anonymous visitors --------------------------------------------------------------------

ANONYMOUS_PATHS = ["/", "/issues/", "/issues/stale/", "/owners/", "/teams/", "/snoozes/",
                   "/resources/ac08a084-0d2c-44dc-8d30-bf899d0f0060/", "/issues/export.csv"]


def test_anonymous_visitors_end_on_the_login_page(live_server, steward, tab):
    base = live_server.url
    page = tab
    for path in ANONYMOUS_PATHS:
        response = page.goto(f"{base}{path}")
        assert response.status == 200, path
        assert page.url.startswith(f"{base}/accounts/login/"), (path, page.url)
        expect(page.locator("h1")).to_have_text("Sign in")
        expect(page.locator("#id_username")).to_be_visible()
        expect(page.locator("nav.mainnav")).to_have_count(0)
    shot(page, "flow4-login-page")

    # Signing in from there goes back to the page asked for.
    page.goto(f"{base}/issues/stale/")
    page.fill("#id_username", "stella")
    page.fill("#id_password", "pw-steward-1")
    page.click("form[action$='/login/'] button[type=submit]")
    page.wait_for_url(f"{base}/issues/stale/")
    expect(page.locator("h1")).to_contain_text("Stale")


def test_a_wrong_password_says_so(live_server, steward, tab):
    base = live_server.url
    page = tab
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "stella")
    page.fill("#id_password", "not-the-password")
    page.click("form[action$='/login/'] button[type=submit]")
    expect(page.locator(".msg-error")).to_contain_text("do not match")
    assert page.url.startswith(f"{base}/accounts/login/")


# -- screenshots ------------------------------------------------------------------------------

def test_screenshots_of_every_page(live_server, mirror, steward, new_tab):
    base = live_server.url
    resource = (Resource.objects.filter(archived=False, removed_at__isnull=True, is_owned=False,
                                        parent__isnull=False)
                .order_by("pk").first())
    other = Resource.objects.filter(archived=False, removed_at__isnull=True).exclude(pk=resource.pk) \
        .order_by("pk").first()
    until = timezone.make_aware(datetime.combine(next_month(timezone.localdate()), time.min))
    Snooze.objects.create(resource=other, rule="undocumented", reason="Generated by the ETL; documented upstream.",
                          expires_at=until, created_by=steward)
    Snooze.objects.create(filter_query="q=tmp_", filter_label="Search: tmp_", rule="", expires_at=until,
                          reason="Temporary tables, cleaned nightly.", created_by=steward)
    take_snapshot(Snapshot.SNOOZE)
    pages = {
        "overview": "/",
        "issues-unowned": "/issues/unowned/",
        "resource": f"/resources/{resource.pk}/",
        "owners": "/owners/",
        "teams": "/teams/",
        "snoozes": "/snoozes/",
    }
    for size_name, viewport in (("desktop", DESKTOP), ("laptop", LAPTOP)):
        page = new_tab(viewport)
        log_in(page, base, "stella", "pw-steward-1")
        for name, path in pages.items():
            response = page.goto(f"{base}{path}")
            assert response.status == 200, path
            assert_no_server_error(page)
            # Always drawn, whatever BROWSER_SHOTS says: the one set of pictures every run leaves for a person.
            page.screenshot(path=str(SHOTS / f"{name}-{size_name}.png"), full_page=True)
            # Reported, not asserted: a page wider than the window scrolls sideways as a whole.
            widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if widths[0] > widths[1]:
                print(f"{name}-{size_name}: page is {widths[0]}px wide in a {widths[1]}px window")


def test_the_rows_select_changes_nothing_until_show_is_pressed(live_server, mirror, viewer, tab):
    log_in(tab, live_server.url, "victor", "pw-viewer-1")
    tab.goto(f"{live_server.url}/issues/unowned/")
    tab.locator("form.per-page select[name=per_page]").select_option("100")
    assert "per_page" not in tab.url, "choosing does not reload the page"
    with tab.expect_navigation():
        tab.locator("form.per-page").get_by_role("button", name="Show").click()
    assert "per_page=100" in tab.url
    assert len(tab.locator("table.resource-table tbody tr").all()) == min(100, list_total(tab))
