"""Migration benchmark: 20,000 matched pairs, matched and previewed, then applied through the emulator.

Writes an old and a new integration of N resources each straight into PostgreSQL (one INSERT … SELECT over
unnest; database `migr_bench`): one database, 20 schemas, tables and their columns, the old side documented
(a description and an owner each) and in lower case, the new side blank and in upper case, so every resource
pairs with one on the other side and every pair has something to copy. Then times:

1. the matching (`services.match_integrations`: the two integrations read, paths built, joined);
2. the preview (`services.build_migration`: values read, the copy planned, the change set and its N items
   stored), what a steward waits for after "Preview the changes";
3. the apply (`bulk.run_change_set`) against the emulator over HTTP, serving the same N new resources in a
   process of its own, counting its write calls (must be ceil(N / 100)).

Secoda allows 30 writes a minute. By default the bench lifts that limit on both sides (the client's throttle
and the emulator's), so the apply measures this code, not the wait; the floor the limit sets is reported
beside it. `--writes-per-minute 30` keeps the limit (200 writes then take at least 5 min 40 s).

    .venv/bin/python bench/migration.py [--pairs 20000] [--writes-per-minute 30]

Writes bench/results/migration-N.json (migration-N-limit30.json with the limit kept).
"""
import argparse
import json
import math
import multiprocessing
import time

from _common import ROOT, peak_rss_mb, use_bench_database
from history import column_expressions

DATABASE = "migr_bench"
TOKEN = "bench-token"
OLD, NEW = "bench-old", "bench-new"
SCHEMAS = 20
COPIED = ["description", "owners"]


def layout(n):
    """[(entity type, title, parent index or None)] for n resources: a database, SCHEMAS schemas, then tables
    spread over the schemas and columns spread over the tables (about 19 a table)."""
    rows = [("database", "analytics", None)]
    rows += [("schema", f"schema_{s}", 0) for s in range(1, SCHEMAS + 1)]
    tables = max(1, (n - len(rows)) // 20)
    first_table = len(rows)
    rows += [("table", f"table_{t}", 1 + (t - 1) % SCHEMAS) for t in range(1, tables + 1)]
    rows += [("column", f"column_{c}", first_table + (c - 1) % tables) for c in range(1, n - len(rows) + 1)]
    return rows


def resource_id(side, index):
    return f"{'o' if side == OLD else 'n'}{index:06d}"


def seed(n):
    """Both integrations, straight into PostgreSQL. Returns seconds taken."""
    from django.db import connection

    from catalog_sync.models import Integration, Resource, SecodaUser

    SecodaUser.objects.update_or_create(id="bench-user", defaults={"first_name": "Bench", "last_name": "Owner",
                                                                    "email": "bench@example.com"})
    Integration.objects.update_or_create(id=OLD, defaults={"name": "Old warehouse", "type": "redshift"})
    Integration.objects.update_or_create(id=NEW, defaults={"name": "New warehouse", "type": "bigquery"})
    rows = layout(n)
    columns, expressions = column_expressions(Resource, {
        "id": "v.id", "entity_type": "v.kind", "native_type": "v.kind", "title": "v.title", "title_full": "v.path",
        "parent": "v.parent", "integration": "v.integration", "description": "v.description",
        "owners": "v.owners::jsonb", "is_owned": "v.owners <> '[]'", "is_documented": "v.description <> ''",
        "published": "true", "last_seen_run": "NULL",
    })
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE catalog_sync_resource, catalog_sync_resourceref, lifecycle_issueinterval, "
                       "bulk_changeitem, bulk_changeset, migration_migrationplan CASCADE")
        for side in (OLD, NEW):
            names = [title if side == OLD else title.upper() for _, title, _ in rows]
            full = []
            for index, (_, _, parent) in enumerate(rows):
                full.append(names[index] if parent is None else f"{full[parent]}.{names[index]}")
            documented = side == OLD
            cursor.execute(
                f"INSERT INTO catalog_sync_resource ({columns}) SELECT {expressions} FROM unnest("
                f"%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
                f"AS v(id, kind, title, path, parent, integration, description, owners)",
                [[resource_id(side, i) for i in range(len(rows))], [kind for kind, _, _ in rows], names, full,
                 [None if parent is None else resource_id(side, parent) for _, _, parent in rows],
                 [side] * len(rows),
                 [f"The {title.replace('_', ' ')} everyone reports from." if documented else ""
                  for _, title, _ in rows],
                 ['["bench-user"]' if documented else "[]"] * len(rows)])
        cursor.execute("ANALYZE catalog_sync_resource")
    return time.perf_counter() - started


def serve(n, writes_per_minute, ports):
    """The emulator, in a process of its own, holding the new integration's resources as the mirror has them; it
    binds a free port and says which on `ports`."""
    from secoda_emulator.records import Res
    from secoda_emulator.server import EmulatorServer, Faults
    from secoda_emulator.workspace import Workspace

    workspace = Workspace(seed=1)
    workspace._integrations.append({"id": NEW, "name": "New warehouse", "type": "bigquery"})
    workspace._integration_types[NEW] = "bigquery"
    now = time.time()
    for index, (kind, title, parent) in enumerate(layout(n)):
        workspace._insert(Res(
            id=resource_id(NEW, index), entity_type=kind, native_type=kind, title=title.upper(), description="",
            definition="", definition_version=0, parent=None if parent is None else resource_id(NEW, parent),
            integration=NEW, children_count=0, created=now, updated=now, ext_updated=None, stale=False,
            stale_at=None, forced_unstale=False, archived=False, archived_at=None, owners=(), owners_groups=(),
            collections=(), tags=(), teams=(), subscribers=(), bookmarked_by=(), internal_users=(),
            external_users=(), sources=(), pii=False, verified=False, published=True, internal_usage=0,
            external_usage=0, row_count=None, byte_size=None, style=0))
    server = EmulatorServer(workspace, token=TOKEN, port=0,
                            faults=Faults(writes_per_minute=writes_per_minute or None))
    ports.put(server.port)
    server.serve_forever()


