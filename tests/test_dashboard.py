"""The steward's dashboard over a mirror synced from the emulator: counts, lists, filters, CSV,
resource pages, owners and teams, health and snoozes."""
import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog_sync.models import DbtTestStatus, Resource, ResourceRef, SecodaUser
from catalog_sync.sync import run_sync
from hygiene.dashboard.models import Snapshot, Snooze
from hygiene.rulebook.registry import rule_filters, summary
from tests.conftest import TOKEN, fast_client

pytestmark = pytest.mark.django_db

NEXT_MONTH = (timezone.localdate() + timedelta(days=30)).isoformat()


@pytest.fixture
def synced(emulator, synced_mirror):
    run = synced_mirror
    assert run.status == "succeeded", run.error
    return emulator


@pytest.fixture
def as_steward(client, steward):
    client.force_login(steward)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def list_total(response):
    return response.context["table"].paginator.count


def rule_count(rule):
    from hygiene.rules import in_scope

    return in_scope().filter(rule_filters()[rule]).count()


# -- overview -------------------------------------------------------------------------

def test_overview_counts_every_rule_with_coverage(synced, as_viewer):
    response = as_viewer.get("/")
    html = response.content.decode()
    report = summary()
    for rule in ("stale", "unowned", "undocumented", "failing_dbt_tests", "warning_dbt_tests"):
        assert f'data-rule="{rule}">{report[rule]:,}<' in html
    assert f'data-rule="unused">{rule_count("unused"):,}<' in html
    coverage = 100 - 100 * report["unowned"] / report["resources"]
    assert f"{coverage:.1f}% coverage" in html
    snowflake = next(i for i in synced.workspace.integrations() if i["type"] == "snowflake")
    assert snowflake["name"] in html
    assert "By team" in html and "Open issues over time" in html


def test_a_snapshot_is_stored_after_every_successful_sync_and_drives_the_trend(synced, as_viewer):
    assert Snapshot.objects.filter(reason=Snapshot.SYNC).count() == 1
    assert "appears after the second" in as_viewer.get("/").content.decode()
    run_sync(client=fast_client(synced))
    assert Snapshot.objects.filter(reason=Snapshot.SYNC).count() == 2
    html = as_viewer.get("/").content.decode()
    assert '<polyline' in html and 'data-series="unowned"' in html

    bad = fast_client(synced, max_retries=0)
    bad._token = "wrong"
    run_sync(client=bad)
    assert Snapshot.objects.filter(reason=Snapshot.SYNC).count() == 2, "failed syncs store no snapshot"


def test_health_is_100_minus_the_weights_of_broken_rules(synced, as_viewer, settings):
    resource = Resource.objects.filter(is_owned=False, is_documented=False, stale=False).exclude(
        pk__in=DbtTestStatus.objects.values("resource_id")).filter(external_usage__gt=0).first()
    response = as_viewer.get(reverse("dashboard:resource", args=[resource.pk]))
    weights = settings.HEALTH_WEIGHTS
    assert response.context["resource"].health == 100 - weights["unowned"] - weights["undocumented"]


# -- issue lists ----------------------------------------------------------------------

def test_a_rule_list_shows_exactly_the_resources_breaking_it(synced, as_viewer):
    response = as_viewer.get("/issues/unowned/")
    assert response.status_code == 200
    assert list_total(response) == summary()["unowned"]
    rows = list(response.context["table"].page.object_list)
    assert rows and all(not row.record.is_owned for row in rows)


