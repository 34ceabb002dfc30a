"""Edge cases of the Secoda client, one fake answer at a time (`responses`)."""
import json

import pytest
import requests
import responses

from catalog_sync.client import (
    PermanentError, RetryableError, SecodaClient, next_page_number, parse_page, updated_ids,
)
from catalog_sync.ratelimit import WriteThrottle

BASE = "https://secoda.example/api/v1"
TOKEN = "tok-very-secret"


def envelope(results, page=1, next_page=None, count=None, total_pages=None):
    return {
        "links": {"next": "https://api.secoda.co/resource/all/?page=2" if next_page else "None", "previous": "None"},
        "meta": {"page": page, "previous_page": "None" if page == 1 else page - 1,
                 "next_page": next_page if next_page is not None else "None"},
        "count": count if count is not None else len(results),
        "total_pages": total_pages or 1,
        "results": results,
    }


@pytest.fixture
def slept():
    return []


@pytest.fixture
def client(slept):
    return SecodaClient(BASE, TOKEN, max_retries=3, backoff=1, max_backoff=8, sleep=slept.append)


@responses.activate
def test_pages_by_meta_next_page_and_ignores_links_next(client):
    responses.get(f"{BASE}/user", json=envelope([{"id": "u1"}], next_page=2, count=2, total_pages=2))
    responses.get(f"{BASE}/user", json=envelope([{"id": "u2"}], page=2, count=2, total_pages=2))
    assert [u["id"] for u in client.users()] == ["u1", "u2"]
    assert "page=2" in responses.calls[1].request.url
    assert all("resource/all" not in call.request.url for call in responses.calls)


@responses.activate
def test_none_strings_end_paging_like_null(client):
    body = envelope([{"id": "t1"}])
    body["meta"]["next_page"] = "None"
    body["total_pages"] = "None"
    body["count"] = "None"
    responses.get(f"{BASE}/tag", json=body)
    assert [t["id"] for t in client.tags()] == ["t1"]
    assert len(responses.calls) == 1


def test_page_numbers_from_total_pages_when_meta_is_missing():
    page = parse_page({"results": [{"id": 1}], "count": 120, "total_pages": "3"}, 1, "GET /x")
    assert next_page_number(page) == 2
    last = parse_page({"results": [{"id": 1}], "count": 120, "total_pages": 3}, 3, "GET /x")
    assert next_page_number(last) is None


def test_a_next_page_that_goes_backwards_stops_paging():
    page = parse_page({"results": [{"id": 1}], "meta": {"next_page": 1}}, 4, "GET /x")
    assert next_page_number(page) is None


@responses.activate
def test_429_waits_for_retry_after_then_succeeds(client, slept):
    responses.get(f"{BASE}/tag", status=429, headers={"Retry-After": "7"}, json={"detail": "Request was throttled."})
    responses.get(f"{BASE}/tag", json=envelope([{"id": "t1"}]))
    assert [t["id"] for t in client.tags()] == ["t1"]
    assert 7 <= slept[0] < 7.5


@responses.activate
def test_5xx_and_connection_errors_back_off_exponentially_then_give_up(client, slept):
    responses.get(f"{BASE}/tag", status=503)
    responses.get(f"{BASE}/tag", body=requests.ConnectionError("boom"))
    responses.get(f"{BASE}/tag", status=502)
    responses.get(f"{BASE}/tag", status=500)
    with pytest.raises(RetryableError) as caught:
        client.tags()
    assert len(responses.calls) == 4
    assert "gave up after 4 attempts" in str(caught.value)
    assert [0.5 <= slept[0] <= 1, 1 <= slept[1] <= 2, 2 <= slept[2] <= 4] == [True, True, True]


@responses.activate
def test_timeouts_are_retried(client):
    responses.get(f"{BASE}/tag", body=requests.Timeout("slow"))
    responses.get(f"{BASE}/tag", json=envelope([{"id": "t1"}]))
    assert len(client.tags()) == 1


@responses.activate
def test_401_is_permanent_and_never_shows_the_token(client):
    responses.get(f"{BASE}/user", status=401, json={"detail": f"Bad token {TOKEN}"})
    with pytest.raises(PermanentError) as caught:
        client.users()
    assert caught.value.status == 401
    assert TOKEN not in str(caught.value)
    assert "SECODA_API_TOKEN" in str(caught.value)
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_error_details_are_redacted(client):
    responses.get(f"{BASE}/tag", status=400, json={"detail": f"filter invalid near {TOKEN}"})
    with pytest.raises(PermanentError) as caught:
        client.tags()
    assert TOKEN not in str(caught.value)
    assert "filter invalid" in str(caught.value)


