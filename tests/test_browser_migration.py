"""Migrating documentation in a real browser: a steward picks the demo's old and new warehouses, gives the
renames, resolves an ambiguous match, copies descriptions and owners, previews, applies through a REAL Celery
worker, sees the new warehouse documented (the end check says what remains) and Secoda holding the values, then
undoes it and sees them back. With BROWSER_SHOTS=1, screenshots go to /tmp/browser-shots/migration-*.png."""
import os
import re

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect  # noqa: E402

from catalog_sync.models import Resource  # noqa: E402
from catalog_sync.sync import run_sync  # noqa: E402
from hygiene.bulk.models import ChangeItem, ChangeSet  # noqa: E402
from hygiene.migration import services  # noqa: E402
from hygiene.migration.matching import parse_mapping  # noqa: E402
from hygiene.migration.models import MigrationPlan  # noqa: E402
from secoda_emulator.migration_pair import NEW, OLD, RENAMES  # noqa: E402
from tests.browser_helpers import log_in, number, shooter  # noqa: E402
from tests.test_browser_a11y import described_by_missing  # noqa: E402
from tests.test_browser_saved_views import assert_no_serious_axe_violation  # noqa: E402
# The workspace with the demo's migration pair, overriding conftest's `emulator` here too (quick_writes and the
# worker then use it).
from tests.test_migration import emulator  # noqa: E402, F401
from tests.conftest import fast_client  # noqa: E402
from tests.test_browser_bulk import (  # noqa: E402, F401  (fixtures)
    WORKER_TIMEOUT_MS, assert_no_server_error, quick_writes, status_pill, tab, worker)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pair_mirror(transactional_db, quick_writes):
    run = run_sync(client=fast_client(quick_writes))
    assert run.status == "succeeded", run.error
    return run


shot = shooter("migration")


def resource(integration_name, path):
    found = None
    for name in path.split("."):
        found = Resource.objects.get(integration__name=integration_name, title=name,
                                     parent=found.pk if found else None)
    return found


def documentation_left(old, pairs):
    """(pairs whose old resource is documented and new one is not, documented old resources without a pair), from
    the mirror's rows."""
    olds = Resource.objects.in_bulk(list(pairs))
    news = Resource.objects.in_bulk(list(pairs.values()))
    documented_old = set(Resource.objects.filter(integration=old, is_documented=True, archived=False,
                                                 removed_at__isnull=True).values_list("pk", flat=True))
    left = sum(1 for o, n in pairs.items() if olds[o].is_documented and not news[n].is_documented)
    return left, len(documented_old - set(pairs))


def assert_accessible(page, what):
    assert_no_serious_axe_violation(page, what)
    assert described_by_missing(page) == [], what


def end_check_counts(page):
    section = page.locator("section.end-check")
    return int(section.get_attribute("data-undocumented")), int(section.get_attribute("data-unpaired"))


