"""A hostile workspace in a real browser: HTML, script and `javascript:`/`data:` URLs in every text field
and name Secoda can send, synced through the API, then every page and the report e-mail opened and their
links clicked. No dialog may open, no injected element may exist, no link may lead anywhere but http(s)."""
import os
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from secoda_emulator.server import EmulatorServer  # noqa: E402
from secoda_emulator.workspace import Workspace  # noqa: E402
from catalog_sync.models import Resource  # noqa: E402
from catalog_sync.sync import run_sync  # noqa: E402
from hygiene.bulk import services  # noqa: E402
from tests.browser_helpers import DESKTOP, TIMEOUT_MS, log_in, shot  # noqa: E402
from tests.conftest import TOKEN, fast_client  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INJECTED = '<img src=x onerror="alert(1)" data-hostile>'
SCRIPT = "<script>alert(2)</script>"
QUOTES = "\"'><svg onload=alert(3) data-hostile>"
TEXT = f"Orders {INJECTED} {SCRIPT} {QUOTES} & more"
URLS = ["javascript:alert(4)", " JaVaScRiPt:alert(5)", "data:text/html,<script>alert(6)</script>",
        "\tjavascript:alert(7)"]


def poison(workspace):
    """Hostile text in every field and name the API sends; hostile URLs on some resources."""
    hostile = []
    for n, resource_id in enumerate(workspace.ids()[::25]):
        record = workspace._records[resource_id]
        record.title = f"t{n} {TEXT}"
        record.description = TEXT
        record.definition = f"# {TEXT}\n[click](javascript:alert(8))"
        record.native_type = INJECTED
        workspace._touch(record)
        hostile.append(resource_id)
    for person in workspace._users:
        person["first_name"], person["last_name"] = INJECTED, SCRIPT
    for collection in (workspace._groups, workspace._teams, workspace._tags):
        for item in collection:
            item["name"] = f"{item['name']} {QUOTES}"
    for integration in workspace._integrations:
        integration["name"] = f"{integration['name']} {INJECTED}"
    urls = {resource_id: URLS[n % len(URLS)] for n, resource_id in enumerate(hostile)}
    original = workspace.view.to_dict

    def to_dict(record):
        data = original(record)
        if record.id in urls:
            data["url"] = urls[record.id]
        return data

    workspace.view.to_dict = to_dict
    return hostile


@pytest.fixture
def hostile_mirror(transactional_db):
    workspace = Workspace.generate(resources=400, seed=9)
    hostile = poison(workspace)
    server = EmulatorServer(workspace, token=TOKEN, port=0).start()
    try:
        run = run_sync(client=fast_client(server))
        assert run.status == "succeeded", run.error
        yield hostile
    finally:
        server.stop()


def address(url):
    """A URL's path and query, the query's parameters sorted: two links to one page are one address."""
    parts = urlsplit(url)
    return parts.path + (f"?{urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))}" if parts.query else "")


def assert_harmless(page, dialogs, where):
    """Nothing ran, nothing was injected, the page is not an error page, every link is http(s)."""
    assert not dialogs, f"{where}: a dialog opened: {dialogs}"
    assert page.locator("[data-hostile]").count() == 0, f"{where}: injected markup became an element"
    assert "Server Error" not in page.content(), where
    protocols = page.eval_on_selector_all("a[href]", "links => links.map(a => a.protocol)")
    assert set(protocols) <= {"http:", "https:"}, f"{where}: {sorted(set(protocols))}"


def check(page, dialogs, where, checked, click_links=3):
    """The loaded page is harmless; then click some of its links that lead to a page not checked yet (`checked`:
    the addresses checked so far, this one added), and check each page a click leads to the same way."""
    page.wait_for_load_state()
    checked.add(address(page.url))
    assert_harmless(page, dialogs, where)
    if not click_links:
        return
    origin = page.evaluate("location.origin")
    hrefs = page.eval_on_selector_all(
        "main a[href]", "links => links.map(a => a.href)")
    fresh = [h for h in dict.fromkeys(hrefs)
             if h.startswith(origin) and "export.csv" not in h and address(h) not in checked][:click_links]
    away = False  # on a page a link led to: back first (not after the last link, the caller goes elsewhere)
    for href in fresh:
        if away:
            page.go_back()
            away = False
        link = page.locator(f'main a[href="{href[len(origin):]}"]').first
        if not link.count():
            continue
        link.click()
        away = True
        page.wait_for_load_state()
        checked.add(address(href))
        assert_harmless(page, dialogs, f"{where} → {href}")


def test_a_hostile_workspace_runs_no_script_anywhere(hostile_mirror, live_server, steward, chromium):
    from django.contrib.auth import get_user_model

    from hygiene.reports.content import build_report
    from hygiene.reports.emails import report_email
    from hygiene.reports.models import Subscription
    from django.utils import timezone

    hostile = hostile_mirror
    stored = Resource.objects.filter(pk__in=hostile)
    assert not stored.exclude(url="").exists(), "no hostile URL was stored"
    assert stored.filter(description=TEXT).count() == len(hostile), "the text itself is kept, as data"

    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    checked = set()  # every address checked, opened or clicked: a link is clicked on the first page showing it
    try:
        log_in(page, live_server.url, "stella", "pw-steward-1")
        user = get_user_model().objects.get(username="stella")
        change_set = services.build_change_set(user, Resource.objects.filter(pk__in=hostile[:5]), {"pii": True},
                                               f"Flag {INJECTED}")
        rules = ("stale", "unowned", "undocumented", "failing_dbt_tests", "warning_dbt_tests", "unused")
        paths = ["/", "/issues/", *[f"/issues/{rule}/" for rule in rules], "/issues/?q=Orders",
                 "/issues/?sort=-title_full&per_page=200", "/owners/", "/teams/", "/snoozes/", "/changes/",
                 f"/changes/{change_set.pk}/", "/reports/",
                 *[f"/resources/{resource_id}/" for resource_id in hostile[:6]]]
        for path in paths:
            page.goto(live_server.url + path)
            check(page, dialogs, path, checked)
        page.goto(live_server.url + f"/resources/{hostile[0]}/")
        shot(page, "hostile-resource")

        # The report e-mails, as a mail client shows their HTML part.
        for scope in (Subscription.WORKSPACE, Subscription.MINE):
            subscription = Subscription.objects.create(
                user=user, email="stella@example.com", scope=scope, frequency=Subscription.DAILY, hour=8,
                time_zone="UTC", next_due_at=timezone.now())
            page.goto(live_server.url + f"/reports/{subscription.pk}/preview")  # on the dashboard's own origin
            check(page, dialogs, f"report preview ({scope})", checked, click_links=0)
            html = report_email(subscription, build_report(subscription)).alternatives[0][0]
            page.set_content(html)
            check(page, dialogs, f"report e-mail ({scope})", checked, click_links=0)
            for link in page.locator("a[href]").all():
                assert link.get_attribute("href").lower().lstrip().startswith(("http://", "https://"))
    finally:
        context.close()
