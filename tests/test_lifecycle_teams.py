"""Teams, owners and integrations as a team lead sees them: each one's page (the burn-down from the snapshots,
today's counts, what was opened and fixed and how fast, the issues open longest), the median time to fix on
/teams/, /owners/ and the overview's integrations (worst first on request), and a rule's "fix within N days":
overdue counts on the overview, the badge on the resource page, the issue-list filter and the report line.
Interval dates are set by hand to known values; syncs go through the emulator."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog_sync.models import Resource, ResourceRef, SyncRun
from catalog_sync.sync import run_sync
from hygiene.dashboard.models import Snapshot
from hygiene.lifecycle.models import IssueInterval
from hygiene.reports.content import build_report
from hygiene.reports.emails import report_email
from hygiene.reports.models import Subscription
from hygiene.rulebook import registry
from hygiene.rulebook import services as rulebook
from hygiene.rulebook.models import Rule
from hygiene.rules import in_scope
from tests.conftest import fast_client

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
# Queries of a team's page, measured: session, user and roles (3), the rules in force, the directory (5), the
# snapshot and whether a snooze ran out (2), the chart's snapshots, the flow (opened/fixed/overdue, medians),
# when the history began, the oldest open issues.
SCOPE_PAGE_CEILING = 16


@pytest.fixture
def mirror(synced_mirror):
    assert synced_mirror.status == SyncRun.SUCCEEDED, synced_mirror.error
    return synced_mirror


@pytest.fixture
def site(client, steward, mirror):
    client.force_login(steward)
    return client


def sync(emulator):
    run = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)
    assert run.status == SyncRun.SUCCEEDED, run.error
    return run


def busiest(scope):
    """The team, owner ("user:<id>") or integration with the most resources."""
    if scope == "integration":
        return (Resource.objects.exclude(integration_id=None).values_list("integration_id")
                .annotate(n=Count("pk")).order_by("-n", "integration_id")[0][0])
    kind = ResourceRef.TEAM if scope == "team" else ResourceRef.OWNER
    ref = (ResourceRef.objects.filter(kind=kind).values_list("ref_id").annotate(n=Count("pk"))
           .order_by("-n", "ref_id")[0][0])
    return ref if scope == "team" else f"user:{ref}"


def members(scope, key):
    """The ids of a scope's resources, read straight from the mirror."""
    if scope == "integration":
        return set(Resource.objects.filter(integration_id=key).values_list("pk", flat=True))
    if scope == "team":
        return set(ResourceRef.objects.filter(kind=ResourceRef.TEAM, ref_id=key).values_list("resource_id", flat=True))
    return set(ResourceRef.objects.filter(kind=ResourceRef.OWNER, ref_id=key.split(":", 1)[1])
               .values_list("resource_id", flat=True))


def interval(resource_id, rule, opened, closed=None, reason=IssueInterval.FIXED, seen_since=False):
    """An interval with known dates (`opened`, `closed`: how many days ago)."""
    now = timezone.now()
    return IssueInterval.objects.create(
        resource_id=resource_id, rule=rule, opened_at=now - opened * DAY, opened_cause=IssueInterval.SYNC,
        seen_since=seen_since, closed_at=None if closed is None else now - closed * DAY,
        close_reason="" if closed is None else reason, closed_cause="" if closed is None else IssueInterval.SYNC)


def page_path(scope, key):
    return {"team": f"/teams/{key}/", "owner": f"/owners/{key}/", "integration": f"/integrations/{key}/"}[scope]


def flow_row(response, rule):
    return next(row for row in response.context["flow"] if row["key"] == rule)


def set_fix_within(key, days):
    rule = Rule.objects.get(key=key)
    rulebook.save(rulebook.clean_definition({"weight": rule.weight, "enabled": True, "sla_days": days},
                                            builtin=True), rule=rule, snapshot=False)


# -- a team's, an owner's, an integration's page ----------------------------------------------

