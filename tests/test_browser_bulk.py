"""Browser test of a bulk edit: a steward selects every unowned resource of one integration (more than
one page), adds an owner, previews, applies it through a REAL Celery worker on Redis, watches the
progress bar, checks the counts and the emulator, then undoes it the same way.

Debian's chromium drives pytest-django's live server; the worker thread runs
`hygiene.bulk.tasks.apply_change_set`, which builds its Secoda client from settings (pointed at the
in-process emulator). With BROWSER_SHOTS=1, screenshots of each step go to /tmp/browser-shots/bulk-*.png.
"""
import os
import re
import uuid

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from celery.contrib.testing.worker import start_worker  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from catalog_sync.models import SecodaGroup, SecodaUser  # noqa: E402
from hygiene.bulk import tasks  # noqa: E402
from hygiene.bulk.models import ChangeItem, ChangeSet  # noqa: E402
from hygiene.celery import app  # noqa: E402
from tests.browser_helpers import (  # noqa: E402, F401  (new_tab is a fixture)
    DESKTOP, TIMEOUT_MS, list_total, log_in, number, shooter)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORKER_TIMEOUT_MS = 120_000  # queue -> worker -> batches -> snapshot -> the page's poll and reload
PAGE_SIZE = 50  # rows a page on the issue lists
CHANGE_TABLE_PAGE = 100  # rows a page on a change set


# -- fixtures --------------------------------------------------------------------------

@pytest.fixture
def tab(chromium):
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.fixture
def quick_writes(emulator, emulator_settings):
    """Writes throttled at 1000 a minute on both sides, so the run takes seconds, not minutes."""
    emulator.faults.writes_per_minute = 1000
    emulator_settings.SECODA_WRITES_PER_MINUTE = 1000
    return emulator


@pytest.fixture
def mirror(transactional_db, quick_writes, synced_mirror):
    """The mirror filled from the 600-resource emulated workspace (also stores the overview's snapshot)."""
    run = synced_mirror
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def worker(monkeypatch, quick_writes):
    """A real Celery worker thread on the Redis broker, consuming a queue of its own.

    Redis (REDIS_URL) may be shared with other test runs on this machine, each with its own test
    database; on the default queue their workers could take this test's change sets (and this worker
    theirs). So the apply task is sent, still through Redis, to a queue only this worker reads.
    """
    assert app.conf.broker_url.startswith("redis://"), "set REDIS_URL: this test needs a real broker"
    queue = f"bulk-browser-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    task = tasks.apply_change_set
    monkeypatch.setattr(task, "delay", lambda *args, **kwargs: task.apply_async(args, kwargs, queue=queue))
    queues = app.amqp.queues
    consume_from = queues._consume_from  # `queues=` selects on the app-wide Queues: put it back afterwards
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30,
                          queues=[queue]) as running:
            yield running
        # Remove the queue and its binding from Redis (kombu only deletes bindings it knows on the channel).
        with app.connection_for_write() as connection:
            declared = queues[queue].bind(connection.default_channel)
            declared.declare()
            declared.delete()
    finally:
        queues._consume_from = consume_from
        queues.pop(queue, None)


# -- helpers ---------------------------------------------------------------------------

shot = shooter("bulk")


def open_overview(page, base):
    page.locator("nav.mainnav a", has_text="Overview").click()
    page.wait_for_url(f"{base}/")
    expect(page.locator("h1")).to_have_text("Catalog overview")


def unowned_on_overview(page):
    return number(page.locator('a[data-rule="unowned"]').inner_text())


def assert_no_server_error(page):
    expect(page.locator("body")).not_to_contain_text("Server Error")
    expect(page.locator("body")).not_to_contain_text("Traceback")


def person_to_type():
    """A present person, by display name when that name is unique among people and groups, else by e-mail."""
    user = SecodaUser.objects.present().exclude(email="").order_by("email").first()
    assert user is not None, "the mirror has no people"
    name = (user.display_name or "").strip()
    taken = [u for u in SecodaUser.objects.present() if (u.display_name or "").strip().lower() == name.lower()]
    groups = [g for g in SecodaGroup.objects.present() if g.name.strip().lower() == name.lower()]
    typed = name if name and len(taken) == 1 and not groups else user.email
    return user, typed


def status_pill(page):
    return page.locator(".page-head [data-status]")


def wait_until_completed(page):
    """The page polls progress.json and reloads itself once the change set finishes."""
    expect(status_pill(page)).to_have_attribute("data-status", "completed", timeout=WORKER_TIMEOUT_MS)
    expect(status_pill(page)).to_have_text("Completed")
    progress = page.locator("section.progress-card")
    expect(progress).to_have_attribute("data-finished", "true")
    expect(progress.locator('[data-field="percent"]')).to_have_text("100")
    expect(page.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "100")


