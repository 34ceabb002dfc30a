"""The sync against the emulator over real HTTP: completeness, faults, changes, failures, locking."""
import json
import math
from datetime import timedelta

import time

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from catalog_sync import locks
from secoda_emulator.workspace import Workspace
from catalog_sync.models import (
    DbtTestStatus, Integration, Lease, Resource, ResourceRef, SecodaGroup, SecodaUser, SyncRun, Tag, Team,
)
from catalog_sync.sync import LOCK_NAME, SyncAlreadyRunning, run_sync
from tests.concurrency import race
from tests.conftest import SESSION_NOW, TOKEN, fast_client

pytestmark = pytest.mark.django_db


def all_records(workspace, limit=None):
    ids = sorted(workspace.ids())
    return [workspace.get(resource_id) for resource_id in ids[:limit]]


def upstream_ids(server):
    return set(server.workspace.ids())


def present_ids():
    return set(Resource.objects.present().values_list("id", flat=True))


def test_first_sync_mirrors_everything(emulator):
    run = run_sync(client=fast_client(emulator))
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert present_ids() == upstream_ids(emulator)
    assert run.fetched == run.created == len(upstream_ids(emulator))
    assert SecodaUser.objects.count() == len(emulator.workspace.users())
    assert SecodaGroup.objects.count() == len(emulator.workspace.groups())
    assert Team.objects.count() == len(emulator.workspace.teams())
    assert Tag.objects.count() == len(emulator.workspace.tags())
    assert Integration.objects.count() == len(emulator.workspace.integrations())
    dbt = next(i for i in emulator.workspace.integrations() if "dbt" in i["type"])
    expected = emulator.workspace.failing_tests(dbt["id"])
    assert set(DbtTestStatus.objects.filter(status="failing").values_list("resource_id", flat=True)) == set(
        expected["failing"])
    assert set(DbtTestStatus.objects.filter(status="warning").values_list("resource_id", flat=True)) == set(
        expected["warning"])


def test_none_strings_become_blank_values(emulator):
    run_sync(client=fast_client(emulator))
    assert not Resource.objects.filter(description="None").exists()
    assert not Resource.objects.filter(parent_id="None").exists()
    for record in all_records(emulator.workspace, 200):
        row = Resource.objects.get(pk=record["id"])
        owners = [] if record["owners"] in (None, "None") else record["owners"]
        assert row.owners == owners
        assert row.is_owned == bool(owners or [g for g in (record["owners_groups"] or []) if g != "None"])


def test_owners_and_tags_are_queryable_refs(emulator):
    run_sync(client=fast_client(emulator))
    resource = Resource.objects.exclude(owners=[]).first()
    owner = resource.owners[0]
    via_refs = set(ResourceRef.objects.filter(kind="owner", ref_id=owner).values_list("resource_id", flat=True))
    via_lists = {r.id for r in Resource.objects.all() if owner in r.owners}
    assert via_refs == via_lists and resource.id in via_refs


def test_listing_above_the_cap_comes_back_complete(capped_server):
    workspace = Workspace.generate(resources=2_600, seed=11, now=SESSION_NOW)
    per_integration = {}
    for resource_id in workspace.ids():
        integration = workspace.get(resource_id)["integration"]
        per_integration[integration] = per_integration.get(integration, 0) + 1
    assert max(per_integration.values()) > 1_000, "the test needs an integration over the cap"
    server = capped_server(workspace, cap=1_000)
    try:
        client = fast_client(server)
        run = run_sync(client=client)
        assert run.status == SyncRun.SUCCEEDED, run.error
        assert present_ids() == set(workspace.ids())
        assert run.removals_checked
        listing_requests = server.stats()["requests_by_path"].get("/api/v1/resource/catalog/", 0) + \
            server.stats()["requests_by_path"].get("/api/v1/resource/catalog", 0)
        assert listing_requests <= math.ceil(len(workspace.ids()) / 50) + 30  # pages, plus probes for the splits
    finally:
        server.stop()


def test_timed_out_counts_are_treated_as_capped(capped_server):
    workspace = Workspace.generate(resources=2_400, seed=5, now=SESSION_NOW)
    server = capped_server(workspace, cap=1_000)
    server.faults.count_timeout = True
    try:
        run = run_sync(client=fast_client(server))
        assert run.status == SyncRun.SUCCEEDED, run.error
        assert present_ids() == set(workspace.ids())
    finally:
        server.stop()