@pytest.mark.parametrize("scope", ["team", "owner", "integration"])
def test_a_scope_page_counts_opened_fixed_and_the_median_of_its_own_resources_only(site, scope):
    key = busiest(scope)
    inside = members(scope, key)
    open_stale = set(IssueInterval.objects.filter(rule="stale", closed_at__isnull=True)
                     .values_list("resource_id", flat=True))
    mine = sorted(inside - open_stale)
    outside = sorted(set(Resource.objects.values_list("pk", flat=True)) - inside)
    assert len(mine) >= 6 and outside
    a, b, c, e, s, still_open = mine[:6]
    interval(a, "stale", opened=3, closed=1)             # fixed in 2 days, this week
    interval(b, "stale", opened=20, closed=10)           # fixed in 10 days, this month
    interval(c, "stale", opened=40, closed=35)           # fixed in 5 days, within the median's 90 days
    interval(e, "stale", opened=2, closed=1, seen_since=True)  # fixed this week, start unknown: no median
    interval(s, "stale", opened=4, closed=1, reason=IssueInterval.SNOOZED)  # opened this week, snoozed: not fixed
    interval(still_open, "stale", opened=50)             # opened 50 days ago, still open: the oldest
    interval(outside[0], "stale", opened=2, closed=1)    # someone else's fix

    response = site.get(page_path(scope, key))
    assert response.status_code == 200
    row = flow_row(response, "stale")
    assert (row["opened_7"], row["fixed_7"], row["opened_30"], row["fixed_30"]) == (2, 2, 3, 3)
    assert row["median_fix"] == "5 days"
    oldest = response.context["oldest"]
    assert oldest and oldest[0].resource_id == still_open
    assert all(i.resource_id in inside for i in oldest), "only this scope's open issues"
    html = response.content.decode()
    assert "Open longest" in html and f'href="/resources/{still_open}/"' in html
    # Every rule links to its list filtered to this scope.
    assert f'href="/issues/stale/?{scope}={key.replace(":", "%3A")}"' in html
    assert f'href="/issues/?{scope}={key.replace(":", "%3A")}"' in html


@pytest.mark.parametrize("scope", ["team", "owner", "integration"])
def test_a_scope_page_draws_its_burn_down_and_todays_counts_after_two_syncs(site, emulator, scope):
    key = busiest(scope)
    first = site.get(page_path(scope, key)).content.decode()
    assert "The trend appears after the second successful sync." in first
    sync(emulator)

    html = site.get(page_path(scope, key)).content.decode()
    assert '<svg class="chart"' in html and "The numbers behind the chart (2 syncs)" in html
    for rule in registry.keys():
        assert f'data-series="{rule}"' in html
    field = {"team": "by_team", "owner": "by_owner", "integration": "by_integration"}[scope]
    today = getattr(Snapshot.objects.first(), field)[key]
    for rule in registry.keys():
        assert f'data-now="{today.get(rule, 0)}"' in html
    assert f"{today['resources']:,} resources" in html


def test_the_old_trend_addresses_lead_to_the_new_pages(site):
    team, owner, integration = busiest("team"), busiest("owner"), busiest("integration")
    for query, target in ((f"team={team}", f"/teams/{team}/"), (f"integration={integration}",
                                                                 f"/integrations/{integration}/"),
                          (f"owner={owner}", f"/owners/{owner}/")):
        response = site.get(f"/trend/?{query}")
        assert response.status_code == 301 and response["Location"] == target
        assert site.get(target).status_code == 200
    assert site.get("/teams/none/").status_code == 200, "resources in no team have a page too"


def test_the_breakdowns_link_every_row_to_its_page(site):
    team, owner = busiest("team"), busiest("owner")
    assert f'href="/teams/{team}/"' in site.get("/teams/").content.decode()
    assert f'href="/owners/{owner}/"' in site.get("/owners/").content.decode()
    assert f'href="/integrations/{busiest("integration")}/"' in site.get("/").content.decode()


def test_a_scope_page_runs_the_same_queries_whatever_its_history(site, emulator):
    team = busiest("team")

    def fetch():
        with CaptureQueriesContext(connection) as captured:
            assert site.get(f"/teams/{team}/").status_code == 200
        return captured.captured_queries

    before = fetch()
    for _ in range(3):
        sync(emulator)
    for i, resource_id in enumerate(sorted(members("team", team))[:30]):
        interval(resource_id, "undocumented", opened=i + 2, closed=1)
    after = fetch()
    assert len(before) == len(after) <= SCOPE_PAGE_CEILING, "\n".join(q["sql"][:200] for q in after)


# -- median time to fix on the breakdowns ------------------------------------------------------

def only_in(team, other):
    """Resources in `team` and not in `other`."""
    return sorted(members("team", team) - members("team", other))


def rows_by_key(response, name="rows"):
    return {row["key"]: row for row in response.context[name]}


def assert_slowest_first(rows):
    medians = [row["median_fix_seconds"] for row in rows]
    known = [m for m in medians if m is not None]
    assert known == sorted(known, reverse=True), "slowest first"
    assert medians == known + [None] * (len(medians) - len(known)), "rows with no fix last"


