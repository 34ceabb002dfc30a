"""Sync benchmark: mirror N emulated resources into PostgreSQL.

Reports requests made against the minimum (resources / 50), wall time against
the emulator's own serving time, and the sync process's peak memory.

    .venv/bin/python bench/sync.py [--resources 50000]
"""
import argparse
import json
import math
import time

from _common import stop_emulator, ROOT, peak_rss_mb, start_emulator, use_bench_database


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0, help="Emulated per-request latency (default 0).")
    args = parser.parse_args()

    use_bench_database()
    import requests
    from catalog_sync.client import SecodaClient
    from catalog_sync.models import Resource, ResourceRef, SyncRun
    from catalog_sync.sync import run_sync

    from django.db import connection

    with connection.cursor() as cursor:  # start from an empty mirror (TRUNCATE loads nothing into memory)
        cursor.execute(f"TRUNCATE {Resource._meta.db_table}, {ResourceRef._meta.db_table}")
    emulator, base_url, token = start_emulator(
        args.resources, args.seed, extra=["--latency-ms", str(args.latency_ms)] if args.latency_ms else [])
    try:
        stats_url = base_url.replace("/api/v1", "/__emulator__")
        requests.post(f"{stats_url}/reset-stats", timeout=10)
        rss_before = peak_rss_mb()
        client = SecodaClient(base_url, token)
        started = time.perf_counter()
        run = run_sync(trigger="bench", client=client)
        wall = time.perf_counter() - started
        stats = requests.get(f"{stats_url}/stats", timeout=10).json()
    finally:
        stop_emulator(emulator)
    if run.status != SyncRun.SUCCEEDED:
        raise SystemExit(f"The sync failed: {run.error}")
    mirrored = Resource.objects.present().count()
    minimum = math.ceil(args.resources / 50)
    listing = sum(n for path, n in stats["requests_by_path"].items() if "resource/catalog" in path)
    serving = stats["serving_seconds"]
    # The sync itself ends at finished_at; the dashboard's snapshot (counts, health scores) follows it.
    sync_wall = (run.finished_at - run.started_at).total_seconds()
    result = {
        "resources": args.resources,
        "latency_ms": args.latency_ms,
        "mirrored": mirrored,
        "requests_total": run.requests,
        "listing_requests": listing,
        "minimum_listing_requests": minimum,
        "listing_requests_ratio": round(listing / minimum, 3),
        "wall_seconds": round(sync_wall, 2),
        "snapshot_after_sync_seconds": round(wall - sync_wall, 2),
        "emulator_serving_seconds": round(serving, 2),
        "client_overhead_share": round((sync_wall - serving) / sync_wall, 3),
        "resources_per_second": round(mirrored / sync_wall),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_sync_mb": round(rss_before, 1),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / f"sync-{args.resources}-latency{args.latency_ms}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    assert mirrored == args.resources, f"mirrored {mirrored} of {args.resources}"


if __name__ == "__main__":
    main()
