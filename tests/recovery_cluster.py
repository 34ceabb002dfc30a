"""A small deployment for crash tests: its own PostgreSQL database, its own Redis (so it can be
restarted without disturbing other tests), the emulator, Celery beat, and worker processes that a test
can kill with SIGKILL and start again. The test process reads the database directly (one connection,
not one a query). Celery and manage.py processes are forked from a preloaded Python
(tests/forked_processes.py), and the database is a copy of a migrated template (tests/migrated_database.py)."""
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
from celery import Celery

from secoda_emulator.server import API_PREFIX, EmulatorServer
from tests.forked_processes import Zygote
from tests.migrated_database import create_migrated_database
from tests.test_deployment import ADMIN_URL, ROOT, free_port, production_env

TOKEN = "recovery-token"
FAST_RECOVERY = dict(
    SYNC_STALL_MINUTES="5", SECODA_BACKOFF_SECONDS="0.2", SECODA_MAX_BACKOFF_SECONDS="1",
    SECODA_MAX_RETRIES="2", SECODA_TIMEOUT_SECONDS="5", SYNC_SLICE_PAGES="3", SYNC_OUTAGE_SLICES="3",
    SECODA_PAGE_SIZE="50",  # many small requests: a fault lands mid-sweep, not after it
    # Backoffs here are a fifth of the shipped ones, so a slice's retries fall inside a test's burst of faults
    # (three terminations a second apart) where shipped ones would be spread past it: allow as many tries.
    SYNC_SLICE_RETRIES="6",
)
# Short leases so the suite stays fast; RECOVERY_TIMINGS=defaults measures with the shipped ones.
SHORT_LEASES = dict(WORK_LEASE_SECONDS="6", HEARTBEAT_SECONDS="1", WATCH_EVERY_SECONDS="2", SYNC_LOCK_SECONDS="12")
DEFAULT_LEASES = dict(WORK_LEASE_SECONDS="30", HEARTBEAT_SECONDS="5", WATCH_EVERY_SECONDS="15", SYNC_LOCK_SECONDS="90")
LEASES = DEFAULT_LEASES if os.environ.get("RECOVERY_TIMINGS") == "defaults" else SHORT_LEASES
# Longest a crash should take to recover from: a lapsed lock, a watcher tick, and time to do the work.
RECOVERY_BUDGET = int(LEASES["SYNC_LOCK_SECONDS"]) + 2 * int(LEASES["WATCH_EVERY_SECONDS"]) + 45


