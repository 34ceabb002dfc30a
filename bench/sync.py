"""Sync benchmarks against the emulator, into PostgreSQL.

Three scenarios:

full (default)
    Mirror N resources with one full sweep in this process. Reports requests made against the
    minimum (resources / page length; --page-size 1000 by default, 50 as without page_size), wall time
    against the emulator's own serving time, and peak memory.
    Client overhead is the share of wall time in which the emulator had no request of ours in hand
    (with --concurrency above 1, requests served at the same time count once).

        .venv/bin/python bench/sync.py [--resources 50000] [--latency-ms 0] [--concurrency 1] [--page-size 1000]

incremental
    Mirror N resources, change --changes of them upstream (through the API's bulk update), then run an
    incremental sync. Reports its listing requests and wall time against the full sweep's.

        .venv/bin/python bench/sync.py --scenario incremental [--resources 50000] [--changes 500]

deletions
    Mirror N resources (8,000 by default) with a full sweep, then upstream: delete --deleted of them (whole
    tables with their columns and dashboards with their charts, the way resources go), document
    --documented and give owners to --owned. Run the default `sync_catalog` (incremental), check the mirror
    equals the workspace, then run a full sweep over the same state. Reports both syncs' requests, at
    --page-size 1000 and at 50 (Secoda ignoring page_size).

        .venv/bin/python bench/sync.py --scenario deletions [--resources 8000] [--deleted 250] \\
            [--documented 400] [--owned 300]

fanout
    A full sweep of N resources at --latency-ms, fanned out across Celery worker processes (prefork,
    Redis broker), once per --slices value. Reports wall time, speed-up over one slice, listing requests
    against the minimum at the page length the sweep used (and by kind of slice), each worker process's peak
    memory, the workers' CPU time per 10,000 resources, each step after the listing (the finish's, and the
    snapshot's: health scores, issue history, suggestions, counts), with the machine's CPUs and load average.
    --sweeps 2 sweeps again over the full mirror (a nightly sweep); --pages-during times the overview, the
    unowned list and a table's page while the last sweep writes and at rest after it; --copy-floor times COPY
    of the same rows into a table with the same indexes; --then-deletions edits --changes and deletes --deleted
    resources upstream and runs the incremental sync at the same latency (sync-deletions-N-latencyL.json; its
    deletion check makes SECODA_COUNT_CONCURRENCY counts at once).

        .venv/bin/python bench/sync.py --scenario fanout [--resources 200000] [--latency-ms 200] \\
            [--slices 1,2,4,8] [--sweeps 2] [--pages-during] [--copy-floor] \\
            [--then-deletions --changes 500 --deleted 50]

Results land in bench/results/ as JSON.
"""
import argparse
import random
import json
import math
import os
import signal
import subprocess
import sys
import time

from _common import ROOT, machine_cpu, peak_rss_mb, processes_cpu, start_emulator, stop_emulator, use_bench_database

BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def empty_mirror():
    """The mirror and everything derived from it emptied, as before a first sync: the issue history, snapshots
    and suggestions too (they point at resources without foreign keys, so CASCADE leaves them), or the next
    sweep's snapshot would find a history already begun."""
    from django.db import connection

    from catalog_sync.models import DbtTestStatus, Lease, Resource, ResourceChange, ResourceRef, SyncRun
    from hygiene.dashboard.models import Snapshot
    from hygiene.lifecycle.models import IssueInterval
    from hygiene.suggestions.models import Suggestion

    tables = [model._meta.db_table for model in (Resource, ResourceRef, ResourceChange, DbtTestStatus, SyncRun, Lease,
                                                 Snapshot, IssueInterval, Suggestion)]
    with connection.cursor() as cursor:  # TRUNCATE loads nothing into memory; a lock left by a killed run goes
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def emulator_stats(base_url, reset=False):
    import requests

    control = base_url.replace("/api/v1", "/__emulator__")
    if reset:
        requests.post(f"{control}/reset-stats", timeout=10)
        return None
    return requests.get(f"{control}/stats", timeout=10).json()


def listing_requests(stats):
    return sum(n for path, n in stats["requests_by_path"].items() if "resource/catalog" in path)


