"""Page-speed benchmark: the dashboard's pages over a mirror of 100,000 resources.

Seeds its own PostgreSQL database (`hygiene_bench_pages`) from the Secoda emulator
(reused when it already holds the wanted number of present resources), logs in as a
steward with django.test.Client, and requests every page N times after a few warm-ups.
Reports the median and p95 latency and the SQL queries a request runs; the CSV export
(whole streamed body consumed) is reported on its own with its row count.

    .venv/bin/python bench/pages.py [--repeat 30] [--warmups 3] [--csv-repeat N] [--filter-snoozes N]

Writes bench/results/pages.json (pages-filter-snoozes-N.json with --filter-snoozes, which
adds N filter-wide snoozes for the run and removes them afterwards). Pages whose median
is not under --target-ms (200) are listed at the end with their slowest SQL.
"""
import argparse
import csv
import io
import json
import math
import os
import statistics
import time
from datetime import datetime, timezone

from _common import stop_emulator, ROOT, start_emulator, use_bench_database

DATABASE = "hygiene_bench_pages"
STEWARD = "bench-steward"
BENCH_SNOOZE = "bench/pages.py --filter-snoozes"

# (label, path); "{snowflake}" and "{table}" are filled in from the mirror.
PAGES = [
    ("home", "/"),
    ("issues", "/issues/"),
    ("unowned", "/issues/unowned/"),
    ("undocumented, snowflake, no owner", "/issues/undocumented/?integration={snowflake}&owner=none"),
    ("stale, q=revenue", "/issues/stale/?q=revenue"),
    ("unowned, -health, page 50", "/issues/unowned/?sort=-health&page=50"),
    ("issues, per_page=200", "/issues/?per_page=200"),
    ("resource (table with children)", "/resources/{table}/"),
    ("owners", "/owners/"),
    ("teams", "/teams/"),
    ("snoozes", "/snoozes/"),
]
CSV_PAGE = ("unowned CSV export", "/issues/unowned/export.csv")


def add_filter_snoozes(count, user):
    """`count` filter-wide snoozes like a steward would make from a filtered list (removed by the caller)."""
    from datetime import timedelta

    from catalog_sync.models import Integration, Tag, Team
    from django.utils import timezone
    from hygiene.dashboard.models import Snapshot, Snooze
    from hygiene.domain.snapshots import take_snapshot

    teams = list(Team.objects.present().order_by("id").values_list("id", flat=True))
    tags = list(Tag.objects.present().order_by("id").values_list("id", flat=True))
    integrations = list(Integration.objects.present().order_by("id").values_list("id", flat=True))
    shapes = [lambda i: f"team={teams[i % len(teams)]}&owner=none",
              lambda i: f"integration={integrations[i % len(integrations)]}&entity_type=column",
              lambda i: f"tag={tags[i % len(tags)]}"]
    made = [Snooze.objects.create(rule="" if i % 2 else "unowned", filter_query=shapes[i % 3](i),
                                  filter_label=f"bench filter {i}", reason=BENCH_SNOOZE, created_by=user,
                                  expires_at=timezone.now() + timedelta(days=30)) for i in range(count)]
    take_snapshot(Snapshot.SNOOZE)
    return made


def remove_bench_snoozes():
    from hygiene.dashboard.models import Snapshot, Snooze
    from hygiene.domain.snapshots import take_snapshot

    if Snooze.objects.filter(reason=BENCH_SNOOZE).delete()[0]:
        take_snapshot(Snapshot.SNOOZE)


