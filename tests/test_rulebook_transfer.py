"""Rules as a file: an export imports back exactly, a file with one bad rule writes nothing and says which rule
and why, built-in rules take only their weight and on/off, viewers cannot import, and whatever is uploaded
(binary, huge, not YAML, the wrong shape) comes back as a message, never an error page."""
import io
import json
import re

import pytest
import yaml
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog_sync.models import Tag, Team
from hygiene.dashboard.models import Snapshot
from hygiene.rulebook import registry, services, transfer
from hygiene.rulebook.models import Rule

pytestmark = pytest.mark.django_db

DEFAULT_WEIGHTS = {"stale": 20, "unowned": 25, "undocumented": 20, "failing_dbt_tests": 25,
                   "warning_dbt_tests": 5, "unused": 5}


@pytest.fixture
def mirror(synced_mirror):
    assert synced_mirror.status == "succeeded"
    return synced_mirror


def make_rule(name, clauses, **extra):
    return services.save(services.clean_definition({"name": name, "clauses": clauses, **extra}), snapshot=False)


@pytest.fixture
def rulebook(mirror):
    """Three custom rules of different shapes, a built-in weight changed and one built-in switched off."""
    tag = Tag.objects.present().order_by("id").first()
    team = Team.objects.present().order_by("id").first()
    make_rule("PII columns not verified", [{"field": "pii", "op": "is_true"}, {"field": "verified", "op": "is_false"}],
              scope="entity_type=column", weight=15, sla_days=30)
    make_rule("Thin descriptions ☂", [{"field": "description", "op": "shorter_than", "value": 40},
                                      {"field": "title", "op": "matches", "value": r"^(dim|fct)_.*$"},
                                      {"field": "tags", "op": "has", "value": tag.pk}],
              match="any", explanation="Short: “write more”.", enabled=False)
    make_rule("Old and teamless", [{"field": "updated_at", "op": "older_than", "value": 180},
                                   {"field": "teams", "op": "lacks", "value": team.pk},
                                   {"field": "owners", "op": "count_below", "value": 2}], weight=0)
    Rule.objects.filter(key="stale").update(weight=7)
    Rule.objects.filter(key="unused").update(enabled=False)
    Rule.objects.filter(key="undocumented").update(sla_days=14)
    registry.forget()
    return transfer.export_rules()


def empty_the_registry():
    Rule.objects.filter(builtin=False).delete()
    for key, weight in DEFAULT_WEIGHTS.items():
        Rule.objects.filter(key=key).update(weight=weight, enabled=True, sla_days=None)
    registry.forget()


def custom(data):
    return [rule for rule in data["rules"] if not rule.get("builtin")]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_an_export_imports_back_exactly_into_an_emptied_registry(rulebook, fmt,
                                                                 django_capture_on_commit_callbacks):
    text = transfer.dump(rulebook, fmt)
    assert [rule["key"] for rule in rulebook["rules"]][:6] == list(DEFAULT_WEIGHTS)
    assert len(custom(rulebook)) == 3 and "☂" in text and "\\u" not in text  # readable, not escaped
    empty_the_registry()
    before = Snapshot.objects.filter(reason=Snapshot.RULES).count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = transfer.import_rules(transfer.parse(text.encode()))

    assert result.ok and result.summary() == "Imported: 3 created, 3 updated, 3 unchanged"
    assert [o.key for o in result.updated] == ["stale", "undocumented", "unused"]
    assert transfer.export_rules() == rulebook
    assert transfer.dump(transfer.export_rules(), fmt) == text
    # One snapshot for the whole import, and it counts the imported rules.
    assert len(callbacks) == 1 and Snapshot.objects.filter(reason=Snapshot.RULES).count() == before + 1
    latest = Snapshot.objects.order_by("-pk").first()
    assert "pii_columns_not_verified" in latest.totals and "stale" in latest.totals


def test_the_yaml_export_reads_like_a_file_kept_in_git(rulebook):
    text = transfer.dump(rulebook, "yaml")
    assert text.startswith("# Catalog Hygiene rules")
    assert "\n- key: stale\n  builtin: true\n  weight: 7\n  enabled: true\n  sla_days: null\n" in text
    assert "- key: pii_columns_not_verified\n  name: PII columns not verified\n" in text
    assert "  weight: 15\n  enabled: true\n  sla_days: 30\n  scope: entity_type=column\n" in text
    assert "  scope: entity_type=column\n  match: all\n  clauses:\n  - field: pii\n    op: is_true\n" in text
    assert yaml.safe_load(text) == json.loads(transfer.dump(rulebook, "json")) == rulebook