def test_filters_by_integration_owner_tag_text_and_flags(synced, as_viewer):
    integration = next(i for i in synced.workspace.integrations() if i["type"] == "snowflake")["id"]
    response = as_viewer.get("/issues/undocumented/", {"integration": integration})
    assert list_total(response) == Resource.objects.filter(
        integration_id=integration, is_documented=False, archived=False, removed_at__isnull=True).count()

    owner = ResourceRef.objects.filter(kind="owner").values_list("ref_id", flat=True).first()
    name = SecodaUser.objects.get(pk=owner).display_name
    response = as_viewer.get("/issues/", {"owner": f"user:{owner}", "per_page": 200})
    rows = [row.record for row in response.context["table"].page.object_list]
    assert rows and all(owner in r.owners for r in rows)
    assert name in response.content.decode()

    response = as_viewer.get("/issues/", {"owner": "none"})
    assert list_total(response) == summary()["unowned"]

    response = as_viewer.get("/issues/", {"q": "revenue", "per_page": 200})
    rows = [row.record for row in response.context["table"].page.object_list]
    assert all("revenue" in (r.title_full + r.title).lower() for r in rows)

    response = as_viewer.get("/issues/", {"pii": "true", "usage_min": "1"})
    rows = [row.record for row in response.context["table"].page.object_list]
    assert all(r.pii and r.external_usage >= 1 for r in rows)


def test_lists_sort_and_the_user_picks_columns(synced, as_viewer):
    response = as_viewer.get("/issues/", {"sort": "-external_usage"})
    usages = [row.record.external_usage or 0 for row in response.context["table"].page.object_list]
    assert usages == sorted(usages, reverse=True)
    response = as_viewer.get("/issues/", {"columns": ["entity_type", "health"]})
    headers = [column.name for column in response.context["table"].columns]
    assert headers == ["title_full", "entity_type", "health"]
    # The choice sticks for the next list.
    response = as_viewer.get("/issues/stale/")
    assert [column.name for column in response.context["table"].columns] == ["title_full", "entity_type", "health"]


@pytest.mark.parametrize("params, message", [
    ({"updated_after": "2024-13-45"}, "Ignored the filter “Updated on or after”"),
    ({"integration": "00000000-0000-0000-0000-000000000000"}, "Ignored the filter “Integration”"),
    ({"page": "-1"}, "is not a page number"),
    ({"page": "abc"}, "is not a page number"),
    ({"page": "99999"}, "There is no page 99999"),
    ({"per_page": "7"}, "Showing 50 rows a page"),
    ({"usage_min": "lots"}, "Ignored the filter “Usage at least”"),
    ({"snoozed": "maybe"}, "is not a snooze view"),
    ({"owner": "user:nobody"}, "Ignored the filter “Owner”"),
])
def test_bad_query_strings_get_a_clear_message_not_an_error(synced, as_viewer, params, message):
    response = as_viewer.get("/issues/", params)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert list_total(response) == summary_total_with_issues()


def summary_total_with_issues():
    from hygiene.domain.lists import issue_queryset

    return issue_queryset().count()


def test_unknown_rule_and_resource_are_404(synced, as_viewer):
    assert as_viewer.get("/issues/nonsense/").status_code == 404
    assert as_viewer.get("/resources/no-such-id/").status_code == 404


def test_csv_export_streams_every_filtered_row_with_names(synced, as_viewer):
    owner = ResourceRef.objects.filter(kind="owner").values_list("ref_id", flat=True).first()
    response = as_viewer.get("/issues/undocumented/export.csv", {"owner": f"user:{owner}"})
    assert response.streaming and response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    count = as_viewer.get("/issues/undocumented/", {"owner": f"user:{owner}"}).context["table"].paginator.count
    assert len(body) == count > 0
    assert header[:3] == ["id", "title_full", "entity_type"]
    owners_column = header.index("owners")
    assert all(SecodaUser.objects.get(pk=owner).display_name in row[owners_column] for row in body)
    assert all("Undocumented" in row[header.index("issues")] for row in body)


# -- resource page ---------------------------------------------------------------------

def test_resource_page_shows_fields_rules_family_and_dbt_status(synced, as_viewer):
    failing = DbtTestStatus.objects.filter(status="failing").values_list("resource_id", flat=True).first()
    resource = Resource.objects.get(pk=failing)
    html = as_viewer.get(reverse("dashboard:resource", args=[resource.pk])).content.decode()
    assert resource.title in html and resource.title_full in html
    assert "Failing dbt tests" in html
    assert "Failing</span> in" in html
    child = resource.children.first()
    if child:
        assert child.title in html
    if resource.parent_id:
        assert reverse("dashboard:resource", args=[resource.parent_id]) in html
    assert resource.url in html
    assert TOKEN not in html


