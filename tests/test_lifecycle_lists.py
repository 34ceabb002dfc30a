"""The issue history on lists and in reports: the "Open for" column (a rule's interval, or the oldest of any
rule; "at least" when the start is unknown) and its sort, the "Open longer than" and "New since" filters on a
rule's list, on all issues and without a list, bad values dropped with a message, the CSV's open_since column,
and a report's "new" and "fixed" sections since the last report (or the last 7 days)."""
import csv
import io
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from catalog_sync.models import Resource, ResourceRef
from hygiene.dashboard.filtersets import filterset_from_query
from hygiene.dashboard.models import SavedView, Snooze
from hygiene.lifecycle.models import IssueInterval
from hygiene.lifecycle.services import store_open_since
from hygiene.reports import services
from hygiene.reports.content import CHANGES_SHOWN, build_report
from hygiene.reports.models import Subscription

pytestmark = pytest.mark.django_db

OPEN_FOR = re.compile(r'<span title="(Open [^"]*)">([^<]*)</span>')
RESOURCE_LINK = re.compile(r'href="/resources/([^"]+)/"')


@pytest.fixture
def site(client, steward, synced_mirror):
    client.force_login(steward)
    return client


def open_ids(rule):
    return set(IssueInterval.objects.filter(rule=rule, closed_at__isnull=True).values_list("resource_id", flat=True))


def set_open(resource_id, rule, ago, seen_since=False):
    """Make `resource_id`'s open `rule` interval begin `ago` before now."""
    assert IssueInterval.objects.filter(resource_id=resource_id, rule=rule, closed_at__isnull=True).update(
        opened_at=timezone.now() - ago, seen_since=seen_since) == 1


@pytest.fixture
def ages(synced_mirror):
    """Known starts. The first sync opened every interval "seen since" then (minutes ago); by hand:
    a, b, c: unowned 40 days, 12 days, 3 hours ago; d: unowned open at least since 20 days ago;
    e: unowned 5 days ago and undocumented 30 days ago; f: undocumented 2 days ago (unowned left seen since)."""
    both = sorted(open_ids("unowned") & open_ids("undocumented"))
    only_unowned = sorted(open_ids("unowned") - open_ids("undocumented"))
    a, b, c, d = only_unowned[:4]
    e, f = both[:2]
    set_open(a, "unowned", timedelta(days=40))
    set_open(b, "unowned", timedelta(days=12))
    set_open(c, "unowned", timedelta(hours=3))
    set_open(d, "unowned", timedelta(days=20), seen_since=True)
    set_open(e, "unowned", timedelta(days=5))
    set_open(e, "undocumented", timedelta(days=30))
    set_open(f, "undocumented", timedelta(days=2))
    store_open_since()  # what every snapshot does after the history moves
    return dict(a=a, b=b, c=c, d=d, e=e, f=f)


def rows(html):
    """[(resource id, "Open for" words, its title)] of a list page, in order."""
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    found = []
    for row in body.split("<tr>")[1:]:
        cell = OPEN_FOR.search(row)
        found.append((RESOURCE_LINK.search(row).group(1), cell and cell.group(2), cell and cell.group(1)))
    return found


