"""Accessibility: axe-core (kept in tests/vendor, no network) on every page a steward, a
viewer or a stranger opens, with real data from the emulated workspace: no violation of impact
critical or serious (axe's WCAG 2.0 and 2.1 A and AA rules). Also at 768 px wide, and the behaviours axe
cannot see: keyboard focus after a failed form, Escape on menus, live regions, widths.

A page that fails the check is pictured in /tmp/browser-shots/a11y-*.png (the 1280 px ones with BROWSER_SHOTS=1).
"""
import json
import os
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

# pytest-django's live server and the ORM calls below run next to Playwright's event loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.utils import timezone  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from catalog_sync.models import Resource, SyncRun  # noqa: E402
from catalog_sync.sync import run_sync  # noqa: E402
from hygiene.bulk import services  # noqa: E402
from hygiene.bulk.models import ChangeItem, ChangeSet  # noqa: E402
from hygiene.dashboard.models import Snooze  # noqa: E402
from hygiene.reports.emails import unsubscribe_url  # noqa: E402
from hygiene.reports.models import Subscription  # noqa: E402
from tests.browser_helpers import BLOCKING, SHOTS, axe_results, log_in, new_tab, shot  # noqa: E402, F401
from tests.conftest import fast_client  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET = {"width": 768, "height": 1024}
LAPTOP = {"width": 1280, "height": 800}


# -- fixtures --------------------------------------------------------------------------

@pytest.fixture
def mirror(transactional_db, emulator, synced_mirror):
    """The mirror filled from the 600-resource emulated workspace (also stores the overview's snapshot)."""
    emulator.faults.writes_per_minute = 1000
    run = synced_mirror
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def workspace(mirror, emulator, steward):
    """What every page needs to show something: snoozes (active and ended), a finished change set, a
    previewed one, a running one, and a report subscription."""
    resources = Resource.objects.filter(removed_at__isnull=True, archived=False, is_owned=False).order_by("id")
    first, second = resources[0], resources[1]
    now = timezone.now()
    Snooze.objects.create(resource=first, rule="unowned", reason="Owned by the platform team, not in Secoda",
                          expires_at=now + timedelta(days=30), created_by=steward)
    Snooze.objects.create(filter_query="q=tmp_", filter_label="Text: tmp_", rule="", reason="Scratch tables",
                          expires_at=now + timedelta(days=10), created_by=steward)
    Snooze.objects.create(resource=second, rule="stale", reason="Back next week", expires_at=now - timedelta(days=1),
                          created_by=steward)

    without_pii = [r.pk for r in resources.filter(pii=False)[2:6]]
    finished = services.build_change_set(steward, Resource.objects.filter(pk__in=without_pii),
                                         {"pii": True}, "PII on")
    ChangeSet.objects.filter(pk=finished.pk).update(status=ChangeSet.PENDING, applied_by=steward, applied_at=now)
    services.run_change_set(finished.pk, client=fast_client(emulator))
    finished.refresh_from_db()
    assert finished.status == ChangeSet.COMPLETED, finished.error

    unverified = resources.filter(verified=False)
    draft = services.build_change_set(steward, Resource.objects.filter(pk__in=[r.pk for r in unverified[:10]]),
                                      {"verified": True}, "Verified on")
    unpublished = Resource.objects.filter(removed_at__isnull=True, archived=False, published=False).order_by("id")
    running = services.build_change_set(steward, Resource.objects.filter(pk__in=[r.pk for r in unpublished[:25]]),
                                        {"published": True}, "Published on")
    ChangeSet.objects.filter(pk=running.pk).update(status=ChangeSet.RUNNING, applied_by=steward, applied_at=now,
                                                   started_at=now, holder="a11y-test",
                                                   lease_until=now + timedelta(hours=1))
    applied = list(running.items.values_list("pk", flat=True)[:18])
    ChangeItem.objects.filter(pk__in=applied).update(status=ChangeItem.APPLIED, done_at=now)

    # A second sync: the overview draws its trend chart (and the table under it).
    assert run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL).status == "succeeded"

    subscription = Subscription.objects.create(user=steward, email="stella@example.com", scope=Subscription.WORKSPACE,
                                               frequency=Subscription.WEEKLY, weekday=0, hour=8, time_zone="UTC",
                                               next_due_at=now + timedelta(days=2))
    return {"resource": first, "finished": finished, "draft": draft, "running": running,
            "subscription": subscription}


# -- helpers ---------------------------------------------------------------------------

def describe(violations):
    """Axe's violations, one block each: rule, impact, what to do, and where."""
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"][:6]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n       ")
            lines.append(f"       {summary}")
        if len(violation["nodes"]) > 6:
            lines.append(f"    … and {len(violation['nodes']) - 6} more")
    return "\n".join(lines)