def test_importing_the_same_file_again_changes_nothing(rulebook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = transfer.import_rules(rulebook)
    assert result.summary() == "Imported: 0 created, 0 updated, 9 unchanged"
    assert callbacks == [] and Rule.objects.count() == 9  # no snapshot when nothing changed


def bad_file(rulebook, clause):
    data = json.loads(json.dumps(rulebook))
    data["rules"][2]["weight"] = 1  # a good change in the same file: must not be written either
    data["rules"].append({"key": "new_good", "name": "A good new rule", "clauses": [{"field": "pii", "op": "is_true"}]})
    data["rules"].append({"key": "broken", "name": "The broken one", "clauses": clause})
    return data


@pytest.mark.parametrize("clauses,field,message", [
    ([{"field": "title", "op": "matches", "value": "(["}], "clause 1", "does not compile"),
    ([{"field": "pii", "op": "is_true"}, {"field": "colour", "op": "is", "value": "red"}], "clause 2",
     "There is no field 'colour' to test"),
    ([], "clauses", "at least one clause"),
    ([{"field": "pii", "op": "is_true", "vaule": 3}], "clause 1", "“vaule” is not part of a clause"),
])
def test_a_file_with_one_bad_rule_writes_nothing_and_names_the_rule_and_the_problem(
        rulebook, clauses, field, message, django_capture_on_commit_callbacks):
    before = list(Rule.objects.values_list("key", "weight", "enabled", "clauses"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = transfer.import_rules(bad_file(rulebook, clauses))
    assert not result.ok and len(result.refused) == 1
    refusal = str(result.refused[0])
    assert refusal.startswith("Rule 11 “The broken one” (broken): " + field + ": ") and message in refusal
    assert result.summary().startswith("Nothing was imported: 1 problem in 1 rule")
    assert list(Rule.objects.values_list("key", "weight", "enabled", "clauses")) == before and callbacks == []


def test_every_refusal_in_a_file_is_reported_at_once(rulebook):
    data = {"version": 1, "rules": [
        {"key": "stale", "weight": 500},
        {"key": "unowned", "name": "Renamed", "weight": 3},
        {"key": "nope", "builtin": True, "weight": 3},
        {"name": "", "weight": "heavy", "enabled": "maybe", "clauses": [{"field": "pii", "op": "is_true"}]},
        {"name": ["a list"], "scope": "colour=red", "match": "most", "clauses": "pii"},
        {"key": "dup", "name": "One", "clauses": [{"field": "pii", "op": "is_true"}]},
        {"key": "dup", "name": "Two", "clauses": [{"field": "pii", "op": "is_true"}]},
        "a rule",
        {"key": "warning_dbt_tests", "sla_days": 0},
        {"name": "Odd", "clauses.7": 1, "clauses": [{"field": "pii", "op": "is_true"}]},
    ]}
    messages = [str(refusal) for refusal in transfer.import_rules(data).refused]
    expected = [
        "Rule 1 “stale”: weight: The weight is a whole number from 0 to 100",
        "Rule 2 “Renamed” (unowned): name: “unowned” is a built-in rule: a file sets only its weight",
        "Rule 3 “nope”: key: There is no built-in rule “nope”",
        "Rule 4: enabled: Enabled is true or false.",
        "Rule 4: name: Give the rule a name",
        "Rule 4: weight: The weight is a whole number",
        "Rule 5: name: Name is text, not a list.",
        "Rule 5: clauses: Clauses are a list of {field, op, value}, not text.",
        "Rule 5: scope: “colour” is not one of the issue lists' filters.",
        "Rule 5: match: Choose whether all or any",
        "Rule 7 “Two” (dup): key: The key “dup” is on another rule of this file too.",
        "Rule 8: A rule is a mapping of its fields, not text.",
        "Rule 9 “warning_dbt_tests”: sla_days: “Fix within” is a whole number of days from 1 to",
        "Rule 10 “Odd”: clause 8: Not a field of a rule",
    ]
    for start in expected:
        assert any(m.startswith(start) for m in messages), (start, messages)
    assert Rule.objects.get(key="stale").weight == 7 and not Rule.objects.filter(key="dup").exists()


def test_built_in_weights_and_on_off_import_and_count_at_once(mirror, django_capture_on_commit_callbacks):
    data = transfer.parse("rules:\n- key: stale\n  weight: 3\n- {key: unused, enabled: false}\n"
                          "- {key: unowned, weight: '30'}\n- {key: failing_dbt_tests, sla_days: 7}\n")
    with django_capture_on_commit_callbacks(execute=True):
        result = transfer.import_rules(data)
    assert result.summary() == "Imported: 0 created, 4 updated, 0 unchanged"
    assert [o.changes for o in result.updated] == [("weight",), ("enabled",), ("weight",), ("sla_days",)]
    assert Rule.objects.get(key="failing_dbt_tests").sla_days == 7 and registry.get("failing_dbt_tests").sla_days == 7
    assert registry.weights()["stale"] == 3 and registry.weights()["unowned"] == 30
    assert "unused" not in registry.keys()
    # Left out of the file: left alone, and the result says so.
    assert Rule.objects.get(key="undocumented").weight == 20 and "Undocumented" in result.untouched
    assert result.untouched_note().startswith("2 rules not in the file were left alone")
    assert Snapshot.objects.order_by("-pk").first().reason == Snapshot.RULES


def test_a_built_in_rule_cannot_be_redefined_by_a_file(mirror):
    result = transfer.import_rules({"rules": [{"key": "stale", "builtin": True, "weight": 5,
                                               "clauses": [{"field": "pii", "op": "is_true"}]}]})
    assert [str(r) for r in result.refused] == [
        "Rule 1 “stale”: clauses: “stale” is a built-in rule: a file sets only its weight, whether it is enabled "
        "and its fix-within days (sla_days)."]
    assert Rule.objects.get(key="stale").weight == 20


def test_keys_are_kept_when_free_and_valid_and_made_from_the_name_otherwise(mirror):
    gone = make_rule("Deleted one", [{"field": "pii", "op": "is_true"}])
    services.delete(gone)
    kept = make_rule("Existing", [{"field": "pii", "op": "is_true"}])
    clause = [{"field": "verified", "op": "is_false"}]
    data = {"version": 1, "rules": [
        {"key": "mine", "name": "Mine", "clauses": clause},
        {"key": "deleted_one", "name": "Deleted one", "clauses": clause},
        {"key": "Not A Key!", "name": "Mine", "clauses": clause},
        {"key": "export", "name": "Export", "clauses": clause},
        {"name": "Mine", "clauses": clause},
        {"key": "x" * 33, "name": "Long", "clauses": clause},
        {"key": kept.key, "name": "Existing, renamed", "clauses": [{"field": "pii", "op": "is_true"}]},
    ]}
    dry = transfer.import_rules(data, dry_run=True)
    assert dry.summary() == "Would import (dry run, nothing written): 6 created, 1 updated, 0 unchanged"
    assert not Rule.objects.filter(key="mine").exists()
    result = transfer.import_rules(data)
    assert [o.key for o in result.created] == [o.key for o in dry.created] == [
        "mine", "deleted_one_2", "mine_2", "export_rule", "mine_3", "long"]
    assert result.created[1].note == "the key “deleted_one” belonged to a deleted rule; created as “deleted_one_2”"
    assert result.created[3].note.startswith("the key “export” is reserved")
    assert result.updated[0].key == kept.key and result.updated[0].changes == ("name",)
    assert Rule.objects.get(key=kept.key).name == "Existing, renamed"
    assert Rule.objects.get(key="deleted_one").deleted  # a deleted rule stays deleted, its key unused
    assert list(Rule.objects.filter(builtin=False, deleted_at__isnull=True).values_list("key", flat=True)) == [
        kept.key, "mine", "deleted_one_2", "mine_2", "export_rule", "mine_3", "long"]


# Over HTTP ------------------------------------------------------------------------------------------------

def signed_in(client, user):
    client.force_login(user)
    return client


def upload(client, content, name="rules.yaml"):
    return client.post(reverse("rulebook:import"), {"file": SimpleUploadedFile(name, content)})


def said(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_anyone_who_reads_the_dashboard_downloads_the_rules(rulebook, viewer, client, fmt):
    response = signed_in(client, viewer).get(reverse("rulebook:export", args=[fmt]))
    assert response.status_code == 200
    assert re.fullmatch(rf'attachment; filename="catalog-hygiene-rules-\d{{8}}\.{fmt}"',
                        response["Content-Disposition"])
    assert transfer.parse(response.content) == rulebook
    assert client.get(reverse("rulebook:export", args=["xml"])).status_code == 404


def test_a_steward_imports_a_file_and_is_told_what_changed(rulebook, steward, client):
    data = json.loads(json.dumps(rulebook))
    data["rules"][0]["weight"] = 9
    data["rules"].append({"name": "Verified but undocumented", "clauses": [
        {"field": "verified", "op": "is_true"}, {"field": "description", "op": "blank"}]})
    response = upload(signed_in(client, steward), transfer.dump(data, "yaml").encode())
    assert response.status_code == 302 and response["Location"] == reverse("rulebook:rules")
    assert said(response) == ["Imported: 1 created, 1 updated, 8 unchanged"]
    assert Rule.objects.get(key="verified_but_undocumented").created_by == steward
    assert Rule.objects.get(key="stale").weight == 9


def test_a_refused_import_lists_every_refusal_and_goes_back(rulebook, steward, client):
    data = bad_file(rulebook, [{"field": "title", "op": "matches", "value": "(["}])
    response = signed_in(client, steward).post(reverse("rulebook:import"), {
        "file": SimpleUploadedFile("rules.json", json.dumps(data).encode()), "next": "/rules/?from=import"})
    assert response.status_code == 302 and response["Location"] == "/rules/?from=import"
    messages = said(response)
    assert messages[0].startswith("Nothing was imported: 1 problem in 1 rule")
    assert messages[1].startswith("Rule 11 “The broken one” (broken): clause 1: ")
    assert not Rule.objects.filter(key__in=["new_good", "broken"]).exists()


def test_viewers_cannot_import(rulebook, viewer, client):
    data = {"rules": [{"key": "stale", "weight": 1}]}
    response = upload(signed_in(client, viewer), json.dumps(data).encode())
    assert response.status_code == 403 and Rule.objects.get(key="stale").weight == 7


# Named by their messages: the same ids in every test process (pytest-xdist compares them).
UPLOADS = [
    ("rules.yaml", bytes((n * 7919 + 13) % 256 for n in range(4096)) + b"\0", "binary file"),
    ("rules.yaml", b"\xff\xfe\x00r\x00u", "binary file"),
    ("rules.yaml", b"\xe9t\xe9: caf\xe9", "not UTF-8 text"),
    ("rules.yaml", b"rules: []\n#" + b"x" * (2 * 1024 * 1024), "larger than 1 MB"),
    ("rules.yaml", b"- key: stale\n  weight: 3\n", "holds a list"),
    ("rules.yaml", b"rules:\n  - key: [unclosed\n", "Not valid YAML or JSON (line 3, column 1"),
    ("rules.yaml", b"", "The file is empty"),
    ("rules.yaml", b"just some words", "holds text"),
    ("rules.yaml", b"version: 2\nrules: []\n", "version 2"),
    ("rules.yaml", b"rules: {stale: 3}\n", "“rules” holds a mapping"),
    ("rules.yaml", b"when: 2024-13-45\nrules: []\n", "Not valid YAML or JSON"),
    ("rules.yaml", b"[" * 50_000, "nested too deeply"),
    ("rules.yaml", b"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nrules: *c\n", "A rule is a mapping"),
    ("rules.json", json.dumps({"version": 1, "rules": [{"key": 5, "weight": "heavy"}]}).encode(), "key is text"),
    ("rules.json", json.dumps({"version": 1, "rules": [{"name": {"x": 1}, "weight": [1], "enabled": "yes",
                                                       "clauses": {"field": "pii"}}]}).encode(), "Name is text"),
    ("rules.json", json.dumps({"version": "1", "rules": []}).encode(), "version '1'"),
]


@pytest.mark.parametrize("name,content,message", UPLOADS, ids=[f"{n}: {case[2]}" for n, case in enumerate(UPLOADS)])
def test_any_upload_gets_a_message_never_an_error_page(rulebook, steward, client, name, content, message):
    response = upload(signed_in(client, steward), content, name)
    assert response.status_code == 302, response.content[:300]
    messages = said(response)
    assert any(message in m for m in messages), messages
    assert messages[0].startswith("Nothing was imported")
    assert Rule.objects.filter(builtin=False).count() == 3 and Rule.objects.get(key="stale").weight == 7


def test_an_import_without_a_file_says_so(rulebook, steward, client):
    response = signed_in(client, steward).post(reverse("rulebook:import"))
    assert response.status_code == 302 and "choose a rules file" in said(response)[0]
    assert signed_in(client, steward).get(reverse("rulebook:import")).status_code == 405


# The command ----------------------------------------------------------------------------------------------

def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("rules", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_exports_and_imports_and_dry_runs(rulebook, tmp_path, django_capture_on_commit_callbacks):
    printed, _ = run("export")
    assert yaml.safe_load(printed) == rulebook
    path = tmp_path / "rules.json"
    _, said_ = run("export", "--format", "json", "--output", str(path))
    assert json.loads(path.read_text()) == rulebook and "Wrote 9 rules" in said_
    empty_the_registry()

    out, _ = run("import", str(path), "--dry-run")
    assert "Would import (dry run, nothing written): 3 created, 3 updated, 3 unchanged" in out
    assert "Created pii_columns_not_verified: PII columns not verified" in out
    assert Rule.objects.filter(builtin=False).count() == 0 and Rule.objects.get(key="stale").weight == 20

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        out, _ = run("import", str(path))
    assert "Imported: 3 created, 3 updated, 3 unchanged" in out and len(callbacks) == 1
    assert transfer.export_rules() == rulebook


def test_the_command_fails_with_the_refusals(rulebook, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(transfer.dump(bad_file(rulebook, []), "yaml"))
    with pytest.raises(CommandError) as failed:
        run("import", str(path))
    assert failed.value.returncode == 1
    assert "Nothing was imported: 1 problem in 1 rule" in str(failed.value)
    assert "Rule 11 “The broken one” (broken): clauses: Add at least one clause" in str(failed.value)
    assert not Rule.objects.filter(key="new_good").exists()
    path.write_bytes(b"\0\1\2")
    with pytest.raises(CommandError, match="binary file"):
        run("import", str(path))
    with pytest.raises(CommandError, match="Cannot read"):
        run("import", str(tmp_path / "missing.yaml"))


# Scopes compiled as conditions on the row (what keeps 10 custom rules cheap at 100,000 resources) -----------

def scopes_to_try():
    from catalog_sync.models import Integration, SecodaGroup, SecodaUser

    team = Team.objects.present().order_by("id").first().pk
    tag = Tag.objects.present().order_by("id").first().pk
    integrations = list(Integration.objects.present().order_by("id").values_list("id", flat=True)[:2])
    user = SecodaUser.objects.present().order_by("id").first().pk
    group = SecodaGroup.objects.present().order_by("id").first().pk
    return [f"team={team}&entity_type=table", "&".join(f"integration={i}" for i in integrations),
            "entity_type=column&entity_type=table", f"tag={tag}", "team=none", "owner=none", f"owner=user:{user}",
            f"owner=group:{group}", "q=order", "native_type=VIEW", "usage_min=5&usage_max=100",
            "pii=true&verified=false", "published=false", "updated_after=2024-01-01&updated_before=2030-06-01"]


def test_a_scope_covers_exactly_what_the_filtered_list_shows_without_a_query_of_its_own(mirror,
                                                                                       django_assert_num_queries):
    from catalog_sync.models import Resource, ResourceRef
    from hygiene.dashboard.filtersets import filterset_from_query
    from hygiene.rules import in_scope

    total, splitting = in_scope().count(), 0
    for scope in scopes_to_try():
        with django_assert_num_queries(0):
            q = registry.scope_q(scope)
            via_refs = registry.scope_q(scope, "resource__")
        listed = set(filterset_from_query(scope).qs.values_list("pk", flat=True))
        assert set(Resource.objects.filter(q).values_list("pk", flat=True)) == listed, scope
        assert set(in_scope().filter(q).values_list("pk", flat=True)) == listed, scope
        refs = ResourceRef.objects.filter(kind=ResourceRef.TAG)
        assert (set(refs.filter(via_refs).values_list("pk", flat=True))
                == set(refs.filter(resource__in=listed).values_list("pk", flat=True))), scope
        splitting += 0 < len(listed) < total
    assert splitting >= 10, "most scopes split the workspace (the test would not notice one matching all)"


def test_scoped_custom_rules_add_no_query_to_the_lists(mirror, steward, client, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    team = Team.objects.present().order_by("id").first().pk
    tag = Tag.objects.present().order_by("id").first().pk
    snowflake = next(s for s in scopes_to_try() if s.startswith("integration="))
    signed_in(client, steward)
    pages = ["/", "/issues/", "/issues/unowned/", "/issues/undocumented/?owner=none", "/issues/?q=order"]

    def counts():
        from hygiene.dashboard.models import Snapshot
        from hygiene.domain.snapshots import take_snapshot

        registry.forget()
        take_snapshot(Snapshot.RULES)
        result = {}
        for page in pages:
            client.get(page)  # warm
            with CaptureQueriesContext(connection) as captured:
                assert client.get(page).status_code == 200
            result[page] = len(captured.captured_queries)
        return result

    before = counts()
    make_rule("Scoped by team", [{"field": "description", "op": "blank"}], scope=f"team={team}&entity_type=table")
    make_rule("Scoped by tag", [{"field": "teams", "op": "lacks", "value": team},
                                {"field": "owners", "op": "count_below", "value": 2}], scope=f"tag={tag}")
    make_rule("Scoped by integration", [{"field": "tags", "op": "has", "value": tag}], scope=snowflake)
    assert counts() == before