@responses.activate
def test_past_the_last_page_404_ends_the_listing(client):
    responses.get(f"{BASE}/resource/catalog", json=envelope([{"id": "r1"}], next_page=2, count=2))
    responses.get(f"{BASE}/resource/catalog", status=404, json={"detail": "Invalid page."})
    pages = list(client.iter_resource_pages())
    assert [r["id"] for p in pages for r in p.results] == ["r1"]


@responses.activate
def test_filter_and_sort_travel_as_json_query_parameters(client):
    responses.get(f"{BASE}/resource/catalog", json=envelope([]))
    client.resource_page({"operator": "exact", "field": "integration_id", "value": "i1"},
                         {"field": "created_at", "order": "asc", "tie_breaker": None})
    request = responses.calls[0].request
    params = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
    assert json.loads(requests.utils.unquote(params["filter"]))["value"] == "i1"
    assert json.loads(requests.utils.unquote(params["sort"]))["field"] == "created_at"


@responses.activate
def test_bulk_update_sends_id_data_entries_and_reads_updated_ids(client):
    responses.post(f"{BASE}/resource/all/bulk_update/", json=["r1"])
    entries = [{"id": "r1", "data": {"owners": ["u1"]}}, {"id": "r2", "data": {"owners": ["u1"]}}]
    assert client.bulk_update(entries) == ["r1"]
    assert json.loads(responses.calls[0].request.body) == entries
    with pytest.raises(ValueError):
        client.bulk_update([{"id": str(i), "data": {}} for i in range(101)])


@pytest.mark.parametrize("body, expected", [
    (["a", "b"], ["a", "b"]),
    ([{"id": "a"}, {"id": "None"}], ["a"]),
    ({"updated": ["a"]}, ["a"]),
    (["a", "zz"], ["a"]),  # an id we did not send confirms nothing
    # Answers that name nothing confirm nothing: the caller reads those entries back.
    ({"status": "ok"}, []),
    ({"updated": 2}, []),
    ([], []),
    ([{"success": True}, {"success": True}], []),
    (None, []),
])
def test_bulk_update_answer_shapes(body, expected):
    assert updated_ids(body, [{"id": "a"}, {"id": "b"}]) == expected


@responses.activate
def test_a_redirected_write_is_not_followed(client):
    responses.post(f"{BASE}/resource/all/bulk_update/", status=301,
                   headers={"Location": f"{BASE}/elsewhere/bulk_update/"})
    responses.get(f"{BASE}/elsewhere/bulk_update/", json=["r1"])
    with pytest.raises(PermanentError, match="redirected"):
        client.bulk_update([{"id": "r1", "data": {"pii": True}}])
    assert [call.request.method for call in responses.calls] == ["POST"], "a 301 on a POST never becomes a GET"


def test_write_throttle_allows_30_a_minute():
    clock = [0.0]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    throttle = WriteThrottle(30, clock=lambda: clock[0], sleep=sleep)
    for _ in range(30):
        throttle.wait()
    assert waits == []
    throttle.wait()
    assert len(waits) == 1 and 60.9 < waits[0] <= 61.1  # a minute and a second (ratelimit.WINDOW_SECONDS)


@responses.activate
def test_writes_are_throttled_client_side():
    clock = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    client = SecodaClient(BASE, TOKEN, sleep=sleep,
                          throttle=WriteThrottle(2, clock=lambda: clock[0], sleep=sleep))
    responses.patch(f"{BASE}/resource/all/r1", json={"id": "r1"})
    client.patch_resource("r1", {"description": "x"})
    client.patch_resource("r1", {"description": "y"})
    assert slept == []
    client.patch_resource("r1", {"description": "z"})
    assert len(slept) == 1 and 60.9 < slept[0] <= 61.1
    assert len(responses.calls) == 3


@responses.activate
def test_a_path_spelled_the_other_way_is_tried_once_and_remembered(client):
    responses.get(f"{BASE}/user", status=404, json={"detail": "Not found."})
    responses.get(f"{BASE}/user/", json=envelope([{"id": "u1"}], next_page=2, count=2, total_pages=2))
    responses.get(f"{BASE}/user/", json=envelope([{"id": "u2"}], page=2, count=2, total_pages=2))
    assert [u["id"] for u in client.users()] == ["u1", "u2"]
    assert [call.request.url.split("?")[0] for call in responses.calls] == [
        f"{BASE}/user", f"{BASE}/user/", f"{BASE}/user/"]
    client.users()
    assert responses.calls[3].request.url.split("?")[0] == f"{BASE}/user/"


@responses.activate
def test_without_next_page_or_total_pages_the_count_drives_paging(client):
    def bare(results, count):
        return {"count": count, "results": results}

    responses.get(f"{BASE}/tag", json=bare([{"id": "a"}, {"id": "b"}], 3))
    responses.get(f"{BASE}/tag", json=bare([{"id": "c"}], 3))
    assert [t["id"] for t in client.tags()] == ["a", "b", "c"]
    assert len(responses.calls) == 2