def percentile(values, share):
    """Nearest-rank percentile (p95 of 30 samples is the 29th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def seed_mirror(resources, seed, port):
    """Fill the mirror from the emulator unless it already holds `resources` present resources."""
    from catalog_sync.models import DbtTestStatus, Resource, ResourceRef, SyncRun
    from django.db import connection
    from hygiene.dashboard.models import Snapshot
    from hygiene.domain.snapshots import take_snapshot

    present = Resource.objects.present().count()
    if present == resources:
        print(f"Reusing the mirror in {connection.settings_dict['NAME']}: {present:,} present resources.")
        if not Snapshot.objects.exists():
            take_snapshot(Snapshot.SYNC)
        return {"reused": True, "sync_seconds": None}
    print(f"The mirror holds {present:,} present resources, not {resources:,}: syncing from the emulator…")
    from catalog_sync.client import SecodaClient
    from catalog_sync.sync import run_sync

    with connection.cursor() as cursor:  # start from an empty mirror (TRUNCATE loads nothing into memory)
        cursor.execute(f"TRUNCATE {Resource._meta.db_table}, {ResourceRef._meta.db_table}, "
                       f"{DbtTestStatus._meta.db_table}")
    emulator, base_url, token = start_emulator(resources, seed=seed, port=port)
    try:
        started = time.perf_counter()
        run = run_sync(trigger="bench", client=SecodaClient(base_url, token))  # also stores a snapshot
        seconds = time.perf_counter() - started
    finally:
        stop_emulator(emulator)
        emulator.wait(30)
    if run.status != SyncRun.SUCCEEDED:
        raise SystemExit(f"The sync failed: {run.error}")
    mirrored = Resource.objects.present().count()
    if mirrored != resources:
        raise SystemExit(f"The sync mirrored {mirrored:,} of {resources:,} resources.")
    print(f"Synced {mirrored:,} resources in {seconds:.1f} s.")
    return {"reused": False, "sync_seconds": round(seconds, 1)}


def page_arguments():
    """The snowflake integration and the table with the most present children."""
    from catalog_sync.models import Integration, Resource
    from django.db.models import Count, Q

    snowflake = Integration.objects.present().filter(type__iexact="snowflake").order_by("id").first()
    if snowflake is None:
        raise SystemExit("No Snowflake integration in the mirror.")
    table = (Resource.objects.present().filter(entity_type="table")
             .annotate(n=Count("children", filter=Q(children__removed_at__isnull=True)))
             .filter(n__gt=0).order_by("-n", "id").values_list("id", "n").first())
    if table is None:
        raise SystemExit("No table with children in the mirror.")
    return {"snowflake": snowflake.pk, "table": table[0], "table_children": table[1]}


def steward_client():
    from django.contrib.auth import get_user_model
    from django.test import Client
    from hygiene.roles import ensure_roles

    stewards, _ = ensure_roles()
    user, _ = get_user_model().objects.get_or_create(username=STEWARD, defaults={"first_name": "Bench"})
    user.groups.add(stewards)
    client = Client()
    client.force_login(user)
    return client, user


def fetch(client, url, streaming=False):
    """One request, body fully read. Returns (seconds, response, body bytes)."""
    started = time.perf_counter()
    response = client.get(url)
    body = b"".join(response.streaming_content) if streaming else response.content
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {body[:500]!r}")
    return seconds, response, body


def measure(client, label, url, repeat, warmups, streaming=False, slow_sql=5):
    """Warm-ups (SQL captured), then `repeat` timed requests (nothing captured: no debug-cursor overhead)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    queries = []
    for _ in range(max(1, warmups)):
        with CaptureQueriesContext(connection) as captured:
            _, response, body = fetch(client, url, streaming)
        counts.append(len(captured.captured_queries))
        queries = captured.captured_queries
    times = []
    for _ in range(repeat):
        seconds, response, body = fetch(client, url, streaming)
        times.append(seconds * 1000)
    slowest = sorted(queries, key=lambda q: -float(q["time"]))[:slow_sql]
    result = {
        "label": label, "url": url, "status": response.status_code, "samples": len(times),
        "median_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1),
        "min_ms": round(min(times), 1), "max_ms": round(max(times), 1),
        "queries": counts[-1], "queries_per_warmup": counts,
        "sql_ms": round(sum(float(q["time"]) for q in queries) * 1000, 1),
        "bytes": len(body),
        "slowest_sql": [{"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"]} for q in slowest],
    }
    return result, body


def csv_rows(body):
    return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8")))) - 1  # minus the header


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30, help="Timed requests per page (default 30).")
    parser.add_argument("--warmups", type=int, default=3, help="Untimed requests per page first (default 3).")
    parser.add_argument("--csv-repeat", type=int, default=None,
                        help="Timed requests of the CSV export (default: --repeat).")
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8796, help="Emulator port (default 8796).")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--target-ms", type=float, default=200.0, help="Median a page must stay under.")
    parser.add_argument("--filter-snoozes", type=int, default=0,
                        help="Add this many filter-wide snoozes for the run (removed afterwards).")
    parser.add_argument("--only", action="append", default=[],
                        help="Only pages whose label contains this (repeatable; 'csv' for the export).")
    args = parser.parse_args()
    csv_repeat = args.repeat if args.csv_repeat is None else args.csv_repeat

    use_bench_database(args.database)
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # django.test.Client's host
    seeding = seed_mirror(args.resources, args.seed, args.port)
    arguments = page_arguments()
    client, user = steward_client()
    remove_bench_snoozes()  # left over from an interrupted run
    try:
        if args.filter_snoozes:
            add_filter_snoozes(args.filter_snoozes, user)
        run_pages(args, arguments, client, csv_repeat, seeding)
    finally:
        remove_bench_snoozes()