def test_a_steward_migrates_descriptions_and_owners_to_the_new_warehouse_and_undoes_it(
        live_server, pair_mirror, quick_writes, steward, worker, tab):
    base, page, emulator = live_server.url, tab, quick_writes
    old_lower = resource(OLD[1], "analytics.finance.Customers")
    old_upper = resource(OLD[1], "analytics.finance.CUSTOMERS")
    new_customers = resource(NEW[1], "ANALYTICS.FINANCE.CUSTOMERS")
    assert old_lower.description and old_lower.owners and not new_customers.description
    log_in(page, base, "stella", "pw-steward-1")

    # 1. Migrate, from the navigation: the two warehouses and the renames.
    page.locator("nav.mainnav a", has_text="Migrate").click()
    page.wait_for_url(f"{base}/migrate/")
    expect(page.locator("h1")).to_have_text("Migrate documentation")
    page.get_by_label("Old integration (moving from)").select_option(label=f"{OLD[1]} ({OLD[0]})")
    page.get_by_label("New integration (moving to)").select_option(label=f"{NEW[1]} ({NEW[0]})")
    page.get_by_label("Renamed databases and schemas").fill(RENAMES)
    with page.expect_navigation():
        page.get_by_role("button", name="Match them").click()
    assert_no_server_error(page)

    # 2. The counts by type are the matching's, and the renamed database matches.
    old, new = old_lower.integration, new_customers.integration
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    for kind, row in matching.counts():
        shown = page.locator(f'table.match-counts tbody tr[data-type="{kind}"]')
        expect(shown.locator('[data-field="matched"]')).to_have_text(str(row["matched"]))
        expect(shown.locator('[data-field="unmatched_old"]')).to_have_text(str(row["unmatched_old"]))
    expect(page.locator('table.match-counts tbody tr[data-type="database"] [data-field="matched"]')).to_have_text("2")
    undocumented_before, unpaired_before = end_check_counts(page)
    assert undocumented_before > 10
    assert_accessible(page, "the matching")
    shot(page, "01-matched")

    # 3. Resolve the ambiguous customers table: the full Customers goes to CUSTOMERS, the stray copy is skipped.
    page.get_by_label("Copy analytics.finance.Customers to", exact=True).select_option(
        label="ANALYTICS.FINANCE.CUSTOMERS")
    page.get_by_label("Copy analytics.finance.CUSTOMERS to", exact=True).select_option(label="Skip it (copy nothing)")
    page.get_by_label("Description", exact=True).check()
    page.get_by_label("Owners", exact=True).check()
    expect(page.get_by_label("Only where the new resource has nothing (fill the blanks)")).to_be_checked()
    shot(page, "02-choices")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview the changes").click()

    # 4. The preview is a change set: every new resource that gains a description or owners, none sent yet.
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/changes/\d+/$"))
    assert_no_server_error(page)
    plan = MigrationPlan.objects.get()
    change_set = plan.change_set
    assert (plan.picks[old_lower.pk], plan.picks[old_upper.pk]) == (new_customers.pk, "")
    assert len(plan.picks) == sum(len(group.old) for group in matching.ambiguous), "every ambiguous one is decided"
    expect(page.locator("h1")).to_contain_text(f"Preview: Migrate documentation from {OLD[1]} to {NEW[1]}")
    will_change = int(page.locator("[data-will-change]").get_attribute("data-will-change"))
    assert will_change == change_set.items.count() > 10
    expect(page.locator(".migration-note")).to_contain_text(f"migration #{plan.pk}")
    assert change_set.items.get(resource_id=new_customers.pk).after == {
        "description": old_lower.description, "owners": old_lower.owners}
    pairs = {**matching.pairs, **{o: n for o, n in plan.picks.items() if n}}
    left_before = documentation_left(old, pairs)
    assert left_before[0] >= undocumented_before and left_before[1] < unpaired_before  # the picks pair some more
    shot(page, "03-preview")
    with page.expect_navigation():
        page.locator(".preview-summary").get_by_role(
            "button", name=re.compile(rf"^Apply {will_change} changes in Secoda")).click()

    # 5. Applied through the worker; the page reloads finished and shows the end check.
    expect(status_pill(page)).to_have_attribute("data-status", "completed", timeout=WORKER_TIMEOUT_MS)
    assert change_set.items.filter(status=ChangeItem.APPLIED).count() == will_change
    end_check = page.locator("section.end-check")
    expect(end_check).to_be_visible()
    undocumented_after, unpaired_after = end_check_counts(page)
    # What remains undocumented is exactly the pairs whose old one is documented by a definition alone (only
    # descriptions were copied); without a counterpart are the documented old ones neither matched nor chosen.
    olds = Resource.objects.in_bulk(list(pairs))
    definition_only = sum(1 for o in pairs if olds[o].is_documented and not olds[o].description.strip())
    assert (undocumented_after, unpaired_after) == documentation_left(old, pairs)
    assert undocumented_after == definition_only < left_before[0] and unpaired_after == left_before[1]
    expect(end_check.locator('[data-field="undocumented"]')).to_have_text(str(undocumented_after))
    shot(page, "04-applied")

    # Secoda (the emulator) holds the copied values, and the new table's page shows its description.
    secoda = emulator.workspace.get(new_customers.pk)
    assert secoda["description"] == old_lower.description and secoda["owners"] == old_lower.owners
    page.goto(f"{base}/resources/{new_customers.pk}/")
    expect(page.locator("body")).to_contain_text(old_lower.description)
    shot(page, "05-new-table-documented")

    # 6. Undo it: preview, apply through the worker, and the new warehouse is as it was.
    page.goto(f"{base}/changes/{change_set.pk}/")
    with page.expect_navigation():
        page.get_by_role("button", name="Undo this change set…").click()
    undo = ChangeSet.objects.get(undo_of=change_set)
    expect(page.locator("[data-will-change]")).to_have_text(str(will_change))
    with page.expect_navigation():
        page.locator(".preview-summary").get_by_role(
            "button", name=re.compile(rf"^Apply {will_change} changes in Secoda")).click()
    expect(status_pill(page)).to_have_attribute("data-status", "completed", timeout=WORKER_TIMEOUT_MS)
    assert undo.items.filter(status=ChangeItem.APPLIED).count() == will_change
    secoda = emulator.workspace.get(new_customers.pk)
    assert secoda["description"] in ("", None) and secoda["owners"] == []
    shot(page, "06-undone")

    # The migration's page checks again: what was undocumented before is undocumented again.
    page.goto(f"{base}/migrate/{plan.pk}/")
    assert_no_server_error(page)
    assert end_check_counts(page) == left_before == documentation_left(old, pairs)
    expect(page.locator("section.end-check [data-field='undocumented']")).to_have_text(f"{left_before[0]:,}")
    assert number(page.locator("section.end-check [data-field='unpaired']").inner_text()) == left_before[1]
    shot(page, "07-plan-after-undo")


