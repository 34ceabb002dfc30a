"""Secoda REST API routes over a Workspace, independent of the HTTP plumbing.

Each handler takes a ``Request`` and returns ``(status, payload)``; payload None means no body.
Paths are relative to ``/api/v1`` and have no trailing slash here.
"""
import json
import math
import re
from dataclasses import dataclass, field

PAGE_SIZE = 50
MAX_LISTED = 10_000          # Secoda returns at most 10,000 resources across all pages of one listing
COUNT_TIMED_OUT = 999_999    # what Secoda reports when counting timed out
BULK_LIMIT = 100
DOCS_LINK = "https://api.secoda.co/resource/all/?page={}"   # the docs' (wrong) link path, on purpose


class ApiError(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Request:
    workspace: object
    method: str
    query: dict                 # name -> list of values
    body: bytes = b""
    params: dict = field(default_factory=dict)
    count_timeout: bool = False
    listing_cap: int = MAX_LISTED
    bulk_answer: str = "ids"
    refused_operators: frozenset = frozenset()
    refuse_sort: bool = False
    children_count: str = "always"
    honour_page_size: bool = True
    total_pages_in_meta: bool = False
    reference_links: bool = False
    id_filter: str = "honour"
    url: str = ""

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def json_body(self):
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, f"Malformed JSON body: {exc}") from None


# ---------------------------------------------------------------------------- pagination

def page_number(req):
    raw = req.arg("page", "1")
    try:
        page = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"Invalid page {raw!r}: page must be an integer >= 1.") from None
    if page < 1:
        raise ApiError(400, f"Invalid page {raw!r}: page must be an integer >= 1.")
    return page


def envelope(count, page, total_pages, results, req=None):
    next_page = page + 1 if page < total_pages else None
    previous = page - 1 if page > 1 else None
    link = page_link(req)
    return {
        "links": {"next": link(next_page) if next_page else None,
                  "previous": link(previous) if previous else "None"},
        "meta": {"page": page, "previous_page": previous if previous else "None", "next_page": next_page},
        "count": count,
        "total_pages": total_pages,
        "results": results,
    }


def page_link(req):
    """How `links` point at another page: DRF's way (this request's own URL, `page` replaced) by default, or
    the reference pages' fixed `/resource/all/` link when the option asks for it."""
    if req is None or req.reference_links or not req.url:
        return DOCS_LINK.format
    from urllib.parse import urlencode, urlsplit, urlunsplit

    parts = urlsplit(req.url)

    def link(number):
        query = {name: values[-1] for name, values in req.query.items() if name != "page"}
        return urlunsplit(parts._replace(query=urlencode({**query, "page": number})))

    return link


def paged(req, items):
    """Envelope for a small in-memory list (users, tags, integrations...)."""
    page = page_number(req)
    total_pages = math.ceil(len(items) / PAGE_SIZE)
    if page > max(total_pages, 1):
        raise ApiError(404, "Invalid page.")
    start = (page - 1) * PAGE_SIZE
    return 200, envelope(len(items), page, total_pages, items[start:start + PAGE_SIZE], req)


# ---------------------------------------------------------------------------- resources

def _json_param(req, name):
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Invalid {name}: not valid JSON ({exc}).") from None


def named(filter_obj, key):
    """Every value of `key` ("operator" or "field") in a filter, nested operands included."""
    found, stack = set(), [filter_obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get(key), str):
                found.add(node[key])
            stack.extend(node.get("operands") or [])
    return found


def list_resources(req):
    page = page_number(req)
    filter_obj, sort_obj = _json_param(req, "filter"), _json_param(req, "sort")
    refused = req.refused_operators & named(filter_obj, "operator")
    if refused:
        raise ApiError(400, f"Invalid filter: operator {sorted(refused)[0]!r} is not supported.")
    if sort_obj is not None and req.refuse_sort:
        raise ApiError(400, "Invalid sort: sorting is not supported on this endpoint.")
    if req.id_filter != "honour" and "id" in named(filter_obj, "field"):
        if req.id_filter == "refuse":
            raise ApiError(400, "Invalid filter: field 'id' is not supported.")
        filter_obj = None if req.id_filter == "ignore" else {"operator": "exact", "field": "id", "value": ""}
    try:
        ids = req.workspace.list_resources(filter_obj, sort_obj, teams=req.arg("teams") or None)
    except ValueError as exc:
        raise ApiError(400, f"Invalid filter or sort: {exc}") from None
    count = len(ids)
    size = page_size(req)
    total_pages = math.ceil(min(count, req.listing_cap) / size)
    if page > max(total_pages, 1):
        raise ApiError(404, "Invalid page.")
    start = (page - 1) * size
    results = req.workspace.records(ids[start:start + size])
    asked = str(req.arg("calculate_children_count", "")).lower() == "true"
    if req.children_count == "never" or (req.children_count == "on_request" and not asked):
        results = [{**record, "children_count": 0} for record in results]
    if req.count_timeout and count > req.listing_cap:
        count = COUNT_TIMED_OUT
    body = envelope(count, page, total_pages, results, req)
    if req.total_pages_in_meta:
        body["meta"]["total_pages"] = body.pop("total_pages")
    return 200, body