def listed(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200
    return set(response.context["filterset"].qs.values_list("pk", flat=True)), response


def day(ago):
    return timezone.localtime(timezone.now() - ago).date().isoformat()


# -- the "Open for" column ------------------------------------------------------------------------

def test_a_rule_list_shows_how_long_its_issue_is_open_longest_first_when_sorted(site, ages):
    html = site.get("/issues/unowned/", {"sort": "-open_for", "per_page": 25}).content.decode()
    assert '<a href="?sort=open_for' in html and ">Open for</a>" in html, "shown by default, sortable"
    first = rows(html)[:5]
    assert [pk for pk, _, _ in first] == [ages[k] for k in "adbec"]
    assert [words for _, words, _ in first] == ["40 days", "at least 20 days", "12 days", "5 days", "3 hours"]
    titles = dict((pk, title) for pk, _, title in first)
    assert titles[ages["a"]] == f"Open since {day(timedelta(days=40))}"
    assert titles[ages["d"]] == f"Open at least since {day(timedelta(days=20))}", "start unknown: at least"
    # The rest were open when the history began: "at least", never a made-up start.
    assert all(words.startswith(("at least", "seen just now")) for _, words, _ in rows(html)[5:])


def test_shortest_open_first_puts_the_oldest_last(site, ages):
    total = site.get("/issues/unowned/").context["table"].paginator.count
    last_page = -(-total // 25)
    html = site.get("/issues/unowned/", {"sort": "open_for", "per_page": 25, "page": last_page}).content.decode()
    assert [pk for pk, _, _ in rows(html)][-5:] == [ages[k] for k in "cebda"]
    first = rows(site.get("/issues/unowned/", {"sort": "open_for", "per_page": 25}).content.decode())
    assert all(words.startswith(("at least", "seen just now")) for _, words, _ in first), "the newest first"


@pytest.mark.parametrize("sort", ["open_for", "-open_for"])
def test_rows_not_yet_in_the_history_come_last_and_every_row_is_on_exactly_one_page(site, ages, sort):
    """Between a sync's write and its snapshot a resource can break a rule with no open interval yet: the list
    sorted by "Open for" shows it after every dated row, in both directions, and paging across that boundary
    neither repeats nor drops a row."""
    not_yet = sorted(open_ids("unowned") - {ages[k] for k in "abcde"})[:40]  # more than a page of them
    IssueInterval.objects.filter(resource_id__in=not_yet, rule="unowned").delete()
    total = site.get("/issues/unowned/").context["table"].paginator.count
    assert total > 40
    seen = []
    for page in range(1, -(-total // 25) + 1):
        seen += rows(site.get("/issues/unowned/", {"sort": sort, "per_page": 25, "page": page}).content.decode())
    ids = [pk for pk, _, _ in seen]
    assert len(ids) == len(set(ids)) == total, "every row once"
    assert sorted(ids[-40:]) == not_yet and all(words is None for _, words, _ in seen[-40:]), "undated rows last"
    assert ids[-40:] == sorted(not_yet, reverse=sort == "open_for"), "ties broken by id, the sort's way"
    dated = [pk for pk in ids if pk not in not_yet]
    expected = ([ages[k] for k in "adbec"] if sort == "-open_for" else [ages[k] for k in "cebda"])
    assert [pk for pk in dated if pk in expected] == expected


def test_all_issues_show_the_oldest_open_issue_and_a_rule_list_its_own(site, ages):
    e = ages["e"]
    everything = dict((pk, words) for pk, words, _ in rows(site.get(
        "/issues/", {"sort": "-open_for", "per_page": 25}).content.decode()))
    assert everything[e] == "30 days", "the oldest of its open issues (undocumented)"
    assert everything[ages["a"]] == "40 days"
    unowned = dict((pk, words) for pk, words, _ in rows(site.get(
        "/issues/unowned/", {"sort": "-open_for", "per_page": 25}).content.decode()))
    assert unowned[e] == "5 days"
    undocumented = rows(site.get("/issues/undocumented/", {"sort": "-open_for", "per_page": 25}).content.decode())
    assert undocumented[0][:2] == (e, "30 days")


def test_the_column_can_be_hidden_like_any_other(site, ages):
    response = site.get("/issues/unowned/", {"columns": ["owners", "health"]})
    assert ("open_for", "Open for") in response.context["all_columns"]
    assert "open_for" not in response.context["columns"] and not OPEN_FOR.search(response.content.decode())
    response = site.get("/issues/stale/", {"columns": ["open_for"]})
    assert "open_for" in response.context["columns"] and OPEN_FOR.search(response.content.decode())


# -- the filters ------------------------------------------------------------------------------------

def test_open_longer_than_on_a_rule_list_reads_that_rule_and_on_all_issues_any_rule(site, ages):
    on_rule, response = listed(site, "/issues/unowned/", open_days=10)
    assert on_rule == {ages[k] for k in "abd"}, "d is open at least 20 days: longer than 10 for sure"
    assert f'data-count="{len(on_rule)}"' in response.content.decode()
    assert "Open longer than (days): 10" in response.content.decode()
    on_all, _ = listed(site, "/issues/", open_days=10)
    assert on_all == {ages[k] for k in "abde"}, "e's undocumented issue is 30 days old"
    assert listed(site, "/issues/undocumented/", open_days=10)[0] == {ages["e"]}
    assert listed(site, "/issues/unowned/", open_days=0)[0] == open_ids("unowned"), "0 days: every open issue"


def test_new_since_leaves_out_issues_whose_start_is_unknown(site, ages):
    week_ago = day(timedelta(days=7))
    assert listed(site, "/issues/unowned/", new_since=week_ago)[0] == {ages["c"], ages["e"]}
    assert listed(site, "/issues/", new_since=week_ago)[0] == {ages[k] for k in "cef"}
    assert listed(site, "/issues/undocumented/", new_since=week_ago)[0] == {ages["f"]}
    assert listed(site, "/issues/unowned/", new_since=day(timedelta(days=13)))[0] == {ages[k] for k in "bce"}
    # Each filter on any rule: e has a new issue (unowned, 5 days) and an old one (undocumented, 30 days).
    both, _ = listed(site, "/issues/", new_since=day(timedelta(days=13)), open_days=10)
    assert both == {ages["b"], ages["e"]}
    assert listed(site, "/issues/unowned/", new_since=day(timedelta(days=13)), open_days=10)[0] == {ages["b"]}


def test_without_a_list_the_filters_mean_any_rule_in_force(ages):
    """Saved views, snoozes and rule scopes filter without a rule; "select all matching" with the list's."""
    assert set(filterset_from_query("open_days=10").qs.values_list("pk", flat=True)) == {ages[k] for k in "abde"}
    week_ago = f"new_since={day(timedelta(days=7))}"
    assert set(filterset_from_query(week_ago).qs.values_list("pk", flat=True)) == {ages[k] for k in "cef"}
    assert set(filterset_from_query(week_ago, rule="unowned").qs.values_list("pk", flat=True)) == {
        ages["c"], ages["e"]}


@pytest.mark.parametrize("params, message", [
    ({"open_days": "ten"}, "Ignored the filter “Open longer than (days)”: Enter a whole number."),
    ({"open_days": "2.5"}, "Ignored the filter “Open longer than (days)”: Enter a whole number."),
    ({"open_days": "-3"}, "Ignored the filter “Open longer than (days)”: Ensure this value is greater than or equal"),
    ({"open_days": "9" * 20}, "Ignored the filter “Open longer than (days)”: Ensure this value is less than or equal"),
    ({"new_since": "2026-02-30"}, "Ignored the filter “New since”: Enter a valid date."),
    ({"new_since": "yesterday"}, "Ignored the filter “New since”: Enter a valid date."),
])
@pytest.mark.parametrize("url", ["/issues/", "/issues/unowned/"])
def test_a_bad_history_filter_is_dropped_with_a_message(site, ages, url, params, message):
    everything = site.get(url).context["table"].paginator.count
    response = site.get(url, params)
    html = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 200
    assert message in html
    assert response.context["table"].paginator.count == everything, "the rest of the list is as without it"
    export = site.get(url + "export.csv", params)
    assert export.status_code == 200 and len(b"".join(export.streaming_content).splitlines()) == everything + 1


def test_a_snooze_cannot_follow_a_history_filter(site, ages):
    response = site.post(reverse("dashboard:snooze-create"), {
        "rule": "", "until": (timezone.localdate() + timedelta(days=30)).isoformat(), "reason": "old ones, later",
        "filter_query": "open_days=10", "next": "/issues/"}, follow=True)
    assert "A snooze cannot follow the filter “Open longer than (days)”" in response.content.decode()
    assert not Snooze.objects.exists()


# -- the CSV ----------------------------------------------------------------------------------------

def test_the_csv_says_since_when_each_issue_is_open_in_the_lists_order(site, ages):
    body = b"".join(site.get("/issues/unowned/export.csv", {"sort": "open_for"}).streaming_content).decode()
    header, *table = list(csv.reader(io.StringIO(body)))
    column = header.index("open_since")
    since = {row[0]: row[column] for row in table}
    assert since[ages["a"]] == day(timedelta(days=40)) and since[ages["c"]] == day(timedelta(hours=3))
    assert since[ages["d"]] == day(timedelta(days=20))
    assert [row[0] for row in table][-5:] == [ages[k] for k in "cebda"], "the list's order: shortest open first"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", value) for value in since.values())

    everything = b"".join(site.get("/issues/export.csv", {"open_days": 10}).streaming_content).decode()
    header, *table = list(csv.reader(io.StringIO(everything)))
    assert {row[0]: row[header.index("open_since")] for row in table} == {
        ages["a"]: day(timedelta(days=40)), ages["b"]: day(timedelta(days=12)), ages["d"]: day(timedelta(days=20)),
        ages["e"]: day(timedelta(days=30))}


# -- reports ----------------------------------------------------------------------------------------

def subscribe(user, **fields):
    values = dict(email="steward@example.com", scope=Subscription.WORKSPACE, frequency=Subscription.DAILY, hour=8,
                  time_zone="UTC", next_due_at=timezone.now() + timedelta(days=1))
    values.update(fields)
    return Subscription.objects.create(user=user, **values)


def opened(resource_ids, rule, ago):
    IssueInterval.objects.filter(resource_id__in=resource_ids, rule=rule, closed_at__isnull=True).update(
        opened_at=timezone.now() - ago, seen_since=False)


def fixed(resource_ids, rule, ago):
    IssueInterval.objects.filter(resource_id__in=resource_ids, rule=rule, closed_at__isnull=True).update(
        closed_at=timezone.now() - ago, close_reason=IssueInterval.FIXED)


def sent(subscription):
    """The text and HTML of the report, down to its new and fixed sections (the worst assets are cut off)."""
    services.send_now(subscription)
    message = mail.outbox[-1]
    return tuple(body.split("that need the most work")[0] for body in (message.body, message.alternatives[0][0]))


def resource_link(pk):
    return f"{settings.SITE_URL}/resources/{pk}/"


def test_a_report_lists_what_is_new_and_fixed_since_the_last_one(synced_mirror, steward):
    unowned = sorted(open_ids("unowned"))
    new, old, gone, earlier = unowned[:CHANGES_SHOWN + 2], unowned[30:31], unowned[31:34], unowned[34:35]
    opened(new, "unowned", timedelta(days=1))
    opened(old, "unowned", timedelta(days=4))  # before the last report
    Resource.objects.filter(pk=gone[0]).update(title_full="<b>Evil & co</b>")
    fixed(gone, "unowned", timedelta(hours=5))
    fixed(earlier, "unowned", timedelta(days=5))
    subscription = subscribe(steward, last_sent_at=timezone.now() - timedelta(days=3))

    changes = build_report(subscription)["changes"]
    assert (changes["new"]["total"], len(changes["new"]["items"]), changes["new"]["more"]) == (27, 25, 2)
    assert {item["link"] for item in changes["new"]["items"]} <= {resource_link(pk) for pk in new}
    assert (changes["fixed"]["total"], changes["fixed"]["more"]) == (3, 0)
    assert {item["link"] for item in changes["fixed"]["items"]} == {resource_link(pk) for pk in gone}

    text, html = sent(subscription)
    first = Resource.objects.get(pk=changes["new"]["items"][0]["link"].split("/")[-2])
    for body in (text, html):
        assert "New since your last report" in body and "Fixed since your last report" in body
        assert first.title_full in body and resource_link(first.pk) in body
        assert all(resource_link(pk) in body for pk in gone)
        assert resource_link(old[0]) not in body and resource_link(earlier[0]) not in body
        assert "and 2 more" in body
    assert "(27 still open):" in text and "Fixed since your last report (3):" in text
    new_list = f"{settings.SITE_URL}/issues/?new_since={day(timedelta(days=3))}"
    assert f"Every new one on the dashboard: {new_list}" in text and f'href="{new_list}"' in html
    assert "<b>Evil & co</b>: Unowned, fixed" in text, "plain text as it is"
    assert "&lt;b&gt;Evil &amp; co&lt;/b&gt;" in html and "<b>Evil" not in html, "a name is never markup"


def test_a_first_report_looks_back_seven_days(synced_mirror, steward):
    unowned = sorted(open_ids("unowned"))
    opened(unowned[:2], "unowned", timedelta(days=3))
    opened(unowned[2:3], "unowned", timedelta(days=10))
    fixed(unowned[3:4], "unowned", timedelta(days=6))
    fixed(unowned[4:5], "unowned", timedelta(days=8))
    subscription = subscribe(steward)

    changes = build_report(subscription)["changes"]
    assert changes["first"] and changes["new"]["total"] == 2 and changes["fixed"]["total"] == 1
    text, html = sent(subscription)
    for body in (text, html):
        assert "New in the last 7 days" in body and "Fixed in the last 7 days" in body
        assert "since your last report" not in body
        assert resource_link(unowned[0]) in body and resource_link(unowned[3]) in body
        assert resource_link(unowned[2]) not in body and resource_link(unowned[4]) not in body
        assert "more" not in body.split("Fixed in the last")[0].split("New in the last")[1]
    assert f"/issues/?new_since={day(timedelta(days=7))}" in text


def test_a_report_lists_only_its_scope_and_a_views_rule(synced_mirror, steward):
    team = ResourceRef.objects.filter(kind=ResourceRef.TEAM).values_list("ref_id", flat=True).first()
    in_team = set(ResourceRef.objects.filter(kind=ResourceRef.TEAM, ref_id=team).values_list("resource_id",
                                                                                                flat=True))
    unowned = sorted(open_ids("unowned"))
    inside = [pk for pk in unowned if pk in in_team][:2]
    outside = [pk for pk in unowned if pk not in in_team][:2]
    opened(inside + outside, "unowned", timedelta(days=1))
    changes = build_report(subscribe(steward, scope=Subscription.TEAM, scope_id=team))["changes"]
    assert {item["link"] for item in changes["new"]["items"]} == {resource_link(pk) for pk in inside}
    assert changes["new"]["link"] == f"{settings.SITE_URL}/issues/?team={team}&new_since={day(timedelta(days=7))}"

    # A saved view on one rule: that rule's new issues, and its fixes though the resource left the view's list.
    integration = Resource.objects.get(pk=inside[0]).integration_id
    view = SavedView.objects.create(name="Unowned here", rule="unowned", filter_query=f"integration={integration}",
                                    shared=True, owner=steward)
    fixed(inside[:1], "unowned", timedelta(hours=1))
    Resource.objects.filter(pk=inside[0]).update(is_owned=True)
    opened([pk for pk in sorted(open_ids("undocumented")) if pk not in unowned][:1], "undocumented",
           timedelta(days=1))
    report = build_report(subscribe(steward, scope=Subscription.VIEW, saved_view=view))
    assert [item["link"] for item in report["changes"]["fixed"]["items"]] == [resource_link(inside[0])]
    assert all(item["rule"] == "Unowned" for item in report["changes"]["new"]["items"])


# -- queries --------------------------------------------------------------------------------------------

def test_new_since_runs_the_same_queries_for_25_and_200_rows(site, ages):
    from tests.test_page_queries import assert_same_queries, fetch, list_total

    opened(sorted(open_ids("undocumented"))[:60], "undocumented", timedelta(days=1))
    url = f"/issues/?new_since={day(timedelta(days=7))}&sort=-open_for"
    _, small_html, small = fetch(site, f"{url}&per_page=25")
    _, large_html, large = fetch(site, f"{url}&per_page=200")
    assert list_total(small_html) == list_total(large_html) > 60
    assert len(rows(small_html)) == 25 and len(rows(large_html)) == list_total(large_html)
    assert_same_queries(small, large, url)
