"""Bulk edit benchmark: set an owner on 2,000 unowned resources through the emulator.

Reports write calls (must be ceil(2,000 / 100) = 20), re-read calls, and wall
time against the write-rate floor (Secoda allows 30 writes a minute).

    .venv/bin/python bench/bulk_edit.py [--resources-to-edit 2000]
"""
import argparse
import json
import math
import time

from _common import stop_emulator, ROOT, start_emulator, use_bench_database


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources-to-edit", type=int, default=2000)
    parser.add_argument("--workspace", type=int, default=10_000)
    args = parser.parse_args()

    use_bench_database("hygiene_bench_bulk")
    import requests
    from django.contrib.auth import get_user_model
    from django.db import connection

    from catalog_sync.client import SecodaClient
    from catalog_sync.models import Resource, ResourceRef, SecodaUser
    from catalog_sync.sync import run_sync
    from hygiene.bulk import services
    from hygiene.bulk.models import ChangeItem, ChangeSet

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Resource._meta.db_table}, {ResourceRef._meta.db_table}")
    emulator, base_url, token = start_emulator(args.workspace, seed=2, port=8795)
    try:
        run = run_sync(trigger="bench", client=SecodaClient(base_url, token))
        assert run.status == "succeeded", run.error
        user = SecodaUser.objects.present().order_by("email").first()
        steward, _ = get_user_model().objects.get_or_create(username="bench-steward")
        ids = list(Resource.objects.filter(is_owned=False, archived=False, removed_at__isnull=True)
                   .order_by("id").values_list("pk", flat=True)[: args.resources_to_edit])
        assert len(ids) == args.resources_to_edit, f"only {len(ids)} unowned resources"
        change_set = services.build_change_set(
            steward, Resource.objects.filter(pk__in=ids), {"owners": {"mode": "add", "users": [user.pk]}},
            "bench: add an owner")
        ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.PENDING)
        stats_url = base_url.replace("/api/v1", "/__emulator__")
        requests.post(f"{stats_url}/reset-stats", timeout=10)
        client = SecodaClient(base_url, token)  # 30 writes a minute, like Secoda
        started = time.perf_counter()
        services.run_change_set(change_set.pk, client=client)
        wall = time.perf_counter() - started
        stats = requests.get(f"{stats_url}/stats", timeout=10).json()
    finally:
        stop_emulator(emulator)
    change_set.refresh_from_db()
    by_path = stats["requests_by_path"]
    writes = sum(n for path, n in by_path.items() if "bulk_update" in path)
    reads = sum(n for path, n in by_path.items() if "resource/catalog" in path or "resource/all/" in path) - writes
    expected = math.ceil(args.resources_to_edit / 100)
    floor = max(0, expected - 30) / 30 * 60
    result = {
        "resources_edited": change_set.items.filter(status=ChangeItem.APPLIED).count(),
        "write_calls": writes,
        "expected_write_calls": expected,
        "reread_calls": reads,
        "throttled_by_emulator": stats["throttled"],
        "wall_seconds": round(wall, 2),
        "write_rate_floor_seconds": round(floor, 1),
        "emulator_serving_seconds": round(stats["serving_seconds"], 2),
        "status": change_set.status,
    }
    print(json.dumps(result, indent=2))
    (ROOT / "bench" / "results" / "bulk_edit.json").write_text(json.dumps(result, indent=2) + "\n")
    assert writes == expected, f"{writes} write calls, expected {expected}"


if __name__ == "__main__":
    main()
