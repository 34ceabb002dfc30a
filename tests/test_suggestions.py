"""Suggested fixes, computed in PostgreSQL: each kind of evidence gives the right value, reason and confidence
(the expected confidence worked out here from the stated heuristic, not read back from the code); only flagged
resources and present, enabled people; rejections outlive recomputation; the snapshot counts the share; a sync
and a change set recompute them."""
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog_sync.mirror import ResourceWriter
from catalog_sync.models import Integration, Resource, SecodaGroup, SecodaUser
from hygiene.bulk.models import ChangeItem, ChangeSet
from hygiene.bulk.services import refresh_counts
from hygiene.dashboard.models import Snapshot, Snooze
from hygiene.domain.snapshots import take_snapshot
from hygiene.suggestions import compute, services
from hygiene.suggestions.models import RejectedSuggestion, Suggestion

pytestmark = pytest.mark.django_db

ADA, BOB, CAROL, DAN, GONE = "u-ada", "u-bob", "u-carol", "u-dan", "u-gone"
ENG = "g-eng"


@pytest.fixture
def people(db):
    Integration.objects.bulk_create([
        Integration(id="i-snow", name="Snowflake", type="snowflake"),
        Integration(id="i-dbt", name="dbt Cloud", type="dbt_cloud"),
        Integration(id="i-pg", name="Postgres", type="postgres"),
        Integration(id="i-bi", name="Tableau", type="tableau"),
    ])
    SecodaUser.objects.bulk_create([
        SecodaUser(id=ADA, first_name="Ada", last_name="Lovelace", email="ada@example.com"),
        SecodaUser(id=BOB, first_name="Bob", last_name="Babbage", email="bob@example.com"),
        SecodaUser(id=CAROL, first_name="Carol", last_name="Shaw", email="carol@example.com", disabled=True),
        SecodaUser(id=DAN, first_name="", last_name="", email="dan@example.com"),
        SecodaUser(id=GONE, first_name="Gus", last_name="Gone", removed_at=timezone.now()),
    ])
    SecodaGroup.objects.create(id=ENG, name="Data Eng", users=[ADA])


def mirror(*records):
    """Write Secoda-shaped records through the mirror's own writer (flags and owner references included)."""
    writer = ResourceWriter(None, keep_seen=True)
    writer.add([{"integration": "i-snow", "entity_type": "table", **record} for record in records])
    writer.flush()


def column(table_id, table_path, name, **fields):
    """A column record of the table `table_id` (at `table_path`); its id is "<table_id>.<name>"."""
    return {"id": f"{table_id}.{name}", "entity_type": "column", "title": name, "title_full": f"{table_path}.{name}",
            "parent": table_id, **fields}


def suggestions(resource_id, kind=Suggestion.OWNER):
    return {s.value: s for s in Suggestion.objects.filter(resource_id=resource_id, kind=kind)}


def only(resource_id, kind=Suggestion.OWNER):
    found = suggestions(resource_id, kind)
    assert len(found) == 1, found
    return next(iter(found.values()))


def sibling_confidence(agreeing, owned):
    """The heuristic as the module states it: 60 at two thirds, 90 when all agree, 5 off per owned sibling
    under five."""
    return 60 + (30 * (3 * agreeing - 2 * owned)) // owned - max(0, 5 - owned) * 5


# -- owners ------------------------------------------------------------------------------

def test_an_unowned_table_is_suggested_the_owner_of_its_schema(people):
    mirror({"id": "s1", "entity_type": "schema", "title": "finance", "title_full": "analytics.finance",
            "owners": [ADA]},
           {"id": "t1", "title": "orders", "title_full": "analytics.finance.orders", "parent": "s1"})
    compute.recompute()
    suggestion = only("t1")
    assert suggestion.value == f"user:{ADA}"
    assert suggestion.reason == "Its schema analytics.finance is owned by Ada Lovelace"
    assert (suggestion.confidence, suggestion.evidence) == (80, "parent")


def test_a_parent_owned_by_a_group_suggests_the_group(people):
    mirror({"id": "d1", "entity_type": "dashboard", "title": "Revenue", "title_full": "Revenue", "owners_groups": [ENG],
            "integration": "i-bi"},
           {"id": "c1", "entity_type": "chart", "title": "MRR", "title_full": "Revenue.MRR", "parent": "d1",
            "integration": "i-bi"})
    compute.recompute()
    suggestion = only("c1")
    assert suggestion.value == f"group:{ENG}"
    assert suggestion.reason == "Its dashboard Revenue is owned by Data Eng (group)"


