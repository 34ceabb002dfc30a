"""Page-speed benchmark: the dashboard's pages over a mirror of 100,000 resources.

Seeds its own PostgreSQL database (`hygiene_bench_pages`) from the Secoda emulator
(reused when it already holds the wanted number of present resources), logs in as a
steward with django.test.Client, and requests every page N times after a few warm-ups.
Reports the median and p95 latency and the SQL queries a request runs; the CSV export
(whole streamed body consumed) is reported on its own with its row count.

    .venv/bin/python bench/pages.py [--repeat 30] [--warmups 3] [--csv-repeat N] [--filter-snoozes N]
                                    [--custom-rules N] [--resources N [--scale-from M]] [--compare JSON]
                                    [--explain]

Writes bench/results/pages.json (pages-N.json for --resources N other than 100,000;
pages-filter-snoozes-N.json with --filter-snoozes, which adds N filter-wide snoozes for the
run and removes them afterwards). Pages whose median is not under --target-ms (200) are
listed at the end with their slowest SQL. The CSV export is read as it streams (nothing
kept): the report gives its rows a second and this process's memory along the stream.

--scale-from M (with --resources N, a multiple of M) builds a big mirror in minutes: M synced
from the emulator over HTTP as usual, then copied in PostgreSQL up to N and the product's
snapshot taken over all of it (bench/scale.py); e.g. --resources 1000000 --scale-from 100000
--snapshot-work-mem 256MB --database hygiene_bench_pages_1m --port 8897.

--compare JSON sets each page's query count beside another run's (e.g. bench/results/pages.json
at 100,000) and flags any that differ. --explain runs EXPLAIN (ANALYZE, BUFFERS) on every
SELECT of every page after the timing: what each page reads of the big tables (a sequential
scan of the resource table is flagged), and the plans of the slowest queries of pages that miss
the target.

--custom-rules N measures every page with no custom rule, then with 1 and with N varied ones
(text, regex, bool, number, date and list clauses, some scoped), and also times the snapshot and
the rule builder's preview of each rule; the rules are removed afterwards
(bench/results/pages-custom-rules-N.json).
"""
import argparse
import codecs
import csv
import json
import math
import os
import re
import statistics
import time
from datetime import datetime, timezone

from _common import stop_emulator, ROOT, start_emulator, use_bench_database, vacuum_analyze

DEFAULT_RESOURCES = 100_000

DATABASE = "hygiene_bench_pages"
STEWARD = "bench-steward"
BENCH_SNOOZE = "bench/pages.py --filter-snoozes"

# (label, path); "{snowflake}", "{table}" and "{team}" are filled in from the mirror.
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
    ("team page (busiest team)", "/teams/{team}/"),
    ("unowned, sorted by open for", "/issues/unowned/?sort=-open_for"),
    ("issues, sorted by open for, page 20", "/issues/?sort=open_for&page=20"),
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


def seed_mirror(resources, seed, port, extra=()):
    """Fill the mirror from the emulator unless it already holds `resources` present resources (`extra`: more
    arguments for the emulator)."""
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
    emulator, base_url, token = start_emulator(resources, seed=seed, port=port, extra=extra)
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
    """The snowflake integration, the table with the most present children and the team with the most resources."""
    from catalog_sync.models import Integration, Resource, ResourceRef
    from django.db.models import Count, Q

    snowflake = Integration.objects.present().filter(type__iexact="snowflake").order_by("id").first()
    if snowflake is None:
        raise SystemExit("No Snowflake integration in the mirror.")
    table = (Resource.objects.present().filter(entity_type="table")
             .annotate(n=Count("children", filter=Q(children__removed_at__isnull=True)))
             .filter(n__gt=0).order_by("-n", "id").values_list("id", "n").first())
    if table is None:
        raise SystemExit("No table with children in the mirror.")
    team = (ResourceRef.objects.filter(kind=ResourceRef.TEAM).values("ref_id").annotate(n=Count("id"))
            .order_by("-n", "ref_id").values_list("ref_id", flat=True).first())
    if team is None:
        raise SystemExit("No resource belongs to a team in the mirror.")
    return {"snowflake": snowflake.pk, "table": table[0], "table_children": table[1], "team": team}


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