def test_bad_input_is_said_where_it_is_with_the_stewards_choices_kept(live_server, pair_mirror, steward, viewer, tab):
    base, page = live_server.url, tab
    log_in(page, base, "stella", "pw-steward-1")
    page.goto(f"{base}/migrate/")
    old_label, new_label = f"{OLD[1]} ({OLD[0]})", f"{NEW[1]} ({NEW[0]})"

    # The same integration twice, and a rename that is not one: both said, and focus on the summary.
    page.get_by_label("Old integration (moving from)").select_option(label=old_label)
    page.get_by_label("New integration (moving to)").select_option(label=old_label)
    page.get_by_label("Renamed databases and schemas").fill("legacy_db warehouse")
    with page.expect_navigation():
        page.get_by_role("button", name="Match them").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Choose two different integrations")
    expect(summary).to_contain_text("Line 1 (“legacy_db warehouse”): write one rename a line as old => new")
    expect(page.get_by_label("Renamed databases and schemas")).to_have_value("legacy_db warehouse")
    expect(page.get_by_label("New integration (moving to)")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "the matching form with errors")
    shot(page, "08-bad-match")

    # Matched properly, then previewed with nothing to copy: said, and the ambiguous choices stay as chosen.
    page.get_by_label("New integration (moving to)").select_option(label=new_label)
    page.get_by_label("Renamed databases and schemas").fill(RENAMES)
    with page.expect_navigation():
        page.get_by_role("button", name="Match them").click()
    page.get_by_label("Copy analytics.finance.CUSTOMERS to", exact=True).select_option(label="Skip it (copy nothing)")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview the changes").click()
    expect(page.locator(".error-summary")).to_contain_text("What to copy: Choose at least one thing to copy.")
    expect(page.get_by_label("Copy analytics.finance.CUSTOMERS to", exact=True)).to_have_value("")
    expect(page.get_by_label("Renamed databases and schemas")).to_have_value(RENAMES)
    assert not ChangeSet.objects.exists()
    assert_accessible(page, "the copy form with an error")
    shot(page, "09-bad-preview")

    # A viewer sees the matching and the end check, and no way to change anything.
    viewer_page = page.context.browser.new_context().new_page()
    log_in(viewer_page, base, "victor", "pw-viewer-1")
    viewer_page.goto(f"{base}/migrate/")
    viewer_page.get_by_label("Old integration (moving from)").select_option(label=old_label)
    viewer_page.get_by_label("New integration (moving to)").select_option(label=new_label)
    with viewer_page.expect_navigation():
        viewer_page.get_by_role("button", name="Match them").click()
    expect(viewer_page.locator("section.end-check")).to_be_visible()
    expect(viewer_page.get_by_role("button", name="Preview the changes")).to_have_count(0)
    expect(viewer_page.locator("select[name^='pick-']")).to_have_count(0)
    assert_accessible(viewer_page, "the matching, as a viewer")
    viewer_page.context.close()
