"""Migrate documentation: matching two integrations by path (renames, case, ambiguous, unmatched), the copy as a
change set (fill blanks or overwrite, chosen fields, `definition` through the whole bulk pipeline), the end check,
who may do what, and bad input. Against the emulator's migration pair over real HTTP, synced into PostgreSQL."""
from collections import Counter

import pytest
from django.test import Client
from django.urls import reverse

from catalog_sync.models import Integration, Resource, SecodaUser
from hygiene.bulk import services as bulk
from hygiene.bulk.models import ChangeItem, ChangeSet
from hygiene.migration import services
from hygiene.migration.matching import MappingError, Node, format_mapping, match, parse_mapping, paths, resolve
from hygiene.migration.models import MigrationPlan
from secoda_emulator.migration_pair import NEW, OLD, RENAMES
from secoda_emulator.server import EmulatorServer
from secoda_emulator.workspace import Workspace
from tests.conftest import SESSION_NOW, TOKEN, fast_client, first_sync

pytestmark = pytest.mark.django_db

KINDS = ("database", "schema", "table", "column")


PAIR_WORKSPACE = {"resources": 300, "seed": 3, "now": SESSION_NOW, "migration_pair": True}


@pytest.fixture
def emulator():
    """The emulated workspace with the migration pair (this module's own, overriding conftest's)."""
    server = EmulatorServer(Workspace.generate(**PAIR_WORKSPACE), token=TOKEN, port=0).start()
    server.faults.writes_per_minute = 1000
    yield server
    server.stop()


@pytest.fixture
def pair(emulator, emulator_settings):
    """The pair synced into the mirror: (old integration, new integration). Synced once per test process and
    copied in from then on (`first_sync`)."""
    run = first_sync(emulator, PAIR_WORKSPACE)
    assert run.status == "succeeded", run.error
    return Integration.objects.get(name=OLD[1]), Integration.objects.get(name=NEW[1])


@pytest.fixture
def as_steward(client, steward):
    client.force_login(steward)
    return client


def workspace_records(emulator, integration_id):
    ws = emulator.workspace
    return [ws.get(pk) for pk in ws.ids() if ws.get(pk)["integration"] == integration_id]


def expected_counts(emulator, old_id, new_id, renamed=True):
    """Counts by type worked out from the emulator's own records: `title_full` split on dots (the pair's names
    hold none), lower-cased, the two renames applied by hand, then grouped."""
    def key(record, old):
        parts = [p.lower() for p in record["title_full"].split(".")]
        if old and renamed:
            if parts[:2] == ["analytics", "staging"]:
                parts[:2] = ["analytics", "stg"]
            elif parts[:1] == ["legacy_db"]:
                parts[:1] = ["warehouse"]
        return record["entity_type"], tuple(parts)

    olds = Counter(key(r, True) for r in workspace_records(emulator, old_id) if not r["archived"])
    news = Counter(key(r, False) for r in workspace_records(emulator, new_id) if not r["archived"])
    counts = {}
    for k in set(olds) | set(news):
        row = counts.setdefault(k[0], Counter())
        o, n = olds.get(k, 0), news.get(k, 0)
        if o == 1 and n == 1:
            row["matched"] += 1
        elif o and n:
            row["ambiguous_old"] += o
            row["ambiguous_new"] += n
        elif o:
            row["unmatched_old"] += o
        else:
            row["unmatched_new"] += n
    return counts


def as_dicts(counts):
    return {kind: Counter({k: v for k, v in row.items() if v}) for kind, row in counts}


def by_path(integration, path):
    """The mirrored resource of `integration` whose path (parent chain) is `path`, dot-joined as written."""
    names = path.split(".")
    resource = None
    for name in names:
        resource = Resource.objects.get(integration=integration, title=name,
                                        parent=resource.pk if resource else None)
    return resource


# -- matching ---------------------------------------------------------------------------------------------------------

def test_matching_counts_by_type_agree_with_the_workspace(emulator, pair):
    old, new = pair
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    assert as_dicts(matching.counts()) == expected_counts(emulator, old.pk, new.pk)
    # By design of the pair: both databases and four schemas match once the renames are given.
    counts = dict(matching.counts())
    assert counts["database"]["matched"] == 2 and counts["schema"]["matched"] == 4
    assert counts["schema"]["unmatched_old"] == 1  # the dropped scratch schema