def test_owners_its_siblings_agree_on_are_suggested_with_a_confidence_that_grows_with_agreement(people):
    mirror({"id": "t1", "title": "t", "title_full": "db.s.t"},
           *(column("t1", "db.s.t", f"col{n}", owners=[BOB] if n < 3 else [DAN]) for n in range(4)),
           column("t1", "db.s.t", "new"))
    compute.recompute()
    suggestion = only("t1.new")  # Dan owns 1 of 4: not two thirds
    assert suggestion.value == f"user:{BOB}"
    assert suggestion.confidence == sibling_confidence(3, 4) == 62
    assert suggestion.reason == "3 of the 4 owned columns in table db.s.t are owned by Bob Babbage"
    assert suggestion.evidence == "siblings"


def test_unanimous_siblings_say_so_and_siblings_that_split_suggest_nothing(people):
    mirror({"id": "t1", "title": "t", "title_full": "db.s.t"},
           *(column("t1", "db.s.t", f"a{n}", owners=[BOB, DAN] if n == 0 else [BOB]) for n in range(6)),
           column("t1", "db.s.t", "new"),
           {"id": "t2", "title": "u", "title_full": "db.s.u"},
           column("t2", "db.s.u", "b1", owners=[BOB]), column("t2", "db.s.u", "b2", owners=[DAN]),
           column("t2", "db.s.u", "new"))
    compute.recompute()
    suggestion = only("t1.new")  # Dan owns one of six
    assert suggestion.reason == "All 6 owned columns in table db.s.t are owned by Bob Babbage"
    assert suggestion.confidence == sibling_confidence(6, 6) == 90
    assert not suggestions("t2.new"), "one of two is not an agreement"


def test_the_same_path_in_a_linked_integration_lends_its_owner(people):
    mirror({"id": "wh", "title": "orders", "title_full": "ANALYTICS.finance.orders"},
           {"id": "model", "title": "orders", "title_full": "analytics.finance.orders", "integration": "i-dbt",
            "owners": [ADA]},
           # Postgres and Snowflake are not linked ... unless one names the other in its sources.
           {"id": "pg-unlinked", "title": "users", "title_full": "app.public.users", "integration": "i-pg"},
           {"id": "sf-unlinked", "title": "users", "title_full": "app.public.users", "owners": [BOB]},
           {"id": "pg-linked", "title": "plans", "title_full": "app.public.plans", "integration": "i-pg"},
           {"id": "sf-linked", "title": "plans", "title_full": "app.public.plans", "owners": [BOB],
            "sources": ["i-pg"]},
           # A bare name is not a path: nothing is matched by it.
           {"id": "bare", "title": "orders", "title_full": "orders", "integration": "i-bi"},
           {"id": "bare-owned", "title": "orders", "title_full": "orders", "integration": "i-pg", "owners": [BOB]})
    compute.recompute()
    linked = only("wh")
    assert (linked.value, linked.confidence, linked.evidence) == (f"user:{ADA}", 85, "counterpart")
    assert linked.reason == "Its counterpart analytics.finance.orders in dbt Cloud is owned by Ada Lovelace"
    assert only("pg-unlinked").confidence == 70
    assert only("pg-linked").confidence == 85
    assert not suggestions("bare")


def test_its_most_frequent_user_among_secoda_people_is_suggested(people):
    mirror({"id": "d1", "entity_type": "dashboard", "title": "Sales", "title_full": "Sales", "integration": "i-bi",
            "internal_users": [ADA, BOB, CAROL], "external_users": ["FIVETRAN"]},
           {"id": "c1", "entity_type": "chart", "title": "Pipeline", "title_full": "Sales.Pipeline",
            "integration": "i-bi", "parent": "d1", "owners": [DAN], "internal_users": [ADA],
            "external_users": ["ADA@Example.com", "carol@example.com"]},
           {"id": "d2", "entity_type": "dashboard", "title": "Ops", "title_full": "Ops", "integration": "i-bi",
            "internal_users": [ADA, BOB]})
    compute.recompute()
    top = only("d1")  # Ada: itself, the chart's internal users, the chart's external users by e-mail = 3
    assert (top.value, top.confidence, top.evidence) == (f"user:{ADA}", 50, "usage")
    assert top.reason == "Ada Lovelace is its most frequent user (listed 3 times among the users of it and its children)"
    tied = suggestions("d2")
    assert set(tied) == {f"user:{ADA}", f"user:{BOB}"}
    assert {s.confidence for s in tied.values()} == {40}
    assert tied[f"user:{BOB}"].reason == ("Bob Babbage is one of its 2 most frequent users (listed once each among "
                                          "the users of it and its children)")


