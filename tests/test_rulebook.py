"""Custom rules as the database answers them: every operator against the mirror's rows checked here in Python,
and a custom rule counted everywhere a built-in one is (snapshot, health, lists, resource page, reports and
their deltas, snoozes, trend, the report command), and still named after it is deleted."""
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from catalog_sync.models import Integration, Resource, Tag
from hygiene.dashboard.models import Snapshot, Snooze
from hygiene.domain.snapshots import take_snapshot
from hygiene.reports.content import build_report
from hygiene.reports.models import Subscription
from hygiene.rulebook import conditions, registry, services
from hygiene.rulebook.models import Rule
from hygiene.rules import in_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def mirror(synced_mirror):
    assert synced_mirror.status == "succeeded"
    return synced_mirror


def blank(text):
    return not (text or "").strip()


def python_says(resource, clause, now):
    """What a clause means, computed from the row in Python (not through the project's compiler)."""
    field, op, value = clause["field"], clause["op"], clause.get("value")
    got = getattr(resource, "integration_id" if field == "integration" else field)
    kind = conditions.FIELDS[field][1]
    if kind == conditions.LIST and op in ("count_below", "count_at_least"):
        return len(got) < value if op == "count_below" else len(got) >= value
    if kind == conditions.LIST:
        return {"blank": not got, "not_blank": bool(got), "has": value in got,
                "lacks": value not in got}[op]
    if kind == conditions.BOOL:
        return got is (op == "is_true")
    if kind == conditions.INTEGRATION:
        return (got == value) == (op == "is")
    if kind in (conditions.DATE, conditions.NUMBER) and op in ("blank", "not_blank"):
        return (got is None) == (op == "blank")
    if kind == conditions.DATE:
        if got is None:
            return False
        cutoff = now - timedelta(days=value)
        return got < cutoff if op == "older_than" else got >= cutoff
    if kind == conditions.NUMBER:
        return {"is": got == value, "is_not": got != value, "below": got is not None and got < value,
                "at_least": got is not None and got >= value}[op]
    text = got or ""
    if op == "matches":
        return re.search(value, text) is not None
    if op == "shorter_than":
        return len(text.strip()) < value
    return {"blank": blank(text), "not_blank": not blank(text), "is": text.lower() == str(value).lower(),
            "is_not": text.lower() != str(value).lower(), "contains": str(value).lower() in text.lower(),
            "not_contains": str(value).lower() not in text.lower()}[op]