def current_rss_mb():
    """This process's resident memory now (not its high-water mark)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


class StreamRead:
    """A streamed body read as it comes and let go: its bytes, its CSV rows (when counted) and this process's
    resident memory every `every` chunks (the export yields one chunk per 500 rows: every 10,000 rows)."""

    def __init__(self, chunks, count_rows=False, every=20):
        self.bytes = self.chunks = 0
        self.rows = None
        self.rss = [(0, round(current_rss_mb(), 1))]
        self.every = every
        if count_rows:
            self.rows = sum(1 for _ in csv.reader(self._lines(self._read(chunks)))) - 1  # minus the header
        else:
            for _ in self._read(chunks):
                pass
        self.rss.append((self.chunks, round(current_rss_mb(), 1)))

    def _read(self, chunks):
        for chunk in chunks:
            self.bytes += len(chunk)
            self.chunks += 1
            if self.chunks % self.every == 0:
                self.rss.append((self.chunks, round(current_rss_mb(), 1)))
            yield chunk

    @staticmethod
    def _lines(chunks):
        """Text lines for csv.reader (which joins a quoted field's lines itself)."""
        decoder, tail = codecs.getincrementaldecoder("utf-8")(), ""
        for chunk in chunks:
            *lines, tail = (tail + decoder.decode(chunk)).split("\n")
            for line in lines:
                yield line + "\n"
        tail += decoder.decode(b"", final=True)
        if tail:
            yield tail

    def memory(self):
        start, values = self.rss[0][1], [mb for _, mb in self.rss]
        return {"rss_start_mb": start, "rss_peak_mb": max(values), "rss_growth_mb": round(max(values) - start, 1),
                "rss_end_mb": values[-1], "samples": len(values)}


def fetch(client, url, streaming=False, count_rows=False):
    """One request, body fully read. Returns (seconds, response, body): the body's bytes, or for a streamed
    response a StreamRead (nothing kept, so memory shows what the export itself holds)."""
    started = time.perf_counter()
    response = client.get(url)
    body = StreamRead(response.streaming_content, count_rows) if streaming else response.content
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.content[:500]!r}")
    return seconds, response, body


def measure(client, label, url, repeat, warmups, streaming=False, slow_sql=5):
    """Warm-ups (SQL captured), then `repeat` timed requests (nothing captured: no debug-cursor overhead).
    A streamed body's CSV rows are counted in the last warm-up (untimed); each timed read samples memory."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    queries = []
    rows = None
    for _ in range(max(1, warmups)):
        with CaptureQueriesContext(connection) as captured:
            _, response, body = fetch(client, url, streaming, count_rows=streaming)
        counts.append(len(captured.captured_queries))
        queries = captured.captured_queries
        rows = body.rows if streaming else None
    times, memory = [], []
    for _ in range(repeat):
        seconds, response, body = fetch(client, url, streaming)
        times.append(seconds * 1000)
        if streaming:
            memory.append(body.memory())
    slowest = sorted(queries, key=lambda q: -float(q["time"]))[:slow_sql]
    result = {
        "label": label, "url": url, "status": response.status_code, "samples": len(times),
        "median_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1),
        "min_ms": round(min(times), 1), "max_ms": round(max(times), 1),
        "queries": counts[-1], "queries_per_warmup": counts,
        "sql_ms": round(sum(float(q["time"]) for q in queries) * 1000, 1),
        "bytes": body.bytes if streaming else len(body),
        "slowest_sql": [{"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"]} for q in slowest],
    }
    if streaming:
        result.update(rows=rows, memory_per_request=memory, rss_along_last_stream=body.rss)
    result["_queries"] = [q["sql"] for q in queries]  # for --explain; not written out
    return result, body


BIG_TABLES = ("catalog_sync_resource", "catalog_sync_resourceref", "lifecycle_issueinterval",
              "suggestions_suggestion")


DECLARED = re.compile(r'^\s*DECLARE\s+\S+\s.*?\bCURSOR\b.*?\bFOR\s+(.*)$', re.DOTALL | re.IGNORECASE)


def _plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _plan_nodes(child)


def explain_queries(queries, text_plans=0):
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT of a request: its execution time and what it read of the big
    tables (rows read = returned + removed by a filter, over every loop). The `text_plans` slowest come with
    their plan as text."""
    from django.db import connection

    explained = []
    with connection.cursor() as cursor:
        for sql in queries:
            declared = DECLARED.match(sql)  # a server-side cursor (QuerySet.iterator): its query
            sql = declared.group(1) if declared else sql
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
            document = cursor.fetchone()[0]
            top = (json.loads(document) if isinstance(document, str) else document)[0]
            reads = []
            for node in _plan_nodes(top["Plan"]):
                if node.get("Relation Name") in BIG_TABLES:
                    loops = node.get("Actual Loops", 1)
                    rows = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                            + node.get("Rows Removed by Index Recheck", 0)) * loops
                    reads.append({"table": node["Relation Name"], "node": node["Node Type"],
                                  "index": node.get("Index Name"), "rows_read": round(rows)})
            explained.append({"ms": round(top["Execution Time"], 1), "reads": reads,
                              "seq_scan_resource": any(r["table"] == "catalog_sync_resource"
                                                       and r["node"] == "Seq Scan" for r in reads),
                              "sql": sql})
    explained.sort(key=lambda e: -e["ms"])
    for entry in explained[:text_plans]:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {entry['sql']}")
            entry["plan"] = [line for line, in cursor.fetchall()]
    return explained