class Audit:
    """Runs axe on pages and keeps every blocking violation, so one run reports every page."""

    def __init__(self):
        self.problems = []
        self.pages = []
        self.results = {}

    def check(self, page, name):
        page.wait_for_load_state()
        results = axe_results(page)
        missing = described_by_missing(page)
        if missing:  # axe lets this pass when one id of several exists
            self.problems.append(f"== {name}: aria-describedby/labelledby name ids that do not exist: {missing}")
        blocking = [v for v in results["violations"] if v["impact"] in BLOCKING]
        self.pages.append(name)
        self.results[name] = [{key: v[key] for key in ("id", "impact", "help", "nodes")} for v in results["violations"]]
        if blocking:  # a picture of the page that failed (the walk-through takes the others)
            page.screenshot(path=str(SHOTS / f"a11y-{name}.png"), full_page=True)
            self.problems.append(f"== {name} ({page.url})\n{describe(blocking)}")
        return results

    def fits(self, page, name):
        """Nothing makes the page scroll sideways (wide tables scroll inside their cards)."""
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > page.viewport_size["width"]:
            self.problems.append(f"== {name}: the page is {width} px wide in a {page.viewport_size['width']} px window")

    def assert_clean(self, part=""):
        # Every violation, blocking or not, for whoever wants to read further.
        name = f"a11y-axe-{part.replace(' ', '-').replace(',', '')}.json" if part else "a11y-axe.json"
        (SHOTS / name).write_text(json.dumps(self.results, indent=1))
        assert not self.problems, (f"axe found critical or serious violations on {len(self.problems)} of "
                                   f"{len(self.pages)} pages:\n\n" + "\n\n".join(self.problems))


def path_of(url):
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- axe on every page -------------------------------------------------------------------

AXE_PARTS = ["signed out", "steward pages", "menus, forms and viewers", "768 px"]


