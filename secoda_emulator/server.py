"""HTTP emulator of Secoda's REST API (stdlib only), with fault injection and request stats.

    ws = Workspace.generate(25_000, seed=1)
    server = EmulatorServer(ws, token="emulator-token").start()
    requests.get(server.base_url + "/resource/catalog", headers={"Authorization": "Bearer emulator-token"})
    server.faults.error_rate = 0.2       # faults can change at runtime
    server.stop()

Control endpoints (no token, not Secoda's): GET /__emulator__/stats, GET|POST /__emulator__/faults,
POST /__emulator__/reset-stats.

Order of checks on an API request: latency_ms sleep, slow fault, dropped connection, 5xx fault
(502s come with an HTML body, like a load balancer), bearer token (401), route (404/405), then
the write limit (writes) or the read 429 fault (reads). Stats count API requests only:
requests, requests_by_path (route templates), responses_by_status, serving_seconds (time spent
handling, sleeps included, summed over requests), busy_seconds (wall time with at least one request
being handled: concurrent requests count once), writes (accepted), throttled (all 429s), faults_injected, connections.
"""
import hmac
import json
import math
import random
import socket
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import api

API_PREFIX = "/api/v1"
BULK_ANSWERS = ("ids", "empty", "objects", "records", "count", "no_content")
CONTROL_PREFIX = "/__emulator__"
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
WINDOW_SECONDS = 60.0
_GATEWAY_HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass
class Faults:
    """Injected misbehaviour; every field may be changed while the server runs."""
    error_rate: float = 0.0            # probability of a 500/502/503 on any API request
    rate_429: float = 0.0              # probability of a 429 on reads (Retry-After: 1 if retry_after_header)
    slow_rate: float = 0.0             # probability of sleeping slow_ms before answering
    slow_ms: int = 0
    latency_ms: int = 0                # sleep on every API request
    count_timeout: bool = False        # listings with more than the cap's matches report count 999999
    listing_cap: int = 10_000          # resources one listing returns across its pages (Secoda's: 10,000)
    # What bulk_update answers: "ids" (the updated ids), "empty" ([]), "objects" (objects without ids),
    # "records" (the updated resources), "count" ({"updated": n}) or "no_content" (204).
    bulk_answer: str = "ids"
    redirect_writes: bool = False      # POST/PATCH answer 301 to the same path with "/v2" (never applied)
    refused_operators: str = ""        # filter operators listings refuse with a 400, comma-separated ("not,is_set")
    refuse_sort: bool = False          # listings refuse any sort with a 400
    # children_count on catalog listings: "always" (the default), "on_request" (0 unless the listing sends
    # calculate_children_count=true, as the real API seems to) or "never" (always 0).
    children_count: str = "always"
    honour_page_size: bool = True      # page_size (up to 1,000) is honoured; False: always 50 a page
    total_pages_in_meta: bool = False  # total_pages only inside "meta", not at the top level
    reference_links: bool = False      # links.next as the reference pages print it (/resource/all/?page=N)
    # Filters on a resource's id: "honour" them, "refuse" them (400), "ignore" them (as if absent), or
    # match "nothing" (an unknown field silently matching no row).
    id_filter: str = "honour"
    drop_connection_rate: float = 0.0  # probability of closing the socket without answering
    seed: int | None = None            # seed of the fault rng (None: unseeded)
    writes_per_minute: int | None = 30  # sliding 60 s window across all clients; None: unlimited
    retry_after_header: bool = True    # send Retry-After with 429s
    fail_listings_matching: str = ""   # listings whose query string contains this answer 503 (a failing slice)

    def update(self, values):
        """Set fields from a dict (e.g. a JSON body); raises ValueError for unknown names or bad types."""
        if not isinstance(values, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name: f for f in fields(self)}
        changes = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r} (known: {', '.join(known)})")
            if name == "fail_listings_matching":
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
            elif name == "bulk_answer":
                if value not in BULK_ANSWERS:
                    raise ValueError(f"{name} is one of {', '.join(BULK_ANSWERS)}")
            elif name == "id_filter":
                if value not in ID_FILTER_ANSWERS:
                    raise ValueError(f"{name} is one of {', '.join(ID_FILTER_ANSWERS)}")
            elif name == "children_count":
                if value not in ("always", "on_request", "never"):
                    raise ValueError(f"{name} is one of always, on_request, never")
            elif name == "refused_operators":
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
            elif name in ("redirect_writes", "refuse_sort", "honour_page_size", "total_pages_in_meta",
                          "reference_links"):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif name in ("count_timeout", "retry_after_header"):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif name in ("seed", "writes_per_minute"):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"{name} must be an integer or null")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number")
            elif name.endswith("_rate") and value > 1:
                raise ValueError(f"{name} is a probability between 0 and 1")
            changes[name] = value
        for name, value in changes.items():
            setattr(self, name, value)
        return self