def assert_results_all_applied(page, total):
    progress = page.locator("section.progress-card")
    assert number(progress.locator('[data-field="applied"]').inner_text()) == total
    for field in ("failed", "skipped", "pending"):
        assert number(progress.locator(f'[data-field="{field}"]').inner_text()) == 0, field
    rows = page.locator("table.change-table tbody tr")
    expect(rows).to_have_count(min(total, CHANGE_TABLE_PAGE))
    results = [t.strip() for t in rows.locator("td:nth-child(4) .pill").all_inner_texts()]
    assert results and set(results) == {"Applied"}, sorted(set(results))
    assert {s for s in rows.evaluate_all("rows => rows.map(r => r.dataset.status)")} == {"applied"}


def resource_ids_in_change_table(page):
    hrefs = page.locator("table.change-table tbody tr td:first-child a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
    return [href.strip("/").split("/")[-1] for href in hrefs]


# -- the flow ----------------------------------------------------------------------------

def test_steward_adds_an_owner_to_every_unowned_resource_of_an_integration_and_undoes_it(
        live_server, mirror, quick_writes, steward, worker, tab):
    base = live_server.url
    page = tab
    emulator = quick_writes
    log_in(page, base, "stella", "pw-steward-1")

    # 1. The overview: the unowned count, and an integration with more than a page of unowned resources.
    expect(page.locator("h1")).to_have_text("Catalog overview")
    unowned_before = unowned_on_overview(page)
    assert unowned_before > PAGE_SIZE
    by_integration = page.locator("section.breakdown", has=page.locator("h2", has_text="By integration"))
    candidates = []
    for link in by_integration.locator('a[href*="/issues/unowned/?integration="]').all():
        integration_id = link.get_attribute("href").split("integration=")[1]
        row_label = link.locator("xpath=ancestor::tr/td[1]/a[1]").inner_text().strip()  # not its "trend" link
        candidates.append((number(link.inner_text()), integration_id, row_label))
    over_a_page = [c for c in candidates if c[0] > PAGE_SIZE]
    assert over_a_page, f"no integration has more than {PAGE_SIZE} unowned resources: {candidates}"
    # The smallest one that still needs two pages, so the selection really spans pages.
    integration_unowned, integration_id, integration_name = min(over_a_page)
    shot(page, "01-overview-before")

    # 2. The unowned list, filtered by that integration: more than one page.
    page.locator('a[data-rule="unowned"]').click()
    page.wait_for_url(f"{base}/issues/unowned/")
    assert list_total(page) == unowned_before
    page.check(f"input[type=checkbox][name=integration][value='{integration_id}']")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    assert f"integration={integration_id}" in page.url
    assert list_total(page) == integration_unowned
    expect(page.locator("p.result-count")).to_contain_text(f"Integration: {integration_name}")
    rows = page.locator("table.resource-table tbody tr")
    expect(rows).to_have_count(PAGE_SIZE)
    expect(page.locator("nav.pager")).to_contain_text(f"Page 1 of {-(-integration_unowned // PAGE_SIZE)}")

    edit_button = page.locator("#edit-selected")
    banner = page.locator("#select-banner")
    select_all = page.locator("#select-all-matching")
    expect(edit_button).to_be_disabled()
    expect(banner).not_to_have_class(re.compile(r"\bvisible\b"))

    # Tick the whole page: the banner offers every matching resource.
    page.locator("#select-page").check()
    expect(page.locator("input.row-check:checked")).to_have_count(PAGE_SIZE)
    expect(edit_button).to_be_enabled()
    expect(edit_button).to_have_text(f"Edit {PAGE_SIZE} selected…")
    expect(banner).to_have_class(re.compile(r"\bvisible\b"))
    expect(page.locator("#page-selected-note")).to_have_text(f"All {PAGE_SIZE} on this page are selected.")
    expect(select_all).to_have_text(f"Select all {integration_unowned:,} matching this filter")
    shot(page, "02-list-page-ticked")

    select_all.click()
    expect(page.locator("#select-all-flag")).to_have_value("1")
    expect(edit_button).to_have_text(f"Edit all {integration_unowned:,}…")
    expect(page.locator("#selection-note")).to_have_text(f"All {integration_unowned:,} matching resources are selected.")
    expect(select_all).to_have_text("Clear the selection")
    shot(page, "03-list-all-matching")
    with page.expect_navigation():
        edit_button.click()

    # 3. The edit form: add one owner.
    page.wait_for_url(f"{base}/changes/edit/")
    assert_no_server_error(page)
    expect(page.locator("h1")).to_have_text(f"Edit {integration_unowned:,} resources")
    expect(page.locator(".page-head")).to_contain_text(integration_name)
    user, typed = person_to_type()
    page.select_option("select[name=owners_mode]", label="Add these")
    page.fill("input[name=owners]", typed)
    if typed != user.email:  # the field suggests people by name
        expect(page.locator(f'datalist#people-names option[value="{typed}"]')).to_have_count(1)
    shot(page, "04-edit-form")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview the changes").click()

    # 4. The preview: exactly the filtered unowned resources will change; nothing is sent yet.
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/changes/\d+/$"))
    assert_no_server_error(page)
    change_set = ChangeSet.objects.get()
    assert change_set.status == ChangeSet.DRAFT
    expect(page.locator("h1")).to_have_text(f"Preview: Add owners {typed}")
    expect(status_pill(page)).to_have_attribute("data-status", "draft")
    will_change = page.locator("[data-will-change]")
    assert int(will_change.get_attribute("data-will-change")) == integration_unowned
    expect(will_change).to_have_text(f"{integration_unowned:,}")
    expect(page.locator(".preview-summary")).to_contain_text(f"of {integration_unowned:,} selected resources will change")
    preview_rows = page.locator("table.change-table tbody tr")
    expect(preview_rows).to_have_count(min(integration_unowned, CHANGE_TABLE_PAGE))
    expect(preview_rows.first.locator("td:nth-child(2)")).to_contain_text("Owners: none")
    expect(preview_rows.first.locator("td:nth-child(3)")).to_contain_text(user.display_name or user.email)
    shot(page, "05-preview")

    apply_button = page.locator(".preview-summary").get_by_role(
        "button", name=f"Apply {integration_unowned:,} changes in Secoda")
    with page.expect_navigation():
        apply_button.click()

    # 5. Progress: the worker runs it; the page polls and reloads itself when done.
    expect(page.locator(".messages .msg-success")).to_contain_text("Applying the change set")
    expect(page.locator("section.progress-card")).to_be_visible()
    shot(page, "06-progress")
    wait_until_completed(page)
    assert_no_server_error(page)
    assert_results_all_applied(page, integration_unowned)
    edited_ids = resource_ids_in_change_table(page)
    shot(page, "07-result")
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.COMPLETED
    assert change_set.items.filter(status=ChangeItem.APPLIED).count() == integration_unowned

    # 6. The overview's unowned count dropped by exactly the number edited, and Secoda has the owner.
    open_overview(page, base)
    assert unowned_on_overview(page) == unowned_before - integration_unowned
    shot(page, "08-overview-after-apply")
    sample = edited_ids[:3] + edited_ids[-2:]
    for resource_id in sample:
        assert user.pk in (emulator.workspace.get(resource_id)["owners"] or []), resource_id

    # 7. Undo it from the change set list.
    page.locator("nav.mainnav a", has_text="Changes").click()
    page.wait_for_url(f"{base}/changes/")
    listed = page.locator("table.data tbody tr", has=page.locator(f'a[href="/changes/{change_set.pk}/"]'))
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("Completed")
    expect(listed.locator("td.num")).to_have_text(f"{integration_unowned:,}")
    shot(page, "09-change-sets")
    with page.expect_navigation():
        listed.locator(f'a[href="/changes/{change_set.pk}/"]').first.click()
    page.wait_for_url(f"{base}/changes/{change_set.pk}/")
    with page.expect_navigation():
        page.get_by_role("button", name="Undo this change set…").click()

    page.wait_for_url(re.compile(rf"^{re.escape(base)}/changes/\d+/$"))
    undo = ChangeSet.objects.get(undo_of=change_set)
    assert page.url == f"{base}/changes/{undo.pk}/"
    expect(page.locator(".messages .msg-info")).to_contain_text("Here is what undoing puts back")
    expect(status_pill(page)).to_have_attribute("data-status", "draft")
    expect(page.locator(".page-head")).to_contain_text(f"undoes #{change_set.pk}")
    undo_will_change = page.locator("[data-will-change]")
    assert int(undo_will_change.get_attribute("data-will-change")) == integration_unowned
    expect(page.locator("table.change-table tbody tr").first.locator("td:nth-child(3)")).to_contain_text(
        "Owners: none")
    shot(page, "10-undo-preview")
    with page.expect_navigation():
        page.locator(".preview-summary").get_by_role(
            "button", name=f"Apply {integration_unowned:,} changes in Secoda").click()
    expect(page.locator("section.progress-card")).to_be_visible()
    wait_until_completed(page)
    assert_results_all_applied(page, integration_unowned)
    shot(page, "11-undo-result")

    # The original change set says it was undone and offers no second undo.
    page.goto(f"{base}/changes/{change_set.pk}/")
    expect(page.locator("section.progress-card")).to_contain_text(f"Undone by #{undo.pk} (completed)")
    expect(page.get_by_role("button", name="Undo this change set…")).to_have_count(0)

    # The overview is back where it started, and so is Secoda.
    open_overview(page, base)
    assert unowned_on_overview(page) == unowned_before
    shot(page, "12-overview-after-undo")
    for resource_id in sample:
        assert user.pk not in (emulator.workspace.get(resource_id)["owners"] or []), resource_id