@pytest.mark.parametrize("part", AXE_PARTS)  # in parts, so parallel workers share them
def test_axe_finds_no_serious_violation_on_any_page(part, live_server, workspace, steward, viewer, outsider, new_tab,
                                                     settings):
    from catalog_sync.models import Integration, Team
    from hygiene.mailbox.backend import BACKEND
    from hygiene.mailbox.models import Message
    from hygiene.reports import services as reports

    base = live_server.url
    audit = Audit()
    settings.EMAIL_BACKEND = BACKEND  # the demo's mailbox: a page of its own
    reports.send_now(workspace["subscription"])

    if part == "signed out":
        # Signed out: the login page, the unsubscribe page (valid and spoilt link).
        page = new_tab()
        page.goto(f"{base}/accounts/login/")
        audit.check(page, "login")
        page.fill("#id_username", "stella")
        page.fill("#id_password", "wrong")
        page.click("form[action$='/login/'] button[type=submit]")
        audit.check(page, "login-failed")
        page.goto(base + path_of(unsubscribe_url(workspace["subscription"])))
        audit.check(page, "unsubscribe")
        page.goto(f"{base}/reports/unsubscribe/not-a-token/")
        audit.check(page, "unsubscribe-invalid")

    if part == "signed out":
        # A signed-in account that is neither viewer nor steward.
        page = new_tab()
        log_in(page, base, "olive", "pw-outsider-1")
        audit.check(page, "no-access")

    if part == "steward pages":
        # The steward, everywhere.
        page = new_tab()
        log_in(page, base, "stella", "pw-steward-1")
        audit.check(page, "overview")
        for path, name in (("/issues/", "issues"), ("/issues/stale/", "rule-stale"),
                           ("/issues/unowned/?sort=-health", "rule-unowned-sorted"),
                           ("/issues/?snoozed=only", "issues-snoozed"),
                           ("/issues/?per_page=25&page=2", "issues-page-2"),
                           ("/owners/", "owners"), ("/teams/", "teams"), ("/snoozes/", "snoozes"),
                           ("/changes/", "change-sets"), ("/reports/", "reports"),
                           (f"/resources/{workspace['resource'].pk}/", "resource"),
                           (f"/changes/{workspace['draft'].pk}/", "bulk-preview"),
                           (f"/changes/{workspace['finished'].pk}/", "change-set-finished"),
                           (f"/changes/{workspace['running'].pk}/", "change-set-running"),
                           ("/resources/no-such-resource/", "not-found"),
                           (f"/trend/?team={Team.objects.present().order_by('name').first().pk}", "trend-team"),
                           (f"/trend/?integration={Integration.objects.present().order_by('name').first().pk}",
                            "trend-integration"),
                           ("/views/", "saved-views"), ("/account/", "account"),
                           (f"/changes/edit-resource/?resource={workspace['resource'].pk}", "resource-edit"),
                           ("/mailbox/", "mailbox"),
                           (f"/mailbox/{Message.objects.latest('sent_at').pk}/", "mailbox-message")):
            page.goto(base + path)
            audit.check(page, name)

    if part == "menus, forms and viewers":
        page = new_tab()
        log_in(page, base, "stella", "pw-steward-1")
        # Menus open: the columns chooser, and the snooze forms (a filter's and a resource's).
        page.goto(f"{base}/issues/unowned/?q=a")
        page.locator("details.dropdown summary", has_text="Columns").click()
        audit.check(page, "columns-menu")
        page.keyboard.press("Escape")
        page.locator("details.dropdown summary", has_text="Snooze this filter").click()
        audit.check(page, "snooze-filter-form")
        page.goto(f"{base}/resources/{workspace['resource'].pk}/")
        page.locator("summary", has_text="Snooze an issue").click()
        audit.check(page, "snooze-resource-form")
        form = page.locator("details.inline-form form")
        form.get_by_label("Snooze until").fill((timezone.localdate() + timedelta(days=20)).isoformat())
        form.get_by_label("Why").fill("Checked with the owner")
        with page.expect_navigation():
            form.get_by_role("button", name="Snooze").click()
        expect(page.locator(".msg-success")).to_contain_text("Snoozed")
        audit.check(page, "snooze-created")

    if part == "menus, forms and viewers":
        # The bulk edit form with a selection, then after a submit it refuses.
        page.goto(f"{base}/issues/unowned/")
        boxes = page.locator("input.row-check")
        boxes.nth(0).check()
        boxes.nth(1).check()
        audit.check(page, "issues-selected")
        page.locator("#select-page").check()
        audit.check(page, "issues-page-selected")
        with page.expect_navigation():
            page.locator("#edit-selected").click()
        audit.check(page, "bulk-edit")
        page.select_option("select[name=owners_mode]", "add")
        with page.expect_navigation():
            page.get_by_role("button", name="Preview the changes").click()
        audit.check(page, "bulk-edit-refused")

    if part == "menus, forms and viewers":
        # The report preview (an e-mail shown in the browser).
        page.goto(f"{base}/reports/{workspace['subscription'].pk}/preview")
        audit.check(page, "report-preview")

    if part == "menus, forms and viewers":
        # A viewer's view of the lists (no checkboxes, no snooze forms).
        page = new_tab()
        log_in(page, base, "victor", "pw-viewer-1")
        for path, name in (("/issues/", "viewer-issues"), (f"/changes/{workspace['finished'].pk}/", "viewer-change-set")):
            page.goto(base + path)
            audit.check(page, name)

    if part == "768 px":
        # 768 px wide: the pages with the widest content.
        page = new_tab(TABLET)
        log_in(page, base, "stella", "pw-steward-1")
        for path, name in (("/", "768-overview"), ("/issues/", "768-issues"), ("/issues/stale/", "768-rule-stale"),
                           (f"/resources/{workspace['resource'].pk}/", "768-resource"),
                           (f"/changes/{workspace['draft'].pk}/", "768-bulk-preview"), ("/reports/", "768-reports")):
            page.goto(base + path)
            audit.check(page, name)
            audit.fits(page, name)
        page.goto(f"{base}/issues/unowned/")
        page.locator("#select-page").check()
        with page.expect_navigation():
            page.locator("#edit-selected").click()
        audit.check(page, "768-bulk-edit")
        audit.fits(page, "768-bulk-edit")

    audit.assert_clean(part)


# -- widths --------------------------------------------------------------------------------

def overflow(page):
    """How far the widest table sticks out of its card, and the page out of the window (px)."""
    return page.evaluate("""() => {
        const table = document.querySelector("table.resource-table");
        const card = table.closest(".table-card");
        return {table: table.scrollWidth, card: card.clientWidth,
                page: document.documentElement.scrollWidth, window: window.innerWidth};
    }""")


def test_the_default_issue_table_fits_a_laptop_window(live_server, mirror, steward, new_tab):
    page = new_tab(LAPTOP)
    log_in(page, live_server.url, "stella", "pw-steward-1")
    for path in ("/issues/", "/issues/stale/", "/issues/unowned/"):
        page.goto(live_server.url + path)
        sizes = overflow(page)
        shot(page, f"a11y-1280{path.replace('/', '-').rstrip('-')}")
        assert sizes["table"] <= sizes["card"], f"{path}: the table is {sizes['table']} px in a {sizes['card']} px card"
        assert sizes["page"] <= sizes["window"], f"{path}: the page is {sizes['page']} px wide"


# -- what axe cannot see ---------------------------------------------------------------------