def test_several_kinds_of_evidence_for_one_owner_make_one_stronger_suggestion(people):
    mirror({"id": "t1", "title": "t", "title_full": "db.s.t", "owners": [ADA]},
           column("t1", "db.s.t", "a", owners=[ADA]), column("t1", "db.s.t", "b", owners=[ADA]),
           column("t1", "db.s.t", "c"))
    compute.recompute()
    suggestion = only("t1.c")
    # Parent 80, siblings 75 (two who agree): the stronger one plus 5 for the other.
    assert sibling_confidence(2, 2) == 75
    assert suggestion.confidence == 85
    assert suggestion.evidence == "parent,siblings"
    assert suggestion.reason == ("Its table db.s.t is owned by Ada Lovelace. "
                                 "Both owned columns in table db.s.t are owned by Ada Lovelace")


def test_confidence_never_reaches_certainty(people):
    mirror({"id": "t1", "title": "t", "title_full": "db.s.t", "owners": [ADA]},
           *(column("t1", "db.s.t", f"c{n}", owners=[ADA]) for n in range(5)),
           column("t1", "db.s.t", "new", internal_users=[ADA]),
           {"id": "m-new", "entity_type": "column", "title": "new", "title_full": "db.s.t.new", "integration": "i-dbt",
            "owners": [ADA]})
    compute.recompute()
    suggestion = only("t1.new")
    assert suggestion.evidence.split(",") == ["siblings", "counterpart", "parent", "usage"]
    assert suggestion.confidence == 95


def test_only_present_enabled_people_are_suggested_and_only_for_unowned_resources_in_scope(people):
    mirror({"id": "s-carol", "entity_type": "schema", "title": "a", "title_full": "db.a", "owners": [CAROL]},
           {"id": "t-carol", "title": "t", "title_full": "db.a.t", "parent": "s-carol"},
           {"id": "s-gone", "entity_type": "schema", "title": "b", "title_full": "db.b", "owners": [GONE]},
           {"id": "t-gone", "title": "t", "title_full": "db.b.t", "parent": "s-gone"},
           {"id": "s-ada", "entity_type": "schema", "title": "c", "title_full": "db.c", "owners": [ADA]},
           {"id": "t-owned", "title": "t", "title_full": "db.c.t", "parent": "s-ada", "owners": [BOB]},
           {"id": "t-archived", "title": "u", "title_full": "db.c.u", "parent": "s-ada", "archived": True},
           {"id": "t-removed", "title": "v", "title_full": "db.c.v", "parent": "s-ada"},
           {"id": "t-ok", "title": "w", "title_full": "db.c.w", "parent": "s-ada"})
    Resource.objects.filter(pk="t-removed").update(removed_at=timezone.now())
    compute.recompute()
    assert set(Suggestion.objects.values_list("resource_id", flat=True)) == {"t-ok"}
    assert Suggestion.objects.get().value == f"user:{ADA}"


# -- descriptions ----------------------------------------------------------------------------