def run_pages(args, arguments, client, csv_repeat, seeding):
    from django.db import connection

    from catalog_sync.models import Resource
    from hygiene.dashboard.models import Snooze

    load_before = os.getloadavg()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(",")[0]
        cursor.execute("ANALYZE")  # fresh planner statistics after a bulk load

    pages = [(label, path.format(**arguments)) for label, path in PAGES]
    wanted = [w.lower() for w in args.only]

    def chosen(label):
        return not wanted or any(w in label.lower() for w in wanted)

    results = []
    for label, url in pages:
        if not chosen(label):
            continue
        print(f"  {label:<36} {url}", end="", flush=True)
        result, _ = measure(client, label, url, args.repeat, args.warmups)
        print(f"  median {result['median_ms']:.0f} ms, {result['queries']} queries", flush=True)
        results.append(result)
    export = None
    if chosen(CSV_PAGE[0]) or "csv" in wanted:
        label, url = CSV_PAGE
        print(f"  {label:<36} {url}", end="", flush=True)
        export, body = measure(client, label, url, csv_repeat, min(args.warmups, 1), streaming=True)
        export["rows"] = csv_rows(body)
        export["rows_per_second"] = round(export["rows"] / (export["median_ms"] / 1000))
        print(f"  median {export['median_ms']:.0f} ms, {export['rows']:,} rows", flush=True)

    header = f"{'page':<36} {'median ms':>10} {'p95 ms':>9} {'queries':>8} {'SQL ms':>8} {'KB':>7}  target"
    print()
    snoozes = Snooze.objects.active().count()
    print(f"{args.resources:,} resources · {snoozes} active snoozes · {args.repeat} timed requests after "
          f"{args.warmups} warm-ups · {pg_version} · load average {load_before[0]:.2f} → {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(header)
    print("-" * len(header))
    missing = []
    for r in results:
        ok = r["median_ms"] < args.target_ms
        if not ok:
            missing.append(r)
        print(f"{r['label']:<36} {r['median_ms']:>10.1f} {r['p95_ms']:>9.1f} {r['queries']:>8} "
              f"{r['sql_ms']:>8.1f} {r['bytes'] / 1024:>7.0f}  {'ok' if ok else 'MISSED'}")
    if export:
        print()
        print(f"CSV export {export['url']}: {export['rows']:,} rows, {export['bytes'] / 1048576:.1f} MB, "
              f"median {export['median_ms']:.0f} ms, p95 {export['p95_ms']:.0f} ms "
              f"({export['samples']} timed), {export['queries']} queries, "
              f"{export['rows_per_second']:,} rows/s")
    print()
    if missing:
        print(f"Pages missing the target (median under {args.target_ms:.0f} ms):")
        for r in missing:
            print(f"  {r['label']} ({r['url']}): median {r['median_ms']:.0f} ms, "
                  f"{r['queries']} queries taking {r['sql_ms']:.0f} ms in SQL; slowest:")
            for q in r["slowest_sql"][:2]:
                print(f"    {q['ms']:>8.1f} ms  {q['sql'][:300]}{'…' if len(q['sql']) > 300 else ''}")
    else:
        print(f"Every page's median is under {args.target_ms:.0f} ms.")

    name = f"pages-filter-snoozes-{args.filter_snoozes}.json" if args.filter_snoozes else "pages.json"
    out = ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": args.database, "postgres": pg_version,
        "resources": Resource.objects.present().count(), "seed": args.seed, **seeding,
        "active_snoozes": snoozes, "filter_snoozes": args.filter_snoozes,
        "cpus": os.cpu_count(), "load_average_before": round(load_before[0], 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "repeat": args.repeat, "warmups": args.warmups, "csv_repeat": csv_repeat,
        "target_median_ms": args.target_ms, "arguments": arguments,
        "pages": results, "csv_export": export,
        "missing_target": [r["label"] for r in missing],
    }, indent=2) + "\n")
    print(f"\nWrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