def explain_summary(explained):
    """A page's EXPLAIN in brief: SQL time, the most rows it reads of each big table, sequential scans."""
    most = {}
    for entry in explained:
        for read in entry["reads"]:
            most[read["table"]] = max(most.get(read["table"], 0), read["rows_read"])
    return {"sql_ms": round(sum(e["ms"] for e in explained), 1), "most_rows_read": most,
            "seq_scans_of_resource": sum(e["seq_scan_resource"] for e in explained),
            "queries": [{**e, "sql": e["sql"][:400]} for e in explained]}


def seed_scaled(resources, base, seed, port, counts_work_mem=None):
    """A mirror of `resources` made from `base` synced ones (bench/scale.py), unless it is there already (its
    latest snapshot counted them all)."""
    from catalog_sync.models import Resource
    from django.db import connection
    from hygiene.dashboard.models import Snapshot

    import scale

    from hygiene.rules import in_scope

    present = Resource.objects.present().count()
    latest = Snapshot.objects.first()
    # The snapshot counts resources in scope (archived ones are present but out of scope).
    if present == resources and latest and (latest.totals or {}).get("resources") == in_scope().count():
        print(f"Reusing the mirror in {connection.settings_dict['NAME']}: {present:,} present resources.")
        return {"reused": True, "sync_seconds": None, "scaled_from": base}
    started = time.perf_counter()
    synced = seed_mirror(base, seed, port)
    scaled = scale.scale_mirror(resources, base, counts_work_mem)
    seconds = round(time.perf_counter() - started, 1)
    print(f"Mirror of {resources:,} made in {seconds} s (sync of {base:,} included).")
    return {**synced, "scaled_from": base, "scaling": scaled, "generation_seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30, help="Timed requests per page (default 30).")
    parser.add_argument("--warmups", type=int, default=3, help="Untimed requests per page first (default 3).")
    parser.add_argument("--csv-repeat", type=int, default=None,
                        help="Timed requests of the CSV export (default: --repeat).")
    parser.add_argument("--resources", type=int, default=DEFAULT_RESOURCES)
    parser.add_argument("--scale-from", type=int, default=None,
                        help="Sync this many from the emulator, then copy them in PostgreSQL up to --resources.")
    parser.add_argument("--snapshot-work-mem", default=None,
                        help="With --scale-from: PostgreSQL work_mem for the snapshot's counts step only (e.g. "
                             "256MB; at the default 4MB it takes hours at 1,000,000, see bench/scale.py).")
    parser.add_argument("--compare", default=None,
                        help="Another run's JSON (e.g. bench/results/pages.json): query counts side by side.")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN (ANALYZE, BUFFERS) every page's SELECTs after the timing.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8796, help="Emulator port (default 8796).")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--target-ms", type=float, default=200.0, help="Median a page must stay under.")
    parser.add_argument("--filter-snoozes", type=int, default=0,
                        help="Add this many filter-wide snoozes for the run (removed afterwards).")
    parser.add_argument("--custom-rules", type=int, default=0,
                        help="Compare the pages with no custom rule, 1 and this many (removed afterwards).")
    parser.add_argument("--only", action="append", default=[],
                        help="Only pages whose label contains this (repeatable; 'csv' for the export).")
    args = parser.parse_args()
    csv_repeat = args.repeat if args.csv_repeat is None else args.csv_repeat

    use_bench_database(args.database)
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # django.test.Client's host
    if args.scale_from and args.scale_from != args.resources:
        seeding = seed_scaled(args.resources, args.scale_from, args.seed, args.port, args.snapshot_work_mem)
    else:
        seeding = seed_mirror(args.resources, args.seed, args.port)
    arguments = page_arguments()
    client, user = steward_client()
    remove_bench_snoozes()  # left over from an interrupted run
    remove_bench_rules()
    try:
        if args.filter_snoozes:
            add_filter_snoozes(args.filter_snoozes, user)
        if args.custom_rules:
            run_custom_rules(args, arguments, client, csv_repeat, seeding)
        else:
            run_pages(args, arguments, client, csv_repeat, seeding)
    finally:
        remove_bench_snoozes()
        remove_bench_rules()


def run_pages(args, arguments, client, csv_repeat, seeding):
    from django.db import connection

    from catalog_sync.models import Resource
    from hygiene.dashboard.models import Snooze

    autovacuum = vacuum_analyze()  # dead rows and planner statistics as production's autovacuum leaves them
    load_before = os.getloadavg()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(",")[0]

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
        export["rows_per_second"] = round(export["rows"] / (export["median_ms"] / 1000))
        print(f"  median {export['median_ms']:.0f} ms, {export['rows']:,} rows", flush=True)

    baseline = {}
    if args.compare:
        other = json.loads((ROOT / args.compare).read_text())  # relative to the repository, or absolute
        baseline = {p["label"]: p["queries"] for p in other["pages"] + ([other["csv_export"]]
                                                                         if other.get("csv_export") else [])}
        baseline_resources = other.get("resources")
    if args.explain:
        print("\nEXPLAIN (ANALYZE, BUFFERS) of every page's SELECTs…", flush=True)
        for r in results + ([export] if export else []):
            slow = 3 if r["median_ms"] >= args.target_ms and r is not export else 0
            r["explain"] = explain_summary(explain_queries(r["_queries"], text_plans=slow))
    for r in results + ([export] if export else []):
        r.pop("_queries", None)
        if r["label"] in baseline:
            r["queries_baseline"] = baseline[r["label"]]

    compare = f" {'at ' + format(baseline_resources, ',') if baseline else '':>10}" if baseline else ""
    header = (f"{'page':<36} {'median ms':>10} {'p95 ms':>9} {'queries':>8}{compare} {'SQL ms':>8} {'KB':>7}  "
              f"target")
    print()
    snoozes = Snooze.objects.active().count()
    print(f"{args.resources:,} resources · {snoozes} active snoozes · {args.repeat} timed requests after "
          f"{args.warmups} warm-ups · {pg_version} (autovacuum {autovacuum}; vacuumed first) · load average "
          f"{load_before[0]:.2f} → {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(header)
    print("-" * len(header))
    missing, differ = [], []
    for r in results:
        ok = r["median_ms"] < args.target_ms
        if not ok:
            missing.append(r)
        same = r.get("queries_baseline", r["queries"]) == r["queries"]
        if not same:
            differ.append(r)
        other = f" {r.get('queries_baseline', '-'):>10}" if baseline else ""
        print(f"{r['label']:<36} {r['median_ms']:>10.1f} {r['p95_ms']:>9.1f} {r['queries']:>8}{other} "
              f"{r['sql_ms']:>8.1f} {r['bytes'] / 1024:>7.0f}  {'ok' if ok else 'MISSED'}"
              f"{'' if same else ', QUERIES DIFFER'}")
    if export:
        print()
        peak = max(m["rss_growth_mb"] for m in export["memory_per_request"])
        print(f"CSV export {export['url']}: {export['rows']:,} rows, {export['bytes'] / 1048576:.1f} MB, "
              f"median {export['median_ms']:.0f} ms, p95 {export['p95_ms']:.0f} ms "
              f"({export['samples']} timed), {export['queries']} queries"
              f"{'' if 'queries_baseline' not in export else ' (' + str(export['queries_baseline']) + ' before)'}, "
              f"{export['rows_per_second']:,} rows/s; this process's memory grew at most {peak} MB while "
              f"streaming (RSS along the last stream: "
              f"{', '.join(f'{mb:.0f}' for _, mb in export['rss_along_last_stream'][::max(1, len(export['rss_along_last_stream']) // 6)])} MB)")
    if args.explain:
        print()
        print(f"{'page':<36} {'SQL ms':>8} {'seq scans':>9}  most rows read (resource / ref / interval / suggestion)")
        for r in results + ([export] if export else []):
            e = r["explain"]
            most = " / ".join(f"{e['most_rows_read'].get(t, 0):,}" for t in BIG_TABLES)
            print(f"{r['label'][:36]:<36} {e['sql_ms']:>8.1f} {e['seq_scans_of_resource']:>9}  {most}")
    print()
    if missing:
        print(f"Pages missing the target (median under {args.target_ms:.0f} ms):")
        for r in missing:
            print(f"  {r['label']} ({r['url']}): median {r['median_ms']:.0f} ms, "
                  f"{r['queries']} queries taking {r['sql_ms']:.0f} ms in SQL; slowest:")
            for q in r["slowest_sql"][:2]:
                print(f"    {q['ms']:>8.1f} ms  {q['sql'][:300]}{'…' if len(q['sql']) > 300 else ''}")
            for q in r.get("explain", {}).get("queries", [])[:1]:
                print("    EXPLAIN (ANALYZE, BUFFERS) of the slowest:")
                print("\n".join(f"      {line}" for line in q.get("plan", [])))
    else:
        print(f"Every page's median is under {args.target_ms:.0f} ms.")
    for r in differ:
        print(f"QUERIES DIFFER on {r['label']}: {r['queries']} here, {r['queries_baseline']} in {args.compare}")

    name = (f"pages-filter-snoozes-{args.filter_snoozes}.json" if args.filter_snoozes
            else "pages.json" if args.resources == DEFAULT_RESOURCES else f"pages-{args.resources}.json")
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
        "compared_with": args.compare, "queries_differ": [r["label"] for r in differ],
    }, indent=2) + "\n")
    print(f"\nWrote {out.relative_to(ROOT)}")