def test_without_the_renames_the_renamed_database_and_schema_match_nothing(emulator, pair):
    old, new = pair
    matching = services.match_integrations(old.pk, new.pk)
    assert as_dicts(matching.counts()) == expected_counts(emulator, old.pk, new.pk, renamed=False)
    unmatched_old = {".".join(matching.old_paths[n.id]) for n in matching.unmatched_old}
    unmatched_new = {".".join(matching.new_paths[n.id]) for n in matching.unmatched_new}
    assert {"legacy_db", "analytics.staging", "legacy_db.public.orders"} <= unmatched_old
    assert {"warehouse", "ANALYTICS.stg", "warehouse.public.orders"} <= unmatched_new


def test_names_that_differ_only_in_case_match(pair):
    old, new = pair
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    invoices = by_path(old, "analytics.finance.invoices")
    assert matching.pairs[invoices.pk] == by_path(new, "ANALYTICS.FINANCE.INVOICES").pk
    column = by_path(old, "analytics.finance.invoices.amount")
    assert matching.pairs[column.pk] == by_path(new, "ANALYTICS.FINANCE.INVOICES.AMOUNT").pk
    # A renamed schema's table, and a renamed database's column, in another case too.
    assert matching.pairs[by_path(old, "analytics.staging.stg_users").pk] == by_path(new, "ANALYTICS.stg.stg_users").pk
    assert matching.pairs[by_path(old, "legacy_db.public.users.email").pk] == by_path(
        new, "warehouse.public.users.email").pk


def test_ambiguous_matches_list_their_candidates_and_suggest_the_closest(pair):
    old, new = pair
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    tables = {g.path: g for g in matching.ambiguous if g.entity_type == "table"}
    assert set(tables) == {"ANALYTICS.FINANCE.CUSTOMERS", "warehouse.public.orders"}
    customers = tables["ANALYTICS.FINANCE.CUSTOMERS"]
    assert {n.title for n in customers.old} == {"Customers", "CUSTOMERS"} and len(customers.new) == 1
    # The old CUSTOMERS is written like the new one; Customers is not suggested (it would take the same one).
    upper = by_path(old, "analytics.finance.CUSTOMERS")
    assert customers.suggested == {upper.pk: by_path(new, "ANALYTICS.FINANCE.CUSTOMERS").pk}
    orders = tables["warehouse.public.orders"]
    assert len(orders.old) == 1 and {n.title for n in orders.new} == {"orders", "Orders"}
    assert orders.suggested == {by_path(old, "legacy_db.public.orders").pk: by_path(new, "warehouse.public.orders").pk}


def test_resolving_adds_the_picks_and_refuses_what_is_not_a_candidate(pair):
    old, new = pair
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    lower, upper = by_path(old, "analytics.finance.Customers"), by_path(old, "analytics.finance.CUSTOMERS")
    target = by_path(new, "ANALYTICS.FINANCE.CUSTOMERS")
    pairs, errors = resolve(matching, {lower.pk: target.pk, upper.pk: ""})
    assert errors == [] and pairs[lower.pk] == target.pk and upper.pk not in pairs
    assert len(pairs) == len(matching.pairs) + 1
    _, errors = resolve(matching, {lower.pk: target.pk, upper.pk: target.pk})
    assert errors and "both point at ANALYTICS.FINANCE.CUSTOMERS" in errors[0]
    _, errors = resolve(matching, {lower.pk: by_path(new, "ANALYTICS.FINANCE.INVOICES").pk})
    assert errors and "not one of its candidates" in errors[0]
    _, errors = resolve(matching, {by_path(old, "analytics.finance.invoices").pk: target.pk})
    assert errors and "not ambiguous" in errors[0]


def test_paths_follow_parents_and_fall_back_on_title_full_where_a_parent_is_missing():
    nodes = [
        Node("d", "database", "db", "db", None), Node("s", "schema", "s.v2", "db.s.v2", "d"),
        Node("t", "table", "t", "db.s.v2.t", "s"),
        Node("orphan", "table", "orders.2020", "db.public.orders.2020", "gone"),
    ]
    found = paths(nodes)
    assert found["t"] == ("db", "s.v2", "t")  # the parent chain keeps the dot inside a schema's name
    assert found["orphan"] == ("db", "public", "orders.2020")
    new = [Node("D", "database", "DB", "DB", None), Node("S", "schema", "S.V2", "DB.S.V2", "D"),
           Node("T", "table", "T", "DB.S.V2.T", "S")]
    assert match(nodes, new).pairs == {"d": "D", "s": "S", "t": "T"}


