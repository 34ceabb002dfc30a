"""Browser test of saved views: a steward filters an issue list, saves it as a view, a viewer opens the
shared link and sees the same list, and the steward subscribes to the view as an e-mail report.

Debian's chromium drives pytest-django's live server over a mirror synced from the emulator. With
BROWSER_SHOTS=1, screenshots go to /tmp/browser-shots/saved-views-*.png.
"""
import os

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect  # noqa: E402

from hygiene.domain.issues import open_issue_filters  # noqa: E402
from hygiene.dashboard.models import SavedView  # noqa: E402
from hygiene.reports.content import build_report  # noqa: E402
from hygiene.reports.models import Subscription  # noqa: E402
from hygiene.rules import in_scope  # noqa: E402
from tests.browser_helpers import (  # noqa: E402, F401  (new_tab is a fixture)
    blocking_violations, list_total, log_in, new_tab, shooter)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mirror(transactional_db, emulator, synced_mirror):
    run = synced_mirror
    assert run.status == "succeeded", run.error
    return run


def busiest_unowned_integration():
    ids = list(in_scope().filter(open_issue_filters()["unowned"]).values_list("integration_id", flat=True))
    return max(set(ids), key=lambda key: (ids.count(key), key or ""))


def assert_no_serious_axe_violation(page, what):
    """axe-core (kept in tests/vendor) finds nothing critical or serious on the page."""
    violations = blocking_violations(page)
    assert not violations, f"{what}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in violations)


shot = shooter("saved-views")


def test_a_steward_saves_a_filtered_list_shares_its_link_and_subscribes_to_it(live_server, mirror, steward, viewer,
                                                                               new_tab):
    base = live_server.url
    integration = busiest_unowned_integration()
    page = new_tab(clipboard_for=live_server.url)
    log_in(page, base, "stella", "pw-steward-1")

    # Filter the unowned list by one integration.
    page.goto(f"{base}/issues/unowned/")
    everything = list_total(page)
    choice = page.locator(f'input[name=integration][value="{integration}"]')  # ticked, or picked in a select
    if choice.count():
        choice.check()
    else:
        page.select_option("select[name=integration]", value=integration)
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    count = list_total(page)
    assert 0 < count < everything

    # Save it under a name (shared with everyone by default for a steward).
    page.locator("summary", has_text="Save this view").click()
    page.get_by_label("Name").fill("Unowned in the busiest integration")
    expect(page.get_by_label("Share with everyone")).to_be_checked()
    shot(page, "save-control", full_page=False)
    assert_no_serious_axe_violation(page, "issue list with the save form open")
    with page.expect_navigation():
        page.get_by_role("button", name="Save view").click()
    expect(page.locator(".msg-success")).to_contain_text(
        "Saved the view “Unowned in the busiest integration” for everyone.")
    expect(page.locator(".saved-as")).to_contain_text("Saved view: Unowned in the busiest integration")
    assert list_total(page) == count, "back on the same list"
    view = SavedView.objects.get()

    # The Saved views page, from the navigation: the view, its link, a Copy button.
    page.locator("nav").get_by_role("link", name="Saved views", exact=True).click()
    expect(page.locator("h1")).to_have_text("Saved views")
    row = page.locator(f'tr[data-view="{view.pk}"]')
    expect(row).to_contain_text("Unowned in the busiest integration")
    expect(row).to_contain_text("Shared")
    link = row.locator("input.share-link").input_value()
    assert link == f"{base}/issues/unowned/?integration={integration}", "the rule and the filter, nothing else"
    row.get_by_role("button", name="Copy").click()
    expect(row.locator("[role=status]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == link
    row.locator("summary", has_text="Rename").click()
    expect(row.get_by_label("New name")).to_have_value("Unowned in the busiest integration")
    shot(page, "list")
    assert_no_serious_axe_violation(page, "saved views page with a rename form open")

    # A viewer opens the shared link: the same list, named.
    other = new_tab(clipboard_for=live_server.url)
    log_in(other, base, "victor", "pw-viewer-1")
    other.goto(link)
    assert list_total(other) == count
    expect(other.locator(".saved-as")).to_contain_text("Saved view: Unowned in the busiest integration")
    expect(other.locator(".saved-as")).to_contain_text("Shared")

    # The steward subscribes to the view as a daily report to the team's list.
    row.get_by_role("link", name="Get it by e-mail").click()
    expect(page.locator("#id_scope")).to_have_value("view")
    expect(page.locator("#id_saved_view")).to_be_visible()
    expect(page.locator("#id_saved_view")).to_have_value(str(view.pk))
    expect(page.locator('[data-field="team"]')).to_be_hidden()
    assert_no_serious_axe_violation(page, "reports page with a saved view chosen")
    page.select_option("#id_frequency", "daily")
    page.fill("#id_email", "data-team@example.com")
    with page.expect_navigation():
        page.get_by_role("button", name="Subscribe").click()
    expect(page.locator(".msg-success")).to_contain_text(
        "Subscribed data-team@example.com to a daily report on saved view “Unowned in the busiest integration”")
    expect(page.locator("table.data")).to_contain_text("Saved view “Unowned in the busiest integration”")
    shot(page, "subscribed")

    subscription = Subscription.objects.get()
    assert (subscription.scope, subscription.saved_view_id) == (Subscription.VIEW, view.pk)
    report = build_report(subscription)
    assert report["counts"]["issues"] == report["counts"]["unowned"] == count