def test_sync_survives_errors_throttling_slowness_and_dropped_connections(emulator):
    emulator.faults.error_rate = 0.15
    emulator.faults.rate_429 = 0.1
    emulator.faults.drop_connection_rate = 0.05
    emulator.faults.slow_rate = 0.05
    emulator.faults.slow_ms = 30
    emulator.faults.seed = 42
    run = run_sync(client=fast_client(emulator, max_retries=12))
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert present_ids() == upstream_ids(emulator)
    assert emulator.stats()["faults_injected"] >= 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("statement, nth", [("COPY resource_stage", 1), ("COPY catalog_sync_resourceref", 1),
                                            ("COPY resource_stage", 3)],
                         ids=["rows", "references", "rows, a later slice's"])
def test_a_connection_the_database_drops_during_a_copy_is_tried_again_not_failed(capped_server, settings,
                                                                                 monkeypatch, statement, nth):
    """The database server ends the sync's connection (a restart, a failover, pg_terminate_backend) just as a
    slice writes its rows by COPY, on psycopg's own cursor: the slice is tried again on a new connection and the
    sync ends complete, as after any other dropped connection, not failed as if the code were wrong. The slices
    of a sweep run one by one share their writer: a slice already done has written all its rows, so none is lost
    with the batch that failed."""
    import psycopg
    from django.conf import settings as django_settings
    from django.db import connection

    from tests.migrated_database import server_of

    server = capped_server(Workspace.generate(resources=600, seed=3, now=SESSION_NOW), cap=250)
    settings.SYNC_BATCH_SIZE = 120  # batches that straddle slices
    real_copy = psycopg.Cursor.copy
    seen, dropped = [], []

    def copy(cursor, sql, *args, **kwargs):
        if str(sql).startswith(statement):
            seen.append(sql)
            if len(seen) == nth:
                database = f"{server_of(django_settings.DATABASE_URL)}/{connection.settings_dict['NAME']}"
                with psycopg.connect(database, autocommit=True) as other:
                    other.execute("SELECT pg_terminate_backend(%s)", [cursor.connection.info.backend_pid])
                dropped.append(sql)
        return real_copy(cursor, sql, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", copy)
    run = run_sync(client=fast_client(server))
    assert dropped, "the connection was ended under a COPY"
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert run.slices.count() > 1
    # The slice it hit ran again (when it was a slice's write; between slices, the sweep picked up where it was).
    assert run.slices.filter(attempts__gt=1).count() <= 1
    assert present_ids() == upstream_ids(server), "every resource, the ended slices' last rows too"


def test_a_sweep_an_outage_stops_keeps_the_rows_its_ended_slices_listed(capped_server, settings, monkeypatch):
    """Slices run one by one share a writer, and an outage stops the sweep after some of them ended: each wrote
    its rows before it ended, so the resumed sweep, which does not list those slices again, ends with every
    resource."""
    from catalog_sync import sync

    server = capped_server(Workspace.generate(resources=600, seed=3, now=SESSION_NOW), cap=250)
    settings.SYNC_BATCH_SIZE = 120  # batches that straddle slices
    real_outage, ended = sync.outage, []

    def outage(run, piece):  # the fourth slice to end finds Secoda gone, as if several had failed in a row
        ended.append(piece.pk)
        if len(ended) == 4:
            return sync.SecodaUnreachable("Secoda could not be reached. The sweep stopped early.")
        return real_outage(run, piece)

    monkeypatch.setattr(sync, "outage", outage)
    stopped = run_sync(client=fast_client(server))
    assert stopped.status == SyncRun.FAILED and stopped.resume_when_reachable, stopped.error
    monkeypatch.setattr(sync, "outage", real_outage)
    sync.retry_failed_slices(stopped)
    resumed = sync.resume_in_process(stopped, client=fast_client(server))
    assert resumed.status == SyncRun.SUCCEEDED, resumed.error
    assert present_ids() == upstream_ids(server)


def test_a_database_error_says_whether_the_connection_went_or_the_database_refused():
    """A slice's error tells a lost connection (tried again on a new one) from work the database refused on a
    live one, such as a full disk, whether psycopg's error reached us as it was or wrapped by Django."""
    import psycopg
    from django.db import OperationalError

    from catalog_sync.slices import describe

    def wrapped(error):
        try:
            raise OperationalError(str(error)) from error
        except OperationalError as exc:
            return exc

    ended = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    full = psycopg.errors.DiskFull("could not extend file: No space left on device")
    for error in (ended, wrapped(ended), psycopg.OperationalError("the connection is closed")):
        assert describe(error).startswith("Lost the connection to the database ("), error
    for error in (full, wrapped(full)):
        assert describe(error) == "The database could not do it (could not extend file: No space left on device)."


def test_a_step_tried_again_after_a_database_error_is_logged_as_what_happened(monkeypatch, caplog):
    """A step run again after a database error says in the log whether the connection went or the database
    refused the work on a live one (a full disk), as a failed slice's message does."""
    from types import SimpleNamespace

    import psycopg
    from django.db import OperationalError

    from catalog_sync import locks

    monkeypatch.setattr(locks.time, "sleep", lambda seconds: None)
    # Outside the test's transaction, as a task runs (inside one, a step is never run again).
    monkeypatch.setattr(locks, "connection", SimpleNamespace(in_atomic_block=False, close=lambda: None))
    errors = [psycopg.errors.DiskFull("could not extend file"), psycopg.errors.AdminShutdown("terminating")]

    def step():
        if errors:
            error = errors.pop(0)
            raise OperationalError(str(error)) from error
        return "done"

    with caplog.at_level("WARNING", logger="catalog_sync.locks"):
        assert locks.with_reconnect(step) == "done"
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        "The database could not do it", "Lost the database connection"]


