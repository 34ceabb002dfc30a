"""The one client for Secoda's REST API.

One `requests.Session`, a timeout on every call, retries with exponential
backoff and jitter on 429/5xx/connection errors/timeouts (honouring
Retry-After), writes throttled client-side, and two error types:
`RetryableError` (try again later) and `PermanentError` (fix something first).
No ORM here: callers decide what to store.
"""
import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import requests

from catalog_sync.ratelimit import WriteThrottle, shared_budget, shared_write_throttle
from catalog_sync.values import as_int, clean

logger = logging.getLogger(__name__)

PAGE_CAP = 10_000  # Secoda returns at most this many resources across one listing's pages.


SECRET_PIECE = 8  # any run of this many characters of the token is treated as the token


def redact(text, secret=None):
    """`text` with the Secoda token, and any piece of it SECRET_PIECE characters or longer, replaced by
    "[token]". The one redaction every error message, log line and stored error goes through.
    `secret` defaults to the configured token."""
    text = str(text)
    if secret is None:
        from django.conf import settings

        secret = getattr(settings, "SECODA_API_TOKEN", "") or ""
    if not secret:
        return text
    if len(secret) < SECRET_PIECE:
        return text.replace(secret, "[token]")
    pieces = {secret[i:i + SECRET_PIECE] for i in range(len(secret) - SECRET_PIECE + 1)}
    out, start, i = [], 0, 0
    while i <= len(text) - SECRET_PIECE:
        if text[i:i + SECRET_PIECE] in pieces:
            end = i + SECRET_PIECE
            while end < len(text) and text[i:end + 1] in secret:  # as much of the token as follows
                end += 1
            out.append(text[start:i] + "[token]")
            start = i = end
        else:
            i += 1
    out.append(text[start:])
    return "".join(out)


def listing_cap():
    """The listing cap in force: SECODA_LISTING_CAP when Django is configured (tests run the same splitting
    on small workspaces with a small cap on both sides), else Secoda's 10,000."""
    try:
        from django.conf import settings

        return int(getattr(settings, "SECODA_LISTING_CAP", PAGE_CAP))
    except Exception:  # Django not configured (a script using the client alone)
        return PAGE_CAP
TIMED_OUT_COUNT = 999_999  # Secoda's "the count query timed out" answer.
RETRY_STATUSES = {429, 500, 502, 503, 504}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
BULK_UPDATE_LIMIT = 100


