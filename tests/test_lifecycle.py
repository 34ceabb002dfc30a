"""The life of every issue, driven through the emulator: a first sync opens what it sees ("seen since", no
invented dates); a fix closes it (fixed, by that sync), a reopen is a new interval, a snooze and its end close
and reopen, a deletion closes as removed, a bulk edit's confirmed write closes as fixed by its change set, and
switching a rule off closes its issues."""
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog_sync.models import Resource, SyncRun
from catalog_sync.sync import run_sync
from hygiene.bulk import services as bulk
from hygiene.bulk.models import ChangeSet
from hygiene.dashboard.models import Snapshot, Snooze
from hygiene.domain.snapshots import take_snapshot
from hygiene.lifecycle.models import IssueInterval
from hygiene.rulebook import services as rulebook
from hygiene.rulebook.models import Rule
from tests.conftest import fast_client

pytestmark = pytest.mark.django_db


def intervals(resource_id, rule):
    return list(IssueInterval.objects.filter(resource_id=resource_id, rule=rule).order_by("opened_at", "id"))


def assert_open_since_stored():
    """Every resource carries when its oldest open issue began (the all-issues list sorts on it), as the history
    says, worked out here from the intervals themselves."""
    expected = {}
    for interval in IssueInterval.objects.filter(closed_at__isnull=True).order_by("opened_at", "-seen_since", "id"):
        expected.setdefault(interval.resource_id, (interval.opened_at, interval.seen_since))
    stored = {pk: (since, seen) for pk, since, seen in Resource.objects.values_list(
        "pk", "issues_open_since", "issues_open_since_seen")}
    assert {pk: value for pk, value in stored.items() if value[0] is not None} == expected


def sync(emulator, kind=SyncRun.INCREMENTAL):
    run = run_sync(client=fast_client(emulator), kind=kind)
    assert run.status == SyncRun.SUCCEEDED, run.error
    return run


def test_a_first_sync_opens_every_issue_as_seen_since_then(emulator):
    run = sync(emulator, SyncRun.FULL)
    snapshot = Snapshot.objects.first()
    assert IssueInterval.objects.filter(closed_at__isnull=True).count() == sum(
        snapshot.totals[rule] for rule in ("stale", "unowned", "undocumented", "failing_dbt_tests",
                                           "warning_dbt_tests", "unused"))
    assert not IssueInterval.objects.filter(seen_since=False).exists(), "no start is invented before history began"
    assert set(IssueInterval.objects.values_list("opened_sync_id", flat=True)) == {run.pk}
    assert_open_since_stored()


def test_fix_reopen_snooze_and_delete_each_close_or_open_an_interval(synced_mirror, emulator, steward):
    workspace = emulator.workspace
    unowned = Resource.objects.filter(is_owned=False, removed_at__isnull=True, archived=False,
                                      entity_type="table").order_by("id")
    fixed, snoozed, deleted = unowned[0], unowned[1], unowned[2]
    person = workspace.users()[0]["id"]

    workspace.set_owners(fixed.pk, [person])
    fixing = sync(emulator)
    [first] = intervals(fixed.pk, "unowned")
    assert first.close_reason == IssueInterval.FIXED and first.closed_sync_id == fixing.pk and first.seen_since

    workspace.set_owners(fixed.pk, [])
    reopening = sync(emulator)
    first, again = intervals(fixed.pk, "unowned")
    assert again.closed_at is None and again.opened_sync_id == reopening.pk and not again.seen_since
    assert again.opened_at >= first.closed_at, "a reopen is a new interval, after the first closed"
    assert_open_since_stored()

    snooze = Snooze.objects.create(resource=snoozed, rule="unowned", reason="platform", created_by=steward,
                                   expires_at=timezone.now() + timedelta(days=7))
    take_snapshot(Snapshot.SNOOZE)
    [quiet] = intervals(snoozed.pk, "unowned")
    assert quiet.close_reason == IssueInterval.SNOOZED and quiet.closed_cause == IssueInterval.SNOOZE
    snooze.cancelled_at = timezone.now()
    snooze.save()
    take_snapshot(Snapshot.SNOOZE)
    assert intervals(snoozed.pk, "unowned")[-1].closed_at is None, "the snooze ended: open again"

    children = list(Resource.objects.filter(parent_id=deleted.pk).values_list("pk", flat=True))
    for resource_id in [deleted.pk, *children]:
        workspace.delete(resource_id)
    sync(emulator)
    gone = IssueInterval.objects.filter(resource_id=deleted.pk)
    assert gone.exists() and not gone.filter(closed_at__isnull=True).exists()
    assert set(gone.values_list("close_reason", flat=True)) == {IssueInterval.REMOVED}
    assert_open_since_stored()