def test_teams_show_the_median_time_to_fix_and_sort_slowest_first(site):
    teams = list(ResourceRef.objects.filter(kind=ResourceRef.TEAM).values_list("ref_id").annotate(
        n=Count("pk")).order_by("-n", "ref_id").values_list("ref_id", flat=True)[:2])
    quick, slow = teams
    for days, resource_id in zip((1, 3), only_in(quick, slow)):
        interval(resource_id, "undocumented", opened=days + 1, closed=1)  # 1 and 3 days: median 2
    interval(only_in(slow, quick)[0], "undocumented", opened=9, closed=1)  # 8 days
    teamless = in_scope().exclude(pk__in=ResourceRef.objects.filter(kind=ResourceRef.TEAM)
                                  .values("resource_id")).values_list("pk", flat=True).first()
    interval(teamless, "undocumented", opened=5, closed=1)  # 4 days
    interval(teamless, "unowned", opened=100, closed=95)  # fixed more than 90 days ago: left out

    response = site.get("/teams/")
    rows = rows_by_key(response)
    assert rows[quick]["median_fix"] == "2 days" and rows[slow]["median_fix"] == "8 days"
    assert rows["none"]["median_fix"] == "4 days"
    issues = [row["issues"] for row in response.context["rows"]]
    assert issues == sorted(issues, reverse=True), "most open issues first by default"
    html = response.content.decode()
    assert "Median time to fix" in html and 'href="?sort=median_fix"' in html and ">8 days</td>" in html

    slowest = site.get("/teams/?sort=median_fix")
    ordered = slowest.context["rows"]
    assert_slowest_first(ordered)
    keys = [row["key"] for row in ordered]
    assert keys.index(slow) < keys.index("none") < keys.index(quick)
    assert 'aria-sort="descending"' in slowest.content.decode()


def test_owners_show_the_median_time_to_fix_and_sort_slowest_first(site):
    owner = busiest("owner")
    owned = sorted(members("owner", owner))
    interval(owned[0], "undocumented", opened=7, closed=1)
    interval(owned[1], "undocumented", opened=13, closed=1)  # 6 and 12 days: median 9
    response = site.get("/owners/?sort=median_fix")
    assert rows_by_key(response)[owner]["median_fix"] == "9 days"
    assert_slowest_first(response.context["rows"])
    assert response.context["rows"][0]["median_fix_seconds"] >= 9 * 86400 - 1


def test_the_overviews_integrations_show_the_median_time_to_fix_and_sort_slowest_first(site):
    integration = busiest("integration")
    resource_id = sorted(members("integration", integration))[0]
    interval(resource_id, "stale", opened=31, closed=1)  # 30 days: the slowest of all
    overview = site.get("/")
    assert rows_by_key(overview, "by_integration")[integration]["median_fix"] == "30 days"
    assert 'href="?integration_sort=median_fix#by-integration"' in overview.content.decode()
    slowest = site.get("/?integration_sort=median_fix")
    assert slowest.context["by_integration"][0]["key"] == integration
    assert_slowest_first(slowest.context["by_integration"])


# -- fix within N days ---------------------------------------------------------------------------

def test_fix_within_is_checked_for_built_in_and_custom_rules(mirror):
    for bad in ("0", "3651", "-2", "a week", 2.5):
        with pytest.raises(rulebook.RuleError) as caught:
            rulebook.clean_definition({"weight": 5, "sla_days": bad}, builtin=True)
        assert "sla_days" in caught.value.errors
    assert rulebook.clean_definition({"weight": 5, "sla_days": ""}, builtin=True)["sla_days"] is None
    assert rulebook.clean_definition({"weight": 5, "sla_days": " 3650 "}, builtin=True)["sla_days"] == 3650
    assert "sla_days" not in rulebook.clean_definition({"weight": 5}, builtin=True), "absent: left as it is"

    set_fix_within("stale", 30)
    rulebook.save(rulebook.clean_definition({"weight": 20}, builtin=True), rule=Rule.objects.get(key="stale"),
                  snapshot=False)
    assert Rule.objects.get(key="stale").sla_days == 30 and registry.get("stale").sla_days == 30
    custom = rulebook.save(rulebook.clean_definition({
        "name": "Thin descriptions", "sla_days": 14,
        "clauses": [{"field": "description", "op": "shorter_than", "value": 20}]}), snapshot=False)
    assert registry.get(custom.key).sla_days == 14
    set_fix_within("stale", "")
    assert registry.get("stale").sla_days is None


