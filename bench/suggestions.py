"""Suggested fixes benchmark: how long computing every suggestion takes after a sync, at 100,000 resources.

Seeds its own PostgreSQL database (`sugg_bench`) from the Secoda emulator with 5% dbt models of Snowflake tables
(reused when it already holds the wanted number of present resources), then times:

1. `hygiene.suggestions.compute.recompute()` on its own (what every sync and change set adds): the first time
   (every row written), then N times over an unchanged mirror (nothing to write: the usual sync);
2. the whole snapshot after a sync (`take_snapshot`: scores, issue history, suggestions, counts), for scale;
3. building the change set preview of "accept every suggested owner ≥ 80" over the whole unowned list;
4. the Suggestions pages and the overview as a logged-in steward (median of N requests after warm-ups).

    .venv/bin/python bench/suggestions.py [--resources 100000] [--repeat 5] [--page-repeat 10]

Writes bench/results/suggestions-N.json.
"""
import argparse
import json
import os
import statistics
import time

from _common import ROOT, use_bench_database

DATABASE = "sugg_bench"


def timed(function, repeat):
    seconds = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(seconds), 2), "min_s": round(min(seconds), 2),
            "max_s": round(max(seconds), 2), "runs": len(seconds)}, result


def counts():
    from django.db.models import Count

    from catalog_sync.models import Resource
    from hygiene.suggestions.models import Suggestion

    in_scope = Resource.objects.filter(removed_at__isnull=True, archived=False)
    by_evidence = {}
    for row in Suggestion.objects.values("kind", "evidence").annotate(n=Count("id")).order_by("-n"):
        by_evidence[f"{row['kind']}: {row['evidence']}"] = row["n"]
    return {
        "resources_in_scope": in_scope.count(),
        "unowned": in_scope.filter(is_owned=False).count(),
        "undocumented": in_scope.filter(is_documented=False).count(),
        "owner_suggestions": Suggestion.objects.filter(kind=Suggestion.OWNER).count(),
        "description_suggestions": Suggestion.objects.filter(kind=Suggestion.DESCRIPTION).count(),
        "by_evidence": by_evidence,
    }


def accept_preview(user):
    """The change set preview of every suggested owner of 80 or more, unfiltered; discarded afterwards."""
    from django.http import QueryDict

    from hygiene.bulk.models import ChangeSet
    from hygiene.suggestions import services

    data = QueryDict("")
    resources = services.resource_filterset("unowned", data)
    suggestions = services.suggestion_filterset("unowned", data, resources)
    started = time.perf_counter()
    change_set = services.accept_matching(user, "unowned", resources, suggestions, 80)
    seconds = time.perf_counter() - started
    items = change_set.items.count()
    ChangeSet.objects.filter(pk=change_set.pk).delete()
    return {"seconds": round(seconds, 2), "resources": items}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--dbt-models", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--page-repeat", type=int, default=10)
    args = parser.parse_args()

    use_bench_database(DATABASE)
    from pages import measure, seed_mirror, steward_client

    from catalog_sync.models import Integration
    from hygiene.dashboard.models import Snapshot
    from hygiene.domain.snapshots import take_snapshot
    from hygiene.suggestions import compute

    load_before = os.getloadavg()
    seeded = seed_mirror(args.resources, args.seed, args.port, extra=("--dbt-models", str(args.dbt_models)))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the steady state: autovacuum has analyzed what the first sync wrote
    first = compute.recompute()  # the first computation writes every row; later ones only what changed
    print(f"first recompute(): {first['seconds']} s ({first['added']:,} rows written)")
    recompute, result = timed(compute.recompute, args.repeat)
    print(f"recompute(): median {recompute['median_s']} s over {args.repeat} runs "
          f"({result['owner']:,} owner and {result['description']:,} description suggestions)")
    snapshot, taken = timed(lambda: take_snapshot(Snapshot.SYNC), max(1, args.repeat // 2))
    print(f"take_snapshot after a sync, suggestions included: median {snapshot['median_s']} s")
    totals = taken.totals
    share = {rule: {"open": totals.get(rule), "with_suggestion": totals.get(f"suggested_{rule}")}
             for rule in ("unowned", "undocumented")}
    print("Share: " + "; ".join(f"{v['with_suggestion']:,} of {v['open']:,} {k}" for k, v in share.items()))

    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # django.test.Client's host
    client, user = steward_client()
    preview = accept_preview(user)
    print(f"Preview of every suggested owner ≥ 80: {preview['resources']:,} resources in {preview['seconds']} s")
    snowflake = Integration.objects.present().filter(type__iexact="snowflake").order_by("id").first()
    pages = []
    for label, url in (("overview", "/"), ("suggested owners", "/suggestions/unowned/"),
                       ("suggested owners, Snowflake columns, ≥ 80",
                        f"/suggestions/unowned/?integration={snowflake.pk}&entity_type=column&min_confidence=80"),
                       ("suggested owners, sorted by resource, page 20", "/suggestions/unowned/?sort=resource&page=20"),
                       ("suggested descriptions", "/suggestions/undocumented/")):
        measured, _ = measure(client, label, url, args.page_repeat, 3)
        measured.pop("slowest_sql")
        pages.append(measured)
        print(f"  {label}: median {measured['median_ms']} ms, p95 {measured['p95_ms']} ms, "
              f"{measured['queries']} queries")

    report = {"resources": args.resources, "dbt_models": args.dbt_models, "seed": args.seed, "seeded": seeded,
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "first_recompute": first, "recompute": recompute, "last_recompute": result, "snapshot_after_sync": snapshot, "share": share,
              "accept_preview_owners_80": preview, "counts": counts(), "pages": pages}
    out = ROOT / "bench" / "results" / f"suggestions-{args.resources}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
