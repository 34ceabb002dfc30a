"""Saved views: a steward (or, for themselves, a viewer) saves a filtered issue list under a name, shares
its link, renames or deletes it, and gets it as an e-mail report; reports on a team or the whole workspace
list their worst assets too."""
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog_sync.models import ResourceRef, Team
from hygiene.dashboard.filtersets import filterset_from_query
from hygiene.domain.issues import open_issue_filters
from hygiene.domain.lists import issue_queryset
from hygiene.dashboard.models import SavedView
from hygiene.reports import services
from hygiene.reports.content import WORST_ASSETS, build_report
from hygiene.reports.models import Subscription
from hygiene.rules import in_scope

pytestmark = pytest.mark.django_db

COUNT = re.compile(r'data-count="(\d+)"')
HIDDEN = re.compile(r'<input type="hidden" name="(rule|filter_query|next)" value="([^"]*)" id="save-view-\w+">')


@pytest.fixture
def synced(emulator, synced_mirror):
    run = synced_mirror
    assert run.status == "succeeded", run.error
    return emulator


def logged_in(user, csrf=False):
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def total(response):
    assert response.status_code == 200, response.status_code
    found = COUNT.search(response.content.decode())
    assert found, "the list shows no count"
    return int(found.group(1))


def page_messages(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def save_form_fields(response):
    """The hidden fields of the list page's "Save this view" form, as the browser would send them."""
    return {name: unescape(value) for name, value in HIDDEN.findall(response.content.decode())}


def busiest_integration(rule_q):
    """The integration with the most resources matching `rule_q` (more than a handful, so counts differ)."""
    counts = {}
    for integration_id in in_scope().filter(rule_q).values_list("integration_id", flat=True):
        counts[integration_id] = counts.get(integration_id, 0) + 1
    return max(counts, key=lambda key: (counts[key], key or ""))


def save(client, name, rule="", filter_query="", shared="on", next_url="/issues/"):
    return client.post(reverse("dashboard:saved-view-create"), {
        "name": name, "rule": rule, "filter_query": filter_query, "shared": shared, "next": next_url}, follow=True)


def make_view(owner, name="Snowflake unowned", rule="unowned", filter_query="", shared=True):
    return SavedView.objects.create(name=name, rule=rule, filter_query=filter_query, shared=shared, owner=owner)


# -- saving ---------------------------------------------------------------------------------------

def test_a_steward_saves_a_filtered_list_and_its_shared_link_opens_the_same_count(synced, steward, viewer):
    integration = busiest_integration(open_issue_filters()["unowned"])
    stella = logged_in(steward)
    # Empty parameters as a browser sends them from the filter form.
    url = f"/issues/unowned/?q=&integration={integration}&owner=&team=&pii=&per_page=25&sort=-health"
    listed = stella.get(url, follow=True)
    count = total(listed)
    assert 0 < count < total(stella.get("/issues/unowned/"))

    fields = save_form_fields(listed)
    url = listed.request["PATH_INFO"] + "?" + listed.request["QUERY_STRING"]
    assert fields["rule"] == "unowned" and fields["next"] == url and "sort=-health" in url
    assert re.search(r'<input type="checkbox" name="shared"[^>]*id="save-view-shared"[^>]*checked>',
                     listed.content.decode()), "shared by default for a steward"
    response = stella.post(reverse("dashboard:saved-view-create"),
                           {**fields, "shared": "on", "name": "  Unowned in  Snowflake "}, follow=True)
    view = SavedView.objects.get()
    assert (view.name, view.rule, view.shared, view.owner) == ("Unowned in Snowflake", "unowned", True, steward)
    assert view.filter_query == f"integration={integration}", "only the filter, no empty parameters"
    assert view.link == f"/issues/unowned/?integration={integration}"
    assert response.redirect_chain[-1][0] == url, "back to the list as it was"
    assert "Saved the view “Unowned in Snowflake” for everyone." in " ".join(page_messages(response))

    # The link reproduces the list, for anyone who reads the dashboard.
    shared = logged_in(viewer).get(view.link)
    assert total(shared) == count
    assert 'data-saved-view="%d"' % view.pk in shared.content.decode()
    assert "Saved view: <a" in shared.content.decode()
    page = logged_in(viewer).get(reverse("dashboard:saved-views")).content.decode()
    assert "Unowned in Snowflake" in page and f"http://testserver{view.link}" in page.replace("&amp;", "&")


def test_the_saved_query_is_normalised_whatever_the_order_and_blanks(synced, steward):
    query = "entity_type=table&pii=&entity_type=column&q=+orders+&usage_max=&entity_type=table"
    response = save(logged_in(steward), "Orders tables and columns", filter_query=query)
    assert response.status_code == 200
    view = SavedView.objects.get()
    assert view.filter_query == "q=orders&entity_type=column&entity_type=table"
    assert "Search: orders" in view.filter_label
    assert view.link == "/issues/?q=orders&entity_type=column&entity_type=table"


@pytest.mark.parametrize("name, message", [
    ("", "Not saved. Give the view a name."),
    ("   ", "Not saved. Give the view a name."),
    ("x" * 101, "Not saved. Ensure this value has at most 100 characters"),
])
def test_a_view_without_a_usable_name_is_not_saved(synced, steward, name, message):
    response = save(logged_in(steward), name, rule="stale")
    assert response.status_code == 200
    assert any(m.startswith(message) for m in page_messages(response)), page_messages(response)
    assert not SavedView.objects.exists()


def test_a_duplicate_name_is_refused_whatever_its_case(synced, steward, viewer):
    stella = logged_in(steward)
    save(stella, "Stale dashboards", rule="stale")
    response = save(stella, "STALE  dashboards", rule="unowned")
    assert "Not saved: there is already a view called “STALE dashboards”; choose another name." in page_messages(
        response)
    # A viewer's personal view may not take a shared view's name either (they would see both).
    response = save(logged_in(viewer), "stale dashboards", rule="unused")
    assert any("already a view called" in m for m in page_messages(response))
    assert SavedView.objects.count() == 1


@pytest.mark.parametrize("rule, query, why", [
    ("", "integration=no-such-integration", "the filter “Integration” is not valid"),
    ("", "owner=user:nobody", "the filter “Owner” is not valid"),
    ("", "usage_min=-5", "the filter “Usage at least” is not valid"),
    ("", "updated_after=yesterday", "the filter “Updated on or after” is not valid"),
    ("", "updated_after=2026-05-01&updated_before=2026-01-01", "nothing could match"),
    ("", "evil=1&q=x", "“evil” is not one of the list's filters"),
    ("", "q=" + "x" * 5000, "too long to save"),
    ("bogus", "", "“bogus” is not a rule"),
    ("", "team=%00%ff", "the filter “Team” is not valid"),
])
def test_a_tampered_filter_is_refused_with_a_message_not_an_error(synced, steward, rule, query, why):
    response = save(logged_in(steward), "Tampered", rule=rule, filter_query=query)
    assert response.status_code == 200
    assert any(m.startswith("Not saved") and why in m for m in page_messages(response)), page_messages(response)
    assert not SavedView.objects.exists()


def test_a_tampered_next_address_does_not_leave_the_site(synced, steward):
    response = logged_in(steward).post(reverse("dashboard:saved-view-create"), {
        "name": "Mine", "rule": "", "filter_query": "", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/issues/"


def test_every_form_needs_its_csrf_token(synced, steward):
    view = make_view(steward)
    client = logged_in(steward, csrf=True)
    for url, data in ((reverse("dashboard:saved-view-create"), {"name": "No token"}),
                      (reverse("dashboard:saved-view-rename", args=[view.pk]), {"name": "No token"}),
                      (reverse("dashboard:saved-view-delete", args=[view.pk]), {})):
        assert client.post(url, data).status_code == 403
    view.refresh_from_db()
    assert view.name == "Snowflake unowned" and SavedView.objects.count() == 1
    page = client.get(reverse("dashboard:saved-views")).content.decode()
    assert page.count('name="csrfmiddlewaretoken"') >= 3, "sign out, rename and delete forms carry a token"
    listing = client.get("/issues/").content.decode()
    save_form = listing[listing.index('action="/views/new"'):]
    assert 'name="csrfmiddlewaretoken"' in save_form[:save_form.index("</form>")]


# -- who may do what ------------------------------------------------------------------------------

def test_a_viewer_saves_personal_views_that_only_they_and_stewards_see(synced, steward, viewer):
    from django.contrib.auth import get_user_model

    from hygiene.roles import ensure_roles

    victor = logged_in(viewer)
    assert 'name="shared"' not in victor.get("/issues/").content.decode(), "no sharing choice for viewers"
    response = save(victor, "My unused", rule="unused", shared="on")  # a crafted "shared" is ignored
    assert "Saved the view “My unused” for you." in " ".join(page_messages(response))
    view = SavedView.objects.get()
    assert view.shared is False and view.owner == viewer

    other = get_user_model().objects.create_user("vera", password="x")
    other.groups.add(ensure_roles()[1])
    assert "My unused" not in logged_in(other).get(reverse("dashboard:saved-views")).content.decode()
    assert logged_in(other).post(reverse("dashboard:saved-view-delete", args=[view.pk])).status_code == 404
    assert "My unused" in logged_in(steward).get(reverse("dashboard:saved-views")).content.decode()
    assert "My unused" in victor.get(reverse("dashboard:saved-views")).content.decode()
    # In the report form, a personal view says whose it is.
    assert f'<option value="{view.pk}">My unused (personal)</option>' in victor.get("/reports/").content.decode()
    assert f'<option value="{view.pk}">My unused (Victor&#x27;s)</option>' in logged_in(steward).get(
        "/reports/").content.decode()
    assert "My unused" not in logged_in(other).get("/reports/").content.decode()
    # Only its owner sees the personal view named on the list it matches.
    assert "Saved view: " in victor.get(view.link).content.decode()
    assert "Saved view: " not in logged_in(other).get(view.link).content.decode()


def test_a_viewer_cannot_rename_or_delete_a_shared_view(synced, steward, viewer):
    view = make_view(steward)
    victor = logged_in(viewer)
    page = victor.get(reverse("dashboard:saved-views")).content.decode()
    assert "Snowflake unowned" in page and "/rename" not in page and "/delete" not in page
    assert victor.post(reverse("dashboard:saved-view-rename", args=[view.pk]), {"name": "Hijacked"}).status_code == 403
    assert victor.post(reverse("dashboard:saved-view-delete", args=[view.pk])).status_code == 403
    view.refresh_from_db()
    assert view.name == "Snowflake unowned"


def test_owners_and_stewards_rename_and_delete(synced, steward, viewer):
    mine = make_view(viewer, name="Victor's view", shared=False)
    victor = logged_in(viewer)
    response = victor.post(reverse("dashboard:saved-view-rename", args=[mine.pk]), {"name": "Victor's stale"},
                           follow=True)
    assert "Renamed “Victor's view” to “Victor's stale”." in page_messages(response)
    mine.refresh_from_db()
    assert mine.name == "Victor's stale"

    shared = make_view(steward)
    stella = logged_in(steward)
    response = stella.post(reverse("dashboard:saved-view-rename", args=[shared.pk]), {"name": "  "}, follow=True)
    assert "Not renamed. Give the view a name." in page_messages(response)
    response = stella.post(reverse("dashboard:saved-view-rename", args=[shared.pk]), {"name": "victor's STALE"},
                           follow=True)
    assert response.status_code == 200, "a name another person uses for a personal view is free"
    response = stella.post(reverse("dashboard:saved-view-rename", args=[mine.pk]), {"name": "victor's stale"},
                           follow=True)
    assert "Not renamed. There is already a view called “victor's stale”; choose another name." in page_messages(
        response)
    response = stella.post(reverse("dashboard:saved-view-delete", args=[mine.pk]), follow=True)
    assert "Deleted the view “Victor's stale”." in page_messages(response)
    assert list(SavedView.objects.values_list("name", flat=True)) == ["victor's STALE"]


def test_an_outsider_can_neither_see_nor_save_views(synced, steward, outsider):
    view = make_view(steward)
    olive = logged_in(outsider)
    assert olive.get(reverse("dashboard:saved-views")).status_code == 403
    assert olive.post(reverse("dashboard:saved-view-create"), {"name": "Mine"}).status_code == 403
    assert olive.post(reverse("dashboard:saved-view-delete", args=[view.pk])).status_code == 403
    assert list(SavedView.objects.all()) == [view]
    anonymous = Client().get(reverse("dashboard:saved-views"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_saved_views_are_in_the_navigation(synced, viewer):
    html = logged_in(viewer).get(reverse("dashboard:saved-views")).content.decode()
    assert '<a href="/views/" aria-current="page">Saved views</a>' in html
    assert "No saved view yet." in html


# -- reports on a saved view ----------------------------------------------------------------------

def subscribe_to(client, view, email="data-team@example.com"):
    return client.post(reverse("reports:list"), {
        "scope": "view", "saved_view": view.pk, "frequency": "daily", "weekday": 0, "hour": 7,
        "time_zone": "UTC", "email": email}, follow=True)


@pytest.mark.parametrize("rule", ["unowned", ""])
def test_a_report_on_a_saved_view_counts_exactly_the_views_rows(synced, steward, rule):
    integration = busiest_integration(open_issue_filters()["unowned"])
    view = make_view(steward, rule=rule, filter_query=f"integration={integration}&entity_type=table"
                     f"&entity_type=column")
    stella = logged_in(steward)
    listed = total(stella.get(view.link))
    assert listed > 0

    form = stella.get(f"{reverse('reports:list')}?scope=view&saved_view={view.pk}").content.decode()
    assert re.search(rf'<option value="{view.pk}" selected>Snowflake unowned</option>', form)
    response = subscribe_to(stella, view)
    assert "report on saved view “Snowflake unowned”" in " ".join(page_messages(response))
    subscription = Subscription.objects.get()
    assert subscription.saved_view == view and subscription.scope == Subscription.VIEW

    report = build_report(subscription)
    assert report["counts"]["issues"] == listed
    rows = filterset_from_query(view.filter_query, queryset=issue_queryset(rule or None)).qs
    assert set(rows.values_list("pk", flat=True)) >= {asset["link"].rsplit("/resources/")[1].rstrip("/")
                                                      for asset in report["worst"]}
    assert len(report["worst"]) == min(WORST_ASSETS, listed)
    if rule:
        assert report["counts"]["unowned"] == report["counts"]["resources"] == listed
    else:
        assert report["counts"]["resources"] == in_scope().filter(
            pk__in=filterset_from_query(view.filter_query).qs.values("pk")).count() >= listed
    assert report["dashboard_link"] == f"http://127.0.0.1:8000{view.link}"
    unowned_link = next(r["link"] for r in report["rules"] if r["key"] == "unowned")
    assert dict(parse_qsl(urlsplit(unowned_link).query)) == dict(parse_qsl(view.filter_query))

    services.send_now(subscription)
    message = mail.outbox[-1]
    assert "saved view “Snowflake unowned”" in message.subject
    assert "Assets that need the most work" in message.body


def test_a_viewer_cannot_subscribe_to_someone_elses_personal_view(synced, steward, viewer):
    private = make_view(steward, name="Stella's own", shared=False)
    viewer.email = "victor@example.com"
    viewer.save()
    response = subscribe_to(logged_in(viewer), private)
    assert "Select a valid choice" in response.content.decode()
    response = logged_in(viewer).post(reverse("reports:list"), {
        "scope": "view", "frequency": "daily", "weekday": 0, "hour": 7, "time_zone": "UTC"})
    assert "Choose the saved view this report covers." in response.content.decode()
    assert not Subscription.objects.exists()


def test_deleting_a_view_stops_its_reports_and_says_why(synced, steward, viewer):
    view = make_view(steward)
    viewer.email = "victor@example.com"
    viewer.save()
    subscribe_to(logged_in(viewer), view)
    subscription = Subscription.objects.get()
    Subscription.objects.filter(pk=subscription.pk).update(next_due_at=timezone.now() - timedelta(minutes=1))

    stella = logged_in(steward)
    assert 'will stop.' in stella.get(reverse("dashboard:saved-views")).content.decode()
    response = stella.post(reverse("dashboard:saved-view-delete", args=[view.pk]), follow=True)
    assert "Deleted the view “Snowflake unowned”. 1 report subscription to it stopped." in page_messages(response)

    subscription.refresh_from_db()
    assert subscription.active is False and subscription.saved_view is None
    assert services.claim_due() == [], "a stopped report is never sent"
    victor = logged_in(viewer)
    page = victor.get(reverse("reports:list")).content.decode()
    assert "Stopped: its saved view was deleted" in page and "A saved view that was deleted" in page
    preview = victor.get(reverse("reports:preview", args=[subscription.pk]))
    assert preview.status_code == 200 and "saved view was deleted" in preview.content.decode()


def test_a_view_whose_team_left_secoda_reports_without_it_and_says_so(synced, steward):
    team = Team.objects.present().first()
    view = make_view(steward, rule="", filter_query=f"team={team.pk}")
    subscription = Subscription.objects.create(user=steward, email="s@example.com", scope=Subscription.VIEW,
                                               saved_view=view, next_due_at=timezone.now())
    Team.objects.filter(pk=team.pk).update(removed_at=timezone.now())
    report = build_report(subscription)
    assert report["view_problems"] and "“Team” no longer applies" in report["view_problems"][0]
    assert report["counts"]["issues"] == total(logged_in(steward).get(view.link))


# -- worst assets in every report -------------------------------------------------------------------

def test_team_and_workspace_reports_list_their_worst_assets(synced, steward):
    team_id = (ResourceRef.objects.filter(kind="team", resource__removed_at__isnull=True).values_list("ref_id")
               .annotate(n=Count("pk")).order_by("-n", "ref_id")[0][0])
    team_rows = set(ResourceRef.objects.filter(kind="team", ref_id=team_id).values_list("resource_id", flat=True))
    for scope, scope_id in ((Subscription.TEAM, team_id), (Subscription.WORKSPACE, "")):
        subscription = Subscription.objects.create(user=steward, email="s@example.com", scope=scope,
                                                   scope_id=scope_id, next_due_at=timezone.now())
        report = build_report(subscription)
        worst = report["worst"]
        assert len(worst) == min(WORST_ASSETS, report["counts"]["issues"]) > 0
        assert report["worst_total"] == report["counts"]["issues"] and report["own"] is False
        healths = [asset["health"] for asset in worst]
        assert healths == sorted(healths)
        ids = [asset["link"].rsplit("/resources/", 1)[1].rstrip("/") for asset in worst]
        candidates = issue_queryset(None)
        if scope == Subscription.TEAM:
            candidates = candidates.filter(pk__in=team_rows)
        assert healths[0] == min(candidates.values_list("health", flat=True))
        if scope == Subscription.TEAM:
            assert set(ids) <= team_rows, "only the team's assets"
        assert all(asset["broken"] for asset in worst)


def test_the_saved_views_page_runs_the_same_queries_for_one_and_ten_views(synced, steward, viewer):
    stella = logged_in(steward)
    make_view(steward, name="View 0")
    with CaptureQueriesContext(connection) as one:
        assert stella.get(reverse("dashboard:saved-views")).status_code == 200
    for i in range(1, 10):
        view = make_view(viewer if i % 2 else steward, name=f"View {i}", shared=not i % 2,
                         filter_query=f"q=v{i}")
        Subscription.objects.create(user=viewer, email="v@example.com", scope=Subscription.VIEW, saved_view=view,
                                    next_due_at=timezone.now())
    with CaptureQueriesContext(connection) as ten:
        html = stella.get(reverse("dashboard:saved-views")).content.decode()
    assert html.count('class="view-name"') == 10
    assert len(one.captured_queries) == len(ten.captured_queries) <= 5
