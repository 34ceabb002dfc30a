"""Issue-history benchmark: how long keeping the history takes after a sync.

Writes N resources straight into PostgreSQL (one INSERT … SELECT over generate_series, seconds rather than a
sync over HTTP: this measures the history update, not the mirror), then times, each on its own database
(`hygiene_bench_history`):

1. the first update (history begins: every open issue opened "seen since");
2. a full update after a full sweep in which 1% of the resources changed (every rule looked at everywhere);
3. an incremental update after a sync that changed 500 resources and removed 50 (only those looked at, except
   the rules whose answer moves by itself: dbt results and "older than" clauses).

    .venv/bin/python bench/history.py [--resources 1000000] [--changes 500] [--removals 50]

Writes bench/results/history-N.json.
"""
import argparse
import json
import time

from _common import ROOT, use_bench_database

DATABASE = "hygiene_bench_history"


def column_expressions(model, custom):
    """SQL for every column of `model` in a generated row: `custom` where given, else a plain default."""
    from django.db import models

    columns, expressions = [], []
    for field in model._meta.concrete_fields:
        columns.append(f'"{field.column}"')
        if field.name in custom:
            expressions.append(custom[field.name])
        elif field.null:
            expressions.append("NULL")
        elif isinstance(field, models.JSONField):
            expressions.append("'{}'::jsonb" if field.default is dict else "'[]'::jsonb")
        elif isinstance(field, models.BooleanField):
            expressions.append("false")
        elif isinstance(field, (models.IntegerField, models.BigIntegerField, models.SmallIntegerField)):
            expressions.append("0")
        elif isinstance(field, models.DateTimeField):
            expressions.append("now()")
        else:
            expressions.append("''")
    return ", ".join(columns), ", ".join(expressions)


def generate(resources):
    """N resources with a realistic share of issues: a third unowned, 40% undocumented, 8% stale, 30% unused."""
    from django.db import connection

    from catalog_sync.models import Integration, Resource

    Integration.objects.get_or_create(id="bench-warehouse", defaults={"name": "Bench warehouse", "type": "snowflake"})
    columns, expressions = column_expressions(Resource, {
        "id": "'r' || lpad(n::text, 8, '0')",
        "entity_type": "(ARRAY['table','column','column','column','dashboard','chart'])[1 + n % 6]",
        "title": "'resource_' || n", "title_full": "'db.schema.resource_' || n",
        "description": "CASE WHEN n % 5 < 2 THEN '' ELSE 'Described ' || n END",
        "integration": "'bench-warehouse'",
        "owners": "CASE WHEN n % 3 = 0 THEN '[]'::jsonb ELSE jsonb_build_array('u' || (n % 50)) END",
        "is_owned": "n % 3 <> 0", "is_documented": "n % 5 >= 2", "stale": "n % 12 = 0",
        "external_usage": "CASE WHEN n % 10 < 3 THEN 0 ELSE n % 1000 END", "internal_usage": "0",
        "updated_at": "now() - (n % 400) * interval '1 day'", "changed_at": "now() - interval '1 day'",
        "first_seen_at": "now() - interval '30 days'", "last_seen_run": "NULL",
    })
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE catalog_sync_resource, lifecycle_issueinterval, catalog_sync_resourceref")
        started = time.perf_counter()
        expressions = expressions.replace("%", "%%")  # modulo, not a placeholder
        cursor.execute(f"INSERT INTO catalog_sync_resource ({columns}) "
                       f"SELECT {expressions} FROM generate_series(1, %s) AS n", [resources])
        cursor.execute("ANALYZE catalog_sync_resource")
    return time.perf_counter() - started


def timed_update(**kwargs):
    from django.db import connection

    from hygiene.domain.issues import active_snoozes, open_issue_filters
    from hygiene.lifecycle.services import update_history
    from hygiene.rulebook import registry
    from hygiene.rulebook.registry import rule_filters

    registry.forget()
    started = time.perf_counter()
    opened, closed = update_history(open_issue_filters(snoozes=active_snoozes()), rule_filters(), "sync",
                                    everywhere={r.key for r in registry.rules() if r.moves_by_itself}, **kwargs)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE lifecycle_issueinterval")
    return {"seconds": round(seconds, 3), "opened": opened, "closed": closed}


def change(ids, since):
    """A sync that wrote these resources: owners given to the unowned, descriptions to the undocumented."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_sync_resource SET is_owned = NOT is_owned, is_documented = NOT is_documented, "
                       "changed_at = %s WHERE id = ANY(%s)", [since, ids])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--removals", type=int, default=50)
    parser.add_argument("--incremental-only", action="store_true",
                        help="reuse the database a previous run left (same --resources) and time only step 3")
    args = parser.parse_args()
    use_bench_database(DATABASE)
    from django.db import connection
    from django.utils import timezone

    from catalog_sync.models import Resource
    from hygiene.lifecycle.models import IssueInterval

    out = ROOT / "bench" / "results" / f"history-{args.resources}.json"
    if args.incremental_only:
        result = json.loads(out.read_text())
        if Resource.objects.count() != args.resources:
            raise SystemExit(f"The bench database does not hold {args.resources:,} resources: run without "
                             f"--incremental-only first.")
        Resource.objects.filter(removed_at__isnull=False).update(removed_at=None)
    else:
        result = {"resources": args.resources, "generate_seconds": round(generate(args.resources), 1)}
        print(f"{args.resources:,} resources written in {result['generate_seconds']} s")
        result["first"] = timed_update(now=timezone.now())
        print(f"first update (history begins): {result['first']}")

        step = max(1, args.resources // (args.resources // 100))
        changed = [f"r{n:08d}" for n in range(1, args.resources + 1, step)]
        change(changed, timezone.now())
        result["full"] = {**timed_update(), "changed": len(changed)}
        print(f"full update, {len(changed):,} changed: {result['full']}")

    since = timezone.now()
    picked = [f"r{n:08d}" for n in range(7, args.resources, max(1, args.resources // args.changes))][:args.changes]
    change(picked, since)
    removed = [f"r{n:08d}" for n in range(11, args.resources, max(1, args.resources // args.removals))][
        :args.removals]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_sync_resource SET removed_at = %s WHERE id = ANY(%s)", [since, removed])
    from django.db.models import Q

    candidates = Resource.objects.filter(Q(changed_at__gte=since) | Q(removed_at__gte=since)).values("pk")
    result["incremental"] = {**timed_update(candidates=candidates), "changed": len(picked), "removed": len(removed)}
    print(f"incremental update, {len(picked)} changed and {len(removed)} removed: {result['incremental']}")
    result["intervals"] = IssueInterval.objects.count()
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['intervals']:,} intervals; written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