def test_a_retry_that_falls_due_while_the_sweep_looks_is_run_not_taken_for_a_stall(emulator, monkeypatch):
    """The sweep asks which slices are due, then how long the next retry waits: a retry that falls due in
    between (its wait is milliseconds when Secoda's backoff is short) is run, not reported as a stalled sweep."""
    from catalog_sync import slices
    from catalog_sync.models import SyncSlice

    real_runnable, real_waiting, real_execute = slices.runnable_ids, slices.waiting_retry, slices.SliceRunner.execute
    asked = []

    def runnable_ids(run):  # looked at while the retry was not due yet
        due = real_runnable(run)
        return due if asked else [pk for pk in due if not SyncSlice.objects.filter(pk=pk, attempts__gt=0).exists()]

    def waiting_retry(run):  # asked a moment later, once it had fallen due
        asked.append(run.slices.filter(status=SyncSlice.PENDING, attempts__gt=0).update(
            not_before=timezone.now() - timedelta(milliseconds=1)))
        return real_waiting(run)

    def execute(runner):
        if runner.piece.attempts == 1 and not asked:  # the first slice's connection drops once
            raise ConnectionError("the connection dropped")
        return real_execute(runner)

    monkeypatch.setattr(slices, "runnable_ids", runnable_ids)
    monkeypatch.setattr(slices, "waiting_retry", waiting_retry)
    monkeypatch.setattr(slices.SliceRunner, "execute", execute)
    run = run_sync(client=fast_client(emulator))
    assert asked[0] == 1, "a slice waited to be retried"
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert present_ids() == upstream_ids(emulator)


def test_second_sync_follows_deletions_new_owners_descriptions_and_creations(synced_mirror, emulator):
    client = fast_client(emulator)
    workspace = emulator.workspace
    unowned = list(Resource.objects.filter(is_owned=False).values_list("id", flat=True)[:3])
    undocumented = list(Resource.objects.filter(is_documented=False).exclude(id__in=unowned)
                        .values_list("id", flat=True)[:3])
    leaves = list(Resource.objects.filter(entity_type="column").values_list("id", flat=True)[:4])
    user_id = workspace.users()[0]["id"]
    for resource_id in unowned:
        workspace.set_owners(resource_id, [user_id])
    for resource_id in undocumented:
        workspace.set_description(resource_id, "Revenue per order, in USD.")
    for resource_id in leaves:
        workspace.delete(resource_id)
    table = Resource.objects.filter(entity_type="table").first()
    new_ids = workspace.add_resources(2, integration_id=table.integration_id, parent_id=table.id)

    run = run_sync(client=client)
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert run.removed == 4 and run.created == 2
    assert run.updated >= 6
    assert set(Resource.objects.filter(removed_at__isnull=False).values_list("id", flat=True)) == set(leaves)
    assert all(Resource.objects.get(pk=r).is_owned for r in unowned)
    assert set(ResourceRef.objects.filter(kind="owner", ref_id=user_id, resource_id__in=unowned)
               .values_list("resource_id", flat=True)) == set(unowned)
    assert all(Resource.objects.get(pk=r).is_documented for r in undocumented)
    assert set(new_ids) <= present_ids()
    assert present_ids() == upstream_ids(emulator)


