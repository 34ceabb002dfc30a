"""Incremental syncs against the emulator over real HTTP: they follow edits, creations and moves with a
handful of requests, never mark anything removed, and fall back to a full sweep when Secoda cannot help."""
import json
from collections import Counter

import pytest
from django.core.management import call_command

from catalog_sync import sync as sync_module
from secoda_emulator.server import EmulatorServer
from secoda_emulator.workspace import Workspace
from catalog_sync.models import Resource, SyncRun
from catalog_sync.sync import run_sync
from tests.conftest import SESSION_NOW, TOKEN, fast_client, first_sync

pytestmark = pytest.mark.django_db


def listing_requests(server):
    by_path = server.stats()["requests_by_path"]
    return sum(n for path, n in by_path.items() if "resource/catalog" in path)


def full_then_reset(server, synced=None, key=None):
    """Run a first full sync of `server`, or take `synced` (the run of the synced mirror, already there, for
    `emulator`), then reset the server's request counts. With `key` (what generated the workspace, and the
    listing cap), the first sync is `first_sync`'s: real the first time a test process asks, copied in after
    (for tests whose subject is the incremental sync that follows, on a server untouched until then)."""
    if synced is not None:
        run = synced
    elif key is not None:
        run = first_sync(server, key)
    else:
        run = run_sync(client=fast_client(server), kind=SyncRun.FULL)
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert run.high_water_mark is not None
    server.reset_stats()
    return run


def test_an_incremental_sync_follows_edits_creations_and_moves_with_a_few_requests(synced_mirror, emulator):
    full_then_reset(emulator, synced_mirror)
    workspace = emulator.workspace
    edited = Resource.objects.filter(is_documented=False, entity_type="table").first()
    workspace.set_description(edited.id, "Orders placed on the web shop, one row per order.")
    owner = workspace.users()[0]["id"]
    unowned = Resource.objects.filter(is_owned=False).exclude(pk=edited.pk).first()
    workspace.set_owners(unowned.id, [owner])
    table = Resource.objects.filter(entity_type="table").order_by("id").first()
    created = workspace.add_resources(3, integration_id=table.integration_id, parent_id=table.id)
    column = Resource.objects.filter(entity_type="column").exclude(parent_id=table.id).order_by("id").first()
    workspace.move(column.id, table.id)
    deleted = Resource.objects.filter(entity_type="column").exclude(pk=column.pk).order_by("-id").first()
    workspace.delete(deleted.id)

    run = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)

    assert run.status == SyncRun.SUCCEEDED, run.error
    assert run.kind == SyncRun.INCREMENTAL and not run.fallback_reason
    assert Resource.objects.get(pk=edited.pk).description == "Orders placed on the web shop, one row per order."
    assert Resource.objects.get(pk=edited.pk).is_documented
    assert Resource.objects.get(pk=unowned.pk).owners == [owner]
    assert set(created) <= set(Resource.objects.present().values_list("id", flat=True))
    assert Resource.objects.get(pk=column.pk).parent_id == table.id
    assert run.created == 3
    # The deletion is found by counts: the changes listing cannot see it.
    assert Resource.objects.get(pk=deleted.pk).removed_at is not None
    assert run.removed == 1 and not run.removals_checked
    assert present_ids() == set(workspace.ids())
    assert run.options["deletions"]["removed"] == 1
    assert listing_requests(emulator) <= 40
    assert run.high_water_mark >= SyncRun.objects.filter(kind=SyncRun.FULL).get().high_water_mark


def present_ids():
    return set(Resource.objects.present().values_list("id", flat=True))


def test_nothing_changed_means_one_listing_request_and_no_writes(synced_mirror, emulator):
    first = full_then_reset(emulator, synced_mirror)
    run = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)
    assert run.status == SyncRun.SUCCEEDED and run.kind == SyncRun.INCREMENTAL
    assert listing_requests(emulator) == 1
    assert run.created == run.updated == 0
    assert run.high_water_mark == first.high_water_mark