def sample_clauses():
    tag = Tag.objects.present().order_by("id").first()
    integration = Integration.objects.present().order_by("id").first()
    owner = next(o for o in Resource.objects.exclude(owners=[]).values_list("owners", flat=True))[0]
    team = next(t for t in Resource.objects.exclude(teams=[]).values_list("teams", flat=True))[0]
    median_usage = sorted(u for u in Resource.objects.values_list("external_usage", flat=True) if u is not None)
    median_usage = median_usage[len(median_usage) // 2]
    return [
        {"field": "description", "op": "blank"}, {"field": "description", "op": "not_blank"},
        {"field": "description", "op": "shorter_than", "value": 40},
        {"field": "title", "op": "contains", "value": "ORDER"}, {"field": "title", "op": "not_contains", "value": "a"},
        {"field": "title", "op": "matches", "value": r"^[a-m].*_(id|at)$"},
        {"field": "entity_type", "op": "is", "value": "Column"}, {"field": "entity_type", "op": "is_not", "value": "table"},
        {"field": "definition", "op": "blank"},
        {"field": "pii", "op": "is_true"}, {"field": "verified", "op": "is_false"},
        {"field": "external_usage", "op": "below", "value": median_usage},
        {"field": "external_usage", "op": "at_least", "value": median_usage},
        {"field": "external_usage", "op": "blank"}, {"field": "row_count", "op": "is", "value": 0},
        {"field": "updated_at", "op": "older_than", "value": 90}, {"field": "updated_at", "op": "newer_than", "value": 90},
        {"field": "external_updated_at", "op": "blank"},
        {"field": "tags", "op": "has", "value": tag.pk}, {"field": "tags", "op": "lacks", "value": tag.pk},
        {"field": "tags", "op": "blank"}, {"field": "owners", "op": "count_below", "value": 2},
        {"field": "owners", "op": "count_at_least", "value": 2}, {"field": "owners", "op": "has", "value": owner},
        {"field": "teams", "op": "has", "value": team}, {"field": "owners_groups", "op": "not_blank"},
        {"field": "integration", "op": "is", "value": integration.pk},
        {"field": "integration", "op": "is_not", "value": integration.pk},
    ]


def test_every_operator_flags_exactly_the_rows_it_says(mirror):
    now = timezone.now()
    resources = list(in_scope())
    checked = 0
    for raw in sample_clauses():
        clause, error = conditions.check(raw)
        assert error is None, (raw, error)
        flagged = set(in_scope().filter(conditions.clause_q(clause)).values_list("pk", flat=True))
        expected = {r.pk for r in resources if python_says(r, clause, now)}
        assert flagged == expected, f"{conditions.describe(clause)}: {len(flagged)} flagged, {len(expected)} expected"
        checked += bool(expected) and len(expected) < len(resources)
    assert checked >= 15, "most clauses split the workspace (the test would not notice a clause matching all)"


def test_clauses_join_by_all_or_any_and_go_through_a_relation(mirror):
    clauses = [{"field": "pii", "op": "is_true"}, {"field": "verified", "op": "is_false"}]
    both = set(in_scope().filter(conditions.condition_q(clauses, "all")).values_list("pk", flat=True))
    either = set(in_scope().filter(conditions.condition_q(clauses, "any")).values_list("pk", flat=True))
    assert both == set(in_scope().filter(pii=True, verified=False).values_list("pk", flat=True)) and both
    assert either == set(in_scope().exclude(pii=False, verified=True).values_list("pk", flat=True))
    from catalog_sync.models import ResourceRef
    via = set(ResourceRef.objects.filter(conditions.condition_q(clauses, "all", prefix="resource__"))
              .values_list("resource_id", flat=True))
    assert via <= both


@pytest.mark.parametrize("clause,message", [
    ({"field": "nope", "op": "blank"}, "There is no field"),
    ({"field": "title", "op": "has", "value": "x"}, "cannot be tested with"),
    ({"field": "title", "op": "matches", "value": "(["}, "does not compile"),
    ({"field": "title", "op": "matches", "value": "a{2,1}"}, "does not compile"),
    ({"field": "description", "op": "shorter_than", "value": "twenty"}, "not a whole number"),
    ({"field": "description", "op": "shorter_than", "value": -1}, "between 0 and"),
    ({"field": "title", "op": "contains"}, "needs a value"),
    ({"field": "tags", "op": "has", "value": "no-such-tag"}, "is in the mirror"),
    ("pii", "A clause is"),
])
def test_a_clause_that_cannot_run_is_refused_with_a_message(mirror, clause, message):
    cleaned, error = conditions.check(clause)
    assert cleaned is None and message in error


def test_a_definition_without_a_condition_or_with_a_bad_scope_is_refused(mirror):
    with pytest.raises(services.RuleError) as refused:
        services.clean_definition({"name": "Nothing", "clauses": []})
    assert "at least one clause" in refused.value.errors["clauses"]
    with pytest.raises(services.RuleError) as refused:
        services.clean_definition({"name": "", "scope": "colour=red", "weight": "abc",
                                   "clauses": [{"field": "pii", "op": "is_true"}, {"field": "x", "op": "y"}]})
    assert set(refused.value.errors) == {"name", "scope", "weight", "clauses.1"}
    for history in ("open_days=3", "new_since=2026-01-01", "overdue=true"):
        with pytest.raises(services.RuleError) as refused:
            services.clean_definition({"name": "Loop", "scope": history, "clauses": [{"field": "pii", "op": "is_true"}]})
        assert "cannot use" in refused.value.errors["scope"], history


def pii_unverified(**extra):
    cleaned = services.clean_definition({
        "name": "PII columns that are not verified", "weight": 15, "scope": "entity_type=column",
        "clauses": [{"field": "pii", "op": "is_true"}, {"field": "verified", "op": "is_false"}], **extra})
    return services.save(cleaned)


def flagged_by_hand():
    return set(in_scope().filter(entity_type="column", pii=True, verified=False).values_list("pk", flat=True))


def test_a_custom_rule_counts_everywhere_a_built_in_one_does(mirror, steward, client):
    rule = pii_unverified()
    expected = flagged_by_hand()
    assert len(expected) >= 3 and rule.key.startswith("pii_columns_that_are_not")
    snapshot = take_snapshot(Snapshot.RULES)
    assert snapshot.totals[rule.key] == len(expected)
    assert sum(row.get(rule.key, 0) for row in snapshot.by_integration.values()) == len(expected)
    assert snapshot.by_entity_type["column"][rule.key] == len(expected)

    # Health: 15 points off for breaking it (on top of the built-ins).
    one = Resource.objects.get(pk=sorted(expected)[0])
    broken = [r for r in registry.rules() if in_scope().filter(r.q(), pk=one.pk).exists()]
    assert one.health_score == max(0, 100 - sum(r.weight for r in broken)) and rule.key in {r.key for r in broken}

    client.force_login(steward)
    home = client.get("/").content.decode()
    assert f'data-rule="{rule.key}">{len(expected):,}<' in home and "PII columns that are not verified" in home
    listed = client.get(f"/issues/{rule.key}/?per_page=200")
    assert listed.status_code == 200
    assert {r.record.pk for r in listed.context["table"].page.object_list} == expected
    csv_rows = b"".join(client.get(f"/issues/{rule.key}/export.csv").streaming_content).decode().splitlines()
    assert len(csv_rows) == len(expected) + 1 and "PII columns that are not verified" in csv_rows[1]
    page = client.get(f"/resources/{one.pk}/").content.decode()
    assert "PII columns that are not verified" in page and "rule-custom" in page

    out = []
    call_command("hygiene_report", "--format", "json", stdout=type("W", (), {"write": lambda s, t: out.append(t)})())
    report = json.loads("".join(out))
    assert report[rule.key] == len(expected)
    assert {"key": rule.key, "name": rule.name, "builtin": False, "weight": 15, "count": len(expected)} in report["rules"]


def test_a_custom_rule_in_reports_with_its_change_since_the_last_one(mirror, steward):
    rule = pii_unverified()
    take_snapshot(Snapshot.RULES)
    subscription = Subscription.objects.create(user=steward, email="s@example.com", scope=Subscription.WORKSPACE,
                                               frequency=Subscription.DAILY, hour=8, time_zone="UTC",
                                               next_due_at=timezone.now(), last_counts={rule.key: len(flagged_by_hand()) + 4})
    report = build_report(subscription)
    mine = next(r for r in report["rules"] if r["key"] == rule.key)
    assert mine["count"] == len(flagged_by_hand()) and mine["change"] == -4 and mine["custom"]
    assert f"/issues/{rule.key}/" in mine["link"]


def test_snoozing_a_custom_rule_hides_its_issue_and_fixing_drops_the_count(mirror, steward):
    rule = pii_unverified()
    expected = sorted(flagged_by_hand())
    Snooze.objects.create(rule=rule.key, resource_id=expected[0], reason="known", created_by=steward,
                          expires_at=timezone.now() + timedelta(days=3))
    assert take_snapshot(Snapshot.SNOOZE).totals[rule.key] == len(expected) - 1
    Resource.objects.filter(pk__in=expected[1:4]).update(verified=True)
    assert take_snapshot(Snapshot.SYNC).totals[rule.key] == len(expected) - 4


def test_switched_off_and_deleted_rules_stop_counting_but_stay_named(mirror, steward, client):
    rule = pii_unverified()
    take_snapshot(Snapshot.SYNC)
    services.delete(rule)
    take_snapshot(Snapshot.SYNC)
    assert rule.key not in Snapshot.objects.first().totals
    client.force_login(steward)
    gone = client.get(f"/issues/{rule.key}/")
    assert gone.status_code == 404 and "was deleted" in gone.content.decode()
    home = client.get("/").content.decode()
    assert "PII columns that are not verified (deleted)" in home, "the trend still names it"
    assert services.new_key(rule.name) != rule.key, "a deleted rule's key is never given again"

    unowned = Rule.objects.get(key="unowned")
    services.save(services.clean_definition({"weight": 25, "enabled": False}, builtin=True), rule=unowned)
    assert "unowned" not in registry.keys() and "unowned" not in take_snapshot(Snapshot.RULES).totals
    assert client.get("/issues/unowned/").status_code == 404
    services.save(services.clean_definition({"weight": 25, "enabled": True}, builtin=True), rule=unowned)
    assert client.get("/issues/unowned/").status_code == 200


def test_a_stored_rule_that_no_longer_compiles_flags_nothing_and_breaks_no_page(mirror, steward, client):
    rule = pii_unverified()
    Rule.objects.filter(pk=rule.pk).update(clauses=[{"field": "gone", "op": "blank"}])
    registry.forget()
    assert take_snapshot(Snapshot.RULES).totals[rule.key] == 0
    client.force_login(steward)
    for path in ("/", "/issues/", f"/issues/{rule.key}/", f"/resources/{sorted(flagged_by_hand())[0]}/"):
        assert client.get(path).status_code == 200, path


@pytest.mark.django_db(transaction=True)
def test_a_flushed_database_has_its_built_in_rules_back():
    """`flush` (and every test that runs in transactions) empties the rules table the first migration filled:
    the built-in rules come back as that migration made them, so the pages and lists that look one up work."""
    made_by_migration = list(Rule.objects.filter(builtin=True).order_by("position").values(
        "key", "name", "weight", "position", "enabled"))
    assert [row["key"] for row in made_by_migration] == list(services.BUILTIN_KEYS)
    call_command("flush", interactive=False, verbosity=0)
    assert list(Rule.objects.filter(builtin=True).order_by("position").values(
        "key", "name", "weight", "position", "enabled")) == made_by_migration
    assert registry.get("unowned").pk == Rule.objects.get(key="unowned").pk