# -- owners and teams ------------------------------------------------------------------

def test_owners_are_sorted_worst_first_and_link_to_their_list(synced, as_viewer):
    response = as_viewer.get("/owners/")
    rows = response.context["rows"]
    issues = [row["issues"] for row in rows]
    assert issues == sorted(issues, reverse=True)
    worst = rows[0]
    listed = as_viewer.get("/issues/", {"owner": worst["key"]})
    assert list_total(listed) == worst["issues"]
    assert f'?owner={worst["key"]}' in response.content.decode().replace("%3A", ":")


def test_teams_page_counts_per_team(synced, as_viewer):
    response = as_viewer.get("/teams/")
    rows = response.context["rows"]
    team = next(row for row in rows if row["key"] != "none")
    assert team["resources"] == ResourceRef.objects.filter(kind="team", ref_id=team["key"],
                                                           resource__removed_at__isnull=True,
                                                           resource__archived=False).count()
    assert team["label"] in response.content.decode()


def test_resources_in_no_team_have_a_row_of_their_own_that_lists_them(synced, as_viewer):
    from hygiene.rules import in_scope

    no_team = in_scope().exclude(pk__in=ResourceRef.objects.filter(kind="team").values("resource_id"))
    assert no_team.exists()
    row = next(row for row in as_viewer.get("/teams/").context["rows"] if row["key"] == "none")
    assert row["label"] == "No team" and row["resources"] == no_team.count()
    assert "No team" in as_viewer.get("/").content.decode()
    listed = as_viewer.get("/issues/", {"team": "none"})
    assert list_total(listed) == row["issues"]
    assert "Team: No team" in listed.content.decode()


# -- snoozes ---------------------------------------------------------------------------

def snooze(client, **data):
    payload = {"rule": "", "until": NEXT_MONTH, "reason": "Scratch data, dropped in Q1", "next": "/"}
    payload.update(data)
    return client.post(reverse("dashboard:snooze-create"), payload, follow=True)


def overview_count(client, rule):
    return client.get("/").context["totals"][rule]


def test_snoozing_one_resource_leaves_the_counts_and_comes_back_when_it_expires(synced, as_steward):
    before = overview_count(as_steward, "unowned")
    resource = Resource.objects.filter(is_owned=False, archived=False).first()
    response = snooze(as_steward, rule="unowned", resource=resource.pk)
    assert "Snoozed unowned" in response.content.decode()
    assert overview_count(as_steward, "unowned") == before - 1
    assert list_total(as_steward.get("/issues/unowned/")) == before - 1
    snoozed = as_steward.get("/issues/unowned/", {"snoozed": "only"})
    assert [row.record.pk for row in snoozed.context["table"].page.object_list] == [resource.pk]

    # Time passes: the snapshot was taken, then the snooze ran out.
    Snapshot.objects.update(taken_at=timezone.now() - timedelta(minutes=2))
    Snooze.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert overview_count(as_steward, "unowned") == before, "an expired snooze counts again"


def test_snoozing_a_filter_covers_every_match_including_new_ones(synced, as_steward):
    integration = next(i for i in synced.workspace.integrations() if i["type"] == "postgres")["id"]
    stale_there = Resource.objects.filter(integration_id=integration, stale=True, archived=False).count()
    before = overview_count(as_steward, "stale")
    response = snooze(as_steward, rule="stale", filter_query=f"integration={integration}")
    assert "everything matching Integration:" in response.content.decode()
    assert overview_count(as_steward, "stale") == before - stale_there
    assert overview_count(as_steward, "unowned") == summary()["unowned"], "other rules are untouched"
    listed = as_steward.get("/issues/stale/", {"integration": integration})
    assert list_total(listed) == 0


def test_ending_a_snooze_brings_the_issue_back(synced, as_steward):
    before = overview_count(as_steward, "undocumented")
    resource = Resource.objects.filter(is_documented=False, archived=False).first()
    snooze(as_steward, resource=resource.pk)
    assert overview_count(as_steward, "undocumented") == before - 1
    pk = Snooze.objects.get().pk
    as_steward.post(reverse("dashboard:snooze-cancel", args=[pk]), {"next": "/snoozes/"})
    assert overview_count(as_steward, "undocumented") == before