def test_the_next_incremental_starts_from_the_previous_one(synced_mirror, emulator):
    full_then_reset(emulator, synced_mirror)
    resource = Resource.objects.filter(entity_type="table").first()
    emulator.workspace.set_description(resource.id, "First edit.")
    one = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)
    emulator.workspace.set_description(resource.id, "Second edit.")
    two = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)
    assert two.kind == SyncRun.INCREMENTAL and two.high_water_mark >= one.high_water_mark
    assert Resource.objects.get(pk=resource.pk).description == "Second edit."


def test_a_first_sync_asked_to_be_incremental_is_a_full_sweep_and_says_why(emulator):
    run = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)
    assert run.status == SyncRun.SUCCEEDED
    assert run.kind == SyncRun.FULL and "no earlier successful sync" in run.fallback_reason
    assert run.removals_checked


def quirky_server(refuse=False, ignore=False, resources=600):
    workspace = Workspace.generate(resources=resources, seed=3, now=SESSION_NOW)
    original = workspace.list_resources

    def listing(filter_obj=None, sort_obj=None, teams=None):
        if sort_obj and sort_obj.get("field") == "updated_at":
            if refuse:
                raise ValueError("Sorting by updated_at is not supported.")
            if ignore:
                sort_obj = None  # answers in its default order
        return original(filter_obj, sort_obj, teams=teams)

    workspace.list_resources = listing
    return EmulatorServer(workspace, token=TOKEN, port=0).start()


@pytest.mark.parametrize("quirk, reason", [
    ({"refuse": True}, "refused sorting by updated_at"),
    ({"ignore": True}, "not sorted by updated_at"),
])
def test_a_secoda_that_refuses_or_ignores_the_sort_gets_a_full_sweep_with_the_reason(quirk, reason):
    server = quirky_server(**quirk)
    try:
        full_then_reset(server)
        doomed = Resource.objects.filter(entity_type="column").first()
        server.workspace.delete(doomed.id)
        server.workspace.set_description(Resource.objects.filter(entity_type="table").first().id, "Touched.")
        run = run_sync(client=fast_client(server), kind=SyncRun.INCREMENTAL)
        assert run.status == SyncRun.SUCCEEDED, run.error
        assert run.kind == SyncRun.FULL and reason in run.fallback_reason
        # The fallback is a real full sweep: it is allowed to (and does) mark the deletion.
        assert Resource.objects.get(pk=doomed.pk).removed_at is not None
    finally:
        server.stop()


def test_more_changes_than_one_listing_returns_falls_back_to_a_full_sweep(synced_mirror, emulator, monkeypatch):
    full_then_reset(emulator, synced_mirror)
    monkeypatch.setattr(sync_module, "listing_cap", lambda: 100)  # stands in for 10,000 changes
    for resource_id in list(Resource.objects.values_list("id", flat=True)[:150]):
        emulator.workspace.set_description(resource_id, "Bulk-edited upstream.")
    # Pages of 50: the listing reaches the stand-in cap before it reaches the mark.
    run = run_sync(client=fast_client(emulator, page_size=50), kind=SyncRun.INCREMENTAL)
    assert run.status == SyncRun.SUCCEEDED
    assert run.kind == SyncRun.FULL and "more than 100 resources changed" in run.fallback_reason
    assert Resource.objects.filter(description="Bulk-edited upstream.").count() == 150


def test_a_failed_incremental_keeps_the_last_mark_and_loses_nothing(synced_mirror, emulator):
    first = full_then_reset(emulator, synced_mirror)
    before = set(Resource.objects.present().values_list("id", flat=True))
    emulator.faults.error_rate = 1.0
    run = run_sync(client=fast_client(emulator, max_retries=1), kind=SyncRun.INCREMENTAL)
    assert run.status == SyncRun.FAILED and run.high_water_mark is None
    assert set(Resource.objects.present().values_list("id", flat=True)) == before
    emulator.faults.error_rate = 0.0
    again = run_sync(client=fast_client(emulator), kind=SyncRun.INCREMENTAL)
    assert again.kind == SyncRun.INCREMENTAL and again.high_water_mark == first.high_water_mark