def test_the_description_same_named_columns_agree_on_is_propagated(people):
    documented = [("The customer.", 3), ("Customer key", 1)]
    records, n = [], 0
    for text, count in documented:
        for _ in range(count):
            records.append({"id": f"c{n}", "entity_type": "column", "title": "customer_id",
                            "title_full": f"db.s.t{n}.customer_id", "description": text})
            n += 1
    mirror(*records,
           {"id": "c-new", "entity_type": "column", "title": "Customer_ID", "title_full": "db.s.x.Customer_ID"},
           {"id": "t-new", "entity_type": "table", "title": "customer_id", "title_full": "db.s.customer_id"},
           {"id": "p1", "entity_type": "column", "title": "plan", "title_full": "db.s.a.plan", "description": "Plan."},
           {"id": "p2", "entity_type": "column", "title": "plan", "title_full": "db.s.b.plan", "description": "Tier."},
           {"id": "p-new", "entity_type": "column", "title": "plan", "title_full": "db.s.c.plan"})
    compute.recompute()
    suggestion = only("c-new", Suggestion.DESCRIPTION)
    assert suggestion.value == "The customer."
    assert suggestion.confidence == min(90, 40 + 10 * 3) * 3 // 4 == 52
    assert suggestion.reason == ("3 of the 4 documented columns named “Customer_ID” elsewhere in the workspace "
                                 "say this")
    assert (suggestion.evidence, suggestion.rule) == ("propagation", "undocumented")
    assert not suggestions("t-new", Suggestion.DESCRIPTION), "tables are not matched by name alone"
    assert not suggestions("p-new", Suggestion.DESCRIPTION), "one each is no agreement"


def test_a_dbt_models_description_is_suggested_for_its_warehouse_table(people):
    mirror({"id": "wh", "title": "orders", "title_full": "analytics.finance.orders", "definition": " "},
           {"id": "model", "title": "orders", "title_full": "analytics.finance.orders", "integration": "i-dbt",
            "description": "  One row per order.  "})
    compute.recompute()
    suggestion = only("wh", Suggestion.DESCRIPTION)
    assert (suggestion.value, suggestion.confidence) == ("One row per order.", 85)
    assert suggestion.reason == "Its counterpart analytics.finance.orders in dbt Cloud says this"
    assert not suggestions("model", Suggestion.DESCRIPTION)


# -- lifecycle -------------------------------------------------------------------------------

def schema_with_unowned_tables(count=2):
    mirror({"id": "s1", "entity_type": "schema", "title": "finance", "title_full": "analytics.finance",
            "owners": [ADA], "owners_groups": [ENG]},
           *({"id": f"t{n}", "title": f"t{n}", "title_full": f"analytics.finance.t{n}", "parent": "s1"}
             for n in range(count)))


def test_a_rejected_suggestion_stays_rejected_when_suggestions_are_computed_again(people, steward):
    schema_with_unowned_tables()
    compute.recompute()
    rejected = suggestions("t0")[f"user:{ADA}"]
    services.reject(rejected, steward)
    assert set(suggestions("t0")) == {f"group:{ENG}"}
    for _ in range(2):
        compute.recompute()
        assert set(suggestions("t0")) == {f"group:{ENG}"}
        assert set(suggestions("t1")) == {f"user:{ADA}", f"group:{ENG}"}, "only that resource's"
    remembered = RejectedSuggestion.objects.get()
    assert (remembered.resource_id, remembered.value, remembered.rejected_by) == ("t0", f"user:{ADA}", steward)


def test_a_rejected_description_stays_rejected_even_with_more_agreement(people, steward):
    mirror(*({"id": f"c{n}", "entity_type": "column", "title": "id", "title_full": f"db.s.t{n}.id",
              "description": "Id of the record."} for n in range(2)),
           {"id": "c-new", "entity_type": "column", "title": "id", "title_full": "db.s.new.id"})
    compute.recompute()
    services.reject(only("c-new", Suggestion.DESCRIPTION), steward)
    mirror({"id": "c9", "entity_type": "column", "title": "id", "title_full": "db.s.t9.id",
            "description": "Id of the record."})
    compute.recompute()
    assert not suggestions("c-new", Suggestion.DESCRIPTION)


def test_the_snapshot_counts_open_issues_that_have_a_suggestion(people, steward):
    schema_with_unowned_tables(3)
    mirror({"id": "lonely", "title": "x", "title_full": "elsewhere.x"})
    Snooze.objects.create(rule="unowned", resource_id="t2", reason="scratch", created_by=steward,
                          expires_at=timezone.now() + timedelta(days=3))
    snapshot = take_snapshot(Snapshot.SYNC)
    # Unowned and open: t0, t1, lonely (t2 snoozed); of them t0 and t1 have a suggested owner.
    assert snapshot.totals["unowned"] == 3
    assert snapshot.totals["suggested_unowned"] == 2
    assert snapshot.totals["suggested_undocumented"] == 0


