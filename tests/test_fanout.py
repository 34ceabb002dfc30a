"""Full sweeps in slices: several at once in one process or across Celery workers, a failed slice on its
own, never two workers on one slice, and the request budget and write limit shared through Redis."""
import math
import threading
import time
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from secoda_emulator.workspace import Workspace
from catalog_sync.models import Resource, SyncRun, SyncSlice
from catalog_sync.ratelimit import LocalBudget, RedisBudget, RedisWriteThrottle, WriteThrottle
from catalog_sync.slices import run_slice
from catalog_sync.sync import resume_in_process, retry_failed_slices, run_sync, start_run
from catalog_sync.tasks import sync_catalog
from hygiene.celery import app
from tests.concurrency import finished_run, race
from tests.conftest import SESSION_NOW, fast_client


def present_ids():
    return set(Resource.objects.present().values_list("id", flat=True))


def listing_requests(server):
    return sum(n for path, n in server.stats()["requests_by_path"].items() if "resource/catalog" in path)


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_sweep_lists_a_workspace_above_the_cap_completely(settings, capped_server):
    settings.SYNC_SLICE_PAGES = 4  # a tenth of the workspace: a slice lists fewer pages before handing on
    workspace = Workspace.generate(resources=2_600, seed=11, now=SESSION_NOW)
    server = capped_server(workspace, cap=1_000)
    try:
        run = run_sync(client=fast_client(server, page_size=50), concurrency=4)
        assert run.status == SyncRun.SUCCEEDED, run.error
        assert present_ids() == set(workspace.ids())
        assert run.removals_checked and run.fetched == 2_600
        # The pages themselves, plus a few dozen probes for the splits (the same few dozen at 26,000 with the
        # real cap: 1.02x there).
        assert listing_requests(server) <= math.ceil(2_600 / 50) + 30
        slices = SyncSlice.objects.filter(run=run)
        assert slices.filter(first_page__gt=1).exists(), "long listings hand later pages to other slices"
        assert slices.filter(split="pack").exists() or slices.filter(label__contains="parents").exists()
        assert not slices.exclude(status=SyncSlice.DONE).exists()
        assert run.slices_done == run.slices_total == slices.count()
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_failed_slice_keeps_every_other_slices_rows_and_marks_no_removals(emulator, settings):
    settings.SYNC_SLICE_PAGES = 2  # 600 resources: 12 pages, six slices
    settings.SYNC_SLICE_RETRIES = 1
    assert run_sync(client=fast_client(emulator, page_size=50)).status == SyncRun.SUCCEEDED
    workspace = emulator.workspace
    doomed = workspace.ids()[-3:]  # the newest three: on the last page
    for resource_id in doomed:
        workspace.delete(resource_id)
    early = workspace.ids()[2]  # on the first page, in the first slice
    workspace.set_description(early, "Edited while page 5 was failing.")
    emulator.faults.fail_listings_matching = "page=5"

    failed = run_sync(client=fast_client(emulator, max_retries=1, page_size=50), concurrency=3)

    assert failed.status == SyncRun.FAILED
    assert "1 of" in failed.error and "slices failed" in failed.error and "pages 5" in failed.error
    assert "retried" in failed.error
    assert present_ids() >= set(doomed), "a sweep with a failed slice must not mark removals"
    assert failed.removed == 0 and not failed.removals_checked
    assert Resource.objects.get(pk=early).description == "Edited while page 5 was failing."
    bad = SyncSlice.objects.get(run=failed, status=SyncSlice.FAILED)
    assert bad.first_page == 5 and bad.attempts == 2  # tried, then retried once on its own
    others = SyncSlice.objects.filter(run=failed).exclude(pk=bad.pk)
    assert others.count() >= 4 and not others.exclude(status=SyncSlice.DONE).exists()

    emulator.faults.fail_listings_matching = ""
    retry_failed_slices(failed)
    retried = resume_in_process(failed, client=fast_client(emulator, page_size=50))
    assert retried.status == SyncRun.SUCCEEDED, retried.error
    assert retried.removals_checked and retried.removed == 3
    assert not present_ids() & set(doomed)


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_run_the_same_slice(emulator):
    run = start_run("test", SyncRun.FULL, fast_client(emulator, page_size=50))
    piece = SyncSlice.objects.create(run=run, label="All resources", split="integrations")
    emulator.faults.latency_ms = 20
    outcomes = race(lambda: run_slice(piece.pk, fast_client(emulator, page_size=50), "worker-a"),
                    lambda: run_slice(piece.pk, fast_client(emulator, page_size=50), "worker-b"))
    ran = [o for o in outcomes if o is not None]
    assert len(ran) == 1 and not isinstance(ran[0], Exception), outcomes
    piece.refresh_from_db()
    assert piece.attempts == 1 and piece.status == SyncSlice.DONE
    pages = math.ceil(len(emulator.workspace.ids()) / 50)
    assert listing_requests(emulator) == pages == piece.requests  # one pass over the listing, not two
    # A slice that is done is never claimed again.
    assert run_slice(piece.pk, fast_client(emulator, page_size=50), "worker-c") is None