def described_by_missing(page):
    """aria-describedby / aria-labelledby ids that name no element on the page."""
    return page.evaluate("""() => [...document.querySelectorAll("[aria-describedby], [aria-labelledby]")]
        .flatMap(el => ["aria-describedby", "aria-labelledby"].flatMap(attr =>
            (el.getAttribute(attr) || "").split(/\\s+/).filter(id => id && !document.getElementById(id))))""")


def test_keyboard_and_screen_reader_users_can_do_what_a_steward_does(live_server, workspace, steward, new_tab):
    base = live_server.url
    page = new_tab()
    log_in(page, base, "stella", "pw-steward-1")

    # A skip link first, then the labelled navigation.
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to the content")
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()

    # The trend chart: markers, not only colours, and its numbers as a table.
    chart = page.get_by_role("img", name="Open issues per rule")
    expect(chart).to_be_visible()
    assert chart.locator("polygon, rect").count() > 0, "series are told apart by marker shapes too"
    page.get_by_text("The numbers behind the chart").click()
    expect(page.locator(".chart-data table tbody tr")).to_have_count(2)

    # Sorted headers say so; several choices are checkboxes (no Ctrl-click), with the same parameter name.
    page.goto(f"{base}/issues/unowned/")
    expect(page.locator("th[aria-sort]")).to_have_count(1)
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Resource")
    page.locator("table.resource-table thead th a", has_text="Health").click()
    page.wait_for_url("**sort=health**")
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Health")
    integration = page.locator("input[type=checkbox][name=integration]").first
    value = integration.get_attribute("value")
    integration.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    assert f"integration={value}" in page.url
    expect(page.locator(f"input[type=checkbox][name=integration][value='{value}']")).to_be_checked()
    expect(page.get_by_role("group", name="Type")).to_be_visible()

    # Escape closes a menu and gives the focus back to its button.
    columns = page.locator("details.dropdown", has=page.locator("summary", has_text="Columns"))
    columns.locator("summary").click()
    expect(columns).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(columns).not_to_have_attribute("open", "")
    expect(columns.locator("summary")).to_be_focused()

    # The selection is told in a live region; a disabled button looks disabled.
    page.goto(f"{base}/issues/unowned/")
    note = page.get_by_role("status").filter(has_text="Tick resources")
    expect(note).to_have_count(1)
    edit = page.locator("#edit-selected")
    expect(edit).to_be_disabled()
    assert edit.evaluate("b => getComputedStyle(b).cursor") == "not-allowed"
    page.locator("input.row-check").first.check()
    expect(page.locator("#selection-note")).to_have_text("1 selected on this page.")
    assert edit.evaluate("b => getComputedStyle(b).cursor") == "pointer"
    page.locator("#select-page").check()
    expect(page.locator("#selection-note")).to_contain_text("You can also select all")

    # A refused bulk edit: the focus goes to the list of problems, each linked to its field.
    with page.expect_navigation():
        edit.click()
    assert not described_by_missing(page)
    page.select_option("#id_owners_mode", "add")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview the changes").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Name at least one person or group")
    assert not described_by_missing(page), "help and error ids exist"
    assert "id_owners_error" in page.locator("#id_owners").get_attribute("aria-describedby")
    expect(page.get_by_label("People or groups")).to_have_attribute("aria-invalid", "true")
    summary.get_by_role("link").first.click()
    expect(page.locator("#id_owners")).to_be_in_viewport()

    # A change set's progress: a named bar, and a status pill that follows the run.
    waiting = services.build_change_set(steward, Resource.objects.filter(
        pk__in=list(Resource.objects.filter(archived=False, pii=False).values_list("pk", flat=True)[100:125])),
        {"pii": True}, "PII on")
    assert waiting.items.count() == 25
    ChangeSet.objects.filter(pk=waiting.pk).update(status=ChangeSet.PENDING, applied_by=steward,
                                                   applied_at=timezone.now())
    page.goto(f"{base}/changes/{waiting.pk}/")
    pill = page.locator(".page-head [data-status]")
    expect(pill).to_have_text("Waiting for a worker")
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("aria-valuenow", "0")
    # A worker picks it up and gets most of the way.
    now = timezone.now()
    ChangeSet.objects.filter(pk=waiting.pk).update(status=ChangeSet.RUNNING, started_at=now, holder="a11y-test",
                                                   lease_until=now + timedelta(hours=1))
    ChangeItem.objects.filter(pk__in=list(waiting.items.values_list("pk", flat=True)[:18])).update(
        status=ChangeItem.APPLIED, done_at=now)
    expect(pill).to_have_text("Running")
    expect(pill).to_have_attribute("role", "status")
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("aria-valuenow", "72")
    expect(page.locator("#progress-announce")).to_have_text("72% done: 18 applied, 0 failed.")
    assert not described_by_missing(page)