def test_archived_resources_take_no_part_but_lend_their_names_to_paths():
    old = [Node("d", "database", "db", "db", None, in_scope=False), Node("t", "table", "t", "db.t", "d")]
    new = [Node("D", "database", "db", "db", None), Node("T", "table", "T", "db.T", "D")]
    matching = match(old, new)
    assert matching.pairs == {"t": "T"} and [n.id for n in matching.unmatched_new] == ["D"]


@pytest.mark.parametrize("text, message", [
    ("legacy_db warehouse", "write one rename a line as old => new"),
    ("a.b.c => x.y.z", "both sides name a database, or a database and its schema"),
    ("a.b => x", "both sides name a database, or a database and its schema"),
    ("a => ", "a name is empty"),
    ('"a.b => x', "a quote is not closed"),
    ("a => x\nA => y", "is renamed twice"),
    ("a => b => c", "write one rename a line"),
])
def test_a_malformed_mapping_names_its_line(text, message):
    with pytest.raises(MappingError) as raised:
        parse_mapping(text)
    assert message in str(raised.value) and "Line" in str(raised.value)


def test_a_mapping_reads_quotes_comments_and_arrows_and_writes_back_the_same():
    pairs = parse_mapping('# the move\n"my.db".stg -> NEW.staging\nlegacy_db → warehouse\n\n')
    assert pairs == [(["my.db", "stg"], ["NEW", "staging"]), (["legacy_db"], ["warehouse"])]
    assert parse_mapping(format_mapping(pairs)) == pairs


# -- the copy -------------------------------------------------------------------------------------------------------

def plan_for(pair, steward, fields, overwrite=False, picks=None):
    old, new = pair
    return services.build_migration(steward, old, new, parse_mapping(RENAMES), picks or {}, fields, overwrite)


def test_fill_blank_copies_only_where_the_new_resource_has_nothing(pair, steward):
    old, new = pair
    source, target = by_path(old, "analytics.marketing.campaigns"), by_path(new, "ANALYTICS.Marketing.campaigns")
    Resource.objects.filter(pk=source.pk).update(description="Every campaign we ran.", is_documented=True)
    Resource.objects.filter(pk=target.pk).update(description="Campaigns, loaded by the new pipeline.")
    blank = by_path(new, "ANALYTICS.FINANCE.PAYMENTS")
    Resource.objects.filter(pk=blank.pk).update(description="")
    plan = plan_for(pair, steward, ["description"])
    items = {item.resource_id: item for item in plan.change_set.items.all()}
    assert target.pk not in items, "a description the new resource has is kept"
    assert items[blank.pk].after == {"description": by_path(old, "analytics.finance.payments").description}
    assert items[blank.pk].before == {"description": ""}

    overwrite = plan_for(pair, steward, ["description"], overwrite=True)
    item = overwrite.change_set.items.get(resource_id=target.pk)
    assert item.before == {"description": "Campaigns, loaded by the new pipeline."}
    assert item.after == {"description": "Every campaign we ran."}


def test_a_blank_old_value_is_never_copied_even_when_overwriting(pair, steward):
    old, new = pair
    source, target = by_path(old, "analytics.marketing.ad_spend"), by_path(new, "ANALYTICS.Marketing.ad_spend")
    Resource.objects.filter(pk=source.pk).update(description="", owners=[], verified=False)
    Resource.objects.filter(pk=target.pk).update(description="Kept.", owners=["someone"], verified=True)
    plan = plan_for(pair, steward, ["description", "owners", "verified"], overwrite=True)
    assert not plan.change_set.items.filter(resource_id=target.pk).exists()


def test_a_new_resource_owned_by_a_group_is_owned_when_filling_blanks():
    old = {"owners": ["u-ada"], "owners_groups": [], "description": "x"}
    grouped = {"owners": [], "owners_groups": ["g-eng"], "description": ""}
    assert services.copy_change(old, grouped, ["owners"], False) == ({}, {})
    assert services.copy_change(old, grouped, ["owners", "owners_groups"], False) == ({}, {})
    assert services.copy_change(old, grouped, ["owners"], True) == ({"owners": []}, {"owners": ["u-ada"]})