@pytest.mark.parametrize("data, message", [
    ({"until": "2001-01-01"}, "Pick a date after today."),
    ({"reason": " "}, "This field is required."),
    ({"until": "soon"}, "Enter a valid date."),
    ({"filter_query": "page=2"}, "choose at least one valid filter"),
])
def test_bad_snooze_forms_are_refused_with_a_message(synced, as_steward, data, message):
    resource = Resource.objects.first()
    payload = {"resource": resource.pk} if "filter_query" not in data else {}
    response = snooze(as_steward, **payload, **data)
    assert message in response.content.decode()
    assert not Snooze.objects.exists()


def test_viewers_cannot_snooze_and_see_no_button(synced, as_viewer):
    resource = Resource.objects.filter(is_owned=False).first()
    page = as_viewer.get(reverse("dashboard:resource", args=[resource.pk])).content.decode()
    assert "Snooze an issue" not in page
    response = as_viewer.post(reverse("dashboard:snooze-create"),
                              {"resource": resource.pk, "until": NEXT_MONTH, "reason": "mine now"})
    assert response.status_code == 403
    assert not Snooze.objects.exists()


def test_snooze_posts_need_a_csrf_token(synced, steward):
    client = Client(enforce_csrf_checks=True)
    client.force_login(steward)
    resource = Resource.objects.first()
    response = client.post(reverse("dashboard:snooze-create"),
                           {"resource": resource.pk, "until": NEXT_MONTH, "reason": "no token"})
    assert response.status_code == 403
    assert not Snooze.objects.exists()


@pytest.mark.parametrize("url", ["/", "/issues/", "/issues/stale/", "/issues/export.csv", "/owners/", "/teams/",
                                 "/snoozes/", "/resources/x/"])
def test_every_page_needs_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_token_never_reaches_a_page(synced, as_steward):
    resource = Resource.objects.first()
    for url in ("/", "/issues/", "/owners/", "/teams/", "/snoozes/", f"/resources/{resource.pk}/"):
        assert TOKEN not in as_steward.get(url).content.decode()


def test_csv_cells_never_start_a_spreadsheet_formula(synced, as_viewer):
    resource = Resource.objects.filter(is_owned=False, archived=False).first()
    Resource.objects.filter(pk=resource.pk).update(title_full='=HYPERLINK("http://evil")')
    response = as_viewer.get("/issues/unowned/export.csv")
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body and ',=HYPERLINK' not in body


def test_csv_times_and_names_read_as_on_the_pages(synced, as_viewer, settings):
    """Times in the export as ISO text (a fraction only where there is one), the day an issue opened in the
    steward's time zone, and every row's owner names, however many rows share the same owners."""
    from datetime import datetime, timezone as tz

    from hygiene.lifecycle.models import IssueInterval

    settings.TIME_ZONE = "Pacific/Auckland"
    unowned = list(Resource.objects.filter(is_owned=False, archived=False, removed_at__isnull=True)
                   .order_by("id")[:2])
    whole, fraction = datetime(2026, 3, 4, 5, 6, 7, tzinfo=tz.utc), datetime(2026, 3, 4, 5, 6, 7, 120, tzinfo=tz.utc)
    Resource.objects.filter(pk=unowned[0].pk).update(updated_at=whole)
    Resource.objects.filter(pk=unowned[1].pk).update(updated_at=fraction)
    opened = datetime(2026, 5, 1, 20, 0, tzinfo=tz.utc)  # already 2 May in Auckland
    IssueInterval.objects.filter(resource_id=unowned[0].pk, rule="unowned", closed_at__isnull=True).update(
        opened_at=opened)
    rows = list(csv.DictReader(io.StringIO(b"".join(
        as_viewer.get("/issues/unowned/export.csv").streaming_content).decode())))
    by_id = {row["id"]: row for row in rows}
    assert by_id[unowned[0].pk]["updated_at"] == "2026-03-04T05:06:07+00:00"
    assert by_id[unowned[1].pk]["updated_at"] == "2026-03-04T05:06:07.000120+00:00"
    assert by_id[unowned[0].pk]["open_since"] == "2026-05-02"
    documented = Resource.objects.filter(removed_at__isnull=True, archived=False, is_documented=False)
    rows = list(csv.DictReader(io.StringIO(b"".join(
        as_viewer.get("/issues/undocumented/export.csv").streaming_content).decode())))
    assert len(rows) == documented.count() > 0
    names = {user.pk: user.display_name for user in SecodaUser.objects.all()}
    for row in rows:
        resource = documented.get(pk=row["id"])
        assert row["owners"] == "; ".join(names.get(pk) or f"unknown user {pk[:8]}" for pk in resource.owners)