BENCH_RULE_PREFIX = "bench_"


def bench_rule_definitions(arguments):
    """Ten custom rules of every kind of clause (text blank / shorter than / regex / contains, yes-no, number,
    date, list has / lacks / count below), five of them scoped by team, integration, type or tag. The first
    is scoped by a team: the one-rule run shows what a scope costs a page."""
    from catalog_sync.models import ResourceRef, Tag, Team
    from django.db.models import Count

    def busiest(model, kind):
        top = (ResourceRef.objects.filter(kind=kind, ref_id__in=model.objects.present().values("pk"))
               .values("ref_id").annotate(n=Count("resource_id")).order_by("-n", "ref_id").first())
        if top is None:
            raise SystemExit(f"No {model.__name__.lower()} holds a resource in the mirror.")
        return top["ref_id"]

    team, tag = busiest(Team, ResourceRef.TEAM), busiest(Tag, ResourceRef.TAG)
    return [
        {"name": "Undocumented tables of the busiest team", "scope": f"team={team}&entity_type=table",
         "clauses": [{"field": "description", "op": "blank"}]},
        {"name": "Short descriptions in Snowflake", "scope": f"integration={arguments['snowflake']}",
         "clauses": [{"field": "description", "op": "shorter_than", "value": 40}]},
        {"name": "Temporary names", "clauses": [{"field": "title", "op": "matches",
                                                 "value": r"^(tmp|temp|test)_|_(old|bak|copy)$"}]},
        {"name": "PII columns not verified", "scope": "entity_type=column",
         "clauses": [{"field": "pii", "op": "is_true"}, {"field": "verified", "op": "is_false"}]},
        {"name": "Big tables nobody uses", "clauses": [{"field": "row_count", "op": "at_least", "value": 1_000_000},
                                                       {"field": "external_usage", "op": "below", "value": 10}]},
        {"name": "Old in the source", "match": "any",
         "clauses": [{"field": "external_updated_at", "op": "older_than", "value": 365},
                     {"field": "updated_at", "op": "older_than", "value": 540}]},
        {"name": "Tagged but unowned", "clauses": [{"field": "tags", "op": "has", "value": tag},
                                                   {"field": "owners", "op": "blank"}]},
        {"name": "Tagged assets outside the busiest team", "scope": f"tag={tag}",
         "clauses": [{"field": "teams", "op": "lacks", "value": team},
                     {"field": "owners", "op": "count_below", "value": 2}]},
        {"name": "Dashboards with one owner and no group", "scope": "entity_type=dashboard", "match": "any",
         "clauses": [{"field": "owners", "op": "count_below", "value": 2},
                     {"field": "owners_groups", "op": "blank"}]},
        {"name": "Personal data in names", "match": "any", "weight": 15,
         "clauses": [{"field": "title", "op": "contains", "value": "email"},
                     {"field": "description", "op": "contains", "value": "personal"},
                     {"field": "published", "op": "is_true"}]},
    ]