def start_emulator(n, writes_per_minute):
    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    process = context.Process(target=serve, args=(n, writes_per_minute, ports), daemon=True)
    process.start()
    try:
        port = ports.get(timeout=120)
    except Exception:
        process.kill()
        raise SystemExit("The emulator did not start in 2 minutes.") from None
    return process, f"http://127.0.0.1:{port}/api/v1"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--writes-per-minute", type=int, default=0,
                        help="Secoda's write limit on both sides (default 0: lifted)")
    args = parser.parse_args()
    use_bench_database(DATABASE)
    import requests
    from django.contrib.auth import get_user_model

    from catalog_sync.client import SecodaClient
    from catalog_sync.models import Integration
    from hygiene.bulk import services as bulk
    from hygiene.bulk.models import ChangeItem, ChangeSet
    from hygiene.migration import services

    n = args.pairs
    result = {"pairs": n, "seed_seconds": round(seed(n), 2)}
    print(f"{n:,} pairs written in {result['seed_seconds']} s")
    steward, _ = get_user_model().objects.get_or_create(username="bench-steward")
    old, new = Integration.objects.get(pk=OLD), Integration.objects.get(pk=NEW)

    started = time.perf_counter()
    matching = services.match_integrations(OLD, NEW)
    result["match_seconds"] = round(time.perf_counter() - started, 3)
    assert len(matching.pairs) == n, f"{len(matching.pairs)} pairs matched, expected {n}"
    started = time.perf_counter()
    plan = services.build_migration(steward, old, new, [], {}, COPIED, overwrite=False, matching=matching)
    result["preview_seconds"] = round(time.perf_counter() - started, 3)
    change_set = plan.change_set
    result["items"] = change_set.items.count()
    result["estimated_write_calls"] = bulk.estimate(result["items"])["calls"]
    print(f"matching {result['match_seconds']} s, preview (plan and change set of {result['items']:,} items) "
          f"{result['preview_seconds']} s")
    started = time.perf_counter()
    check = services.end_check(services.match_integrations(OLD, NEW))
    result["end_check_seconds_before"] = round(time.perf_counter() - started, 3)
    result["undocumented_before"] = check.undocumented_count

    emulator, base_url = start_emulator(n, args.writes_per_minute)
    refresh = bulk.refresh_counts
    timings = {}

    def timed_refresh(change_set_id=None):
        began = time.perf_counter()
        refresh(change_set_id)
        timings["counts_refresh_seconds"] = round(time.perf_counter() - began, 2)

    bulk.refresh_counts = timed_refresh
    try:
        ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.PENDING)
        control = base_url.replace("/api/v1", "/__emulator__")
        requests.post(f"{control}/reset-stats", timeout=10)
        client = SecodaClient(base_url, TOKEN, writes_per_minute=args.writes_per_minute or 1_000_000)
        started = time.perf_counter()
        bulk.run_change_set(change_set.pk, client=client)
        result["apply_seconds"] = round(time.perf_counter() - started, 2)
        stats = requests.get(f"{control}/stats", timeout=10).json()
    finally:
        bulk.refresh_counts = refresh
        emulator.terminate()
        emulator.join(10)
    change_set.refresh_from_db()
    by_path = stats["requests_by_path"]
    writes = sum(count for path, count in by_path.items() if "bulk_update" in path)
    expected = math.ceil(n / 100)
    started = time.perf_counter()
    check = services.end_check(services.match_integrations(OLD, NEW))
    result.update({
        "status": change_set.status,
        "applied": change_set.items.filter(status=ChangeItem.APPLIED).count(),
        "write_calls": writes,
        "expected_write_calls": expected,
        "read_calls": sum(by_path.values()) - writes,
        "api_calls_counted": change_set.api_calls,
        "writes_per_minute": args.writes_per_minute or "lifted",
        "write_rate_floor_seconds_at_30_a_minute": round(max(0, expected - 30) / 30 * 60, 1),
        "emulator_serving_seconds": round(stats["serving_seconds"], 2),
        **timings,
        "end_check_seconds_after": round(time.perf_counter() - started, 3),
        "undocumented_after": check.undocumented_count,
        "peak_rss_mb": round(peak_rss_mb()),
    })
    print(json.dumps(result, indent=2))
    limit = f"-limit{args.writes_per_minute}" if args.writes_per_minute else ""
    (ROOT / "bench" / "results" / f"migration-{n}{limit}.json").write_text(json.dumps(result, indent=2) + "\n")
    assert writes == expected, f"{writes} write calls, expected {expected}"
    assert result["applied"] == n and check.undocumented_count == 0


if __name__ == "__main__":
    main()