@pytest.mark.django_db(transaction=True)
def test_celery_workers_fan_a_full_sweep_out(emulator_settings, emulator):
    emulator_settings.SYNC_SLICE_PAGES = 2
    emulator_settings.SECODA_PAGE_SIZE = 50  # pages of 50: several slices, page ranges among them
    emulator.faults.latency_ms = 10
    assert app.conf.broker_url.startswith("redis://")
    with start_worker(app, pool="threads", concurrency=3, perform_ping_check=False, shutdown_timeout=30):
        sync_catalog.delay(trigger="fan-out-test", kind="full")
        run = finished_run("fan-out-test", timeout=120)
    assert run is not None, "the workers never finished the sweep"
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert run.mode == SyncRun.FAN_OUT and run.removals_checked
    assert present_ids() == set(emulator.workspace.ids())
    slices = SyncSlice.objects.filter(run=run)
    assert slices.count() >= 6 and not slices.exclude(status=SyncSlice.DONE).exists()
    assert run.fetched == len(emulator.workspace.ids())


# -- shared limits ----------------------------------------------------------------------------

@pytest.fixture
def redis_client(settings):
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def test_the_request_budget_is_shared_by_every_worker_through_redis(redis_client):
    key = f"test:budget:{uuid.uuid4().hex}"
    rate = 20.0
    workers = [RedisBudget(redis.Redis(connection_pool=redis_client.connection_pool), rate, burst=1, key=key)
               for _ in range(3)]
    taken = []
    lock = threading.Lock()

    def work(budget):
        for _ in range(10):
            budget.acquire()
            with lock:
                taken.append(time.monotonic())

    threads = [threading.Thread(target=work, args=(b,)) for b in workers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    assert len(taken) == 30
    # 30 requests under a shared ceiling of 20 a second take at least (30 - 1) / 20 seconds together;
    # three unshared budgets would have let them through in half that.
    assert elapsed >= (30 - 1) / rate * 0.95


def test_the_local_budget_spaces_requests_at_its_rate():
    clock = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    budget = LocalBudget(10, burst=2, clock=lambda: clock[0], sleep=sleep)
    for _ in range(12):
        budget.acquire()
    assert sum(slept) == pytest.approx((12 - 2) / 10, abs=0.01)


class Stop(Exception):
    pass


@pytest.fixture
def two_workers(redis_client):
    """Two workers' write windows on one fresh Redis key, and the waits they were told to sleep
    (the first wait stops the test's worker, as if it slept)."""
    key = f"test:writes:{uuid.uuid4().hex}"
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        raise Stop

    def make(per_minute):
        return (RedisWriteThrottle(redis_client, per_minute, key=key, sleep=sleep),
                RedisWriteThrottle(redis.Redis(connection_pool=redis_client.connection_pool), per_minute,
                                   key=key, sleep=sleep))

    return make, waits


def test_the_write_limit_counts_writes_from_every_worker(two_workers):
    make, waits = two_workers
    worker_a, worker_b = make(3)
    worker_a.wait()
    worker_b.wait()
    worker_a.wait()
    with pytest.raises(Stop):  # the fourth write in a minute waits, whichever worker sends it
        worker_b.wait()
    assert 55 < waits[0] <= 61.1


def test_a_429_pauses_every_worker(two_workers):
    make, waits = two_workers
    worker_a, worker_b = make(30)
    worker_a.push_back(20)
    with pytest.raises(Stop):
        worker_b.wait()
    assert 18 < waits[0] <= 21


def test_clients_from_settings_share_the_redis_limits(settings):
    from catalog_sync.client import SecodaClient

    one, two = SecodaClient.from_settings(), SecodaClient.from_settings()
    assert isinstance(one.throttle, RedisWriteThrottle) and one.throttle is two.throttle
    assert isinstance(one.budget, RedisBudget) and one.budget is two.budget
    assert one.clone().budget is one.budget
    settings.REDIS_URL = None
    assert isinstance(SecodaClient.from_settings().throttle, WriteThrottle)


@pytest.mark.django_db
def test_the_watcher_requeues_a_crashed_workers_slice_keeps_the_lock_and_fails_only_a_stalled_sweep(
        emulator, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from catalog_sync import locks, tasks
    from catalog_sync.sync import LOCK_NAME

    sent = []
    monkeypatch.setattr(tasks, "dispatch", lambda ids: sent.extend(ids))
    run = start_run("test", SyncRun.FULL, fast_client(emulator), mode=SyncRun.FAN_OUT)
    SyncRun.objects.filter(pk=run.pk).update(stage=SyncRun.SWEEPING, progress_at=timezone.now())
    past = timezone.now() - timedelta(minutes=1)
    crashed = SyncSlice.objects.create(run=run, label="crashed", status=SyncSlice.RUNNING, lease_until=past)
    alive = SyncSlice.objects.create(run=run, label="alive", status=SyncSlice.RUNNING,
                                     lease_until=timezone.now() + timedelta(minutes=5))
    tasks.watch_syncs()
    assert sent == [crashed.pk]
    assert run_slice(alive.pk, fast_client(emulator), "another-worker") is None  # its lease is live

    # The slice's lease and the sync lock lapsed together: the sweep keeps its lock and its slice runs again.
    locks.release(LOCK_NAME, run.holder)
    sent.clear()
    tasks.watch_syncs()
    run.refresh_from_db()
    assert run.status == SyncRun.RUNNING and sent == [crashed.pk]
    assert locks.current(LOCK_NAME).holder == run.holder

    # No progress for SYNC_STALL_MINUTES: failed, so incremental syncs can run again.
    SyncRun.objects.filter(pk=run.pk).update(progress_at=timezone.now() - timedelta(hours=1))
    tasks.watch_syncs()
    run.refresh_from_db()
    assert run.status == SyncRun.FAILED and "No worker made progress" in run.error
    assert not SyncSlice.objects.filter(run=run, status__in=[SyncSlice.PENDING, SyncSlice.RUNNING]).exists()
    assert locks.current(LOCK_NAME) is None


@pytest.mark.django_db
def test_the_watcher_fails_an_in_process_sync_whose_process_died_and_leaves_a_live_one(emulator):
    from catalog_sync import locks, tasks
    from catalog_sync.sync import LOCK_NAME

    run = start_run("test", SyncRun.INCREMENTAL, fast_client(emulator))
    tasks.watch_syncs()
    run.refresh_from_db()
    assert run.status == SyncRun.RUNNING, "its process holds the lock"
    locks.release(LOCK_NAME, run.holder)  # its heartbeat stopped: the process is gone
    tasks.watch_syncs()
    run.refresh_from_db()
    assert run.status == SyncRun.FAILED and "stopped before it finished" in run.error


@pytest.mark.django_db
def test_the_admin_shows_a_runs_slices_and_offers_full_sweeps_and_retries(client, emulator, monkeypatch):
    from django.contrib.auth import get_user_model

    from catalog_sync import admin as sync_admin

    queued = []
    monkeypatch.setattr(sync_admin.sync_catalog, "delay", lambda **kw: queued.append(kw))
    monkeypatch.setattr(sync_admin.retry_sweep, "delay", lambda run_id: queued.append(run_id))
    run = start_run("test", SyncRun.FULL, fast_client(emulator))
    SyncSlice.objects.create(run=run, label="Snowflake / column (parents 0a1b…, 152 of them)", status=SyncSlice.FAILED,
                             first_page=21, last_page=40, attempts=4, error="GET /resource/catalog answered 503")
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.FAILED)
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1")
    client.force_login(admin_user)
    page = client.get(f"/admin/catalog_sync/syncrun/{run.pk}/change/").content.decode()
    assert "Snowflake / column (parents 0a1b…, 152 of them)" in page and "21–40" in page and "answered 503" in page
    listing = client.get("/admin/catalog_sync/syncrun/").content.decode()
    assert "Run a full sweep now" in listing and "Retry the failed slices" in listing
    client.post("/admin/catalog_sync/syncrun/", {"action": "run_full_sweep_now", "_selected_action": [run.pk]})
    client.post("/admin/catalog_sync/syncrun/", {"action": "retry_failed_slices", "_selected_action": [run.pk]})
    assert queued == [{"trigger": "admin", "kind": "full"}, run.pk]


@pytest.mark.django_db
def test_a_slice_run_again_after_its_worker_died_does_not_create_its_page_ranges_twice(emulator, settings):
    from datetime import timedelta

    from django.utils import timezone

    from catalog_sync import slices, sync

    settings.SYNC_SLICE_PAGES = 2
    client = fast_client(emulator, page_size=50)  # pages of 50: a listing long enough to hand pages on
    run = start_run("orphans", SyncRun.FULL, client, mode=SyncRun.FAN_OUT)
    assert sync.begin(run, client)
    long_listing = None
    for _ in range(20):
        if long_listing is not None:
            break
        for slice_id in slices.runnable_ids(run):
            piece = run_slice(slice_id, client, "worker-a")
            if piece.spawned.filter(first_page__gt=1).exists():
                long_listing = piece
                break
        else:
            slices.advance(run.pk)
    assert long_listing is not None, "no listing handed pages on"
    ranges = sorted(long_listing.spawned.values_list("first_page", flat=True))
    assert len(ranges) >= 1
    # The worker was killed after it created the page ranges and before it queued them or finished.
    SyncSlice.objects.filter(pk=long_listing.pk).update(status=SyncSlice.RUNNING,
                                                        lease_until=timezone.now() - timedelta(seconds=1))
    rerun = run_slice(long_listing.pk, client, "worker-b")
    assert rerun.status == SyncSlice.DONE
    assert sorted(rerun.spawned.values_list("first_page", flat=True)) == ranges, "no range created twice"
    sync.sweep_in_process(run, client, 1)
    sync.finish(run, client)
    run.refresh_from_db()
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert run.fetched == len(emulator.workspace.ids()), "every resource counted once"
    assert present_ids() == set(emulator.workspace.ids())


@pytest.mark.django_db
def test_columns_held_back_by_their_tables_are_packed_when_the_tables_are_done_not_left_waiting(emulator):
    """A sweep over a full mirror: when the tables' packs have listed every table, the advance that closes the
    tables' split packs the columns behind them at once (it used to end the sweep, columns still waiting)."""
    from catalog_sync.slices import advance

    run_sync(client=fast_client(emulator))
    run = start_run("test", SyncRun.FULL, fast_client(emulator))
    SyncRun.objects.filter(pk=run.pk).update(stage=SyncRun.SWEEPING)
    integration = Resource.objects.filter(entity_type="column").values_list("integration_id", flat=True).first()
    tables = Resource.objects.filter(integration_id=integration, entity_type="table").count()
    held_back = SyncSlice.objects.create(run=run, label="tables", split="parents", integration_id=integration,
                                         entity_type="table", status=SyncSlice.WAITING, expected=tables)
    SyncSlice.objects.create(run=run, spawned_by=held_back, label="tables (pack)", split="pack",
                             integration_id=integration, entity_type="table", status=SyncSlice.DONE, listed=tables)
    columns = SyncSlice.objects.create(run=run, label="columns", split="parents", integration_id=integration,
                                       entity_type="column", status=SyncSlice.WAITING, expected=1)
    new, over = advance(run.pk)
    assert not over, "the sweep goes on"
    assert set(new) == set(columns.spawned.values_list("id", flat=True)) and new, "the columns are packed"
    assert SyncSlice.objects.get(pk=held_back.pk).status == SyncSlice.DONE