MAX_PAGE_SIZE = 1_000


def page_size(req):
    """`page_size` when honoured (1..1,000, larger is clipped), else Secoda's 50."""
    raw = req.arg("page_size")
    if raw is None or not req.honour_page_size:
        return PAGE_SIZE
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"Invalid page_size {raw!r}: an integer from 1 to {MAX_PAGE_SIZE}.") from None
    if size < 1:
        raise ApiError(400, f"Invalid page_size {raw!r}: an integer from 1 to {MAX_PAGE_SIZE}.")
    return min(size, MAX_PAGE_SIZE)


def create_resource(req):
    try:
        return 201, req.workspace.create(req.json_body())
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def get_resource(req):
    record = req.workspace.get(req.params["id"])
    if record is None:
        raise ApiError(404, "Not found.")
    return 200, record


def patch_resource(req):
    try:
        record = req.workspace.patch(req.params["id"], req.json_body())
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if record is None:
        raise ApiError(404, "Not found.")
    return 200, record


def delete_resource(req):
    if not req.workspace.delete(req.params["id"]):
        raise ApiError(404, "Not found.")
    return 204, None


def bulk_update(req):
    entries = req.json_body()
    if not isinstance(entries, list):
        raise ApiError(400, "The body must be a JSON array of {\"id\": ..., \"data\": {...}} entries.")
    if len(entries) > BULK_LIMIT:
        raise ApiError(400, f"bulk_update accepts at most {BULK_LIMIT} entries per request "
                            f"(got {len(entries)}).")
    try:
        updated = req.workspace.bulk_update(entries)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    answer = req.bulk_answer
    if answer == "empty":
        return 200, []
    if answer == "objects":
        return 200, [{"success": True} for _ in updated]
    if answer == "records":
        return 200, req.workspace.records(updated)
    if answer == "count":
        return 200, {"updated": len(updated)}
    if answer == "no_content":
        return 204, None
    return 200, updated


# ---------------------------------------------------------------------------- everything else

def list_integrations(req):
    return paged(req, req.workspace.integrations(type=req.arg("type") or None))


def get_integration(req):
    found = req.workspace.integration(req.params["id"])
    if found is None:
        raise ApiError(404, "Not found.")
    return 200, found


def failing_tests(req):
    integration = req.workspace.integration(req.params["id"])
    if integration is None:
        raise ApiError(404, "Not found.")
    result = req.workspace.failing_tests(req.params["id"])
    if result is None:
        raise ApiError(400, f"Integration {req.params['id']} is not a dbt integration "
                            f"(type {integration['type']!r}).")
    return 200, result


def list_users(req):
    return paged(req, req.workspace.users())


def list_groups(req):
    return paged(req, req.workspace.groups())


def list_teams(req):
    return paged(req, req.workspace.teams())


def list_tags(req):
    return paged(req, req.workspace.tags())


_ID = r"(?P<id>[^/]+)"
ROUTES = (
    ("/resource/catalog", {"GET": list_resources, "POST": create_resource}),
    ("/resource/all/bulk_update", {"POST": bulk_update}),
    ("/resource/all/{id}", {"GET": get_resource, "PATCH": patch_resource, "PUT": patch_resource,
                            "DELETE": delete_resource}),
    ("/integration/integrations", {"GET": list_integrations}),
    ("/integration/integrations/{id}", {"GET": get_integration}),
    ("/integration/dbt/{id}/failing_tests", {"GET": failing_tests}),
    ("/user", {"GET": list_users}),
    ("/auth/group", {"GET": list_groups}),
    ("/auth/teams", {"GET": list_teams}),
    ("/tag", {"GET": list_tags}),
)
_COMPILED = tuple((re.compile("^" + t.replace("{id}", _ID) + "$"), t, h) for t, h in ROUTES)


def resolve(path):
    """path (under /api/v1, trailing slash optional) -> (template, handlers, params) or None."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    for pattern, template, handlers in _COMPILED:
        match = pattern.match(path)
        if match:
            return template, handlers, match.groupdict()
    return None