ID_FILTER_ANSWERS = ("honour", "refuse", "ignore", "nothing")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "secoda-emulator"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this
    on_answer = None  # set per API request: settles the stats just before the answer is written

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        pass

    def setup(self):
        super().setup()
        self.server.emulator._count("connections")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method):
        emulator = self.server.emulator
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self.send_json(400, {"detail": "Invalid Content-Length."})
            return
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        if split.path.startswith(CONTROL_PREFIX):
            emulator._control(self, method, split.path[len(CONTROL_PREFIX):].rstrip("/"), body)
        else:
            emulator._serve(self, method, split.path, parse_qs(split.query, keep_blank_values=True), body)

    def send_json(self, status, payload, headers=(), raw=None, content_type="application/json"):
        """Write the whole response in one go (status line, headers, body)."""
        if raw is not None:
            body = raw
        elif payload is None:
            body = b""
        else:
            body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                 f"Server: {self.server_version}", f"Date: {self.date_time_string()}",
                 f"Content-Length: {len(body)}"]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.extend(f"{k}: {v}" for k, v in headers)
        if self.close_connection:
            lines.append("Connection: close")
        done, self.on_answer = self.on_answer, None
        if done is not None:  # stats are settled before the client can see the answer
            done(status)
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class EmulatorServer:
    def __init__(self, workspace, token="emulator-token", host="127.0.0.1", port=0, faults=None):
        self.workspace = workspace
        self.token = token
        self.faults = faults if faults is not None else Faults()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.emulator = self
        self._thread = None
        self._serving = False
        self._lock = threading.Lock()
        self._writes = deque()
        self._rng = random.Random(self.faults.seed)
        self._rng_seed = self.faults.seed
        self.reset_stats()

    # ------------------------------------------------------------------ lifecycle
    @property
    def host(self):
        return self._httpd.server_address[0]

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def root_url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self):
        return self.root_url + API_PREFIX

    def start(self):
        """Serve in a daemon thread; returns self."""
        self._serving = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="secoda-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve in the calling thread until stop() or KeyboardInterrupt."""
        self._serving = True
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self):
        if self._serving:
            self._httpd.shutdown()
            self._serving = False
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ stats
    def reset_stats(self):
        with self._lock:
            self._stats = {"requests": 0, "requests_by_path": {}, "responses_by_status": {},
                           "serving_seconds": 0.0, "busy_seconds": 0.0, "writes": 0, "throttled": 0,
                           "faults_injected": 0, "connections": 0}
            if not hasattr(self, "_in_flight"):
                self._in_flight, self._busy_since = 0, None
            elif self._in_flight:
                self._busy_since = time.perf_counter()  # busy time counts from the reset

    def stats(self):
        with self._lock:
            out = json.loads(json.dumps(self._stats))
        out["serving_seconds"] = round(out["serving_seconds"], 6)
        out["busy_seconds"] = round(out["busy_seconds"], 6)
        return out

    def _count(self, key, amount=1):
        with self._lock:
            self._stats[key] += amount

    # ------------------------------------------------------------------ faults
    def _chance(self, probability):
        if not probability:
            return False
        with self._lock:
            if self.faults.seed != self._rng_seed:
                self._rng_seed = self.faults.seed
                self._rng.seed(self._rng_seed)
            return self._rng.random() < probability

    def _pick(self, options):
        with self._lock:
            return self._rng.choice(options)

    def _throttle(self):
        """None if a write may go ahead (and is counted), else seconds until a slot frees."""
        limit = self.faults.writes_per_minute
        now = time.monotonic()
        with self._lock:
            while self._writes and now - self._writes[0] >= WINDOW_SECONDS:
                self._writes.popleft()
            if limit is None or len(self._writes) < limit:
                self._writes.append(now)
                self._stats["writes"] += 1
                return None
            if not self._writes or limit <= 0:
                return WINDOW_SECONDS
            return max(1, math.ceil(self._writes[len(self._writes) - limit] + WINDOW_SECONDS - now))

    # ------------------------------------------------------------------ request handling
    def _authorized(self, handler):
        header = handler.headers.get("Authorization") or ""
        scheme, _, credential = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), str(self.token).encode())

    def _serve(self, handler, method, path, query, body):
        started = time.perf_counter()
        route = api.resolve(path[len(API_PREFIX):]) if path.startswith(API_PREFIX + "/") else None
        key = API_PREFIX + route[0] if route else "(unknown)"
        with self._lock:
            self._stats["requests"] += 1
            by_path = self._stats["requests_by_path"]
            by_path[key] = by_path.get(key, 0) + 1
            if self._in_flight == 0:
                self._busy_since = started
            self._in_flight += 1

        def settle(status):
            with self._lock:
                finished = time.perf_counter()
                self._stats["serving_seconds"] += finished - started
                self._in_flight -= 1
                if self._in_flight == 0 and self._busy_since is not None:
                    # Wall time with at least one request being served (concurrent ones counted once).
                    self._stats["busy_seconds"] += finished - self._busy_since
                    self._busy_since = None
                if status is not None:
                    by_status = self._stats["responses_by_status"]
                    by_status[str(status)] = by_status.get(str(status), 0) + 1

        handler.on_answer = settle
        try:
            self._answer(handler, method, query, body, route)
        except Exception:  # a bug in the emulator: answer 500, show the traceback on stderr
            traceback.print_exc(file=sys.stderr)
            handler.close_connection = True
            try:
                handler.send_json(500, {"detail": "Emulator error."})
            except OSError:
                pass
        finally:
            if handler.on_answer is not None:  # nothing was sent (dropped connection)
                handler.on_answer = None
                settle(None)

    def _answer(self, handler, method, query, body, route):
        """Apply faults, auth, throttling; run the route. Returns the status sent (None if dropped)."""
        faults = self.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        if self._chance(faults.slow_rate) and faults.slow_ms:
            self._count("faults_injected")
            time.sleep(faults.slow_ms / 1000.0)
        if self._chance(faults.drop_connection_rate):
            self._count("faults_injected")
            handler.drop()
            return None
        if self._chance(faults.error_rate):
            self._count("faults_injected")
            status = self._pick((500, 502, 503))
            if status == 502:
                handler.send_json(502, None, raw=_GATEWAY_HTML, content_type="text/html")
            else:
                handler.send_json(status, {"detail": "Internal server error." if status == 500
                                           else "Service temporarily unavailable."})
            return status
        if faults.fail_listings_matching and route is not None and route[0].startswith("/resource/catalog") \
                and faults.fail_listings_matching in handler.path:
            self._count("faults_injected")
            handler.send_json(503, {"detail": "Service temporarily unavailable."})
            return 503
        if not self._authorized(handler):
            handler.send_json(401, {"detail": "Authentication credentials were not provided."},
                              headers=[("WWW-Authenticate", 'Bearer realm="api"')])
            return 401
        if route is None:
            handler.send_json(404, {"detail": "Not found."})
            return 404
        _template, handlers, params = route
        if method not in handlers:
            handler.send_json(405, {"detail": f'Method "{method}" not allowed.'},
                              headers=[("Allow", ", ".join(handlers))])
            return 405
        if method in WRITE_METHODS and faults.redirect_writes:
            location = handler.path.split("?", 1)[0].replace(API_PREFIX, API_PREFIX + "/v2", 1)
            handler.send_json(301, {"detail": "Moved permanently."}, headers=[("Location", location)])
            return 301
        if method in WRITE_METHODS:
            wait = self._throttle()
            if wait is not None:
                return self._send_429(handler, int(wait))
        elif self._chance(faults.rate_429):
            self._count("faults_injected")
            return self._send_429(handler, 1)
        request = api.Request(self.workspace, method, query, body, params, count_timeout=faults.count_timeout,
                              listing_cap=max(1, int(faults.listing_cap)), bulk_answer=faults.bulk_answer,
                              refused_operators=frozenset(op.strip() for op in faults.refused_operators.split(",")
                                                          if op.strip()),
                              refuse_sort=faults.refuse_sort, children_count=faults.children_count,
                              honour_page_size=faults.honour_page_size,
                              total_pages_in_meta=faults.total_pages_in_meta,
                              reference_links=faults.reference_links, id_filter=faults.id_filter, url=self.root_url + handler.path)
        try:
            status, payload = handlers[method](request)
        except api.ApiError as exc:
            status, payload = exc.status, {"detail": exc.detail}
        handler.send_json(status, payload)
        return status

    def _send_429(self, handler, retry_after):
        self._count("throttled")
        headers = [("Retry-After", str(retry_after))] if self.faults.retry_after_header else []
        handler.send_json(429, {"detail": "Request was throttled."}, headers=headers)
        return 429

    def _control(self, handler, method, path, body):
        try:
            data = json.loads(body.decode("utf-8") or "{}") if method == "POST" else None
        except (UnicodeDecodeError, ValueError) as exc:
            handler.send_json(400, {"detail": f"Malformed JSON body: {exc}"})
            return
        if path == "/stats" and method == "GET":
            handler.send_json(200, self.stats())
        elif path == "/faults" and method == "GET":
            handler.send_json(200, asdict(self.faults))
        elif path == "/faults" and method == "POST":
            try:
                self.faults.update(data)
            except ValueError as exc:
                handler.send_json(400, {"detail": str(exc)})
                return
            handler.send_json(200, asdict(self.faults))
        elif path == "/reset-stats" and method == "POST":
            self.reset_stats()
            handler.send_json(200, {"ok": True})
        else:
            handler.send_json(404, {"detail": "Not found."})