class SecodaError(Exception):
    """Base for every error the client raises. Messages never carry the token."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class RetryableError(SecodaError):
    """Secoda was unreachable, slow, throttling or failing: the same call may work later.

    `unreachable` is set when Secoda could not be reached or kept failing (connection errors, timeouts,
    5xx), as opposed to throttling us: a sweep stops early on a run of these.
    """

    def __init__(self, message, status=None, unreachable=False):
        super().__init__(message, status)
        self.unreachable = unreachable


class PermanentError(SecodaError):
    """The call itself is wrong (auth, bad filter, unknown id): retrying will not help."""


@dataclass
class Page:
    number: int
    results: list
    count: int | None
    next_page: int | None
    total_pages: int | None

    @property
    def capped(self):
        """True when this listing holds more than one listing may return."""
        return self.count is not None and self.count >= listing_cap()


class SecodaClient:
    def __init__(self, base_url, token, *, timeout=30.0, max_retries=6, backoff=1.0, max_backoff=60.0,
                 writes_per_minute=30, session=None, sleep=time.sleep, throttle=None, budget=None, page_size=1000):
        if not base_url:
            raise PermanentError("No Secoda API URL is configured (SECODA_API_URL).")
        self.base_url = base_url.rstrip("/")
        self._token = token or ""
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "catalog-hygiene/1.0"})
        self._send_options = self._environment_settings()
        self.throttle = throttle or WriteThrottle(writes_per_minute, sleep=sleep)
        self.budget = budget  # a request budget shared with other clients (see ratelimit), or None
        self.page_size = page_size
        self._options = dict(timeout=timeout, max_retries=max_retries, backoff=backoff, max_backoff=max_backoff,
                             writes_per_minute=writes_per_minute, sleep=sleep, page_size=page_size)
        self.requests_made = 0
        self.retries = 0
        self.before_request = None  # called before every request is sent (a change set counts its calls)
        self._path_variants = {}  # documented path -> the spelling this server answers (trailing slash or not)

    @classmethod
    def from_settings(cls, **overrides):
        from django.conf import settings

        options = dict(
            timeout=settings.SECODA_TIMEOUT_SECONDS,
            max_retries=settings.SECODA_MAX_RETRIES,
            backoff=settings.SECODA_BACKOFF_SECONDS,
            max_backoff=settings.SECODA_MAX_BACKOFF_SECONDS,
            writes_per_minute=settings.SECODA_WRITES_PER_MINUTE,
            page_size=settings.SECODA_PAGE_SIZE,
        )
        if "writes_per_minute" not in overrides:
            options.update(throttle=shared_write_throttle(), budget=shared_budget())
        options.update(overrides)
        return cls(settings.SECODA_API_URL, settings.SECODA_API_TOKEN, **options)

    def clone(self):
        """A client for another thread: its own session, the same server, limits and learned path spellings."""
        other = type(self)(self.base_url, self._token, throttle=self.throttle, budget=self.budget, **self._options)
        other._path_variants = dict(self._path_variants)
        return other

    # -- plumbing -----------------------------------------------------------------

    def _environment_settings(self):
        """The proxies and CA bundle the environment names for Secoda's host, read once: requests reads them
        again on every call (a quarter of its CPU for a small request), and every call here goes to that host."""
        if not getattr(self.session, "trust_env", False):
            return {}
        found = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self.session.trust_env = False
        return {"proxies": found["proxies"], "verify": found["verify"], "cert": found["cert"]}

    def redact(self, text):
        """`text` without this client's token (see `redact`)."""
        return redact(text, self._token)

    def _delay(self, attempt, retry_after=None):
        if retry_after is not None:
            return min(self.max_backoff, max(0.0, retry_after)) + random.uniform(0, 0.25)
        ceiling = min(self.max_backoff, self.backoff * (2 ** attempt))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def _retry_after(response):
        header = response.headers.get("Retry-After")
        if not header:
            return None
        try:
            return float(header)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(header) if header else None
            return max(0.0, parsed.timestamp() - time.time()) if parsed else None

    def request(self, method, path, *, params=None, json_body=None):
        """One API call with retries. Returns the decoded JSON (or None for an empty body)."""
        method = method.upper()
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {self._token}"}
        label = f"{method} /{path.lstrip('/')}"
        attempt = 0
        while True:
            if method in WRITE_METHODS:
                self.throttle.wait()
            if self.budget is not None:
                self.budget.acquire()
            if self.before_request is not None:
                self.before_request()
            self.requests_made += 1
            retry_after = None
            unreachable = True
            try:
                response = self.session.request(
                    method, url, params=params, json=json_body, headers=headers, timeout=self.timeout,
                    # requests turns a redirected POST into a GET: a write is never sent anywhere but here.
                    allow_redirects=method not in WRITE_METHODS, **self._send_options,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{label} could not reach Secoda ({type(exc).__name__})"
            else:
                status = response.status_code
                if status < 300:
                    if not response.content:
                        return None
                    try:
                        return response.json()
                    except ValueError:
                        problem = f"{label} answered {status} with a body that is not JSON"
                        unreachable = False
                elif status in RETRY_STATUSES:
                    retry_after = self._retry_after(response)
                    unreachable = status != 429
                    if status == 429 and method in WRITE_METHODS:
                        wait = retry_after if retry_after is not None else 60
                        self.throttle.push_back(min(self.max_backoff, wait))
                    problem = f"{label} answered {status}{self._detail(response)}"
                elif 300 <= status < 400:
                    raise PermanentError(
                        f"{label} was redirected ({status}) to {self.redact(response.headers.get('Location', '?'))}; "
                        "writes are not followed to another address. Check SECODA_API_URL.", status)
                elif status in (401, 403):
                    raise PermanentError(
                        f"{label} was refused ({status}): check SECODA_API_TOKEN and its permissions.", status)
                else:
                    raise PermanentError(f"{label} answered {status}{self._detail(response)}", status)
            if attempt >= self.max_retries:
                raise RetryableError(self.redact(f"{problem}; gave up after {attempt + 1} attempts."),
                                     unreachable=unreachable)
            delay = self._delay(attempt, retry_after)
            logger.warning("%s; retrying in %.1fs", self.redact(problem), delay)
            self.retries += 1
            attempt += 1
            self.sleep(delay)

    def _detail(self, response):
        try:
            body = response.json()
            detail = body.get("detail") or body.get("error") or body.get("message") if isinstance(body, dict) else None
        except ValueError:
            detail = None
        if not detail:
            detail = response.text.strip()
        # Redacted whole, then cut: a cut first could leave all but the last characters of the token.
        detail = self.redact(detail)
        return f": {detail[:200]}" if detail else ""

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    # -- pagination ---------------------------------------------------------------

    def page(self, path, params=None, number=1):
        params = dict(params or {})
        if number > 1:
            params["page"] = number
        spelled = self._path_variants.get(path, path)
        try:
            body = self.get(spelled, params)
        except PermanentError as exc:
            if exc.status == 404 and number > 1:  # past the last page (e.g. beyond the listing cap)
                return Page(number, [], None, None, None)
            if exc.status in (404, 405) and path not in self._path_variants:
                # Secoda's docs spell some paths with a trailing slash and some without; try the other.
                other = path[:-1] if path.endswith("/") else path + "/"
                body = self.get(other, params)
                self._path_variants[path] = spelled = other
            else:
                raise
        self._path_variants.setdefault(path, spelled)
        return parse_page(body, number, f"GET /{spelled.lstrip('/')}")

    def iter_pages(self, path, params=None, first=None):
        """Every page of a listing, by page number (never by following `links.next`)."""
        page = first or self.page(path, params, 1)
        seen = len(page.results)
        yield page
        while True:
            following = next_page_number(page, seen)
            if following is None:
                return
            page = self.page(path, params, following)
            if not page.results:
                return
            seen += len(page.results)
            yield page

    def list_all(self, path, params=None):
        items = []
        for page in self.iter_pages(path, params):
            items.extend(page.results)
        return items

    # -- endpoints ----------------------------------------------------------------

    def resource_page(self, filter_obj=None, sort_obj=None, number=1):
        return self.page("resource/catalog", self.catalog_params(filter_obj, sort_obj), number)

    def iter_resource_pages(self, filter_obj=None, sort_obj=None, first=None):
        return self.iter_pages("resource/catalog", self.catalog_params(filter_obj, sort_obj), first)

    def count(self, filter_obj=None):
        """How many resources a filter matches (counts are not capped like listings), or None when Secoda
        does not say or its count timed out. Asks for one row a page: a count costs one small request."""
        page = self.page("resource/catalog", {**resource_params(filter_obj), "page_size": 1})
        if page.count is None or page.count == TIMED_OUT_COUNT:
            return None
        return page.count

    def page_length(self, first):
        """Resources a full page of catalog listing holds here: `first`'s length when more pages follow it
        (Secoda may ignore page_size and answer 50), else the page size asked for."""
        if first is not None and first.results and next_page_number(first, len(first.results)) is not None:
            return len(first.results)
        return min(self.page_size, 1000)

    def catalog_params(self, filter_obj=None, sort_obj=None):
        """A catalog listing's query: big pages when Secoda honours `page_size` (the page length is read
        from each answer, so 50 a page still works), and children counts asked for (they read 0 unless
        asked, as Secoda's own scripts see)."""
        return {**resource_params(filter_obj, sort_obj), "page_size": self.page_size,
                "calculate_children_count": "true"}

    def get_resource(self, resource_id):
        """One resource, or None when Secoda says it does not exist."""
        try:
            return self.get(f"resource/all/{quote(resource_id, safe='')}")
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise

    def fetch_resources(self, ids, control=None):
        """Current records of these resources, by id (missing ones are absent).

        One listing filtered by `id in [...]` when this Secoda supports it; one
        GET per resource when it refuses or ignores that filter. An id the
        listing leaves out counts as gone only when the listing proves it is
        whole and honoured: its count equals the rows it returned, and
        `control` (a resource known to exist, asked for alongside) came back.
        Otherwise each left-out id is looked up on its own.
        """
        wanted = set(ids)
        asked = [*ids, control] if control is not None and control not in wanted else list(ids)
        found, rows, count = {}, 0, None
        try:
            for page in self.iter_resource_pages({"operator": "in", "field": "id", "value": asked}):
                count = page.count if count is None else count
                rows += len(page.results)
                for record in page.results:
                    found[str(record.get("id"))] = record
                if len(found) > len(asked):
                    break
        except PermanentError as exc:
            if exc.status != 400:
                raise
            found = None
        if found is not None and not set(found) <= set(asked):
            found = None  # rows nobody asked for: the filter is ignored
        if found is None:
            return self._get_each(ids)
        honoured = control is None or control in wanted or found.pop(control, None) is not None
        if not honoured:
            return self._get_each(ids)
        left_out = [resource_id for resource_id in ids if resource_id not in found]
        whole = control is not None and count is not None and count == rows
        if left_out and not whole:
            found.update(self._get_each(left_out))
        return found

    def _get_each(self, ids):
        found = {}
        for resource_id in ids:
            record = self.get_resource(resource_id)
            if record is not None:
                found[resource_id] = record
        return found

    def integrations(self):
        return self.list_all("integration/integrations")

    def users(self):
        return self.list_all("user")

    def groups(self):
        return self.list_all("auth/group")

    def teams(self):
        return self.list_all("auth/teams/")

    def tags(self):
        return self.list_all("tag")

    def dbt_test_status(self, integration_id):
        """`{"failing": set(ids), "warning": set(ids)}` for one dbt integration."""
        body = self.get(f"integration/dbt/{quote(integration_id, safe='')}/failing_tests/")
        if not isinstance(body, dict):
            raise PermanentError("dbt failing_tests answered something that is not an object.")
        return {key: {str(i) for i in (clean(body.get(key)) or []) if clean(i)} for key in ("failing", "warning")}

    def bulk_update(self, entries):
        """Send at most 100 `{"id", "data"}` entries; returns the ids Secoda's answer names as updated.

        The answer's shape is not documented (ids, objects, `[]`, `{"updated": n}`, no body): an entry the
        answer does not name is not known to have failed; the caller confirms it by reading it back."""
        if len(entries) > BULK_UPDATE_LIMIT:
            raise ValueError(f"bulk_update takes at most {BULK_UPDATE_LIMIT} entries, got {len(entries)}.")
        body = self.request("POST", "resource/all/bulk_update/", json_body=list(entries))
        return updated_ids(body, entries)

    def patch_resource(self, resource_id, data):
        return self.request("PATCH", f"resource/all/{quote(resource_id, safe='')}", json_body=data)


def resource_params(filter_obj=None, sort_obj=None):
    params = {}
    if filter_obj is not None:
        params["filter"] = json.dumps(filter_obj, separators=(",", ":"))
    if sort_obj is not None:
        params["sort"] = json.dumps(sort_obj, separators=(",", ":"))
    return params


def listing_url_length(base_url, filter_obj=None, sort_obj=None):
    """Bytes of a catalog listing URL with these parameters (page number, size and children counts included)."""
    query = urlencode({**resource_params(filter_obj, sort_obj), "page": 200, "page_size": 1000,
                       "calculate_children_count": "true"})
    return len(f"{base_url}/resource/catalog/?{query}")


def parse_page(body, number, label):
    if isinstance(body, list):  # a bare list: one page holding everything
        return Page(number, body, len(body), None, 1)
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise RetryableError(f"{label} answered without a results list.")
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    links = body.get("links") if isinstance(body.get("links"), dict) else {}
    next_page = as_int(meta.get("next_page"))
    if next_page is None:  # a link (DRF's `links.next`, a top-level `next`) or a bare number
        next_page = page_from_link(links.get("next")) or page_from_link(body.get("next"))
    total = as_int(body.get("total_pages"))
    return Page(
        number=number,
        results=[item for item in body["results"] if isinstance(item, dict)],
        count=as_int(body.get("count")),
        next_page=next_page,
        total_pages=total if total is not None else as_int(meta.get("total_pages")),
    )


def page_from_link(link):
    """The page number a next link points at: `?page=N` in a URL, or a number; None otherwise."""
    if link is None:
        return None
    number = as_int(link)
    if number is not None:
        return number
    if not isinstance(link, str):
        return None
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(link).query).get("page")
    return as_int(values[-1]) if values else None


def next_page_number(page, seen=None):
    """The page after `page`: from meta.next_page, else total_pages, else the count against rows seen."""
    if not page.results:
        return None
    if page.next_page is not None:
        return page.next_page if page.next_page > page.number else None
    if page.total_pages is not None:
        return page.number + 1 if page.number < page.total_pages else None
    if page.count is not None and seen is not None and seen < min(page.count, listing_cap()):
        return page.number + 1
    return None


def updated_ids(body, entries):
    """The ids of `entries` that Secoda's answer names: a list of ids, of objects with an id, or an object
    holding such a list. Nothing is assumed: an answer that names nothing (no body, `[]`, a count, objects
    without ids) returns [] and the caller reads the entries back."""
    if isinstance(body, dict):
        for key in ("updated", "ids", "results", "data"):
            if isinstance(body.get(key), list):
                body = body[key]
                break
    sent = {str(entry["id"]) for entry in entries}
    ids = []
    for item in body if isinstance(body, list) else []:
        if isinstance(item, dict):
            item = item.get("id")
        if clean(item) and str(item) in sent:
            ids.append(str(item))
    return ids