class Redis:
    def __init__(self, port):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self):
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--daemonize", "yes"], check=True, capture_output=True)
        wait_for(lambda: self.ping(), 10, "redis did not start")

    def stop(self):
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        wait_for(lambda: not self.ping(), 10, "redis did not stop")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def wait_for(condition, timeout, message, every=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(message)


class Cluster:
    def __init__(self, workspace, tmp_path):
        self.workspace = workspace
        self.tmp = Path(tmp_path)
        self.db_name = f"hygiene_recovery_{os.getpid()}"
        self.db_url = f"{ADMIN_URL}/{self.db_name}"
        self.redis = Redis(free_port())
        # Two free ports asked for before either is bound can be the same one: make sure they differ.
        self.emulator_port = free_port()
        while self.emulator_port == self.redis.port:
            self.emulator_port = free_port()
        self.emulator = None
        self.workers = []
        self.beat = None
        self.env = None
        self.zygote = None
        self.connection = None
        self.manage_calls = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self):
        self.env = production_env(
            DATABASE_URL=self.db_url, REDIS_URL=self.redis.url,
            SECODA_API_URL=f"http://127.0.0.1:{self.emulator_port}{API_PREFIX}",
            SECODA_API_TOKEN=TOKEN, HYGIENE_DATA_DIR=str(self.tmp), DJANGO_SECURE_SSL_REDIRECT="false",
            SECODA_MAX_REQUESTS_PER_SECOND="0", **FAST_RECOVERY, **LEASES)
        self.zygote = Zygote(self.env, ROOT, self.tmp / "zygote.log")  # imports while the rest starts
        create_migrated_database(self.db_name, self.env)
        self.redis.start()
        self.start_api()
        assert self.emulator.base_url == self.env["SECODA_API_URL"]
        self.manage("migrate", "--noinput")  # nothing to apply: the periodic tasks, from these settings
        # Only the watchers run on their own: the test starts every sync itself.
        self.sql("UPDATE django_celery_beat_periodictask SET enabled = false "
                 "WHERE task NOT IN ('catalog_sync.tasks.watch_syncs', 'hygiene.bulk.tasks.resume_change_sets')")
        self.beat = self.spawn("beat", ["beat", "--loglevel", "INFO", "--schedule", str(self.tmp / "beat")])
        self.app = Celery(broker=self.redis.url, set_as_current=False)  # never the tests' own app
        return self

    def stop(self):
        for process in [*self.workers, self.beat]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self.zygote is not None:
            self.zygote.stop()
        if self.connection is not None:
            self.connection.close()
        self.stop_api()
        self.redis.stop()
        with psycopg.connect(f"{ADMIN_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def start_api(self):
        self.emulator = EmulatorServer(self.workspace, token=TOKEN, port=self.emulator_port).start()
        self.emulator.faults.writes_per_minute = None
        return self.emulator

    def stop_api(self):
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def spawn(self, name, args):
        return self.zygote.start(["celery", "-A", "hygiene", *args], self.tmp / f"{name}.log")

    def start_worker(self, concurrency=2):
        index = len(self.workers)
        worker = self.spawn(f"worker{index}", ["worker", "--loglevel", "INFO", "--concurrency", str(concurrency),
                                               "--hostname", f"w{index}@%h", "--without-gossip",
                                               "--without-mingle"])
        self.workers.append(worker)
        return worker

    def kill_workers(self):
        """SIGKILL every worker process (the parent and its pool), as an OOM killer or `kill -9` would."""
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)

    def log(self, name, tail=4000):
        text = (self.tmp / f"{name}.log").read_text()
        return text[-tail:] if tail else text

    # -- talking to it --------------------------------------------------------------------------
    def manage(self, *args, check=True, timeout=300):
        self.manage_calls += 1
        out, err = (self.tmp / f"manage{self.manage_calls}.{stream}" for stream in ("out", "err"))
        process = self.zygote.start(["manage.py", *args], out, err)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        result = subprocess.CompletedProcess(args, process.returncode, out.read_text(), err.read_text())
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def send(self, task, **kwargs):
        self.app.send_task(task, kwargs=kwargs)

    def sync(self, trigger, kind="full"):
        self.send("catalog_sync.tasks.sync_catalog", trigger=trigger, kind=kind)

    def sql(self, query, params=None):
        if self.connection is None or self.connection.closed:
            self.connection = psycopg.connect(self.db_url, autocommit=True)
        try:
            cursor = self.connection.execute(query, params)
        except psycopg.OperationalError:  # the connection was lost: once more on a new one
            self.connection.close()
            self.connection = psycopg.connect(self.db_url, autocommit=True)
            cursor = self.connection.execute(query, params)
        return cursor.fetchall() if cursor.description else None

    def value(self, query, params=None):
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def run(self, trigger):
        rows = self.sql("SELECT id, status, kind, fetched, error, high_water_mark, finished_at, mode "
                        "FROM catalog_sync_syncrun WHERE trigger = %s ORDER BY id DESC LIMIT 1", [trigger])
        if not rows:
            return None
        keys = ("id", "status", "kind", "fetched", "error", "high_water_mark", "finished_at", "mode")
        return dict(zip(keys, rows[0]))

    def finished(self, trigger, timeout):
        return wait_for(lambda: (lambda r: r if r and r["status"] not in ("running",) else None)(self.run(trigger)),
                        timeout, f"sync {trigger!r} did not finish:\n{self.log('worker0')}\n{self.log('beat')}",
                        every=0.5)

    def slices_done(self, run_id):
        return self.value("SELECT count(*) FROM catalog_sync_syncslice WHERE run_id = %s AND status = 'done'",
                          [run_id])

    def duplicate_slices(self, run_id):
        """Slices that list the same thing twice (the same filter and page range)."""
        rows = self.sql("SELECT filter::text, first_page, last_page, remainder, split, count(*) "
                        "FROM catalog_sync_syncslice WHERE run_id = %s "
                        "GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1", [run_id])
        return rows

    def present_ids(self):
        return {row[0] for row in self.sql("SELECT id FROM catalog_sync_resource WHERE removed_at IS NULL")}

    def running_runs(self):
        return self.value("SELECT count(*) FROM catalog_sync_syncrun WHERE status = 'running'")

    def backends(self):
        return [row[0] for row in self.sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.db_name])]

    def terminate_backends(self):
        """pg_terminate_backend on every other connection to the database (workers, beat)."""
        pids = self.backends()
        for pid in pids:
            self.sql("SELECT pg_terminate_backend(%s)", [pid])
        return len(pids)

    def shell(self, code):
        return self.manage("shell", "-c", code).stdout

    def json_shell(self, code):
        return json.loads(self.shell(code).strip().splitlines()[-1])