def sync_seconds(run):
    return (run.finished_at - run.started_at).total_seconds()


def full(args):
    from catalog_sync.client import SecodaClient
    from catalog_sync.models import Resource, SyncRun
    from catalog_sync.sync import run_sync

    empty_mirror()
    emulator, base_url, token = start_emulator(
        args.resources, args.seed, port=args.port,
        extra=["--latency-ms", str(args.latency_ms)] if args.latency_ms else [])
    try:
        emulator_stats(base_url, reset=True)
        rss_before = peak_rss_mb()
        client = SecodaClient(base_url, token, page_size=args.page_size)
        started = time.perf_counter()
        run = run_sync(trigger="bench", client=client, concurrency=args.concurrency)
        wall = time.perf_counter() - started
        stats = emulator_stats(base_url)
    finally:
        stop_emulator(emulator)
    if run.status != SyncRun.SUCCEEDED:
        raise SystemExit(f"The sync failed: {run.error}")
    mirrored = Resource.objects.present().count()
    page_length = min(args.page_size, 1000)
    minimum = math.ceil(args.resources / page_length)
    listing = listing_requests(stats)
    serving = stats["serving_seconds"]
    busy = stats["busy_seconds"]
    # The sync itself ends at finished_at; the dashboard's snapshot (counts, health scores) follows it.
    sync_wall = sync_seconds(run)
    result = {
        "scenario": "full",
        "resources": args.resources,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "page_size": args.page_size,
        "mirrored": mirrored,
        "requests_total": run.requests,
        "listing_requests": listing,
        "minimum_listing_requests": minimum,
        "listing_requests_ratio": round(listing / minimum, 3),
        "wall_seconds": round(sync_wall, 2),
        "snapshot_after_sync_seconds": round(wall - sync_wall, 2),
        "emulator_serving_seconds": round(serving, 2),
        "emulator_busy_seconds": round(busy, 2),
        # The share of the sync's wall time in which Secoda had no request of ours to serve: time the
        # client, not the API, was the bottleneck. Serially, busy = serving.
        "client_overhead_share": round((sync_wall - busy) / sync_wall, 3),
        "resources_per_second": round(mirrored / sync_wall),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_sync_mb": round(rss_before, 1),
    }
    suffix = (f"-c{args.concurrency}" if args.concurrency > 1 else "") + (
        f"-page{args.page_size}" if args.page_size != 1000 else "")
    write(result, f"sync-{args.resources}-latency{args.latency_ms}{suffix}.json")
    assert mirrored == args.resources, f"mirrored {mirrored} of {args.resources}"


def incremental(args):
    import requests

    from catalog_sync.client import SecodaClient
    from catalog_sync.models import Resource, SyncRun
    from catalog_sync.sync import run_sync

    empty_mirror()
    emulator, base_url, token = start_emulator(
        args.resources, args.seed, port=args.port,
        extra=["--latency-ms", str(args.latency_ms)] if args.latency_ms else [])
    try:
        full_run = run_sync(trigger="bench", client=SecodaClient(base_url, token), kind=SyncRun.FULL)
        assert full_run.status == SyncRun.SUCCEEDED, full_run.error
        full_stats = emulator_stats(base_url)
        # Change resources upstream the way a steward would: bulk updates of 100 through the API.
        changed = list(Resource.objects.order_by("?").values_list("id", flat=True)[:args.changes])
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        for start in range(0, len(changed), 100):
            body = [{"id": rid, "data": {"description": f"Benchmark edit {n}."}}
                    for n, rid in enumerate(changed[start:start + 100], start)]
            session.post(f"{base_url}/resource/all/bulk_update/", json=body, timeout=60).raise_for_status()
        emulator_stats(base_url, reset=True)
        run = run_sync(trigger="bench", client=SecodaClient(base_url, token), kind=SyncRun.INCREMENTAL)
        stats = emulator_stats(base_url)
    finally:
        stop_emulator(emulator)
    if run.status != SyncRun.SUCCEEDED or run.kind != SyncRun.INCREMENTAL:
        raise SystemExit(f"The incremental sync did not run as one: {run.error or run.fallback_reason}")
    updated = Resource.objects.filter(id__in=changed, description__startswith="Benchmark edit").count()
    result = {
        "scenario": "incremental",
        "resources": args.resources,
        "latency_ms": args.latency_ms,
        "changed_upstream": len(changed),
        "changes_mirrored": updated,
        "full_sync_seconds": round(sync_seconds(full_run), 2),
        "full_sync_listing_requests": listing_requests(full_stats),
        "incremental_seconds": round(sync_seconds(run), 2),
        "incremental_listing_requests": listing_requests(stats),
        "incremental_requests_total": run.requests,
        "incremental_share_of_full_time": round(sync_seconds(run) / sync_seconds(full_run), 4),
    }
    write(result, f"sync-incremental-{args.resources}-{args.changes}-latency{args.latency_ms}.json")
    assert updated == len(changed), f"mirrored {updated} of {len(changed)} changes"


