"""Every way the real Secoda API may answer the points its reference pages leave open, all at once: a full
sync of a workspace with one integration over the cap is exact (every resource, every rule count, counted
here from Secoda's records independently of the project's code), and a bulk edit of 1,000 resources (ten
writes) ends completed with the mirror equal to Secoda. Workspace, cap and edit are a tenth and a twentieth of
the real scale (10,000 cap), with the same shape: one integration well over the cap. Each answer alone is covered by test_sync, test_incremental and
test_bulk."""
import pytest

from secoda_emulator.workspace import Workspace
from catalog_sync.models import Resource, SyncRun
from catalog_sync.sync import run_sync
from hygiene.bulk import services
from hygiene.bulk.models import ChangeItem, ChangeSet
from hygiene.dashboard.models import Snapshot
from tests.conftest import SESSION_NOW, fast_client

pytestmark = pytest.mark.django_db

ALL_TOGETHER = {
    "honour_page_size": False, "children_count": "on_request", "refused_operators": "not,is_set",
    "total_pages_in_meta": True, "reference_links": True, "writes_per_minute": None,
}
VARIANTS = {
    "all: bulk answers [] and ids filters match nothing": {**ALL_TOGETHER, "bulk_answer": "empty",
                                                           "id_filter": "nothing"},
    "all: bulk answers a count and ids filters are refused": {**ALL_TOGETHER, "bulk_answer": "count",
                                                              "id_filter": "refuse", "children_count": "never"},
}
# Each answer alone (end-to-end and slower; the smaller tests of each run in the quick suite too).
ALONE = {
    "page_size ignored": {"honour_page_size": False},
    "children counted on request": {"children_count": "on_request"},
    "children never counted": {"children_count": "never"},
    "not and is_set refused": {"refused_operators": "not,is_set"},
    "sorting refused": {"refuse_sort": True},
    "total_pages only in meta": {"total_pages_in_meta": True},
    "the reference pages' links": {"reference_links": True},
    "ids filters refused": {"id_filter": "refuse"},
    "ids filters ignored": {"id_filter": "ignore"},
    "ids filters match nothing": {"id_filter": "nothing"},
    **{f"bulk answers {answer}": {"bulk_answer": answer} for answer in ("ids", "empty", "objects", "records", "count",
                                                                       "no_content")},
}
# All end-to-end (a sync over the cap and a bulk edit of 1,000 each): marked slow, so the quick loop skips
# them; the smaller tests of each answer run there.
CASES = [pytest.param(answers, id=name, marks=pytest.mark.slow) for name, answers in VARIANTS.items()] + [
    pytest.param({**answers, "writes_per_minute": None}, id=name, marks=pytest.mark.slow)
    for name, answers in ALONE.items()]


def blank(value):
    return value is None or str(value).strip() in ("", "None", "null")


def expected_counts(workspace):
    """The rules, counted straight from Secoda's records."""
    records = [workspace.get(i) for i in workspace.ids()]
    live = [r for r in records if r["archived"] not in (True, "True")]
    warning, failing = set(), set()
    for integration in workspace.integrations():
        if integration["type"].startswith("dbt"):
            warns, fails = workspace._dbt_tests.get(integration["id"], ((), ()))
            warning |= set(warns)
            failing |= set(fails)
    return {
        "resources": len(live),
        "stale": sum(1 for r in live if r["stale"] in (True, "True")),
        "unowned": sum(1 for r in live if not r["owners"] and not r["owners_groups"]),
        "undocumented": sum(1 for r in live if blank(r["description"]) and blank(r["definition"])),
        "unused": sum(1 for r in live if (r["external_usage"] in (None, 0, "None"))
                      and (r["internal_usage"] in (None, 0, "None"))),
        "failing_dbt_tests": sum(1 for r in live if r["id"] in failing),
        "warning_dbt_tests": sum(1 for r in live if r["id"] in warning - failing),
    }


@pytest.mark.parametrize("answers", CASES)
def test_a_sync_and_a_bulk_edit_stay_exact_whatever_secoda_answers(capped_server, steward, answers):
    workspace = Workspace.generate(resources=1_300, seed=11, now=SESSION_NOW)
    server = capped_server(workspace, cap=500)
    server.faults.update(answers)

    run = run_sync(client=fast_client(server))
    assert run.status == SyncRun.SUCCEEDED, run.error
    assert set(Resource.objects.present().values_list("id", flat=True)) == set(workspace.ids())
    assert run.slices.filter(split="pack").exists() or run.slices.filter(entity_type="column").count() > 1, \
        "the integration over the cap was split"
    totals = Snapshot.objects.first().totals
    assert {key: totals.get(key, 0) for key in expected_counts(workspace)} == expected_counts(workspace)

    user = workspace.users()[0]["id"]
    ids = list(Resource.objects.present().order_by("id").values_list("id", flat=True)[:1_000])
    already = sum(1 for i in ids if user in workspace.get(i)["owners"])
    change_set = services.build_change_set(steward, Resource.objects.filter(pk__in=ids),
                                           {"owners": {"mode": "add", "users": [user]}}, "1,000 at once")
    change_set.status = ChangeSet.PENDING
    change_set.save()
    writes_before = server.stats()["writes"]
    done = services.run_change_set(change_set.pk, client=fast_client(server))
    assert done.status == ChangeSet.COMPLETED, done.items.exclude(status=ChangeItem.APPLIED).values_list(
        "message", flat=True)[:3]
    changed = done.items.filter(status=ChangeItem.APPLIED).count()
    assert changed == done.items.count() == 1_000 - already > 750
    assert server.stats()["writes"] - writes_before == -(-changed // 100), "each batch written once"
    mirrored = dict(Resource.objects.filter(pk__in=ids).values_list("id", "owners"))
    upstream = {record["id"]: record["owners"] for record in workspace.records(ids)}
    assert all(user in owners for owners in upstream.values())
    assert {i: sorted(o) for i, o in mirrored.items()} == {i: sorted(o) for i, o in upstream.items()}, \
        "the mirror equals Secoda"
    assert services.retry_failed(done, steward) == 0, "nothing is sent twice"
