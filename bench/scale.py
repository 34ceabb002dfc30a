"""A big mirror fast: a synced one multiplied straight in PostgreSQL, then the product's own snapshot.

`bench/pages.py --scale-from 100000 --resources 1000000` syncs 100,000 resources from the emulator over HTTP (as
it always does), then `multiply(10)` copies every resource k = 1..9 times with INSERT … SELECT: the id (and the
parent's) suffixed `~k`, the first segment of the path made distinct (`raw_db~3.public.orders.id`, a root's title
with it), so searches still find the copies and titles still sort; refs (owners, groups, tags, teams) and dbt
statuses copied with their resource. Integrations, people, groups, teams and tags stay as they are: one integration
gets ten times the rows, as in a big workspace. What the product computes is not copied but left for
`timed_snapshot()` (`take_snapshot`, each step timed): health scores, the issue history (begun again, over the whole
mirror, as after a first sync), suggestions and the counts. Then VACUUM (ANALYZE), as production's autovacuum would.

A sync over HTTP writes about 1,500 resources a second here (11 minutes for 1,000,000); this path takes minutes.

`counts_work_mem` (pages.py --snapshot-work-mem): PostgreSQL's work_mem for the snapshot's counts step only. At the
default 4 MB and 1,000,000 resources two of its aggregates are planned as a scan of a materialized subquery per row
(`id IN (suggestions of a kind)` inside the totals' FILTER, `NOT IN (team refs)` for "no team"): hours, not
seconds. With 256 MB they are hashed. The pages are measured at the server's own work_mem either way.
"""
import time

SUFFIX = "~"  # never in an emulated id or title, so a copy never meets an original


def _secondary_indexes(cursor, tables):
    """(name, definition) of every index of `tables` that backs no constraint: dropped for the bulk copy and built
    again after (one sort each instead of 900,000 inserts into each of 20 indexes, two of them trigram GIN)."""
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
        "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)",
        [list(tables)])
    return cursor.fetchall()


def _resource_columns():
    """Column list and SELECT expressions (over `r`, copy number `k`) of a copied resource."""
    from catalog_sync.models import Resource

    first = "split_part(r.title_full, '.', 1)"
    custom = {
        "id": f"r.id || '{SUFFIX}' || k",
        "parent_id": f"r.parent_id || '{SUFFIX}' || k",  # NULL stays NULL
        "title_full": (f"CASE WHEN r.title_full = '' THEN '' ELSE {first} || '{SUFFIX}' || k || "
                       f"substr(r.title_full, length({first}) + 1) END"),
        # A root's title is its path (a database, a dashboard, a DAG): distinct with it; a column keeps its name.
        "title": f"CASE WHEN r.title <> '' AND r.title = r.title_full THEN r.title || '{SUFFIX}' || k ELSE r.title END",
        # Worked out by the product's snapshot, not copied.
        "health_score": "NULL", "issues_open_since": "NULL", "issues_open_since_seen": "false",
    }
    columns, expressions = [], []
    for field in Resource._meta.concrete_fields:
        columns.append(f'"{field.column}"')
        expressions.append(custom.get(field.column, f'r."{field.column}"'))
    return ", ".join(columns), ", ".join(expressions)