def test_a_change_set_computes_suggestions_again_so_an_accepted_one_is_gone(people, steward):
    schema_with_unowned_tables(1)
    take_snapshot(Snapshot.SYNC)
    change_set = services.accept(steward, Suggestion.objects.filter(resource_id="t0"), "accept", "unowned")
    item = change_set.items.get()
    assert item.before == {"owners": [], "owners_groups": []}
    assert item.after == {"owners": [ADA], "owners_groups": [ENG]}
    # As apply_batch leaves the mirror once Secoda confirms the write:
    Resource.objects.filter(pk="t0").update(owners=[ADA], owners_groups=[ENG], is_owned=True)
    ChangeItem.objects.filter(pk=item.pk).update(status=ChangeItem.APPLIED)
    ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSet.COMPLETED)
    refresh_counts(change_set.pk)
    assert not Suggestion.objects.filter(resource_id="t0").exists()
    assert Snapshot.objects.first().totals["suggested_unowned"] == 0


def test_a_sync_computes_suggestions(synced_mirror, emulator):
    from catalog_sync.sync import run_sync
    from tests.conftest import fast_client

    Suggestion.objects.all().delete()
    run = run_sync(client=fast_client(emulator))
    assert run.status == "succeeded", run.error
    unowned_with_evidence = Suggestion.objects.filter(kind=Suggestion.OWNER).values("resource_id").distinct().count()
    assert unowned_with_evidence > 50
    assert Snapshot.objects.first().totals["suggested_unowned"] == unowned_with_evidence
    assert not Suggestion.objects.filter(kind=Suggestion.OWNER, resource__is_owned=True).exists()
    assert not Suggestion.objects.filter(kind=Suggestion.DESCRIPTION, resource__is_documented=True).exists()


def test_two_computations_at_once_leave_one_consistent_set(people, transactional_db):
    """A sync's snapshot and a change set's may compute at the same moment: the second waits for the first
    to commit (without that, it would trip over the rows the first has not committed yet)."""
    import time

    from django.db import transaction

    from tests.concurrency import race

    def first():
        with transaction.atomic():  # as inside a snapshot: its rows stay uncommitted a while
            result = compute.recompute()
            time.sleep(0.5)
        return result

    def second():
        time.sleep(0.1)
        return compute.recompute()

    schema_with_unowned_tables(5)
    results = race(first, second)
    assert [result["added"] for result in results] == [10, 0], results
    assert Suggestion.objects.count() == 10  # five tables, each the schema's user and group


def test_a_rejection_made_while_suggestions_are_computed_is_not_written_back(people, steward, transactional_db):
    """A steward rejects while a sync's computation is under way: the rejection waits for it to commit, then
    removes what it wrote, and the next computation leaves the value out."""
    import time

    from django.db import transaction

    from tests.concurrency import race

    schema_with_unowned_tables(1)
    compute.recompute()
    target = suggestions("t0")[f"user:{ADA}"]
    Suggestion.objects.filter(pk=target.pk).delete()  # as if the running computation were about to write it

    def computation():
        with transaction.atomic():
            compute.recompute()  # writes the suggestion back, then holds its lock until the snapshot commits
            time.sleep(0.5)

    def rejection():
        time.sleep(0.1)
        services.reject(target, steward)

    race(computation, rejection)
    assert f"user:{ADA}" not in suggestions("t0")
    compute.recompute()
    assert f"user:{ADA}" not in suggestions("t0") and RejectedSuggestion.objects.count() == 1


def test_a_description_of_blanks_alone_is_never_propagated(people):
    mirror(*({"id": f"c{n}", "entity_type": "column", "title": "id", "title_full": f"db.s.t{n}.id",
              "description": "\n\n \t\u00a0"} for n in range(3)),
           {"id": "c-new", "entity_type": "column", "title": "id", "title_full": "db.s.new.id"})
    assert not Resource.objects.filter(pk="c0", is_documented=True).exists(), "blank to the mirror too"
    compute.recompute()
    assert not Suggestion.objects.filter(kind=Suggestion.DESCRIPTION).exists()


def test_a_snapshot_still_counts_when_the_suggestions_cannot_be_computed(people, monkeypatch):
    schema_with_unowned_tables(2)

    def broken(now=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(compute, "recompute", broken)
    snapshot = take_snapshot(Snapshot.SYNC)
    assert snapshot.pk and snapshot.totals["unowned"] == 2
