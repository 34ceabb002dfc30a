"""The Secoda emulator: generated workspace, and the HTTP API with its quirks and faults.

No database needed: run with ``pytest tests/test_emulator.py -p no:django`` if settings are not ready.
"""
import json
import pickle
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
import requests

from secoda_emulator import EmulatorServer, Faults, Workspace
from secoda_emulator.records import FIELDS

TOKEN = "emulator-test-token"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def big():
    """25,000 resources, read-only: shared by the tests that do not write."""
    server = EmulatorServer(Workspace.generate(25_000, seed=7, now=NOW), token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def small():
    """A fresh 600-resource workspace per test, for writes and faults."""
    server = EmulatorServer(Workspace.generate(600, seed=3, now=NOW), token=TOKEN, faults=Faults(seed=11)).start()
    yield server
    server.stop()


@pytest.fixture
def http():
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


def listing(http, server, page=None, filter=None, sort=None, **params):
    if page is not None:
        params["page"] = page
    if filter is not None:
        params["filter"] = json.dumps(filter)
    if sort is not None:
        params["sort"] = json.dumps(sort)
    return http.get(server.base_url + "/resource/catalog", params=params)


def all_pages(http, server, **kwargs):
    results, page = [], 1
    while page is not None:
        body = listing(http, server, page=page, **kwargs).json()
        results.extend(body["results"])
        page = body["meta"]["next_page"]
    return results, body


# ---------------------------------------------------------------------------- paging

def test_pages_of_fifty_with_the_documented_none_quirks(small, http):
    first = listing(http, small).json()
    assert first["count"] == 600 and first["total_pages"] == 12
    assert len(first["results"]) == 50
    assert first["meta"] == {"page": 1, "previous_page": "None", "next_page": 2}
    assert first["links"] == {"next": small.base_url + "/resource/catalog?page=2", "previous": "None"}

    middle = listing(http, small, page=5).json()
    assert len(middle["results"]) == 50
    assert middle["meta"] == {"page": 5, "previous_page": 4, "next_page": 6}
    assert middle["links"]["previous"] == small.base_url + "/resource/catalog?page=4"
    small.faults.reference_links = True  # the reference pages' link, wrong path and host
    assert listing(http, small, page=5).json()["links"]["next"] == "https://api.secoda.co/resource/all/?page=6"

    results, last = all_pages(http, small)
    assert last["meta"] == {"page": 12, "previous_page": 11, "next_page": None}
    assert last["links"]["next"] is None
    ids = [r["id"] for r in results]
    assert len(ids) == len(set(ids)) == 600
    assert set(ids) == set(small.workspace.ids())


def test_bad_and_out_of_range_pages(small, http):
    for bad in ("0", "-1", "abc", "1.5"):
        response = listing(http, small, page=bad)
        assert response.status_code == 400, bad
        assert "page" in response.json()["detail"]
    response = listing(http, small, page=13)
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


def test_trailing_slash_is_optional_everywhere(small, http):
    for path in ("/resource/catalog", "/user", "/auth/group", "/auth/teams", "/tag", "/integration/integrations"):
        with_slash = http.get(small.base_url + path + "/")
        without = http.get(small.base_url + path)
        assert with_slash.status_code == without.status_code == 200, path
        assert with_slash.json()["count"] == without.json()["count"] > 0


def test_ten_thousand_cap_across_pages(big, http):
    first = listing(http, big).json()
    assert first["count"] == 25_000
    assert first["total_pages"] == 200
    last = listing(http, big, page=200).json()
    assert len(last["results"]) == 50
    assert last["meta"]["next_page"] is None and last["links"]["next"] is None
    beyond = listing(http, big, page=201)
    assert beyond.status_code == 404
    assert beyond.json() == {"detail": "Invalid page."}


def test_count_timeout_reports_999999_only_above_the_cap(big, http):
    big.faults.count_timeout = True
    try:
        body = listing(http, big).json()
        assert body["count"] == 999_999
        assert body["total_pages"] == 200
        narrow = listing(http, big, filter={"operator": "exact", "field": "type", "value": "dashboard"}).json()
        assert 0 < narrow["count"] < 10_000  # the true count
    finally:
        big.faults.count_timeout = False
    assert listing(http, big).json()["count"] == 25_000


# ---------------------------------------------------------------------------- filters and sorts

def test_filter_exact_on_type_and_alias(big, http):
    ws = big.workspace
    expected = set(ws.ids(lambda r: r["entity_type"] == "dashboard"))
    results, body = all_pages(http, big, filter={"operator": "exact", "field": "type", "value": "dashboard"})
    assert body["count"] == len(expected) > 0
    assert {r["id"] for r in results} == expected
    same = listing(http, big, filter={"operator": "exact", "field": "entity_type", "value": "dashboard"}).json()
    assert same["count"] == body["count"]


def test_filter_in_on_integration_id_and_parent_id(big, http):
    ws = big.workspace
    tableau, looker = ws.integration_id("tableau"), ws.integration_id("looker")
    body = listing(http, big, filter={"operator": "in", "field": "integration_id", "value": [tableau, looker]}).json()
    assert body["count"] == len(ws.ids(lambda r: r["integration"] in (tableau, looker)))
    assert {r["integration"] for r in body["results"]} <= {tableau, looker}

    tables = ws.ids({"operator": "exact", "field": "type", "value": "table"})[:3]
    results, body = all_pages(http, big, filter={"operator": "in", "field": "parent_id", "value": tables})
    assert body["count"] == sum(ws.get(t)["children_count"] for t in tables) > 0
    assert {r["parent"] for r in results} == set(tables)
    assert all(r["entity_type"] == "column" for r in results)


def test_filter_not_contains_and_or_is_set(big, http):
    ws = big.workspace
    snowflake = ws.integration_id("snowflake")
    not_columns = listing(http, big, filter={"operator": "not", "operands": [
        {"operator": "exact", "field": "type", "value": "column"}]}).json()
    assert not_columns["count"] == len(ws.ids(lambda r: r["entity_type"] != "column"))

    contains = listing(http, big, filter={"operator": "contains", "field": "title", "value": "ORDERS"}).json()
    assert contains["count"] == len(ws.ids(lambda r: "orders" in r["title"].lower())) > 0
    assert all("orders" in r["title"].lower() for r in contains["results"])

    combined = {"operator": "and", "operands": [
        {"operator": "exact", "field": "integration_id", "value": snowflake},
        {"operator": "or", "operands": [
            {"operator": "exact", "field": "type", "value": "schema"},
            {"operator": "exact", "field": "type", "value": "database"}]},
        {"operator": "contains", "field": "title", "value": "raw"}]}
    expected = ws.ids(lambda r: r["integration"] == snowflake and r["entity_type"] in ("schema", "database")
                      and "raw" in r["title"].lower())
    results, body = all_pages(http, big, filter=combined)
    assert body["count"] == len(expected) > 0
    assert {r["id"] for r in results} == set(expected)

    pii_tag = next(t["id"] for t in ws.tags() if t["name"] == "PII")
    tagged = listing(http, big, filter={"operator": "contains", "field": "tags", "value": pii_tag}).json()
    assert tagged["count"] == len(ws.ids(lambda r: pii_tag in r["tags"])) > 0

    unowned = {"operator": "and", "operands": [
        {"operator": "is_set", "field": "owners", "value": False},
        {"operator": "is_set", "field": "owners_groups", "value": False}]}
    count = listing(http, big, filter=unowned).json()["count"]
    assert count == len(ws.ids(lambda r: not r["owners"] and not r["owners_groups"])) > 0


def test_exact_null_matches_null_and_none_string(big, http):
    ws = big.workspace
    body = listing(http, big, filter={"operator": "exact", "field": "parent", "value": None}).json()
    roots = ws.ids(lambda r: r["parent"] in (None, "None"))
    assert body["count"] == len(roots) > 0
    values = {r["parent"] for r in all_pages(http, big, filter={
        "operator": "exact", "field": "parent_id", "value": None})[0]}
    assert values == {None, "None"}


@pytest.mark.parametrize("bad", [
    "{not json",
    json.dumps({"operator": "gt", "field": "external_usage", "value": 3}),
    json.dumps({"operator": "exact", "field": "no_such_field", "value": 3}),
    json.dumps({"operator": "in", "field": "id", "value": "not-a-list"}),
    json.dumps({"operator": "and", "operands": "x"}),
    json.dumps(["exact"]),
])
def test_malformed_filters_answer_400(small, http, bad):
    response = http.get(small.base_url + "/resource/catalog", params={"filter": bad})
    assert response.status_code == 400
    assert response.json()["detail"]


def test_default_sort_is_external_usage_desc_nulls_last_then_id(big, http):
    results, _ = all_pages(http, big, filter={"operator": "exact", "field": "type", "value": "dashboard"})
    usage = [r["external_usage"] for r in results]
    numbers = [u for u in usage if u is not None]
    assert numbers == sorted(numbers, reverse=True)
    assert usage.index(None) == len(numbers)  # all nulls at the end
    zeros = [r["id"] for r in results if r["external_usage"] == 0]
    assert zeros == sorted(zeros)  # ties broken by id


def test_sort_with_tie_breaker(big, http):
    sort = {"field": "native_type", "order": "desc",
            "tie_breaker": {"field": "title", "order": "asc", "tie_breaker": None}}
    results, _ = all_pages(http, big, sort=sort, filter={
        "operator": "in", "field": "type", "value": ["table", "schema"]})
    keys = [(r["native_type"], r["title"], r["id"]) for r in results]
    natives = [k[0] for k in keys]
    assert natives == sorted(natives, reverse=True)
    for native in set(natives):
        group = [k[1:] for k in keys if k[0] == native]
        assert group == sorted(group)

    by_created = listing(http, big, sort={"field": "created_at", "order": "asc"}).json()["results"]
    stamps = [r["created_at"] for r in by_created]
    assert stamps == sorted(stamps)
    assert listing(http, big, sort={"field": "nope", "order": "asc"}).status_code == 400
    assert listing(http, big, sort={"field": "title", "order": "sideways"}).status_code == 400


def test_teams_parameter_keeps_only_that_team(big, http):
    team = big.workspace.teams()[0]["id"]
    body = http.get(big.base_url + "/resource/catalog", params={"teams": team}).json()
    assert body["count"] == len(big.workspace.ids(lambda r: team in r["teams"])) > 0
    assert all(team in r["teams"] for r in body["results"])


def test_listing_is_cached_until_a_mutation(small):
    ws = small.workspace
    sort = {"field": "updated_at", "order": "desc"}
    first = ws.list_resources(None, sort)
    assert ws.list_resources(None, sort) is first
    target = first[-1]
    ws.set_description(target, "Now documented")
    again = ws.list_resources(None, sort)
    assert again is not first and again[0] == target
    assert ws.get(target)["description"] == "Now documented"


# ---------------------------------------------------------------------------- auth

def test_every_api_path_needs_the_bearer_token(small):
    rid = small.workspace.ids()[0]
    paths = ["/resource/catalog", f"/resource/all/{rid}", "/user", "/auth/group", "/auth/teams/", "/tag",
             "/integration/integrations", "/no/such/path"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Token {TOKEN}"}):
        for path in paths:
            response = requests.get(small.base_url + path, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert response.json() == {"detail": "Authentication credentials were not provided."}
            assert TOKEN not in response.text
    write = requests.patch(small.base_url + f"/resource/all/{rid}", json={"description": "x"})
    assert write.status_code == 401
    assert small.workspace.get(rid)["description"] != "x"
    assert requests.get(small.root_url + "/__emulator__/stats").status_code == 200  # control: no token


def test_unknown_path_and_method(small, http):
    response = http.get(small.base_url + "/nothing/here")
    assert response.status_code == 404 and response.json()["detail"]
    assert http.delete(small.base_url + "/user").status_code == 405


# ---------------------------------------------------------------------------- single resources

def test_create_get_patch_delete(small, http):
    ws = small.workspace
    schema = ws.ids({"operator": "exact", "field": "type", "value": "schema"})[0]
    before = ws.get(schema)["children_count"]
    created = http.post(small.base_url + "/resource/catalog/", json={
        "title": "fct_new", "entity_type": "table", "parent": schema, "description": "New table",
        "owners": [ws.users()[0]["id"]]})
    assert created.status_code == 201
    record = created.json()
    assert set(record) == set(FIELDS)
    assert record["parent"] == schema and record["integration"] == ws.get(schema)["integration"]
    assert ws.get(schema)["children_count"] == before + 1

    got = http.get(small.base_url + f"/resource/all/{record['id']}/").json()
    assert got["title_full"].endswith(".fct_new")

    patched = http.patch(small.base_url + f"/resource/all/{record['id']}", json={
        "description": "Better", "pii": True, "title": "ignored"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "Better" and patched.json()["pii"] is True
    assert patched.json()["title"] == "fct_new"
    assert http.patch(small.base_url + f"/resource/all/{record['id']}", json={"owners": "me"}).status_code == 400

    assert http.delete(small.base_url + f"/resource/all/{record['id']}").status_code == 204
    assert ws.get(schema)["children_count"] == before
    for call in (http.get, http.delete):
        missing = call(small.base_url + f"/resource/all/{record['id']}")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}


def test_bulk_update_shape_limit_and_returned_ids(small, http):
    ws = small.workspace
    ids = ws.ids()[:3]
    old = ws.get(ids[0])["updated_at"]
    tag = ws.tags()[0]["id"]
    entries = [{"id": rid, "data": {"description": f"doc {n}", "tags": [tag]}} for n, rid in enumerate(ids)]
    entries.append({"id": "00000000-0000-4000-8000-000000000000", "data": {"description": "ghost"}})
    response = http.post(small.base_url + "/resource/all/bulk_update/", json=entries)
    assert response.status_code == 200
    assert response.json() == ids  # unknown id skipped
    assert [ws.get(rid)["description"] for rid in ids] == ["doc 0", "doc 1", "doc 2"]
    assert ws.get(ids[0])["tags"] == [tag]
    assert ws.get(ids[0])["updated_at"] > old

    pii_before = ws.get(ids[0])["pii"]
    too_many = [{"id": ids[0], "data": {"pii": not pii_before}}] * 101
    response = http.post(small.base_url + "/resource/all/bulk_update", json=too_many)
    assert response.status_code == 400 and "100" in response.json()["detail"]
    assert ws.get(ids[0])["pii"] == pii_before  # nothing applied

    for bad in ({"id": ids[0]}, [{"id": ids[0]}], [{"data": {}}], [{"id": ids[0], "data": {"pii": "maybe"}}]):
        response = http.post(small.base_url + "/resource/all/bulk_update/", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["detail"]
    response = http.post(small.base_url + "/resource/all/bulk_update/", data=b"[{oops",
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_bulk_update_accepts_exactly_one_hundred(small, http):
    ids = small.workspace.ids()[:100]
    response = http.post(small.base_url + "/resource/all/bulk_update/",
                         json=[{"id": rid, "data": {"verified": True}} for rid in ids])
    assert response.status_code == 200 and response.json() == ids
    assert all(small.workspace.get(rid)["verified"] is True for rid in ids)


# ---------------------------------------------------------------------------- write limit and faults

def test_write_limit_answers_429_with_retry_after(small, http):
    small.faults.writes_per_minute = 3
    rid = small.workspace.ids()[0]
    for n in range(3):
        assert http.patch(small.base_url + f"/resource/all/{rid}", json={"description": str(n)}).status_code == 200
    throttled = http.patch(small.base_url + f"/resource/all/{rid}", json={"description": "late"})
    assert throttled.status_code == 429
    assert throttled.json() == {"detail": "Request was throttled."}
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert small.workspace.get(rid)["description"] == "2"
    assert http.get(small.base_url + f"/resource/all/{rid}").status_code == 200  # reads are not limited

    small.faults.retry_after_header = False
    throttled = http.post(small.base_url + "/resource/all/bulk_update/", json=[])
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
    stats = small.stats()
    assert stats["writes"] == 3 and stats["throttled"] == 2


def test_write_limit_default_is_thirty_a_minute(small, http):
    rid = small.workspace.ids()[0]
    statuses = [http.patch(small.base_url + f"/resource/all/{rid}", json={"pii": True}).status_code
                for _ in range(31)]
    assert statuses == [200] * 30 + [429]


def test_error_rate_faults(small, http):
    small.faults.error_rate = 1.0
    statuses = Counter(http.get(small.base_url + "/tag").status_code for _ in range(40))
    assert set(statuses) <= {500, 502, 503} and len(statuses) >= 2
    assert small.stats()["faults_injected"] == 40

    small.faults.error_rate = 0.3
    statuses = [http.get(small.base_url + "/tag").status_code for _ in range(200)]
    failures = sum(s >= 500 for s in statuses)
    assert 30 <= failures <= 90
    assert set(statuses) <= {200, 500, 502, 503}

    small.faults.error_rate = 0.0
    assert http.get(small.base_url + "/tag").status_code == 200


def test_read_429_fault_and_dropped_connections(small, http):
    small.faults.rate_429 = 1.0
    response = http.get(small.base_url + "/user")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    small.faults.rate_429 = 0.0

    small.faults.drop_connection_rate = 1.0
    with pytest.raises(requests.ConnectionError):
        requests.get(small.base_url + "/user", headers=AUTH, timeout=5)
    small.faults.drop_connection_rate = 0.0
    assert http.get(small.base_url + "/user").status_code == 200


def test_faults_control_endpoint_latency_and_stats(small, http):
    control = small.root_url + "/__emulator__"
    assert requests.post(control + "/faults", json={"latency_ms": 30}).json()["latency_ms"] == 30
    assert requests.post(control + "/faults", json={"bogus": 1}).status_code == 400
    assert requests.post(control + "/faults", json={"error_rate": 2}).status_code == 400
    requests.post(control + "/reset-stats")
    started = time.perf_counter()
    for _ in range(3):
        http.get(small.base_url + "/tag")
    assert time.perf_counter() - started >= 0.09
    stats = requests.get(control + "/stats").json()
    assert stats["requests"] == 3 and stats["requests_by_path"] == {"/api/v1/tag": 3}
    assert stats["serving_seconds"] >= 0.09
    small.reset_stats()
    assert small.stats()["requests"] == 0


def test_busy_time_counts_concurrent_requests_once(small):
    import threading

    small.faults.latency_ms = 500  # long enough that four threads overlap even on a loaded machine
    small.reset_stats()
    threads = [threading.Thread(target=requests.get, args=(small.base_url + "/tag",), kwargs={"headers": AUTH})
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = small.stats()
    assert stats["serving_seconds"] >= 4 * 0.5
    assert 0.5 <= stats["busy_seconds"] < 2 * 0.5  # four at once: busy for about one latency


def test_a_listing_fault_fails_only_the_matching_listings(small, http):
    small.faults.update({"fail_listings_matching": "page=3"})
    assert listing(http, small, page=3).status_code == 503
    assert listing(http, small, page=2).status_code == 200
    assert http.get(small.base_url + "/tag").status_code == 200
    with pytest.raises(ValueError):
        small.faults.update({"fail_listings_matching": 3})


# ---------------------------------------------------------------------------- other endpoints

def test_people_labels_integrations_and_dbt_tests(big, http):
    ws = big.workspace
    for path, expected in (("/user", 30), ("/auth/group", 6), ("/auth/teams/", 5), ("/tag", 12),
                           ("/integration/integrations", 7)):
        body = http.get(big.base_url + path).json()
        assert body["count"] == len(body["results"]) == expected, path
        assert body["meta"] == {"page": 1, "previous_page": "None", "next_page": None}
    users = http.get(big.base_url + "/user").json()["results"]
    assert {"id", "first_name", "last_name", "email", "role", "disabled"} <= set(users[0])
    assert {u["role"] for u in users} == {"admin", "editor", "viewer"}
    assert "False" in [u["disabled"] for u in users]

    dbt = http.get(big.base_url + "/integration/integrations", params={"type": "dbt_cloud"}).json()["results"]
    assert len(dbt) == 1 and dbt[0]["credentials"] == {} and dbt[0]["ssh_tunnel"] == "None"
    assert http.get(big.base_url + f"/integration/integrations/{dbt[0]['id']}").json()["name"] == dbt[0]["name"]
    tests = http.get(big.base_url + f"/integration/dbt/{dbt[0]['id']}/failing_tests/").json()
    assert tests["failing"] and tests["warning"] and not set(tests["failing"]) & set(tests["warning"])
    tables = set(ws.ids(lambda r: r["entity_type"] == "table"))
    assert set(tests["failing"]) | set(tests["warning"]) <= tables
    snowflake = ws.integration_id("snowflake")
    assert http.get(big.base_url + f"/integration/dbt/{snowflake}/failing_tests").status_code == 400
    assert http.get(big.base_url + "/integration/dbt/nope/failing_tests").status_code == 404
    assert http.get(big.base_url + "/integration/integrations/nope").status_code == 404


# ---------------------------------------------------------------------------- generation

def test_generation_is_deterministic_for_a_seed(generate_afresh):
    a = Workspace.generate(3000, seed=5, now=NOW)
    b = Workspace.generate(3000, seed=5, now=NOW)
    c = Workspace.generate(3000, seed=6, now=NOW)
    assert a.records(a.ids()) == b.records(b.ids())
    assert a.users() == b.users() and a.integrations() == b.integrations()
    assert a.ids() != c.ids()
    assert a.resource_count() == c.resource_count() == 3000


def test_the_migration_pair_adds_two_warehouses_and_leaves_the_rest_as_it_was(generate_afresh):
    from secoda_emulator.migration_pair import NEW, NEW_TREE, OLD, OLD_TREE

    plain = Workspace.generate(600, seed=3, now=NOW)
    paired = Workspace.generate(600, seed=3, now=NOW, migration_pair=True)
    assert paired.records(plain.ids()) == plain.records(plain.ids())
    assert paired.integrations()[:7] == plain.integrations()
    old, new = paired.integrations()[7:]
    assert (old["type"], old["name"], new["type"], new["name"]) == (*OLD, *NEW)

    def size(tree):
        return sum(1 + sum(1 + sum(1 + len(columns) for columns in tables.values()) for tables in schemas.values())
                   for schemas in tree.values())

    records = paired.records(paired.ids()[600:])
    by_integration = Counter(r["integration"] for r in records)
    assert by_integration == {old["id"]: size(OLD_TREE), new["id"]: size(NEW_TREE)}
    olds = [r for r in records if r["integration"] == old["id"]]
    news = [r for r in records if r["integration"] == new["id"]]
    documented = sum(1 for r in olds if r["description"]) / len(olds)
    assert documented > 0.8 and sum(1 for r in news if r["description"]) / len(news) < 0.2
    assert all(r["owners"] for r in olds if r["entity_type"] == "table")
    assert any(r["pii"] for r in olds) and any(r["verified"] for r in olds) and any(r["definition"] for r in olds)
    assert "analytics.finance.CUSTOMERS" in {r["title_full"] for r in olds}
    assert {"warehouse.public.orders", "warehouse.public.Orders"} <= {r["title_full"] for r in news}
    again = Workspace.generate(600, seed=3, now=NOW, migration_pair=True)
    assert again.records(again.ids()) == paired.records(paired.ids())


def test_large_workspace_needs_slicing_but_every_slice_fits(big):
    ws = big.workspace
    per_integration = Counter(r["integration"] for r in ws.records(ws.ids()))
    snowflake = ws.integration_id("snowflake")
    assert per_integration[snowflake] > 10_000
    columns = ws.ids({"operator": "and", "operands": [
        {"operator": "exact", "field": "integration_id", "value": snowflake},
        {"operator": "exact", "field": "type", "value": "column"}]})
    assert len(columns) > 10_000
    children = ws.children_counts()
    assert max(children.values()) < 10_000
    assert max(children.values()) <= 200
    records = {r["id"]: r for r in ws.records(ws.ids())}
    assert all(records[parent]["children_count"] == n for parent, n in children.items())
    assert all(r["children_count"] == 0 for rid, r in records.items() if rid not in children)


def test_realistic_mix(big):
    ws = big.workspace
    records = ws.records(ws.ids())
    n = len(records)

    def share(pred):
        return sum(1 for r in records if pred(r)) / n

    assert all(set(r) == set(FIELDS) for r in records[:500])
    assert 0.28 < share(lambda r: not r["owners"] and not r["owners_groups"]) < 0.42
    assert 0.05 < share(lambda r: not r["owners"] and r["owners_groups"]) < 0.15
    blank = (None, "", "None")
    assert 0.38 < share(lambda r: r["description"] in blank and r["definition"] in blank) < 0.52
    assert {r["description"] for r in records if r["description"] in blank} == set(blank)
    assert 0.04 < share(lambda r: r["stale"]) < 0.08
    assert all(r["stale_at"] not in blank for r in records if r["stale"])
    assert 0.07 < share(lambda r: r["verified"]) < 0.13
    assert 0.75 < share(lambda r: r["published"]) < 0.85
    assert share(lambda r: not r["external_usage"]) > 0.3
    dashboards = [r for r in records if r["entity_type"] == "dashboard"]
    assert 0.15 < sum(not r["external_usage"] for r in dashboards) / len(dashboards) < 0.4
    emails = [r for r in records if r["entity_type"] == "column" and r["title"] == "email"]
    assert emails and all(r["pii"] for r in emails)
    assert {r["parent"] for r in records if r["entity_type"] in ("database", "dashboard")} == {None, "None"}
    assert "None" in {r["external_updated_at"] for r in records}
    assert {r["icon"] for r in records} == {None, "None"}
    assert all(r["created_at"].endswith("Z") and r["created_at"] <= r["updated_at"] for r in records[:2000])
    oldest = min(r["created_at"] for r in records)
    assert oldest >= "2023-06-01" and oldest < "2023-09-01"
    col = next(r for r in records if r["entity_type"] == "column")
    assert col["title_full"].count(".") == 3 and col["url"] == f"https://app.secoda.co/column/{col['id']}"
    types = Counter(ws.integration(r["integration"])["type"] for r in records)
    assert types["snowflake"] / n > 0.5 and 0.13 < types["postgres"] / n < 0.17
    assert 0.10 < types["tableau"] / n < 0.14 and 0.08 < types["looker"] / n < 0.12
    assert types["airflow"] > 0 and 0 < types["dbt_cloud"] <= 8


def test_generating_fifty_thousand_is_fast():
    started = time.perf_counter()
    ws = Workspace.generate(50_000, seed=2)
    elapsed = time.perf_counter() - started
    assert ws.resource_count() == 50_000
    # Generous: CI's two cores may be shared (1.9 s on a quiet machine).
    assert elapsed < 30, f"generation took {elapsed:.1f}s"


def test_add_resources_keeps_children_count(small):
    ws = small.workspace
    table = ws.ids({"operator": "exact", "field": "type", "value": "table"})[0]
    before = ws.get(table)["children_count"]
    added = ws.add_resources(3, parent_id=table)
    assert len(added) == 3 and ws.get(table)["children_count"] == before + 3
    assert all(ws.get(rid)["entity_type"] == "column" for rid in added)
    new_tables = ws.add_resources(4, integration_id=ws.integration_id("snowflake"))
    assert {ws.get(rid)["entity_type"] for rid in new_tables} == {"table"}
    assert ws.resource_count() == 607
    empty = Workspace.generate(0, seed=1)
    assert {empty.get(rid)["entity_type"] for rid in empty.add_resources(2)} == {"database"}
    assert ws.delete(added[0]) and ws.get(table)["children_count"] == before + 2


def test_a_pickled_copy_answers_like_its_original_and_goes_its_own_way():
    """The tests hand out pickled copies of each generated workspace (`workspaces_generated_once`)."""
    original = Workspace.generate(resources=600, seed=4, now=NOW, dbt_models=0.1)
    copy = pickle.loads(pickle.dumps(original))
    assert copy.records(copy.ids()) == original.records(original.ids())
    by_type = {"operator": "exact", "field": "type", "value": "column"}
    assert copy.list_resources(by_type) == original.list_resources(by_type)
    assert copy.summary() == original.summary()
    for listed in ("users", "groups", "teams", "tags", "collections", "integrations"):
        assert getattr(copy, listed)() == getattr(original, listed)(), listed
    dbt = original.integration_id("dbt_cloud")
    assert copy.failing_tests(dbt) == original.failing_tests(dbt)
    assert copy._dbt_tests == original._dbt_tests and any(any(ids) for ids in original._dbt_tests.values())
    # Its random numbers go on where the original's stood: both add the same resources (made at the clock's
    # time, which moved on in between).
    table = original.ids({"operator": "exact", "field": "type", "value": "table"})[0]

    def added(workspace):
        return [{k: v for k, v in workspace.get(i).items() if not k.endswith("_at")}
                for i in workspace.add_resources(3, parent_id=table)]

    assert added(copy) == added(original)
    # An edit to the copy leaves the original as it was.
    copy.set_description(table, "Only in the copy")
    described = {"operator": "contains", "field": "description", "value": "Only in the copy"}
    assert copy.ids(described) == [table] and original.ids(described) == []


def test_a_workspace_asked_for_again_is_a_copy_of_its_own():
    """However often the tests ask for the same workspace, what one does to it reaches no other."""
    key = {"resources": 200, "seed": 12, "now": NOW}
    first, second, third = (Workspace.generate(**key) for _ in range(3))
    assert len({id(first), id(second), id(third)}) == 3
    table = first.ids({"operator": "exact", "field": "type", "value": "table"})[0]
    first.set_description(table, "Edited in the first")
    second.delete(table)
    assert third.get(table)["description"] != "Edited in the first"
    assert third.records(third.ids()) == Workspace.generate(**key).records(third.ids())
    assert third.resource_count() == first.resource_count() == second.resource_count() + 1


# ---------------------------------------------------------------------------- speed

def test_serving_a_cached_page_is_fast(big, http):
    listing(http, big, page=1)  # computes and caches the listing
    big.reset_stats()
    for page in range(2, 42):
        assert listing(http, big, page=page).status_code == 200
    stats = big.stats()
    assert stats["requests"] == 40
    assert stats["serving_seconds"] / 40 < 0.03
    assert stats["connections"] <= 1  # keep-alive: the session reuses its connection


# ---------------------------------------------------------------------------- management command

def test_command_builds_a_configured_server(monkeypatch):
    from secoda_emulator.management.commands.secoda_emulator import build_server, startup_line
    monkeypatch.setenv("SECODA_API_TOKEN", "from-env")
    server = build_server(port=0, resources=300, seed=4, error_rate=0.1, latency_ms=5, count_timeout=True,
                          writes_per_minute=10)
    try:
        assert server.token == "from-env"
        assert (server.faults.error_rate, server.faults.latency_ms, server.faults.count_timeout,
                server.faults.writes_per_minute) == (0.1, 5, True, 10)
        line = startup_line(server)
        assert server.base_url in line and "300 resources" in line and "7 integrations" in line
        assert "30 users" in line and "from-env" not in line
    finally:
        server.stop()
    with pytest.raises(ValueError):
        build_server(port=0, resources=10, error_rate=1.5)


def test_page_size_is_honoured_up_to_a_thousand_unless_the_option_says_otherwise(small, http):
    big = listing(http, small, page_size=500).json()
    assert len(big["results"]) == 500 and big["total_pages"] == 2 and big["meta"]["next_page"] == 2
    assert len(listing(http, small, page=2, page_size=500).json()["results"]) == 100
    assert len(listing(http, small, page_size=5000).json()["results"]) == 600  # clipped to 1,000
    small.faults.honour_page_size = False
    assert len(listing(http, small, page_size=500).json()["results"]) == 50


def test_children_count_only_when_asked_as_an_option(small, http):
    def counts(**params):
        return [r["children_count"] for r in listing(http, small, **params).json()["results"]]

    assert any(counts())
    small.faults.children_count = "on_request"
    assert not any(counts()) and any(counts(calculate_children_count="true"))
    small.faults.children_count = "never"
    assert not any(counts(calculate_children_count="true"))


def test_links_next_is_the_same_listing_on_the_next_page(small, http):
    wanted = {"operator": "exact", "field": "entity_type", "value": "column"}
    body = listing(http, small, filter=wanted, page_size=20).json()
    following = http.get(body["links"]["next"]).json()
    assert following["meta"]["page"] == 2 and len(following["results"]) == 20
    assert {r["entity_type"] for r in following["results"]} == {"column"}
    assert not {r["id"] for r in following["results"]} & {r["id"] for r in body["results"]}


@pytest.mark.parametrize("answer", ["honour", "refuse", "ignore", "nothing"])
def test_filters_on_ids_can_be_honoured_refused_ignored_or_match_nothing(small, http, answer):
    ids = small.workspace.ids()[:3]
    small.faults.update({"id_filter": answer})
    response = listing(http, small, filter={"operator": "in", "field": "id", "value": ids})
    if answer == "refuse":
        assert response.status_code == 400 and "id" in response.json()["detail"]
        return
    body = response.json()
    expected = {"honour": 3, "ignore": small.workspace.resource_count(), "nothing": 0}[answer]
    assert body["count"] == expected
    if answer == "honour":
        assert {r["id"] for r in body["results"]} == set(ids)
    with pytest.raises(ValueError):
        small.faults.update({"id_filter": "sometimes"})