def test_a_bulk_edit_closes_what_it_fixed_with_its_change_set(synced_mirror, emulator, steward):
    ids = list(Resource.objects.filter(is_owned=False, removed_at__isnull=True, archived=False)
               .order_by("id").values_list("pk", flat=True)[:3])
    change_set = bulk.build_change_set(steward, Resource.objects.filter(pk__in=ids),
                                       {"owners": {"mode": "add", "users": [emulator.workspace.users()[0]["id"]]}},
                                       "Owners for three")
    ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.PENDING)
    done = bulk.run_change_set(change_set.pk, client=fast_client(emulator))
    assert done.status == ChangeSet.COMPLETED
    closed = IssueInterval.objects.filter(resource_id__in=ids, rule="unowned")
    assert closed.count() == 3 and set(closed.values_list("close_reason", "closed_change_set_id")) == {
        (IssueInterval.FIXED, change_set.pk)}
    assert_open_since_stored()


def test_switching_a_rule_off_closes_its_issues_and_on_opens_them_again(synced_mirror, emulator):
    unused = Rule.objects.get(key="unused")
    count = IssueInterval.objects.filter(rule="unused", closed_at__isnull=True).count()
    assert count
    rulebook.save(rulebook.clean_definition({"weight": unused.weight, "enabled": False}, builtin=True), rule=unused)
    take_snapshot(Snapshot.RULES)  # what save() schedules on commit (tests run inside one transaction)
    assert not IssueInterval.objects.filter(rule="unused", closed_at__isnull=True).exists()
    assert IssueInterval.objects.filter(rule="unused", close_reason=IssueInterval.RULE_OFF).count() == count
    assert_open_since_stored()
    rulebook.save(rulebook.clean_definition({"weight": unused.weight, "enabled": True}, builtin=True), rule=unused)
    take_snapshot(Snapshot.RULES)
    assert IssueInterval.objects.filter(rule="unused", closed_at__isnull=True).count() == count
    assert_open_since_stored()


def test_the_overview_and_the_resource_page_show_what_the_history_says(synced_mirror, emulator, steward, client):
    workspace = emulator.workspace
    unowned = list(Resource.objects.filter(is_owned=False, removed_at__isnull=True, archived=False,
                                           entity_type="table").order_by("id")[:4])
    person = workspace.users()[0]["id"]
    # Two fixed, one of them reopened, and one newly unowned.
    for resource in unowned[:2]:
        workspace.set_owners(resource.pk, [person])
    sync(emulator)
    workspace.set_owners(unowned[0].pk, [])
    owned = Resource.objects.filter(is_owned=True, removed_at__isnull=True, archived=False).order_by("id").first()
    workspace.set_owners(owned.pk, [])
    sync(emulator)
    # Known durations for the median: the two fixes took 2 and 4 days.
    now = timezone.now()
    for days, resource in zip((2, 4), unowned[:2]):
        IssueInterval.objects.filter(resource_id=resource.pk, rule="unowned", close_reason="fixed").update(
            seen_since=False, opened_at=now - timedelta(days=days + 1), closed_at=now - timedelta(days=1))

    client.force_login(steward)
    response = client.get("/")
    row = next(r for r in response.context["flow"] if r["key"] == "unowned")
    # Opened this week: the reopen, the newly unowned one, and the two fixed ones (opened 3 and 5 days ago).
    assert (row["opened_7"], row["fixed_7"], row["opened_30"], row["fixed_30"]) == (4, 2, 4, 2)
    assert row["median_fix"] == "3 days"
    html = response.content.decode()
    assert "Opened and fixed" in html and "Open longest" in html and "at least since" in html

    page = client.get(f"/resources/{unowned[0].pk}/").content.decode()
    assert "Issue timeline" in page and page.count("sync #") >= 3, "opened, fixed and reopened, each by its sync"
    assert "Fixed" in page and "Open</span>" in page


def test_an_incremental_sync_looks_only_at_what_it_changed_and_a_full_sweep_at_everything(synced_mirror, emulator):
    workspace = emulator.workspace
    unowned = list(Resource.objects.filter(is_owned=False, removed_at__isnull=True, archived=False,
                                           entity_type="table").order_by("id")[:2])
    touched, untouched = unowned
    # The mirror says `untouched` is owned without any sync having written it (as a restore might).
    Resource.objects.filter(pk=untouched.pk).update(is_owned=True)
    workspace.set_owners(touched.pk, [workspace.users()[0]["id"]])
    sync(emulator)
    assert intervals(touched.pk, "unowned")[-1].close_reason == IssueInterval.FIXED
    assert intervals(untouched.pk, "unowned")[-1].closed_at is None, "not looked at: the sync did not write it"
    sync(emulator, SyncRun.FULL)  # a full sweep looks at every resource and every rule
    assert intervals(untouched.pk, "unowned")[-1].close_reason == IssueInterval.FIXED


def test_a_new_rule_finds_its_issues_already_there_and_does_not_count_them_as_opened(synced_mirror, emulator):
    rule = rulebook.save(rulebook.clean_definition({"name": "PII not verified", "clauses": [
        {"field": "pii", "op": "is_true"}, {"field": "verified", "op": "is_false"}]}))
    take_snapshot(Snapshot.RULES)
    found = IssueInterval.objects.filter(rule=rule.key)
    assert found.exists() and not found.filter(seen_since=False).exists(), "open at least since the rule, not new"