@pytest.mark.django_db(transaction=True)
def test_the_command_defaults_to_incremental_and_full_lists_everything(emulator_settings, emulator, capsys):
    call_command("sync_catalog", "--full", "--concurrency", "2")
    assert "(full sweep) finished" in capsys.readouterr().out
    emulator.workspace.set_description(emulator.workspace.ids()[5], "Changed after the sweep.")
    call_command("sync_catalog")
    out = capsys.readouterr().out
    assert "(incremental) finished" in out and "1 changed" in out
    assert SyncRun.objects.first().kind == SyncRun.INCREMENTAL
    assert json.loads(json.dumps(SyncRun.objects.first().options))["since"]


ANSWERS = {
    "as documented": {},
    "as Secoda's own scripts see it": {"honour_page_size": False, "children_count": "on_request",
                                       "refused_operators": "not,is_set", "total_pages_in_meta": True},
    "id filters refused": {"id_filter": "refuse"},
    "id filters ignored": {"id_filter": "ignore"},
    "id filters matching nothing": {"id_filter": "nothing"},
}


# The documented answers in the quick loop; each other way of answering end to end, marked slow.
@pytest.mark.parametrize("answers", [pytest.param(answers, id=name, marks=() if not answers else pytest.mark.slow)
                                     for name, answers in ANSWERS.items()])
def test_deletions_are_followed_within_one_interval_even_where_as_many_were_created(answers):
    """A dropped table with its columns, a deleted dashboard with its charts, and in one table as many columns
    deleted as created: the next incremental sync is exact, and looks up each removal before marking it."""
    workspace = Workspace.generate(resources=2_500, seed=5, now=SESSION_NOW)
    server = EmulatorServer(workspace, token=TOKEN, port=0).start()
    try:
        server.faults.update(answers)
        full_then_reset(server)
        tables = [r for r in Resource.objects.filter(entity_type="table").order_by("id")
                  if Resource.objects.filter(parent_id=r.id).count() >= 6]
        dropped, churned = tables[0], tables[1]
        gone = [dropped.id, *Resource.objects.filter(parent_id=dropped.id).values_list("id", flat=True)]
        dashboard = Resource.objects.filter(entity_type="dashboard").order_by("id").first()
        gone += [dashboard.id, *Resource.objects.filter(parent_id=dashboard.id).values_list("id", flat=True)]
        swapped = list(Resource.objects.filter(parent_id=churned.id).order_by("id").values_list("id", flat=True)[:3])
        gone += swapped
        for resource_id in gone:
            workspace.delete(resource_id)
        created = workspace.add_resources(3, integration_id=churned.integration_id, parent_id=churned.id)

        run = run_sync(client=fast_client(server, page_size=1000), kind=SyncRun.INCREMENTAL)
    finally:
        server.stop()
    assert run.status == SyncRun.SUCCEEDED and run.kind == SyncRun.INCREMENTAL, run.error or run.fallback_reason
    assert present_ids() == set(workspace.ids()), "deleted ones removed, created ones added"
    assert run.removed == len(gone) and run.created == 3
    assert set(created) <= present_ids()
    lookups = sum(n for path, n in server.stats()["requests_by_path"].items() if "resource/all/" in path)
    if answers.get("id_filter", "honour") == "honour":
        assert lookups <= 6, "removals are looked up in packs of ids"
    else:  # one by one when a filter by id cannot be trusted
        assert len(gone) <= lookups <= len(gone) + 3
    full_listing = 2_500 // (1000 if answers.get("honour_page_size", True) else 50)
    assert listing_requests(server) < full_listing + 40