def deletions(args):
    import requests
    from django.conf import settings
    from django.core.management import call_command

    from catalog_sync.client import SecodaClient
    from catalog_sync.models import Resource, SyncRun
    from catalog_sync.sync import run_sync

    def prepared(page_size):
        """A fresh emulator mirrored by a full sweep, then changed upstream the same way every time."""
        emulator, base_url, token = start_emulator(args.resources, args.seed, port=args.port)
        requests.post(base_url.replace("/api/v1", "/__emulator__/faults"), timeout=10,
                      json={"writes_per_minute": None, "honour_page_size": page_size == 1000})
        empty_mirror()
        first = run_sync(trigger="bench", client=SecodaClient(base_url, token, page_size=page_size))
        assert first.status == SyncRun.SUCCEEDED, first.error
        rng = random.Random(args.seed)
        session, gone = delete_upstream(base_url, token, rng, args.deleted)
        alive = Resource.objects.exclude(id__in=gone).order_by("id")
        documented = rng.sample(list(alive.filter(is_documented=False).values_list("id", flat=True)), args.documented)
        owned = rng.sample(list(alive.filter(is_owned=False).exclude(id__in=documented).values_list("id", flat=True)),
                           args.owned)
        owner = session.get(f"{base_url}/user/", timeout=30).json()["results"][0]["id"]
        edits = [{"id": rid, "data": {"description": f"Documented for the benchmark ({n})."}}
                 for n, rid in enumerate(documented)] + [{"id": rid, "data": {"owners": [owner]}} for rid in owned]
        for start in range(0, len(edits), 100):
            session.post(f"{base_url}/resource/all/bulk_update/", json=edits[start:start + 100],
                         timeout=60).raise_for_status()
        emulator_stats(base_url, reset=True)
        return emulator, base_url, token, session, documented, owned, gone

    levels = []
    for page_size in (1000, 50):
        # The full sweep, from the same starting point as the incremental sync below.
        emulator, base_url, token, *_ = prepared(page_size)
        try:
            full = run_sync(trigger="bench", client=SecodaClient(base_url, token, page_size=page_size))
            full_stats = emulator_stats(base_url)
        finally:
            stop_emulator(emulator)
        assert full.status == SyncRun.SUCCEEDED, full.error

        emulator, base_url, token, session, documented, owned, gone = prepared(page_size)
        try:
            settings.SECODA_API_URL, settings.SECODA_API_TOKEN, settings.SECODA_PAGE_SIZE = base_url, token, page_size
            started = time.perf_counter()
            call_command("sync_catalog", stdout=open(os.devnull, "w"))  # the default: incremental
            incremental_wall = time.perf_counter() - started
            run = SyncRun.objects.order_by("-pk").first()
            stats = emulator_stats(base_url)
            upstream_count = session.get(f"{base_url}/resource/catalog/", params={"page_size": 1},
                                         timeout=60).json()["count"]
        finally:
            stop_emulator(emulator)
        # The mirror was exact before; now it must hold as many as Secoda, none of the deleted, and the edits.
        exact = Resource.objects.present().count() == upstream_count and not Resource.objects.present().filter(
            id__in=gone).exists() and all(
            r.description.startswith("Documented for the benchmark") for r in Resource.objects.filter(id__in=documented)
        ) and Resource.objects.filter(id__in=owned, is_owned=True).count() == len(owned)
        level = {
            "page_size": page_size,
            "sync_kind": run.kind,
            "status": run.status,
            "exact": exact,
            "removed": run.removed,
            "deletion_check": run.options.get("deletions"),
            "incremental_requests": stats["requests"],
            "incremental_listing_requests": listing_requests(stats),
            # The sync itself, measured as the full sweep's is (its start to its end); the command also takes
            # the dashboard's snapshot after it (counts, scores, history, suggestions).
            "incremental_seconds": round(sync_seconds(run), 2),
            "incremental_with_snapshot_seconds": round(incremental_wall, 2),
            "full_sweep_requests": full_stats["requests"],
            "full_sweep_listing_requests": listing_requests(full_stats),
            "full_sweep_removed": full.removed,
            "full_sweep_seconds": round(sync_seconds(full), 2),
            "incremental_share_of_full_requests": round(stats["requests"] / full_stats["requests"], 3),
        }
        print(json.dumps(level), flush=True)
        levels.append(level)
        if not exact or run.kind != SyncRun.INCREMENTAL:
            raise SystemExit(f"The incremental sync was not exact: {level}")
    write({"scenario": "deletions", "resources": args.resources, "deleted": args.deleted,
           "documented": args.documented, "owned": args.owned, "levels": levels},
          f"sync-deletions-{args.resources}.json")