def multiply(factor):
    """Copy every resource, its refs and its dbt statuses `factor - 1` times. Returns seconds per step."""
    from django.db import connection, transaction

    from catalog_sync.models import DbtTestStatus, Resource, ResourceRef

    resource, ref, dbt = Resource._meta.db_table, ResourceRef._meta.db_table, DbtTestStatus._meta.db_table
    if Resource.objects.filter(pk__contains=SUFFIX).exists():
        raise SystemExit(f"{resource} already holds copies (ids with {SUFFIX!r}): start from a synced mirror.")
    columns, expressions = _resource_columns()
    times = {}
    with transaction.atomic(), connection.cursor() as cursor:  # all or nothing: a failure keeps the indexes
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")  # index builds sort in memory (this session)
        started = time.perf_counter()
        indexes = _secondary_indexes(cursor, [resource, ref])
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        copies = f"generate_series(1, {factor - 1}) AS k"
        cursor.execute(f"INSERT INTO {resource} ({columns}) SELECT {expressions} FROM {resource} r, {copies}")
        times["resources_copied"] = cursor.rowcount
        cursor.execute(f"INSERT INTO {ref} (resource_id, kind, ref_id) "
                       f"SELECT x.resource_id || '{SUFFIX}' || k, x.kind, x.ref_id FROM {ref} x, {copies}")
        times["refs_copied"] = cursor.rowcount
        cursor.execute(f"INSERT INTO {dbt} (integration_id, resource_id, status, first_seen_at) "
                       f"SELECT d.integration_id, d.resource_id || '{SUFFIX}' || k, d.status, d.first_seen_at "
                       f"FROM {dbt} d, {copies}")
        times["dbt_statuses_copied"] = cursor.rowcount
        # Originals lose what the product works out too, so the snapshot computes all of it, as after a first sync.
        cursor.execute(f"UPDATE {resource} SET health_score = NULL, issues_open_since = NULL, "
                       f"issues_open_since_seen = false WHERE health_score IS NOT NULL OR issues_open_since IS NOT NULL")
        times["copy_seconds"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        times["indexes_rebuilt"] = len(indexes)
        times["index_seconds"] = round(time.perf_counter() - started, 1)
    return times


def refresh_statistics():
    """What a sync does before its snapshot: the planner's statistics of the mirror refreshed."""
    from catalog_sync.mirror import refresh_planner_statistics

    started = time.perf_counter()
    refresh_planner_statistics()
    return round(time.perf_counter() - started, 1)


def reset_history():
    """The issue history begins again with the next snapshot, over the whole mirror (every issue "seen since"),
    as the 100,000 bench's history began with its sync. The intervals of the originals alone would make the
    copies' issues look opened today."""
    from django.db import connection

    from hygiene.lifecycle.models import IssueInterval

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {IssueInterval._meta.db_table}")


def timed_snapshot(counts_work_mem=None):
    """The product's `take_snapshot` (a sync's), with each of its steps timed in place: health scores, the issue
    history, suggestions, the counts (with `counts_work_mem`, PostgreSQL's work_mem for that step only). Returns
    seconds per step and in all."""
    from django.db import connection

    from hygiene.dashboard.models import Snapshot
    from hygiene.domain import snapshots

    steps = {"health_scores": "store_health_scores", "issue_history": "update_history", "counts": "compute"}
    times = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            work_mem = counts_work_mem if name == "counts" else None
            try:
                if work_mem:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('work_mem', %s, false)", [work_mem])
                return function(*args, **kwargs)
            finally:
                if work_mem:
                    with connection.cursor() as cursor:
                        cursor.execute("RESET work_mem")
                times[name] = round(time.perf_counter() - started, 1)
        return wrapper

    originals = {attribute: getattr(snapshots, attribute) for attribute in steps.values()}
    recompute = snapshots.suggestions.recompute
    try:
        for name, attribute in steps.items():
            setattr(snapshots, attribute, timed(name, originals[attribute]))
        snapshots.suggestions.recompute = timed("suggestions", recompute)
        started = time.perf_counter()
        snapshots.take_snapshot(Snapshot.SYNC)
        times["total"] = round(time.perf_counter() - started, 1)
    finally:
        for attribute, function in originals.items():
            setattr(snapshots, attribute, function)
        snapshots.suggestions.recompute = recompute
    return times


def scale_mirror(resources, base, counts_work_mem=None):
    """From a mirror of `base` resources (synced), one of `resources`: copies, the snapshot, VACUUM (ANALYZE).
    Returns what each step took."""
    from _common import vacuum_analyze
    from catalog_sync.models import Resource

    if resources % base:
        raise SystemExit(f"--resources ({resources:,}) must be a multiple of --scale-from ({base:,}).")
    started = time.perf_counter()
    print(f"Copying the {base:,} synced resources {resources // base - 1} times in PostgreSQL…", flush=True)
    copy = multiply(resources // base)
    copy["analyze_seconds"] = refresh_statistics()
    print(f"  {copy}", flush=True)
    reset_history()
    print(f"The product's snapshot over the whole mirror (counts at work_mem {counts_work_mem or 'default'})…",
          flush=True)
    snapshot = timed_snapshot(counts_work_mem)
    print(f"  {snapshot}", flush=True)
    vacuum_started = time.perf_counter()
    vacuum_analyze()
    vacuum = round(time.perf_counter() - vacuum_started, 1)
    print(f"  VACUUM (ANALYZE) {vacuum} s", flush=True)
    present = Resource.objects.present().count()
    if present != resources:
        raise SystemExit(f"The copies made {present:,} present resources, not {resources:,}.")
    return {"copy": copy, "snapshot_seconds": snapshot, "counts_work_mem": counts_work_mem, "vacuum_seconds": vacuum,
            "scale_seconds": round(time.perf_counter() - started, 1)}