def test_counts_that_time_out_stop_the_deletion_check_with_a_note_not_a_flood_of_requests(capped_server):
    workspace = Workspace.generate(resources=600, seed=3, now=SESSION_NOW)
    server = capped_server(workspace, cap=100)
    server.faults.update({"count_timeout": True})  # listings over the cap count 999999
    full_then_reset(server)
    gone = Resource.objects.filter(entity_type="column").order_by("id").first()
    workspace.delete(gone.id)
    run = run_sync(client=fast_client(server), kind=SyncRun.INCREMENTAL)
    assert run.status == SyncRun.SUCCEEDED and run.kind == SyncRun.INCREMENTAL
    assert "did not say how many resources it holds" in run.warnings
    assert run.options["deletions"]["requests"] <= 2, "no blind split into every piece"
    assert Resource.objects.get(pk=gone.pk).removed_at is None, "left for the nightly full sweep"


class RequestLog:
    """Every request a client sends (method, path and query, in any order) and how many were in flight at once."""

    def __init__(self, monkeypatch):
        import threading

        import requests

        self.sent, self.in_flight, self.most_in_flight = [], 0, 0
        self.lock = threading.Lock()
        send = requests.Session.request

        def request(session, method, url, params=None, **kwargs):
            with self.lock:
                self.sent.append((method, url.split("/api/v1", 1)[-1], json.dumps(params, sort_keys=True)))
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                return send(session, method, url, params=params, **kwargs)
            finally:
                with self.lock:
                    self.in_flight -= 1

        monkeypatch.setattr(requests.Session, "request", request)

    def reset(self):
        self.sent, self.most_in_flight = [], 0


def incremental_then_undo(server, settings, log, concurrency, timeout=10):
    """The incremental sync at `concurrency` counts at once, and what it concluded; the mirror is then put back
    as it was before it (a savepoint), so each concurrency starts from the same mirror and the same upstream."""
    from django.db import transaction

    settings.SECODA_COUNT_CONCURRENCY = concurrency
    server.reset_stats()
    log.reset()
    with transaction.atomic():
        run = run_sync(client=fast_client(server, page_size=50, max_retries=2, timeout=timeout),
                       kind=SyncRun.INCREMENTAL)
        stats = server.stats()
        outcome = {
            "status": run.status, "kind": run.kind, "removed": run.removed, "created": run.created,
            "updated": run.updated, "warnings": run.warnings, "deletions": run.options.get("deletions"),
            "removed_ids": sorted(Resource.objects.filter(removed_at__isnull=False).values_list("id", flat=True)),
            "present": present_ids(),
            "sent": sorted(log.sent),
        }
        timing = {"seconds": run.options["finish_seconds"]["deletions"], "most_in_flight": log.most_in_flight,
                  "serving": stats["serving_seconds"], "busy": stats["busy_seconds"], "requests": stats["requests"]}
        transaction.set_rollback(True)
    return outcome, timing