def delete_upstream(base_url, token, rng, how_many):
    """Delete `how_many` resources through the API (see doomed). Returns the session and their ids."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    gone = doomed(rng, how_many)
    for resource_id in gone:
        session.delete(f"{base_url}/resource/all/{resource_id}", timeout=30).raise_for_status()
    return session, gone


def doomed(rng, how_many):
    """Resources to delete, the way they go: whole tables with their columns, dashboards with their charts."""
    from catalog_sync.models import Resource

    heads = list(Resource.objects.filter(entity_type__in=["table", "dashboard"]).order_by("id")
                 .values_list("id", flat=True))
    rng.shuffle(heads)
    gone = []
    for head in heads:
        children = list(Resource.objects.filter(parent_id=head).order_by("id").values_list("id", flat=True))
        gone.extend([*children, head][: how_many - len(gone)])
        if len(gone) >= how_many:
            return gone
    return gone


def fanout(args):
    import redis
    import requests

    emulator, base_url, token = start_emulator(
        args.resources, args.seed, port=args.port, extra=["--latency-ms", str(args.latency_ms)])
    env = {**os.environ, "REDIS_URL": BENCH_REDIS, "SECODA_API_URL": base_url, "SECODA_API_TOKEN": token,
           "SYNC_FAN_OUT": "true", "LOG_LEVEL": "WARNING", "SECODA_MAX_REQUESTS_PER_SECOND":
           str(args.max_requests_per_second)}
    levels, conditions = [], {"cpus": os.cpu_count(), "load_average_at_start": load_average()}
    try:
        for slices in args.slices:
            if not args.keep_mirror:
                empty_mirror()
            sweeps = []
            for number in range(1, args.sweeps + 1):
                during = args.pages_during and number == args.sweeps
                sweep = fanned_out_sweep(args, env, base_url, slices, emulator.pid, pages=during)
                sweep["sweep"] = number
                sweep["mirror_before"] = "empty" if number == 1 and not args.keep_mirror else "full"
                print(json.dumps(sweep), flush=True)
                sweeps.append(sweep)
            level = {**sweeps[0], "worker_processes": slices}
            if len(sweeps) > 1:
                level["sweeps"] = sweeps
            levels.append(level)
        if args.pages_during:
            conditions["pages_at_rest"] = pages_at_rest(args)
        if args.copy_floor:
            conditions["copy_floor"] = copy_floor()
        conditions["load_average_at_end"] = load_average()
        if args.then_deletions:
            requests.post(base_url.replace("/api/v1", "/__emulator__/faults"), timeout=10,
                          json={"writes_per_minute": None})
            deletions_result = incremental_with_deletions(args, base_url, token)
    finally:
        stop_emulator(emulator)
        redis.Redis.from_url(BENCH_REDIS).flushdb()
    base = levels[0]["wall_seconds"]
    for level in levels:
        level["speedup_over_first"] = round(base / level["wall_seconds"], 2)
    result = {"scenario": "fanout", "resources": args.resources, "latency_ms": args.latency_ms,
              "max_requests_per_second": args.max_requests_per_second, "levels": levels, "conditions": conditions}
    write(result, f"sync-fanout-{args.resources}-latency{args.latency_ms}.json")
    if args.then_deletions:
        write(deletions_result, f"sync-deletions-{args.resources}-latency{args.latency_ms}.json")


def fanned_out_sweep(args, env, base_url, slices, emulator_pid, pages=False):
    """One full sweep on `slices` prefork worker processes, then the snapshot the last worker takes after it.
    Returns its figures: wall, requests against the minimum, memory and CPU of the workers, each step after
    the listing, and (with `pages`) the dashboard's page times while it ran."""
    import redis

    from catalog_sync.models import Resource, SyncRun, SyncSlice
    from catalog_sync.slices import peak_memory_by_worker
    from hygiene.dashboard.models import Snapshot

    redis.Redis.from_url(BENCH_REDIS).flushdb()
    emulator_stats(base_url, reset=True)
    last_run = SyncRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hygiene", "worker", "--pool", "prefork",
         "--concurrency", str(slices), "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
         "--prefetch-multiplier", "1", "-n", f"bench{slices}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(ROOT / "var" / "bench-worker.log", "w"),
        start_new_session=True)
    page_client = page_times = None
    if pages:
        page_client, page_paths = steward_pages()
        page_times = {label: [] for label in page_paths}
    load_before = load_average()
    try:
        wait_for_workers(worker.pid, slices)
        cpu_idle = process_group_cpu(worker.pid)
        machine_idle, emulator_idle = machine_cpu(), processes_cpu([emulator_pid])
        subprocess.run(
            [sys.executable, "-c",
             "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'hygiene.settings'); "
             "django.setup(); from catalog_sync.tasks import sync_catalog; "
             "sync_catalog.delay(trigger='bench', kind='full')"],
            cwd=ROOT, env=env, check=True)
        deadline = time.monotonic() + args.timeout
        run = None
        while time.monotonic() < deadline:
            run = SyncRun.objects.filter(pk__gt=last_run, trigger="bench").exclude(status=SyncRun.RUNNING).first()
            if run is not None:
                break
            if pages and SyncRun.objects.filter(pk__gt=last_run, status=SyncRun.RUNNING,
                                                stage=SyncRun.SWEEPING).exists():
                for label, path in page_paths.items():
                    page_times[label].append(timed_get(page_client, path))
            else:
                time.sleep(1)
        if run is None:
            raise SystemExit(f"No sweep finished within {args.timeout} s.")
        cpu_sweep = process_group_cpu(worker.pid)
        machine_sweep, emulator_sweep = machine_cpu(), processes_cpu([emulator_pid])
        snapshot = None
        while time.monotonic() < deadline:
            snapshot = Snapshot.objects.filter(sync_run=run).first()
            if snapshot is not None or run.status not in (SyncRun.SUCCEEDED, SyncRun.INCOMPLETE):
                break
            time.sleep(1)
        cpu_all = process_group_cpu(worker.pid)
        peaks_seen = process_group_peak_rss(worker.pid)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    stats = emulator_stats(base_url)
    if run.status != SyncRun.SUCCEEDED:
        raise SystemExit(f"The {slices}-slice sweep failed: {run.error}")
    peaks = peak_memory_by_worker(run)
    mirrored = Resource.objects.present().count()
    page_length = run.options.get("page_length") or 1000
    minimum = math.ceil(args.resources / page_length)
    listing = listing_requests(stats)
    sweep_cpu = cpu_sweep - cpu_idle
    slice_rows = list(SyncSlice.objects.filter(run=run).values_list("listed", "requests", "split", "remainder"))
    figures = {
        "worker_processes": slices,
        "wall_seconds": round(sync_seconds(run), 1),
        "mirrored": mirrored,
        "requests": run.requests,
        "listing_requests": listing,
        "slices": len(slice_rows),
        "peak_rss_mb_per_worker_max": round(max(peaks.values()), 1) if peaks else None,
        "peak_rss_mb_per_worker_min": round(min(peaks.values()), 1) if peaks else None,
        "workers_that_ran_slices": len(peaks),
        # What the sweep needed, and where its requests went.
        "page_length": page_length,
        "minimum_listing_requests": minimum,
        "listing_requests_ratio": round(listing / minimum, 3),
        "requests_by_slice_kind": requests_by_slice_kind(slice_rows),
        # Every process of the worker (the parent and its pool), peak resident memory over the whole run,
        # the snapshot the finishing worker takes included.
        "peak_rss_mb_per_process_max": round(max(peaks_seen), 1) if peaks_seen else None,
        "peak_rss_mb_per_process_min": round(min(peaks_seen), 1) if peaks_seen else None,
        # CPU (user + system) of the worker processes from the sweep's start to its recorded end (the finish
        # steps included), and then for the snapshot.
        "worker_cpu_seconds_sweep": round(sweep_cpu, 1),
        "worker_cpu_seconds_per_10000": round(sweep_cpu / (mirrored / 10_000), 2) if mirrored else None,
        "worker_cpu_seconds_snapshot": round(cpu_all - cpu_sweep, 1),
        # Where the 2 cores went during the sweep: the emulator stands in for Secoda's own servers.
        "sweep_cpu_seconds": {
            "workers": round(sweep_cpu, 1), "emulator": round(emulator_sweep - emulator_idle, 1),
            "postgres": (round(machine_sweep["postgres"] - machine_idle["postgres"], 1)
                         if machine_idle["postgres"] is not None else None),
            "machine_busy": round(machine_sweep["machine_busy"] - machine_idle["machine_busy"], 1),
            "machine_available": round(sync_seconds(run) * os.cpu_count(), 1)},
        "finish_seconds": run.options.get("finish_seconds"),
        "snapshot_seconds": snapshot.durations if snapshot else None,
        "snapshot_wall_seconds": round((snapshot.taken_at - run.finished_at).total_seconds(), 1) if snapshot else None,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    if pages:
        figures["pages_during_sweep"] = {label: summary(times) for label, times in page_times.items()}
    return figures


def requests_by_slice_kind(rows):
    """Listing requests by what the slice did: split a capped listing, listed a range of pages, a pack of
    parents, a remainder, or a whole listing; with rows listed and the requests a perfect split would need."""
    kinds = {}
    for listed, requests_made, split, remainder in rows:
        kind = "remainder" if remainder else {"integrations": "workspace", "types": "integration",
                                              "parents": "type", "pack": "pack of parents"}.get(split, "listing")
        entry = kinds.setdefault(kind, {"slices": 0, "requests": 0, "listed": 0})
        entry["slices"] += 1
        entry["requests"] += requests_made
        entry["listed"] += listed
    return kinds


def wait_for_workers(pid, processes, timeout=120):
    """Until the pool's processes are up (the parent and `processes` children), and a little more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(process_group(pid)) < processes + 1:
        time.sleep(0.5)
    time.sleep(3)


def process_group(pgid):
    """Ids of the live processes in this process group."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                found.append(int(entry))
    return found


def process_group_cpu(pgid):
    return processes_cpu(process_group(pgid))


def process_group_peak_rss(pgid):
    peaks = []
    for pid in process_group(pgid):
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peaks


def load_average():
    return [round(n, 2) for n in os.getloadavg()]


def steward_pages():
    """A logged-in steward's django.test.Client, and the pages to time: the overview, the unowned list and a
    table's page."""
    sys.path.insert(0, str(ROOT / "bench"))
    from django.conf import settings

    from catalog_sync.models import Resource
    from pages import steward_client

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # django.test.Client's host
    client, _ = steward_client()
    table = (Resource.objects.filter(entity_type="table", removed_at__isnull=True).order_by("id")
             .values_list("id", flat=True).first())
    paths = {"overview /": "/", "unowned /issues/unowned/": "/issues/unowned/"}
    if table:
        paths["resource page (a table)"] = f"/resources/{table}/"
    return client, paths


def timed_get(client, path):
    started = time.perf_counter()
    response = client.get(path)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    return round(seconds * 1000, 1)


def summary(times):
    import statistics

    if not times:
        return {"requests": 0}
    ordered = sorted(times)
    return {"requests": len(times), "median_ms": round(statistics.median(times), 1),
            "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], "max_ms": ordered[-1]}


def pages_at_rest(args, repeat=20, warmups=3):
    """The same pages with nothing running, after the last sweep and its snapshot."""
    client, paths = steward_pages()
    result = {"load_average": load_average()}
    for label, path in paths.items():
        for _ in range(warmups):
            timed_get(client, path)
        result[label] = summary([timed_get(client, path) for _ in range(repeat)])
    return result


def copy_floor():
    """The floor for writing the mirror: COPY of the same rows into a table with the same indexes (LIKE …
    INCLUDING ALL) and fillfactor, out to a file and in again; seconds per 10,000 rows."""
    from django.db import connection

    from catalog_sync.models import Resource

    table = Resource._meta.db_table
    dump = ROOT / "var" / "bench-copy-floor.copy"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy_floor")
        cursor.execute(f"CREATE TABLE bench_copy_floor (LIKE {table} INCLUDING ALL)")
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
        options = cursor.fetchone()[0]  # the table's fillfactor, which LIKE does not copy
        if options:
            cursor.execute(f"ALTER TABLE bench_copy_floor SET ({', '.join(options)})")
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'bench_copy_floor'")
        indexes = cursor.fetchone()[0]
        raw = cursor.connection  # psycopg 3
        started = time.perf_counter()
        with open(dump, "wb") as out, raw.cursor().copy(f"COPY {table} TO STDOUT") as copy:
            for chunk in copy:
                out.write(chunk)
        out_seconds = time.perf_counter() - started
        rows = Resource.objects.count()
        started = time.perf_counter()
        with open(dump, "rb") as source, raw.cursor().copy("COPY bench_copy_floor FROM STDIN") as copy:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        raw.commit() if not raw.autocommit else None
        in_seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy_floor")
    size_mb = dump.stat().st_size / 1048576
    dump.unlink()
    return {"rows": rows, "indexes": indexes, "copy_out_seconds": round(out_seconds, 1),
            "copy_in_seconds": round(in_seconds, 1), "copy_file_mb": round(size_mb),
            "copy_in_seconds_per_10000": round(in_seconds / (rows / 10_000), 3), "load_average": load_average()}


def incremental_with_deletions(args, base_url, token):
    """On the mirror the sweeps left: --changes resources edited and --deleted deleted upstream (whole tables
    with their columns, dashboards with their charts), then the default incremental sync in this process at
    the same latency, deletion check included; checked equal to the workspace."""
    from django.conf import settings

    from catalog_sync.client import SecodaClient
    from catalog_sync.models import Resource, SyncRun
    from catalog_sync.sync import run_sync
    from hygiene.dashboard.models import Snapshot

    rng = random.Random(args.seed)
    session, gone = delete_upstream(base_url, token, rng, args.deleted)
    changed = rng.sample(list(Resource.objects.present().exclude(id__in=gone).filter(entity_type="column")
                              .order_by("id").values_list("id", flat=True)[:200_000]), args.changes)
    for start in range(0, len(changed), 100):
        body = [{"id": rid, "data": {"description": f"Benchmark edit {n}."}}
                for n, rid in enumerate(changed[start:start + 100], start)]
        session.post(f"{base_url}/resource/all/bulk_update/", json=body, timeout=60).raise_for_status()
    emulator_stats(base_url, reset=True)
    load_before = load_average()
    started = time.perf_counter()
    run = run_sync(trigger="bench", client=SecodaClient(base_url, token), kind=SyncRun.INCREMENTAL)
    with_snapshot = time.perf_counter() - started  # the snapshot runs in this process, after the sync
    stats = emulator_stats(base_url)
    upstream_count = session.get(f"{base_url}/resource/catalog/", params={"page_size": 1}, timeout=120).json()["count"]
    snapshot = Snapshot.objects.filter(sync_run=run).first()
    exact = (Resource.objects.present().count() == upstream_count
             and not Resource.objects.present().filter(id__in=gone).exists()
             and Resource.objects.filter(id__in=changed, description__startswith="Benchmark edit").count()
             == len(changed))
    result = {
        "scenario": "deletions", "resources": args.resources, "latency_ms": args.latency_ms,
        "count_concurrency": settings.SECODA_COUNT_CONCURRENCY,
        "changed": len(changed), "deleted": len(gone), "sync_kind": run.kind, "status": run.status,
        "exact": exact, "removed": run.removed,
        "incremental_seconds": round(sync_seconds(run), 2),
        "incremental_requests": stats["requests"],
        "incremental_listing_requests": listing_requests(stats),
        "requests_by_path": stats["requests_by_path"],
        "emulator_serving_seconds": round(stats["serving_seconds"], 2),
        "deletion_check": run.options.get("deletions"),
        "finish_seconds": run.options.get("finish_seconds"),
        "snapshot_seconds": snapshot.durations if snapshot else None,
        "with_snapshot_seconds": round(with_snapshot, 2),
        "warnings": run.warnings,
        "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_average(),
    }
    print(json.dumps(result), flush=True)
    if run.status != SyncRun.SUCCEEDED or run.kind != SyncRun.INCREMENTAL or not exact:
        print(f"The incremental sync was not exact: {run.error or run.fallback_reason}", file=sys.stderr)
    return result


def write(result, name):
    print(json.dumps(result, indent=2))
    (ROOT / "bench" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["full", "incremental", "deletions", "fanout"], default="full")
    parser.add_argument("--resources", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=None, help="Emulated per-request latency.")
    parser.add_argument("--concurrency", type=int, default=1, help="full: slices listed at once (threads).")
    parser.add_argument("--changes", type=int, default=500, help="incremental: resources changed upstream.")
    parser.add_argument("--deleted", type=int, default=250, help="deletions: resources deleted upstream.")
    parser.add_argument("--documented", type=int, default=400, help="deletions: resources documented upstream.")
    parser.add_argument("--owned", type=int, default=300, help="deletions: resources given owners upstream.")
    parser.add_argument("--slices", default="1,2,4,8", help="fanout: worker process counts to try.")
    parser.add_argument("--max-requests-per-second", type=float, default=50.0,
                        help="fanout: the shared request budget (SECODA_MAX_REQUESTS_PER_SECOND).")
    parser.add_argument("--timeout", type=int, default=3600, help="fanout: seconds to wait for each sweep.")
    parser.add_argument("--sweeps", type=int, default=1,
                        help="fanout: sweeps at each level, the first into an empty mirror, the next over it.")
    parser.add_argument("--keep-mirror", action="store_true",
                        help="fanout: sweep over the mirror the database holds (from an earlier run) instead of "
                             "emptying it first.")
    parser.add_argument("--pages-during", action="store_true",
                        help="fanout: time the overview, the unowned list and a table's page during the last "
                             "sweep, and at rest after it.")
    parser.add_argument("--copy-floor", action="store_true",
                        help="fanout: time COPY of the mirrored rows into a table with the same indexes.")
    parser.add_argument("--then-deletions", action="store_true",
                        help="fanout: then --changes edits and --deleted deletions upstream, and an incremental "
                             "sync at the same latency (sync-deletions-N-latencyL.json).")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--page-size", type=int, default=1000,
                        help="full: page_size asked of the emulator (it honours up to 1,000; 50 is Secoda's default).")
    parser.add_argument("--database", default="hygiene_bench")
    args = parser.parse_args()
    defaults = {"full": (50_000, 0), "incremental": (50_000, 0), "deletions": (8_000, 0), "fanout": (200_000, 200)}[args.scenario]
    args.resources = args.resources or defaults[0]
    args.latency_ms = defaults[1] if args.latency_ms is None else args.latency_ms
    args.slices = [int(n) for n in args.slices.split(",")]
    os.environ.setdefault("SYNC_FAN_OUT", "false")  # `full` and `incremental` run in this process
    use_bench_database(args.database)
    {"full": full, "incremental": incremental, "deletions": deletions, "fanout": fanout}[args.scenario](args)


if __name__ == "__main__":
    main()