@pytest.mark.parametrize("body, next_page, total", [
    ({"results": [{"id": "a"}], "meta": {"next_page": 2}, "total_pages": 3}, 2, 3),
    ({"results": [{"id": "a"}], "meta": {"next_page": "None", "total_pages": 3}}, None, 3),
    ({"results": [{"id": "a"}], "links": {"next": "https://x/api/v1/resource/catalog?page=4&page_size=1000"}}, 4, None),
    ({"results": [{"id": "a"}], "next": "https://x/api/v1/resource/catalog?filter=%7B%7D&page=7"}, 7, None),
    ({"results": [{"id": "a"}], "next": 5}, 5, None),
    ({"results": [{"id": "a"}], "links": {"next": None}, "next": None}, None, None),
])
def test_pages_read_next_and_total_wherever_secoda_puts_them(body, next_page, total):
    page = parse_page(body, 1, "GET /resource/catalog")
    assert (page.next_page, page.total_pages) == (next_page, total)


def test_a_listing_pages_by_what_comes_back_not_by_the_size_asked(small_emulator_pages):
    client, server, ids = small_emulator_pages
    seen = [r["id"] for page in client.iter_resource_pages() for r in page.results]
    assert sorted(seen) == sorted(ids)


@pytest.fixture(params=[(True, False), (False, False), (True, True)], ids=["honoured", "ignored", "meta-total"])
def small_emulator_pages(request):
    from secoda_emulator.server import EmulatorServer, Faults
    from secoda_emulator.workspace import Workspace

    honour, in_meta = request.param
    server = EmulatorServer(Workspace.generate(resources=730, seed=2), token="t",
                            faults=Faults(honour_page_size=honour, total_pages_in_meta=in_meta)).start()
    client = SecodaClient(server.base_url, "t", backoff=0.01, max_backoff=0.05, page_size=200)
    yield client, server, server.workspace.ids()
    server.stop()


@responses.activate
def test_a_token_cut_short_or_in_pieces_never_shows(client, caplog):
    token = "sk_live_0123456789abcdefghijklmnopqrstuvwxyz"
    client = SecodaClient(BASE, token, max_retries=0, sleep=lambda s: None)
    body = "x" * 150 + f"Authorization: Bearer {token}" + " trailing"
    responses.get(f"{BASE}/tag", status=400, body=body)
    with pytest.raises(PermanentError) as caught:
        client.tags()
    message = str(caught.value)
    assert "[token]" in message
    for size in range(8, len(token) + 1):  # no run of 8 characters of the token survives
        assert not any(token[i:i + size] in message for i in range(len(token) - size + 1)), size
    from catalog_sync.client import redact
    assert redact(f"a {token[:-1]} b {token[5:20]} c", token) == "a [token] b [token] c"
    assert redact("short sk_l text", token) == "short sk_l text"


def test_every_log_line_is_redacted(settings, capsys):
    import logging

    from hygiene.logs import RedactingFormatter

    settings.SECODA_API_TOKEN = "tok-abcdefghijklmnop"
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(message)s"))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("boom with tok-abcdefghijklmno")  # one character short
        except ValueError:
            logger.exception("failed calling with %s", "abcdefghij")
    finally:
        logger.removeHandler(handler)
    printed = capsys.readouterr().err
    assert "tok-abcdefghijklmno" not in printed and "abcdefghij" not in printed and "[token]" in printed


class OnePageOnly(SecodaClient):
    """A Secoda whose lookup by ids answers one page and says nothing of more (no count, no next page)."""

    def iter_resource_pages(self, filter_obj=None, sort_obj=None, first=None):
        page = self.resource_page(filter_obj, sort_obj)
        page.count, page.next_page, page.total_pages = None, None, None
        yield page


def test_a_lookup_by_ids_that_may_be_cut_short_never_reports_a_resource_gone():
    from secoda_emulator.server import EmulatorServer, Faults
    from secoda_emulator.workspace import Workspace

    # 50 a page: the 100 ids asked for take two pages, and this Secoda only ever shows the first.
    server = EmulatorServer(Workspace.generate(resources=300, seed=2), token="t",
                            faults=Faults(honour_page_size=False)).start()
    try:
        ids = server.workspace.ids()[:100]
        client = OnePageOnly(server.base_url, "t", max_retries=0)
        found = client.fetch_resources(ids, control=server.workspace.ids()[100])
        assert set(found) == set(ids), "what the first page left out was looked up, not taken for gone"
        gone = ids[:3]
        for resource_id in gone:
            server.workspace.delete(resource_id)
        assert set(client.fetch_resources(ids, control=server.workspace.ids()[150])) == set(ids) - set(gone)
    finally:
        server.stop()