class FailAfter(requests.Session):
    """A session whose connection dies for good after `limit` requests."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.sent = 0

    def request(self, *args, **kwargs):
        self.sent += 1
        if self.sent > self.limit:
            raise requests.ConnectionError("network unreachable")
        return super().request(*args, **kwargs)


def test_a_sync_that_fails_midway_loses_nothing_and_can_be_retried(synced_mirror, emulator):
    before = present_ids()
    doomed = list(Resource.objects.filter(entity_type="column").values_list("id", flat=True)[:5])
    for resource_id in doomed:
        emulator.workspace.delete(resource_id)

    client = fast_client(emulator, max_retries=1, session=FailAfter(limit=10))
    failed = run_sync(client=client)
    assert failed.status == SyncRun.FAILED
    assert "could not reach Secoda" in failed.error
    assert TOKEN not in failed.error
    assert present_ids() == before, "a failed sync must not remove anything"
    assert not Resource.objects.filter(removed_at__isnull=False).exists()
    assert SecodaUser.objects.present().count() == len(emulator.workspace.users())

    retried = run_sync(client=fast_client(emulator))
    assert retried.status == SyncRun.SUCCEEDED
    assert present_ids() == before - set(doomed)


def test_a_permanent_error_fails_the_sync_with_a_plain_message(emulator):
    client = fast_client(emulator)
    client._token = "wrong-token"
    run = run_sync(client=client)
    assert run.status == SyncRun.FAILED
    assert "check SECODA_API_TOKEN" in run.error
    assert not Resource.objects.exists()


def test_a_second_sync_is_refused_while_one_holds_the_lock(emulator):
    assert locks.acquire(LOCK_NAME, "other-worker", 600)
    with pytest.raises(SyncAlreadyRunning) as caught:
        run_sync(client=fast_client(emulator))
    assert "Another sync is running" in str(caught.value)
    assert SyncRun.objects.get().status == SyncRun.REFUSED
    assert not Resource.objects.exists()


def test_a_crashed_workers_lock_expires(emulator):
    Lease.objects.create(name=LOCK_NAME, holder="dead-worker", acquired_at=timezone.now() - timedelta(hours=2),
                         lease_until=timezone.now() - timedelta(minutes=1))
    run = run_sync(client=fast_client(emulator))
    assert run.status == SyncRun.SUCCEEDED
    assert Lease.objects.get(name=LOCK_NAME).holder == ""


@pytest.mark.django_db(transaction=True)
def test_concurrent_syncs_one_runs_one_is_refused(emulator):
    emulator.faults.latency_ms = 5

    def worker():
        try:
            return run_sync(client=fast_client(emulator)).status
        except SyncAlreadyRunning:
            return "refused"

    outcomes = race(worker, worker)
    assert sorted(outcomes) == ["refused", SyncRun.SUCCEEDED]
    assert present_ids() == upstream_ids(emulator)


@pytest.mark.django_db(transaction=True)  # the command lists slices in threads, each with its own connection
def test_sync_catalog_command_prints_progress_and_exits_non_zero_on_failure(emulator_settings, emulator, capsys):
    call_command("sync_catalog")
    out = capsys.readouterr().out
    assert "finished" in out and "resources listed" in out
    emulator_settings.SECODA_API_TOKEN = "wrong"
    emulator_settings.SECODA_MAX_RETRIES = 0
    from django.core.management.base import CommandError
    with pytest.raises(CommandError) as caught:
        call_command("sync_catalog")
    assert "failed" in str(caught.value)
    assert "wrong" not in str(caught.value).replace("wrong-token", "")


def test_hygiene_report_matches_the_workspace(emulator_settings, emulator, capsys):
    call_command("sync_catalog", "--concurrency", "1")
    capsys.readouterr()
    call_command("hygiene_report", "--format", "json")
    report = json.loads(capsys.readouterr().out)

    records = [r for r in all_records(emulator.workspace) if r["archived"] not in (True, "True")]
    dbt = next(i for i in emulator.workspace.integrations() if "dbt" in i["type"])
    failing = set(emulator.workspace.failing_tests(dbt["id"])["failing"])
    warning = set(emulator.workspace.failing_tests(dbt["id"])["warning"]) - failing

    def blank(value):
        return value in (None, "None") or not str(value).strip()

    def empty(value):
        return value in (None, "None") or not [v for v in value if v not in (None, "None")]

    ids = {r["id"] for r in records}
    assert report["resources"] == len(records)
    assert report["integrations"] == len(emulator.workspace.integrations())
    assert report["stale"] == sum(1 for r in records if r["stale"] in (True, "True"))
    assert report["unowned"] == sum(1 for r in records if empty(r["owners"]) and empty(r["owners_groups"]))
    assert report["undocumented"] == sum(1 for r in records if blank(r["description"]) and blank(r["definition"]))
    assert report["failing_dbt_tests"] == len(failing & ids)
    assert report["warning_dbt_tests"] == len(warning & ids)
    assert sum(t["resources"] for t in report["by_entity_type"].values()) == len(records)
    assert set(report["by_entity_type"]["table"]) == {"resources", "stale", "unowned", "undocumented",
                                                       "failing_dbt_tests"}

    call_command("hygiene_report", "--format", "text")
    text = capsys.readouterr().out
    assert f"{len(records):,} resources" in text and "Undocumented" in text


def test_a_server_that_refuses_our_sort_and_the_entity_type_field_still_lists_everything(capped_server):
    workspace = Workspace.generate(resources=2_400, seed=9, now=SESSION_NOW)
    original = workspace.list_resources

    def quirky(filter_obj=None, sort_obj=None, teams=None):
        if sort_obj is not None:
            raise ValueError("Sorting by created_at is not supported.")
        if "entity_type" in json.dumps(filter_obj or {}):
            raise ValueError("Unknown filter field entity_type.")
        return original(filter_obj, sort_obj, teams=teams)

    workspace.list_resources = quirky
    server = capped_server(workspace, cap=1_000)
    try:
        run = run_sync(client=fast_client(server))
        assert run.status == SyncRun.SUCCEEDED, run.error
        assert present_ids() == set(workspace.ids())
        assert "default order" in run.warnings
    finally:
        server.stop()


def test_unreadable_dbt_results_keep_the_previous_ones(synced_mirror, emulator):
    failing_before = DbtTestStatus.objects.filter(status="failing").count()
    assert failing_before > 0
    emulator.workspace.failing_tests = lambda integration_id: None  # the server now answers 404
    run = run_sync(client=fast_client(emulator))
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert "could not be read" in run.warnings
    assert DbtTestStatus.objects.filter(status="failing").count() == failing_before


def test_a_resource_skipped_by_a_shifting_listing_is_not_marked_removed(synced_mirror, emulator):
    hidden = sorted(emulator.workspace.ids())[:3]
    original = emulator.workspace.list_resources

    def skipping(filter_obj=None, sort_obj=None, teams=None):
        return tuple(i for i in original(filter_obj, sort_obj, teams=teams) if i not in hidden)

    emulator.workspace.list_resources = skipping  # listed nowhere, but GET still finds them
    run = run_sync(client=fast_client(emulator))
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert run.removed == 0
    assert set(hidden) <= present_ids()
    assert "still exist in Secoda" in run.warnings


def sweep_over_the_cap(capped_server, page_size=1000, **answers):
    """A full sync of 2,600 resources, one integration over a cap of 1,000, from an emulator answering
    the way `answers` say. Asserts it is exact; returns the run and the server."""
    workspace = Workspace.generate(resources=2_600, seed=11, now=SESSION_NOW)
    server = capped_server(workspace, cap=1_000)
    server.faults.update(answers)
    run = run_sync(client=fast_client(server, page_size=page_size))
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert present_ids() == set(workspace.ids()), "every resource, columns of the capped integration too"
    return run, server


@pytest.mark.parametrize("operators", ["not", "is_set", "not,is_set"])
def test_a_refused_filter_operator_is_not_taken_for_a_refused_sort(capped_server, operators):
    run, _ = sweep_over_the_cap(capped_server, refused_operators=operators)
    assert not run.options.get("sort_refused"), "only the operator was refused"
    assert "refused sorting" not in run.warnings


def test_a_refused_sort_is_recorded_once_and_later_listings_go_unsorted(capped_server):
    run, server = sweep_over_the_cap(capped_server, refuse_sort=True)
    assert run.options.get("sort_refused") and "refused sorting" in run.warnings
    assert server.stats()["responses_by_status"].get("400", 0) <= 3, "learned once, not per slice"


@pytest.mark.parametrize("children_count", ["on_request", "never"])
def test_a_capped_integration_is_listed_exactly_whether_or_not_secoda_counts_children(capped_server,
                                                                                        children_count):
    run, _ = sweep_over_the_cap(capped_server, page_size=50, children_count=children_count)
    assert run.fetched == 2_600 and run.removals_checked


@pytest.mark.slow  # end to end (five syncs, the command, the overview, the report): not in the quick loop
def test_a_listing_that_cannot_be_split_ends_incomplete_names_what_is_missing_and_removes_nothing(
        capped_server, client, steward, settings):
    from django.urls import reverse

    from hygiene.reports.content import build_report
    from hygiene.reports.emails import report_email
    from tests.test_reports import subscribe

    workspace = Workspace.generate(resources=600, seed=3, now=SESSION_NOW)
    table = next(i for i in workspace.ids() if workspace.get(i)["entity_type"] == "table")
    workspace.clock = lambda: time.time() - 7200  # added two hours ago
    workspace.add_resources(150, parent_id=table)  # one table with more columns than a listing returns
    del workspace.clock
    columns = len(workspace.ids(lambda r: r["parent"] == table))
    server = capped_server(workspace, cap=100)
    first = run_sync(client=fast_client(server, page_size=50))
    doomed = next(i for i in workspace.ids() if workspace.get(i)["entity_type"] == "chart")
    workspace.delete(doomed)
    run = run_sync(client=fast_client(server, page_size=50))
    assert first.status == run.status == SyncRun.INCOMPLETE
    assert "Not every resource could be listed" in run.error and "Over 100 resources" in run.error
    assert not run.removals_checked and run.high_water_mark is not None, "what it listed is mirrored"
    assert Resource.objects.get(pk=doomed).removed_at is None, "nothing is marked removed from a partial listing"
    [missing] = run.options["missing"]
    assert (missing["integration"], missing["entity_type"], missing["count"]) == ("Snowflake (warehouse)", "column",
                                                                                 columns)
    assert missing["label"].endswith(Resource.objects.get(pk=table).title_full), "the table is named"

    settings.SECODA_API_URL, settings.SECODA_API_TOKEN, settings.SECODA_PAGE_SIZE = server.base_url, TOKEN, 50
    settings.SECODA_BACKOFF_SECONDS = settings.SECODA_MAX_BACKOFF_SECONDS = 0.01
    with pytest.raises(Exception, match="is incomplete"):  # sync_catalog exits non-zero
        call_command("sync_catalog", "--full", "--concurrency", "1")
    client.force_login(steward)
    page = client.get(reverse("dashboard:home")).content.decode()
    assert 'data-sync="incomplete"' in page and "the counts below are partial" in page
    assert f"{columns} resources missing" in page and "Snowflake (warehouse)" in page
    assert page.count('class="partial-mark"') == 6 + 1, "every rule's count is marked partial, and the last sync"
    email = report_email(subscribe(steward), build_report(subscribe(steward)))
    assert "THESE COUNTS ARE PARTIAL" in email.body and f"Snowflake (warehouse) / column: {columns} resources" \
        in email.body and "(partial)" in email.body
    assert "These counts are partial." in email.alternatives[0][0]

    # The next (incremental) sync tries only what is missing: still over the cap, still incomplete.
    server.reset_stats()
    again = run_sync(client=fast_client(server, page_size=50), kind=SyncRun.INCREMENTAL)
    assert again.kind == SyncRun.INCREMENTAL and again.status == SyncRun.INCOMPLETE
    assert [p["label"] for p in again.options["missing"]] == [missing["label"]]
    assert again.slices.count() == 1, "only the missing piece was tried"
    assert Resource.objects.get(pk=doomed).removed_at is not None, "the deletion is found by counts"
    # Once Secoda lists more, the next one lists that piece and the mirror is whole.
    server.faults.update({"listing_cap": 1_000})
    settings.SECODA_LISTING_CAP = 1_000
    whole = run_sync(client=fast_client(server, page_size=50), kind=SyncRun.INCREMENTAL)
    assert whole.status == SyncRun.SUCCEEDED and whole.kind == SyncRun.INCREMENTAL, whole.error
    assert present_ids() == set(workspace.ids())
    page = client.get(reverse("dashboard:home")).content.decode()
    assert 'data-sync="incomplete"' not in page and "partial-mark" not in page


@pytest.mark.slow  # end to end at full shape (3,000 resources, an integration over the cap): not in the quick loop
def test_an_events_integration_over_the_cap_is_mirrored_whole_and_counted_by_the_rules(capped_server):
    """Event categories > events > properties, as the Events reference pages describe them: listed whole even
    when the integration holds more than one listing returns, and every rule counts them."""
    from hygiene.domain.snapshots import take_snapshot

    workspace = Workspace.generate(resources=3_000, seed=8, now=SESSION_NOW)
    segment = workspace.integration_id("segment")
    events = workspace.ids(lambda r: r["integration"] == segment)
    assert len(events) > 120
    server = capped_server(workspace, cap=120)
    run = run_sync(client=fast_client(server, page_size=50))
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert present_ids() == set(workspace.ids())
    mirrored = Resource.objects.filter(integration_id=segment)
    assert set(mirrored.values_list("entity_type", flat=True)) == {"event_category", "event", "event_property"}
    event = mirrored.filter(entity_type="event_property").first()
    assert Resource.objects.get(pk=event.parent_id).entity_type == "event"
    assert run.slices.filter(integration_id=segment, entity_type="event_property").count() > 1, "split by events"
    from hygiene.dashboard.models import Snapshot
    from hygiene.rulebook.registry import rule_filters
    from hygiene.rules import in_scope

    counts = take_snapshot(Snapshot.SYNC).by_integration[segment]
    assert counts["resources"] == len(events)
    for rule, q in rule_filters().items():
        expected = in_scope().filter(integration_id=segment).filter(q).count()
        assert counts.get(rule, 0) == expected, rule
        if rule in ("unowned", "undocumented", "unused", "stale"):
            assert expected > 0, f"some events are {rule}"


def test_packs_of_parents_fill_whole_pages():
    """1,815 columns of 165 tables fit one URL but take two pages; split at the page they take one each."""
    from catalog_sync.filters import pack_parents

    tables = [(f"{n:08d}-0000-4000-8000-000000000000", 8 + n % 7) for n in range(2_000)]
    columns = sum(count for _, count in tables)
    packs = pack_parents(tables, "https://app.secoda.co/api/v1", None, page_length=1_000)
    pages = [math.ceil(sum(count for _, count in pack) / 1_000) for pack in packs]
    assert sum(pages) == math.ceil(columns / 1_000) + 1, "one partial page: the last pack's"
    assert [pid for pack in packs for pid, _ in pack] == [pid for pid, _ in tables], "every table, once, in order"
    unpacked = pack_parents(tables, "https://app.secoda.co/api/v1", None)
    assert sum(math.ceil(sum(c for _, c in pack) / 1_000) for pack in unpacked) > sum(pages) * 1.1



def test_each_step_after_a_sync_keeps_its_time(emulator, admin_client):
    from hygiene.dashboard.models import Snapshot

    run = run_sync(client=fast_client(emulator))
    assert set(run.options["finish_seconds"]) >= {"dbt_results", "removals", "planner_statistics"}
    snapshot = Snapshot.objects.get(sync_run=run)
    assert set(snapshot.durations) == {"health_scores", "issue_history", "suggestions", "counts"}
    assert all(seconds >= 0 for seconds in snapshot.durations.values())
    page = admin_client.get("/admin/dashboard/snapshot/").content.decode()
    assert "Took" in page and " s (" in page, "the admin lists how long each snapshot took"


@pytest.mark.parametrize("page_size,operators", [(1000, ""), (50, ""), (50, "not")])
def test_a_capped_integration_is_split_only_by_the_entity_types_it_holds(capped_server, page_size, operators):
    """The types on the capped listing's first page (or in the mirror) are listed one by one, the rest in one
    "other types" listing, split again when it is capped too; where Secoda refuses `not`, every known type is
    listed one by one instead. Exact every way."""
    from catalog_sync.filters import TYPE_ORDER

    run, _ = sweep_over_the_cap(capped_server, page_size=page_size, refused_operators=operators)
    typed = run.slices.filter(split="parents")
    capped = set(typed.values_list("integration_id", flat=True))
    held = set(Resource.objects.filter(integration_id__in=capped).values_list("integration_id", "entity_type"))
    listed = set(typed.values_list("integration_id", "entity_type"))
    if operators:
        assert listed >= held and len(listed) == len(capped) * len(TYPE_ORDER)
    else:
        assert listed <= held, "no listing of a type the integration does not hold"
        assert run.slices.filter(remainder=True, split="types", listed__gt=0).exists() or listed == held


def test_batches_into_a_never_analyzed_mirror_are_looked_up_by_index(db):
    """A first sweep writes its rows before anything has analyzed the tables (autovacuum off or behind). To
    a planner without statistics a batch of ids looks like most of the table, and each batch read every row
    stored so far: at 1,000,000 the reference deletes alone read 2 billion rows. The writer's lookups,
    updates of unchanged rows and reference deletes go through the keys' indexes, whatever the statistics."""
    from django.db import connection

    from catalog_sync.mirror import ResourceWriter

    workspace = Workspace.generate(resources=600, seed=3, now=SESSION_NOW)
    records = [workspace.view.to_dict(record) for record in workspace._records.values()]
    tables = ("catalog_sync_resource", "catalog_sync_resourceref")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = ANY(%s::regclass[])", [list(tables)])

        def scans():
            cursor.execute("SELECT relname, seq_scan, idx_scan FROM pg_stat_xact_user_tables "
                           "WHERE relname = ANY(%s)", [list(tables)])
            return {name: (seq, idx) for name, seq, idx in cursor.fetchall()}

        before = scans()
        writer = ResourceWriter(1, batch_size=200)
        writer.add(records[:400])  # new rows
        writer.flush()
        changed = [{**record, "description": "Edited"} for record in records[:100]]
        writer.add(changed + records[100:400] + records[400:])  # changed, unchanged and new rows
        writer.flush()
        after = scans()
    assert (writer.created, writer.updated, writer.unchanged) == (600, 100, 300)
    for table in tables:
        seq = after.get(table, (0, 0))[0] - before.get(table, (0, 0))[0]
        idx = after.get(table, (0, 0))[1] - before.get(table, (0, 0))[1]
        assert seq == 0 and idx > 0, f"{table}: {seq} sequential scans, {idx} index scans"


def test_a_sweep_that_finds_resources_unchanged_writes_none_of_their_indexes(db):
    """A nightly sweep mostly finds resources as they were and only marks them seen. The resource table's
    pages keep room for that new version of the row (migration 0015), so the update is heap-only: none of
    the table's indexes is written (with full pages each such update went into all 18)."""
    from django.db import connection

    from catalog_sync.mirror import ResourceWriter

    workspace = Workspace.generate(resources=600, seed=3, now=SESSION_NOW)
    records = [workspace.view.to_dict(record) for record in workspace._records.values()]
    first = ResourceWriter(1, batch_size=200)
    first.add(records)
    first.flush()
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                       "WHERE relname = 'catalog_sync_resource'")
        before = cursor.fetchone() or (0, 0)
        again = ResourceWriter(2, batch_size=200)
        again.add(records)
        again.flush()
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                       "WHERE relname = 'catalog_sync_resource'")
        after = cursor.fetchone()
    assert again.unchanged == len(records) and again.updated == again.created == 0
    updated, heap_only = after[0] - before[0], after[1] - before[1]
    assert updated == len(records) and heap_only == updated, f"{heap_only} of {updated} updates heap-only"