def test_owners_who_left_secoda_are_not_copied(pair, steward):
    old, new = pair
    source, target = by_path(old, "analytics.marketing.campaigns"), by_path(new, "ANALYTICS.Marketing.campaigns")
    present = SecodaUser.objects.filter(removed_at__isnull=True).order_by("pk").first()
    gone = SecodaUser.objects.filter(removed_at__isnull=True).order_by("pk").last()
    SecodaUser.objects.filter(pk=gone.pk).update(removed_at=SESSION_NOW)  # deleted in Secoda, seen by a sync
    Resource.objects.filter(pk=source.pk).update(owners=[gone.pk, present.pk], owners_groups=[], is_owned=True)
    Resource.objects.filter(pk=target.pk).update(owners=[], owners_groups=[], is_owned=False)
    plan = plan_for(pair, steward, ["owners"])
    assert plan.change_set.items.get(resource_id=target.pk).after == {"owners": [present.pk]}
    Resource.objects.filter(pk=source.pk).update(owners=[gone.pk])
    plan = plan_for(pair, steward, ["owners"])
    assert not plan.change_set.items.filter(resource_id=target.pk).exists(), "nobody left to name"


def test_only_the_chosen_fields_are_copied(pair, steward):
    old, new = pair
    plan = plan_for(pair, steward, ["owners", "tags"])
    fields = set()
    for item in plan.change_set.items.all():
        fields |= set(item.after)
    assert fields == {"owners", "tags"}
    # Every matched new resource owned by nobody (no person, no group), whose old one has owners Secoda still
    # has, gains exactly those.
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    olds = Resource.objects.in_bulk(list(matching.pairs))
    news = Resource.objects.in_bulk(list(matching.pairs.values()))
    people = set(SecodaUser.objects.filter(removed_at__isnull=True).values_list("pk", flat=True))
    expected = {}
    for old_id, new_id in matching.pairs.items():
        owners = [owner for owner in olds[old_id].owners if owner in people]
        if owners and not news[new_id].owners and not news[new_id].owners_groups:
            expected[new_id] = owners
    got = {item.resource_id: item.after["owners"] for item in plan.change_set.items.all() if "owners" in item.after}
    assert got == expected and expected
    assert plan.change_set.selected == len(matching.pairs)
    assert plan.pairs == len(matching.pairs)


def set_values(emulator, resource, **values):
    """The same values in Secoda and in the mirror (as a sync would leave them)."""
    emulator.workspace.patch(resource.pk, values)
    Resource.objects.filter(pk=resource.pk).update(**values)
    resource = Resource.objects.get(pk=resource.pk)
    Resource.objects.filter(pk=resource.pk).update(is_documented=bool(resource.description or resource.definition))


