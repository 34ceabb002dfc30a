"""Crashes with nobody there to help: real worker processes killed with SIGKILL, Redis restarted while
workers hold countdown tasks, database connections terminated, the API killed and started again. Each
test checks that the work finishes by itself soon after the fault ends, exactly, with nothing written
twice and no run left "running". Recovery times are printed (the README quotes them)."""
import math
import time

import pytest

from secoda_emulator.workspace import Workspace
from tests.recovery_cluster import RECOVERY_BUDGET, Cluster, wait_for

pytestmark = pytest.mark.slow

RESOURCES = 3000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(Workspace.generate(resources=RESOURCES, seed=8), tmp_path_factory.mktemp("recovery"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def workers(cluster):
    """Two worker processes of two pool processes each, stopped (SIGKILL) after the test."""
    cluster.start_worker()
    cluster.start_worker()
    if not cluster.value("SELECT count(*) FROM catalog_sync_syncrun WHERE status = 'succeeded'"):
        cluster.sync("baseline")  # a mirror to start from (people to own things, a high-water mark)
        assert_exact(cluster, cluster.finished("baseline", 120))
    yield cluster
    cluster.kill_workers()
    cluster.workers.clear()
    cluster.emulator.faults.latency_ms = 0


def assert_exact(cluster, run):
    assert run["status"] == "succeeded", run["error"]
    assert run["fetched"] == cluster.workspace.resource_count(), "every resource listed once"
    assert cluster.present_ids() == set(cluster.workspace.ids())
    assert not cluster.duplicate_slices(run["id"]), "a slice was created twice"
    assert cluster.running_runs() == 0


def sweep_until_some_slices_are_done(cluster, trigger, latency_ms=40):
    cluster.emulator.faults.latency_ms = latency_ms
    cluster.sync(trigger)
    wait_for(lambda: cluster.run(trigger), 30, "the sweep did not start")
    run_id = cluster.run(trigger)["id"]
    wait_for(lambda: cluster.slices_done(run_id) >= 3, 60, "no slice finished")
    assert cluster.run(trigger)["status"] == "running"
    return run_id


def test_incremental_syncs_keep_running_beside_the_watcher_with_several_workers(workers):
    cluster = workers
    mark_before = cluster.value("SELECT max(high_water_mark) FROM catalog_sync_syncrun WHERE status = 'succeeded'")
    changed = cluster.workspace.ids()[:25]
    time.sleep(1.1)  # the emulator's clock has second resolution: changes land after the mark
    for resource_id in changed:
        cluster.workspace.set_description(resource_id, "Changed upstream for the incremental test.")
    cluster.emulator.faults.latency_ms = 700  # long enough for the watcher (every 2 s) to look at it
    cluster.sync("incremental", kind="incremental")
    run = cluster.finished("incremental", 120)
    assert run["status"] == "succeeded", run["error"]
    assert run["kind"] == "incremental" and run["mode"] == "in_process"
    assert run["high_water_mark"] > mark_before, "the high-water mark moves on"
    descriptions = dict(cluster.sql("SELECT id, description FROM catalog_sync_resource WHERE id = ANY(%s)",
                                    [changed]))
    assert set(descriptions.values()) == {"Changed upstream for the incremental test."}


def test_a_sweep_whose_workers_are_killed_finishes_exactly_once_a_worker_returns(workers):
    cluster = workers
    run_id = sweep_until_some_slices_are_done(cluster, "killed")
    cluster.kill_workers()
    killed_at = time.monotonic()
    cluster.workers.clear()
    cluster.start_worker()
    run = cluster.finished("killed", RECOVERY_BUDGET)
    recovery = time.monotonic() - killed_at
    print(f"\nSweep with its workers killed -9: finished {recovery:.0f} s after the kill")
    assert_exact(cluster, run)
    assert recovery < RECOVERY_BUDGET
    assert cluster.value("SELECT count(*) FROM catalog_sync_syncslice WHERE run_id = %s AND attempts > 1",
                         [run_id]) >= 1, "the killed worker's slices ran again"


def test_workers_survive_a_redis_restart_while_holding_countdown_tasks_and_the_sweep_finishes(workers):
    cluster = workers
    # A task waiting in a worker with a countdown (the project schedules none of its own any more).
    held = cluster.app.send_task("catalog_sync.tasks.watch_syncs", countdown=120)
    wait_for(lambda: f"[{held.id}] received" in cluster.log("worker0", None) + cluster.log("worker1", None), 10,
             "no worker took the countdown task")
    sweep_until_some_slices_are_done(cluster, "redis-restart")
    cluster.redis.stop()
    time.sleep(3)
    cluster.redis.start()
    restarted_at = time.monotonic()
    run = cluster.finished("redis-restart", RECOVERY_BUDGET + 60)
    recovery = time.monotonic() - restarted_at
    print(f"\nSweep through a Redis restart: finished {recovery:.0f} s after Redis came back")
    assert all(worker.poll() is None for worker in cluster.workers), (
        "a worker exited:\n" + cluster.log("worker0") + cluster.log("worker1"))
    assert_exact(cluster, run)
    assert "Unrecoverable error" not in cluster.log("worker0") + cluster.log("worker1")


def prepare_change_set(cluster, count, steward):
    """A previewed bulk edit adding one owner to `count` resources (not applied yet). Returns its id."""
    return int(cluster.shell(
        "from django.contrib.auth import get_user_model; from catalog_sync.models import Resource, SecodaUser; "
        "from hygiene.bulk import services; "
        f"user = get_user_model().objects.create_user({steward!r}); "
        "owner = SecodaUser.objects.present().order_by('id').first(); "
        f"ids = list(Resource.objects.present().exclude(owners__contains=[owner.pk]).values_list('pk', flat=True)[:{count}]); "
        "cs = services.build_change_set(user, Resource.objects.filter(pk__in=ids), "
        "{'owners': {'mode': 'add', 'users': [owner.pk]}}, 'Add an owner'); "
        "print(cs.pk)").strip().splitlines()[-1])


def apply_change_set(cluster, change_set_id):
    cluster.shell("from hygiene.bulk.models import ChangeSet; from hygiene.bulk import services; "
                  f"cs = ChangeSet.objects.get(pk={change_set_id}); services.submit(cs, cs.created_by)")


def change_set_outcome(cluster, change_set_id, timeout=120):
    return wait_for(lambda: cluster.sql(
        "SELECT status, api_calls, started_at, error FROM bulk_changeset WHERE id = %s AND status <> 'running' "
        "AND status <> 'pending'", [change_set_id]), timeout, "the change set did not finish")[0]


def applied_items(cluster, change_set_id):
    return cluster.value("SELECT count(*) FROM bulk_changeitem WHERE change_set_id = %s AND status = 'applied'",
                         [change_set_id])


def test_a_bulk_edit_whose_worker_is_killed_resumes_and_writes_nothing_twice(workers):
    cluster = workers
    count = 500
    change_set_id = prepare_change_set(cluster, count, "killed-steward")
    cluster.emulator.faults.latency_ms = 200
    cluster.emulator.reset_stats()
    apply_change_set(cluster, change_set_id)
    wait_for(lambda: applied_items(cluster, change_set_id) >= 100, 60, "the edit did not start")
    started = cluster.value("SELECT started_at FROM bulk_changeset WHERE id = %s", [change_set_id])
    cluster.kill_workers()
    killed_at = time.monotonic()
    cluster.workers.clear()
    cluster.start_worker()
    outcome = change_set_outcome(cluster, change_set_id, RECOVERY_BUDGET)
    print(f"\nBulk edit with its worker killed -9: finished {time.monotonic() - killed_at:.0f} s after the kill")
    assert outcome[0] == "completed", outcome
    assert applied_items(cluster, change_set_id) == count
    assert outcome[2] == started, "a resumed change set keeps when it started"
    writes = cluster.emulator.stats()["writes"]
    assert writes == math.ceil(count / 100), f"{writes} write calls for {count} resources: one was sent twice"
    # Every call Secoda saw is counted, the killed worker's too; a call is counted just before it is sent, so
    # a kill in between counts one that never left.
    served = cluster.emulator.stats()["requests"]
    assert served <= outcome[1] <= served + 1, "every call is counted, the killed worker's too"


def test_an_incremental_sync_whose_worker_is_killed_is_failed_and_the_next_one_carries_on(workers):
    cluster = workers
    cluster.emulator.faults.latency_ms = 1500
    cluster.sync("killed-incremental", kind="incremental")
    wait_for(lambda: cluster.run("killed-incremental"), 30, "the incremental sync did not start")
    cluster.kill_workers()
    killed_at = time.monotonic()
    cluster.workers.clear()
    cluster.start_worker()
    run = cluster.finished("killed-incremental", RECOVERY_BUDGET)
    print(f"\nIncremental sync with its worker killed -9: failed {time.monotonic() - killed_at:.0f} s after the kill")
    assert run["status"] == "failed" and "stopped before it finished" in run["error"]
    assert cluster.running_runs() == 0
    cluster.emulator.faults.latency_ms = 0
    cluster.sync("next-incremental", kind="incremental")
    assert cluster.finished("next-incremental", 60)["status"] == "succeeded"


def test_terminated_database_connections_strand_neither_a_sweep_nor_a_change_set(workers):
    cluster = workers
    count = 600
    change_set_id = prepare_change_set(cluster, count, "pg-steward")
    cluster.emulator.reset_stats()

    def terminate_three_times():
        terminated = 0
        for _ in range(3):
            terminated += cluster.terminate_backends()
            time.sleep(1)
        assert terminated >= 3
        return time.monotonic()

    sweep_until_some_slices_are_done(cluster, "pg-terminate", latency_ms=200)
    ended_at = terminate_three_times()
    run = cluster.finished("pg-terminate", RECOVERY_BUDGET + 60)
    print(f"\nSweep through terminated connections: done {time.monotonic() - ended_at:.0f} s later")

    apply_change_set(cluster, change_set_id)
    wait_for(lambda: applied_items(cluster, change_set_id) >= 100, 60, "the edit did not start")
    assert cluster.value("SELECT status FROM bulk_changeset WHERE id = %s", [change_set_id]) == "running"
    ended_at = terminate_three_times()
    change_set = change_set_outcome(cluster, change_set_id)
    print(f"Change set through terminated connections: done {time.monotonic() - ended_at:.0f} s later")
    assert_exact(cluster, run)
    assert change_set[0] == "completed", change_set
    statuses = dict(cluster.sql("SELECT status, count(*) FROM bulk_changeitem WHERE change_set_id = %s "
                                "GROUP BY status", [change_set_id]))
    assert statuses == {"applied": count}
    writes = cluster.emulator.stats()["writes"]
    assert writes == math.ceil(count / 100), f"{writes} write calls for {count} resources: one was sent twice"


def test_a_foreground_sweep_that_loses_its_connection_ends_without_a_traceback_or_a_stuck_run(cluster):
    import subprocess
    import sys

    from tests.test_deployment import ROOT

    cluster.emulator.faults.latency_ms = 100
    process = subprocess.Popen([sys.executable, "manage.py", "sync_catalog", "--full", "--concurrency", "1"],
                               cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: cluster.run("command") and cluster.value(
        "SELECT count(*) FROM catalog_sync_syncslice s JOIN catalog_sync_syncrun r ON r.id = s.run_id "
        "WHERE r.trigger = 'command' AND r.status = 'running' AND s.status = 'done'") >= 1, 60, "no progress")
    cluster.terminate_backends()
    out, err = process.communicate(timeout=180)
    cluster.emulator.faults.latency_ms = 0
    assert "Traceback" not in err, err[-3000:]
    run = cluster.run("command")
    assert run["status"] in ("succeeded", "failed")
    assert cluster.running_runs() == 0, "no run is left running"
    if run["status"] == "succeeded":
        assert process.returncode == 0 and run["fetched"] == RESOURCES
    else:
        assert process.returncode != 0 and run["error"] in err


def test_an_api_outage_stops_the_sweep_early_and_it_resumes_by_itself_when_the_api_returns(workers):
    cluster = workers
    sweep_until_some_slices_are_done(cluster, "outage")
    cluster.stop_api()
    down_at = time.monotonic()
    run = cluster.finished("outage", 90)
    stopped_after = time.monotonic() - down_at
    assert run["status"] == "failed" and "could not be reached" in run["error"], run["error"]
    assert "resumes by itself" in run["error"]
    assert cluster.value("SELECT count(*) FROM catalog_sync_lease WHERE lease_until > now() AND holder <> ''") == 0, (
        "the lock is free, so incremental syncs are not refused")
    cluster.start_api()
    back_at = time.monotonic()
    wait_for(lambda: cluster.run("outage")["status"] == "succeeded", 90,
             f"the sweep did not resume: {cluster.run('outage')}\n{cluster.log('beat')}")
    recovery = time.monotonic() - back_at
    print(f"\nAPI outage: sweep stopped {stopped_after:.0f} s after the API went down, "
          f"finished {recovery:.0f} s after it came back")
    assert_exact(cluster, cluster.run("outage"))
    assert stopped_after < 60
    assert recovery < 60