def set_bench_rules(definitions, count):
    """Exactly the first `count` bench rules in the registry, checked as the builder checks them."""
    from hygiene.rulebook import registry, services
    from hygiene.rulebook.models import Rule

    for index, definition in enumerate(definitions[:count]):
        key = f"{BENCH_RULE_PREFIX}{index + 1}"
        if not Rule.objects.filter(key=key).exists():
            services.save(services.clean_definition(definition), key=key, snapshot=False)
    Rule.objects.filter(key__startswith=BENCH_RULE_PREFIX, builtin=False).exclude(
        key__in=[f"{BENCH_RULE_PREFIX}{i + 1}" for i in range(count)]).delete()
    registry.forget()


def remove_bench_rules():
    """The bench's rules, gone for good (not marked deleted: they were never a steward's)."""
    from hygiene.dashboard.models import Snapshot
    from hygiene.domain.snapshots import take_snapshot
    from hygiene.rulebook import registry
    from hygiene.rulebook.models import Rule

    if Rule.objects.filter(key__startswith=BENCH_RULE_PREFIX, builtin=False).delete()[0]:
        registry.forget()
        take_snapshot(Snapshot.RULES)


def timed_snapshot():
    from hygiene.dashboard.models import Snapshot
    from hygiene.domain.snapshots import take_snapshot
    from hygiene.rulebook import registry

    registry.forget()
    started = time.perf_counter()
    take_snapshot(Snapshot.RULES)
    return round((time.perf_counter() - started) * 1000)