def test_the_copy_applies_through_secoda_with_definitions_and_is_undone(pair, steward, emulator):
    old, new = pair
    lower, upper = by_path(old, "analytics.finance.Customers"), by_path(old, "analytics.finance.CUSTOMERS")
    target = by_path(new, "ANALYTICS.FINANCE.CUSTOMERS")
    definition = "# Customers\n\nOne row per customer, *deduplicated*."
    owner = SecodaUser.objects.present().order_by("email").first().pk
    set_values(emulator, lower, description="Customers of record.", definition=definition, owners=[owner])
    set_values(emulator, upper, description="A stray copy.")
    set_values(emulator, target, description="", definition="", owners=[])
    plan = plan_for(pair, steward, ["description", "definition", "owners"], picks={lower.pk: target.pk, upper.pk: ""})
    change_set = plan.change_set
    n = change_set.items.count()
    assert change_set.items.get(resource_id=target.pk).after["definition"] == definition
    assert bulk.submit(change_set, steward)
    bulk.run_change_set(change_set.pk, client=fast_client(emulator))
    change_set.refresh_from_db()
    assert change_set.status == ChangeSet.COMPLETED
    assert change_set.items.filter(status=ChangeItem.APPLIED).count() == n
    assert emulator.stats()["requests_by_path"]["/api/v1/resource/all/bulk_update"] == -(-n // 100)
    secoda = emulator.workspace.get(target.pk)
    assert (secoda["description"], secoda["definition"]) == ("Customers of record.", definition)
    assert secoda["owners"] == [owner]
    mirrored = Resource.objects.get(pk=target.pk)
    assert mirrored.definition == definition and mirrored.is_documented

    # Definitions and descriptions were copied, so no pair is left undocumented; the stray CUSTOMERS (skipped)
    # and the dropped scratch schema have no counterpart.
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    check = services.end_check(matching, plan.picks)
    assert check.undocumented_count == 0
    unpaired = {row["old_path"] for row in check.unpaired}
    assert "analytics.finance.CUSTOMERS" in unpaired and "analytics.finance.Customers" not in unpaired
    assert any(path.startswith("analytics.scratch") for path in unpaired)

    undo = bulk.build_undo(change_set, steward)
    assert bulk.submit(undo, steward)
    bulk.run_change_set(undo.pk, client=fast_client(emulator))
    undo.refresh_from_db()
    assert undo.status == ChangeSet.COMPLETED
    secoda = emulator.workspace.get(target.pk)
    assert (secoda["description"], secoda["definition"], secoda["owners"]) == ("", "", [])
    assert not Resource.objects.get(pk=target.pk).is_documented
    again = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    assert services.end_check(again, plan.picks).undocumented_count > 0


def test_the_end_check_counts_what_the_copy_left_and_what_has_no_counterpart(pair):
    old, new = pair
    matching = services.match_integrations(old.pk, new.pk, parse_mapping(RENAMES))
    documented = {pk for pk, node in matching.old_nodes.items() if node.documented}
    new_documented = {pk for pk, node in matching.new_nodes.items() if node.documented}
    check = services.end_check(matching)
    assert check.undocumented_count == sum(1 for o, n in matching.pairs.items()
                                           if o in documented and n not in new_documented)
    assert check.unpaired_count == len(documented - set(matching.pairs))
    assert check.old_documented == len(documented) and not check.clear


# -- pages ----------------------------------------------------------------------------------------------------------

def match_page(client, old, new, renames=RENAMES):
    return client.get(reverse("migration:migrate"), {"old": old.pk, "new": new.pk, "renames": renames})


def preview_data(old, new, renames=RENAMES, fields=("description", "owners"), mode="blank", **picks):
    return {"old": old.pk, "new": new.pk, "renames": renames, "fields_to_copy": list(fields), "mode": mode, **picks}


def shown_counts(html):
    """{type: {field: number}} from the page's counts table."""
    import re

    rows = {}
    for kind, cells in re.findall(r'<tr data-type="([a-z_]+)">(.*?)</tr>', html, re.S):
        rows[kind] = {field: value for field, value in re.findall(r'data-field="([a-z_]+)">([^<]*)<', cells)}
    return rows


def test_the_page_shows_counts_ambiguous_choices_and_the_end_check(pair, as_steward, emulator):
    old, new = pair
    html = match_page(as_steward, old, new).content.decode()
    expected = expected_counts(emulator, old.pk, new.pk)
    shown = shown_counts(html)
    for kind in KINDS:
        row = expected[kind]
        assert shown[kind] == {"matched": str(row["matched"]), "unmatched_old": str(row["unmatched_old"]),
                               "unmatched_new": str(row["unmatched_new"]),
                               "ambiguous": f"{row['ambiguous_old']} / {row['ambiguous_new']}"}, kind
    assert "Ambiguous matches" in html and "Skip it (copy nothing)" in html and "(closest)" in html
    assert "Before you delete Redshift (old warehouse)" in html and 'name="csrfmiddlewaretoken"' in html
    assert "Preview the changes" in html
    assert "{#" not in html and "#}" not in html, "no template comment shows on the page"


def test_a_steward_previews_the_copy_on_the_change_set_page(pair, as_steward):
    old, new = pair
    lower, upper = by_path(old, "analytics.finance.Customers"), by_path(old, "analytics.finance.CUSTOMERS")
    target = by_path(new, "ANALYTICS.FINANCE.CUSTOMERS")
    response = as_steward.post(reverse("migration:preview"), preview_data(
        old, new, **{f"pick-{lower.pk}": target.pk, f"pick-{upper.pk}": ""}), follow=True)
    plan = MigrationPlan.objects.get()
    assert response.redirect_chain[-1][0] == reverse("bulk:change-set", args=[plan.change_set_id])
    html = response.content.decode()
    assert "Preview: Migrate documentation from Redshift (old warehouse) to BigQuery (new warehouse)" in html
    assert f"migration #{plan.pk}" in html and "write" in html
    assert plan.picks == {lower.pk: target.pk, upper.pk: ""} and plan.fields == ["description", "owners"]
    assert plan.change_set.items.filter(resource_id=target.pk).exists()
    page = as_steward.get(reverse("migration:plan", args=[plan.pk])).content.decode()
    assert f"Migration #{plan.pk}: Redshift (old warehouse) → BigQuery (new warehouse)" in page
    assert "Before you delete Redshift (old warehouse)" in page and f"#{plan.change_set_id}" in page
    assert "legacy_db =&gt; warehouse" in page
    assert "(chosen)" in page and "Skipped: copied nowhere." in page


@pytest.mark.parametrize("change, message", [
    ({"new": "OLD"}, "Choose two different integrations"),
    ({"old": "no-such-integration"}, "That integration is not in the mirror"),
    ({"renames": "legacy_db to warehouse"}, "Line 1 (“legacy_db to warehouse”): write one rename a line"),
    ({"fields_to_copy": []}, "Choose at least one thing to copy."),
    ({"fields_to_copy": ["description", "password"]}, "Select a valid choice"),
    ({"mode": "sometimes"}, "Choose whether to fill the blanks or replace."),
])
def test_bad_input_is_said_on_the_form_with_the_input_kept(pair, as_steward, change, message):
    old, new = pair
    data = preview_data(old, new)
    data.update({key: (old.pk if value == "OLD" else value) for key, value in change.items()})
    response = as_steward.post(reverse("migration:preview"), data)
    html = response.content.decode()
    assert response.status_code == 200 and message in html
    assert "Nothing was previewed" in html and not ChangeSet.objects.exists()
    if "renames" in change:
        assert "legacy_db to warehouse</textarea>" in html
    if change.get("old") == "no-such-integration":
        assert f'<option value="{new.pk}" selected>' in html


@pytest.mark.parametrize("tamper", ["not-a-candidate", "not-ambiguous", "twice"])
def test_tampered_ambiguous_choices_are_refused_with_the_choices_kept(pair, as_steward, tamper):
    old, new = pair
    lower, upper = by_path(old, "analytics.finance.Customers"), by_path(old, "analytics.finance.CUSTOMERS")
    target = by_path(new, "ANALYTICS.FINANCE.CUSTOMERS")
    picks = {
        "not-a-candidate": {f"pick-{lower.pk}": by_path(new, "ANALYTICS.FINANCE.INVOICES").pk},
        "not-ambiguous": {f"pick-{by_path(old, 'analytics.finance.invoices').pk}": target.pk},
        "twice": {f"pick-{lower.pk}": target.pk, f"pick-{upper.pk}": target.pk},
    }[tamper]
    response = as_steward.post(reverse("migration:preview"), preview_data(old, new, **picks))
    html = response.content.decode()
    assert response.status_code == 200 and "Nothing was previewed" in html and "Ambiguous matches:" in html
    assert not ChangeSet.objects.exists() and not MigrationPlan.objects.exists()
    assert 'value="description" id="id_fields_to_copy_0" checked' in html
    if tamper == "twice":
        assert f'<option value="{target.pk}" selected>' in html


def test_the_same_integration_twice_on_the_match_form_is_a_message_not_a_500(pair, as_steward):
    old, _ = pair
    response = match_page(as_steward, old, old)
    assert response.status_code == 200
    assert "Choose two different integrations" in response.content.decode()
    response = as_steward.get(reverse("migration:migrate"), {"old": "x" * 500, "new": "\u202e", "renames": "=>"})
    assert response.status_code == 200 and "That integration is not in the mirror" in response.content.decode()


def test_viewers_see_the_matching_but_cannot_preview(pair, client, viewer):
    old, new = pair
    client.force_login(viewer)
    html = match_page(client, old, new).content.decode()
    assert "How they match" in html and "Before you delete" in html
    assert "Preview the changes" not in html and "<select id=\"pick-" not in html
    assert client.post(reverse("migration:preview"), preview_data(old, new)).status_code == 403
    assert not ChangeSet.objects.exists()


def test_outsiders_and_anonymous_users_see_nothing(pair, client, outsider):
    old, new = pair
    response = match_page(client, old, new)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post(reverse("migration:preview"), preview_data(old, new)).status_code == 302
    client.force_login(outsider)
    response = match_page(client, old, new)
    assert response.status_code == 403 and "Redshift" not in response.content.decode()
    assert client.post(reverse("migration:preview"), preview_data(old, new)).status_code == 403


def test_the_preview_needs_its_csrf_token(pair, steward):
    old, new = pair
    client = Client(enforce_csrf_checks=True)
    client.force_login(steward)
    assert client.post(reverse("migration:preview"), preview_data(old, new)).status_code == 403
    assert not ChangeSet.objects.exists()


def test_text_from_secoda_is_shown_as_text(pair, as_steward):
    old, new = pair
    Resource.objects.filter(pk=by_path(old, "analytics.scratch").pk).update(title="<img src=x onerror=alert(1)>")
    html = match_page(as_steward, old, new).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_nav_links_to_migrate_for_everyone(pair, client, viewer):
    client.force_login(viewer)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert f'href="{reverse("migration:migrate")}"' in html and ">Migrate</a>" in html