def test_the_owners_page_counts_every_unowned_resource_snoozed_or_not(synced, as_steward):
    resource = Resource.objects.filter(is_owned=False, archived=False).first()
    snooze(as_steward, rule="unowned", resource=resource.pk)
    page = as_steward.get("/owners/").content.decode()
    unowned = Resource.objects.filter(is_owned=False, archived=False, removed_at__isnull=True).count()
    assert f"<strong>{unowned:,}</strong> resources have no owner at all" in page
    assert "(1 of them snoozed)" in page


def test_a_resource_whose_issues_are_snoozed_shows_its_health_without_the_snoozes_too(synced, as_steward):
    resource = Resource.objects.filter(is_owned=False, archived=False, stale=False, is_documented=True).first()
    snooze(as_steward, rule="", resource=resource.pk)
    page = as_steward.get(f"/resources/{resource.pk}/").content.decode()
    assert 'data-metric="health-unsnoozed"' in page and "with snoozed issues counted" in page


def test_the_stale_list_shows_how_long_each_has_been_stale_and_sorts_on_it(synced, as_viewer):
    response = as_viewer.get("/issues/stale/", {"sort": "-stale_for", "per_page": 200})
    assert "stale_for" in [column.name for column in response.context["table"].columns], "a default column there"
    assert "stale_for" not in [column.name for column in as_viewer.get("/issues/").context["table"].columns]
    updated = [row.record.updated_at for row in response.context["table"].page.object_list]
    dated = [when for when in updated if when is not None]
    assert len(set(dated)) > 1 and dated == sorted(dated), "longest stale (least recently updated) first"
    assert updated[len(dated):] == [None] * (len(updated) - len(dated)), "no date: last"
    oldest = dated[0]
    html = response.content.decode()
    assert f"{(timezone.now() - oldest).days:,} days" in html
    assert 'aria-sort="descending"' in html and html.count("aria-sort=") == 1, "the sorted header says so"
    response = as_viewer.get("/issues/stale/", {"sort": "stale_for", "per_page": 200})
    dated = [row.record.updated_at for row in response.context["table"].page.object_list if row.record.updated_at]
    assert dated == sorted(dated, reverse=True)


def test_long_owner_lists_collapse_to_the_first_name_and_a_count(synced, as_viewer):
    from hygiene.domain.directory import Directory

    resource = Resource.objects.filter(archived=False, removed_at__isnull=True, is_documented=False,
                                       owners_groups=[]).exclude(owners=[]).first()
    people = list(SecodaUser.objects.present().exclude(pk__in=resource.owners)[:2])
    Resource.objects.filter(pk=resource.pk).update(owners=resource.owners[:1] + [p.pk for p in people])
    names = Directory().owner_names(Resource.objects.get(pk=resource.pk))
    html = as_viewer.get("/issues/undocumented/", {"q": resource.title_full, "per_page": 200}).content.decode()
    everyone = ", ".join(names)
    first = names[0].split()
    short = f"{first[0]} {first[-1][0]}." if len(first) > 1 else names[0]
    assert len(names) == 3 and f'title="{everyone}"' in html, "the whole list on hover"
    assert f"{short} <span class=\"more\">+2</span>" in html
    assert f'<span class="visually-hidden">{everyone}</span>' in html, "and for screen readers"