def test_open_issues_past_their_rules_fix_within_time_are_overdue_everywhere(site, steward):
    open_unowned = list(IssueInterval.objects.filter(rule="unowned", closed_at__isnull=True)
                        .order_by("resource_id")[:4])
    late, recent = open_unowned[:3], open_unowned[3]
    now = timezone.now()
    # Open at least since 10 days ago (history began then): late by their seen date.
    IssueInterval.objects.filter(pk__in=[i.pk for i in late]).update(opened_at=now - 10 * DAY)
    IssueInterval.objects.filter(pk=recent.pk).update(opened_at=now - 3 * DAY, seen_since=False)
    stale = IssueInterval.objects.filter(rule="stale", closed_at__isnull=True).first()
    IssueInterval.objects.filter(pk=stale.pk).update(opened_at=now - 300 * DAY)  # no time limit: never late

    before = site.get("/")
    assert not before.context["any_deadline"] and "Past fix-within" not in before.content.decode()
    subscription = Subscription.objects.create(user=steward, email="s@example.com", frequency=Subscription.DAILY,
                                               next_due_at=now)
    assert build_report(subscription)["overdue"] is None

    set_fix_within("unowned", 7)
    overview = site.get("/")
    assert flow_row(overview, "unowned")["overdue"] == 3 and flow_row(overview, "stale")["overdue"] is None
    html = overview.content.decode()
    assert 'data-overdue="3"' in html and 'href="/issues/unowned/?overdue=true"' in html

    # The issue lists' filter: exactly those three.
    for path in ("/issues/unowned/?overdue=true", "/issues/?overdue=true"):
        listed = site.get(path).content.decode()
        assert int(re.search(r'data-count="(\d+)"', listed).group(1)) == 3, path
    assert int(re.search(r'data-count="(\d+)"', site.get("/issues/stale/?overdue=true").content.decode())
               .group(1)) == 0

    # The badge on the resource page's timeline.
    page = site.get(f"/resources/{late[0].resource_id}/").content.decode()
    assert ">Overdue</span>" in page and "past its 7-day fix-within time" in page
    assert ">Overdue</span>" not in site.get(f"/resources/{recent.resource_id}/").content.decode()

    # The report: a line of its own, in text and HTML, linking to the filtered list.
    report = build_report(subscription)
    assert report["overdue"]["count"] == 3 and report["overdue"]["link"].endswith("/issues/?overdue=true")
    email = report_email(subscription, report)
    assert "3 issues are past their rule's fix-within time" in email.body
    assert "3 issues are past their rule’s fix-within time" in email.alternatives[0][0]
    team = ResourceRef.objects.filter(kind=ResourceRef.TEAM, resource_id=late[0].resource_id).values_list(
        "ref_id", flat=True).first()
    if team:  # a team's report counts its own resources only
        mine = members("team", team)
        team_report = build_report(Subscription.objects.create(
            user=steward, email="t@example.com", scope=Subscription.TEAM, scope_id=team, next_due_at=now))
        assert team_report["overdue"]["count"] == sum(i.resource_id in mine for i in late)
        assert f"team={team}&overdue=true" in team_report["overdue"]["link"]


def test_one_overdue_issue_reads_in_the_singular(site, steward):
    set_fix_within("unowned", 7)
    first = IssueInterval.objects.filter(rule="unowned", closed_at__isnull=True).first()
    IssueInterval.objects.filter(pk=first.pk).update(opened_at=timezone.now() - 8 * DAY)
    subscription = Subscription.objects.create(user=steward, email="s@example.com", next_due_at=timezone.now())
    email = report_email(subscription, build_report(subscription))
    assert "1 issue is past its rule's fix-within time" in email.body


# -- bad addresses: a 404 or a message, never a 500 ----------------------------------------------

@pytest.mark.parametrize("path", [
    "/teams/no-such-team/", "/owners/no-such-owner/", "/owners/user:no-such-person/", "/owners/robot:x/",
    "/owners/user:/", "/integrations/no-such-integration/", f"/teams/{'x' * 500}/", "/teams/%00/",
    "/owners/group:%00/", "/integrations/a%2Fb%3Fc/", "/trend/", "/trend/?team=",
])
def test_a_bad_scope_address_is_a_404(site, path):
    response = site.get(path, follow=True)
    # A NUL byte in a path is refused before any view (400); everything else is "no such …".
    assert response.status_code == (400 if "%00" in path else 404)


@pytest.mark.parametrize("path", [
    "/teams/?sort=evil", "/owners/?sort=%00", "/?integration_sort=<script>", "/teams/?sort=",
    "/issues/?overdue=maybe", "/issues/unowned/?overdue=%00",
])
def test_a_bad_sort_or_filter_value_is_answered_not_crashed(site, path):
    response = site.get(path)
    if "%00" in path:  # refused before any view, as everywhere
        assert response.status_code == 400
        return
    assert response.status_code == 200
    html = response.content.decode()
    if "sort=" in path and not path.endswith("sort="):
        assert "is not a way to sort this table" in html
    assert "<script>" not in html.split("<main")[-1]