def columns_gone_under_tables_that_stay(workspace, how_many, skip=0):
    """Columns deleted upstream while their tables stay: nothing explains them but counts of packs of tables."""
    tables = list(Resource.objects.filter(entity_type="table").order_by("id").values_list("id", flat=True))
    gone = []
    for table in tables[skip::max(1, len(tables) // how_many)][:how_many]:
        column = Resource.objects.filter(parent_id=table).order_by("id").first()
        if column is not None:
            workspace.delete(column.id)
            gone.append(column.id)
    return gone


def four_thousand_after_a_full_sync(capped_server):
    """A 4,000-resource workspace listed with a cap of 200 (columns split into many packs of tables, as at
    1,000,000), and its server, after a first full sync: real in the first of these tests a test process runs,
    copied in after (`first_sync`, keyed by what generated the workspace and by the cap)."""
    spec, cap = {"resources": 4_000, "seed": 5, "now": SESSION_NOW}, 200
    workspace = Workspace.generate(**spec)
    server = capped_server(workspace, cap=cap)
    full_then_reset(server, key={**spec, "cap": cap})
    return workspace, server


# End to end twice over (the 4,000-resource sweep above, then an incremental at 1 and at 8 counts at once, with
# latency): marked slow, so the quick loop skips them.
@pytest.mark.slow
def test_the_deletion_checks_counts_overlap_and_conclude_as_one_by_one(capped_server, settings, monkeypatch):
    """Columns deleted under tables that stay are found by counting packs of tables. Eight counts at once make
    the same requests and reach the same conclusions as one by one, in less time."""
    workspace, server = four_thousand_after_a_full_sync(capped_server)
    gone = columns_gone_under_tables_that_stay(workspace, 4)
    server.faults.latency_ms = 40
    log = RequestLog(monkeypatch)

    one, one_timing = incremental_then_undo(server, settings, log, 1)
    eight, eight_timing = incremental_then_undo(server, settings, log, 8)

    assert one["status"] == SyncRun.SUCCEEDED and one["kind"] == SyncRun.INCREMENTAL, one["warnings"]
    assert one["removed_ids"] == sorted(gone) and one["present"] == set(workspace.ids())
    assert one["deletions"]["counted"] >= 30, "the shape this is about: many counts"
    assert eight == one, "the same requests, notes, removals and figures"
    assert one_timing["most_in_flight"] == 1 and eight_timing["most_in_flight"] >= 4
    # The emulator saw the counts overlap: wall time with a request in hand well under the time spent serving.
    assert one_timing["busy"] >= 0.95 * one_timing["serving"]
    assert eight_timing["busy"] < 0.6 * eight_timing["serving"]
    assert eight_timing["seconds"] < 0.7 * one_timing["seconds"]


def trap_counts_of(workspace, table_id, answer):
    """Listings filtered by packs of tables holding `table_id` are refused (400) or answered too late."""
    import time

    original = workspace.list_resources

    def listing(filter_obj=None, sort_obj=None, teams=None):
        if table_id in json.dumps(filter_obj or {}) and "parent_id" in json.dumps(filter_obj or {}):
            if answer == "refused":
                raise ValueError("Filter too complex.")
            time.sleep(2.5)  # beyond the client's timeout
        return original(filter_obj, sort_obj, teams=teams)

    workspace.list_resources = listing


@pytest.mark.slow
@pytest.mark.parametrize("fault, expected", [
    ("refused", "Secoda would not count it"),
    ("timed out", "Deletions could not be checked (GET /resource/catalog could not reach Secoda (ReadTimeout)"),
    ("failing", "Deletions could not be checked (GET /resource/catalog answered 503"),
])
def test_a_count_refused_or_failing_ends_the_same_way_at_any_concurrency(capped_server, settings, monkeypatch,
                                                                         fault, expected):
    workspace, server = four_thousand_after_a_full_sync(capped_server)
    gone = columns_gone_under_tables_that_stay(workspace, 4)
    trapped = Resource.objects.get(pk=gone[1]).parent_id
    if fault == "failing":
        server.faults.fail_listings_matching = trapped
    else:
        trap_counts_of(workspace, trapped, fault)
    server.faults.latency_ms = 20
    log = RequestLog(monkeypatch)

    one, _ = incremental_then_undo(server, settings, log, 1, timeout=1.0)
    eight, eight_timing = incremental_then_undo(server, settings, log, 8, timeout=1.0)

    assert one["status"] == SyncRun.SUCCEEDED and one["kind"] == SyncRun.INCREMENTAL
    assert expected in one["warnings"]
    assert eight_timing["most_in_flight"] >= 4
    if fault == "refused":  # the check goes on past the refused count
        assert one["removed_ids"] == sorted(set(gone) - {gone[1]})
        assert "only 3 of them could be pinned down" in one["warnings"]
        assert eight == one
        return
    # The check ended at the failed count, with what it had found before it; counts already in flight for the
    # pieces after it were made (at most a window of them), and nothing else differs.
    sent_one, sent_eight = one.pop("sent"), eight.pop("sent")
    requests_one, requests_eight = one["deletions"].pop("requests"), eight["deletions"].pop("requests")
    assert eight == one
    assert Counter(sent_one) <= Counter(sent_eight)
    assert len(sent_eight) - len(sent_one) == requests_eight - requests_one <= 2 * 8