def snapshot_times(repeat=3):
    """The snapshot right after the rules changed (it rewrites the health scores that moved), then again."""
    first = timed_snapshot()
    again = [timed_snapshot() for _ in range(repeat)]
    return {"first_ms": first, "again_median_ms": round(statistics.median(again)), "again_ms": again}


def query_counts(client, pages, warmups):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for label, url in pages:
        for _ in range(max(1, warmups)):
            with CaptureQueriesContext(connection) as captured:
                fetch(client, url, streaming=(label, url) == CSV_PAGE)
        counts[label] = len(captured.captured_queries)
    return counts


def preview_times(definitions, repeat=3):
    """The rule builder's preview (count, by integration and team, a sample) of each rule, median of `repeat`."""
    from hygiene.rulebook import services

    times = []
    for definition in definitions:
        cleaned = services.clean_definition(definition)
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            preview = services.preview(cleaned)
            runs.append((time.perf_counter() - started) * 1000)
        times.append({"rule": definition["name"], "median_ms": round(statistics.median(runs)),
                      "flagged": preview["total"], "in_scope": preview["in_scope"]})
    return times


def run_custom_rules(args, arguments, client, csv_repeat, seeding):
    """Every page with no custom rule, 1 and N: medians with none and N, query counts with all three."""
    from django.db import connection

    from catalog_sync.models import Resource

    count = args.custom_rules
    definitions = bench_rule_definitions(arguments)
    if count > len(definitions):
        raise SystemExit(f"--custom-rules goes up to {len(definitions)}.")
    autovacuum = vacuum_analyze()  # dead rows and planner statistics as production's autovacuum leaves them
    load_before = os.getloadavg()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(",")[0]
    wanted = [w.lower() for w in args.only]
    pages = [(label, path.format(**arguments)) for label, path in PAGES
             if not wanted or any(w in label.lower() for w in wanted)]
    with_csv = not wanted or "csv" in wanted

    runs = {}
    for rules in (0, 1, count) if count > 1 else (0, count):
        set_bench_rules(definitions, rules)
        print(f"\n{rules} custom rule{'s' if rules != 1 else ''}: snapshot…", end="", flush=True)
        snapshot = snapshot_times()
        print(f" {snapshot['first_ms']:,} ms, then {snapshot['again_median_ms']:,} ms", flush=True)
        run = {"rules": rules, "snapshot": snapshot}
        # A custom rule's own list, too, once there is one to list.
        own = [(f"custom rule: {definitions[i]['name']}", f"/issues/{BENCH_RULE_PREFIX}{i + 1}/")
               for i in (3,) if i < rules and not wanted]
        if rules in (0, count):  # medians with none and with all; the run with one only counts queries
            run["pages"] = {}
            for label, url in pages + own:
                print(f"  {label:<36} {url}", end="", flush=True)
                result, _ = measure(client, label, url, args.repeat, args.warmups)
                print(f"  median {result['median_ms']:.0f} ms, {result['queries']} queries", flush=True)
                run["pages"][label] = result
            if with_csv:
                label, url = CSV_PAGE
                print(f"  {label:<36} {url}", end="", flush=True)
                result, body = measure(client, label, url, csv_repeat, min(args.warmups, 1), streaming=True)
                print(f"  median {result['median_ms']:.0f} ms, {result['rows']:,} rows", flush=True)
                run["pages"][label] = result
            for r in run["pages"].values():
                r.pop("_queries", None)
            run["queries"] = {label: r["queries"] for label, r in run["pages"].items()}
        else:
            run["queries"] = query_counts(client, pages + own + ([CSV_PAGE] if with_csv else []), args.warmups)
        if rules == count:
            print("  previews…", end="", flush=True)
            run["previews"] = preview_times(definitions[:count])
            print(f" slowest {max(p['median_ms'] for p in run['previews'])} ms", flush=True)
        runs[rules] = run

    none, most = runs[0], runs[count]
    counts = [runs[n]["queries"] for n in sorted(runs)]
    header = (f"{'page':<36} {'median 0':>9} {f'median {count}':>10} {f'p95 {count}':>8} "
              f"{'queries ' + '/'.join(str(n) for n in sorted(runs)):>18}  target")
    print()
    print(f"{args.resources:,} resources · custom rules 0 / {' / '.join(str(n) for n in sorted(runs) if n)} · "
          f"{args.repeat} timed requests after {args.warmups} warm-ups · {pg_version} (autovacuum {autovacuum}; "
          f"vacuumed first) · load average {load_before[0]:.2f} → {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(header)
    print("-" * len(header))
    missing, grew = [], []
    for label in most["pages"]:
        before, after = none["pages"].get(label), most["pages"][label]
        ok = after["median_ms"] < args.target_ms or label == CSV_PAGE[0]
        same = len({c[label] for c in counts if label in c}) == 1
        if not ok:
            missing.append(after)
        if not same:
            grew.append(label)
        print(f"{label[:36]:<36} {before['median_ms'] if before else '-':>9} {after['median_ms']:>10.1f} "
              f"{after['p95_ms']:>8.1f} {'/'.join(str(c.get(label, '-')) for c in counts):>18}  "
              f"{'ok' if ok and same else 'MISSED' if not ok else 'QUERIES GREW'}")
    print()
    print(f"Snapshot (take_snapshot): no custom rule {none['snapshot']['first_ms']:,} ms after the change, "
          f"{none['snapshot']['again_median_ms']:,} ms again; {count} rules {most['snapshot']['first_ms']:,} ms "
          f"after the change, {most['snapshot']['again_median_ms']:,} ms again")
    print("Preview (services.preview) of each rule at this size:")
    for p in most["previews"]:
        print(f"  {p['median_ms']:>6,} ms  {p['rule']} ({p['flagged']:,} of {p['in_scope']:,})")
    print()
    for r in missing:
        print(f"MISSED {r['label']}: median {r['median_ms']:.0f} ms; slowest SQL:")
        for q in r["slowest_sql"][:2]:
            print(f"    {q['ms']:>8.1f} ms  {q['sql'][:300]}{'…' if len(q['sql']) > 300 else ''}")
    for label in grew:
        print(f"QUERIES GREW with the rules on {label}: {[c.get(label, '-') for c in counts]}")
    if not missing and not grew:
        print(f"Every page's median is under {args.target_ms:.0f} ms with {count} custom rules, "
              "and no page runs more queries with them.")

    out = ROOT / "bench" / "results" / f"pages-custom-rules-{count}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": args.database, "postgres": pg_version,
        "resources": Resource.objects.present().count(), "seed": args.seed, **seeding,
        "cpus": os.cpu_count(), "load_average_before": round(load_before[0], 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "repeat": args.repeat, "warmups": args.warmups, "csv_repeat": csv_repeat,
        "target_median_ms": args.target_ms, "arguments": arguments,
        "rules": definitions[:count], "runs": [runs[n] for n in sorted(runs)],
        "missing_target": [r["label"] for r in missing], "queries_grew": grew,
    }, indent=2, default=str) + "\n")
    print(f"\nWrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
