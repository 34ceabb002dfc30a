"""Shared set-up for benchmark scripts: a PostgreSQL database of their own and Django."""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def use_bench_database(name="hygiene_bench"):
    """Point Django at a PostgreSQL database for benchmarks (created if missing), migrated."""
    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hygiene.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def start_emulator(resources, seed=1, port=8799, token="bench-token", extra=()):
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"Port {port} is already in use (a leftover emulator?); stop it first.")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "secoda_emulator", "--port", str(port), "--resources",
         str(resources), "--seed", str(seed), "--token", token, *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DATABASE_URL": "sqlite:///var/emulator-unused.sqlite3"},
    )
    import requests

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/__emulator__/stats", timeout=1)
            if process.poll() is not None:
                raise SystemExit(f"The emulator stopped: {process.stdout.read()}")
            return process, f"http://127.0.0.1:{port}/api/v1", token
        except requests.RequestException:
            if process.poll() is not None:
                raise SystemExit(f"The emulator stopped: {process.stdout.read()}")
            time.sleep(0.3)
    process.kill()
    raise SystemExit("The emulator did not start in 5 minutes.")


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stop_emulator(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def vacuum_analyze():
    """VACUUM (ANALYZE) the whole database, as autovacuum would have by now in production: a benchmark that
    follows a bulk load or many updates otherwise measures dead rows (autovacuum may be off on a dev machine).
    Returns the server's autovacuum setting, for the report."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        setting = cursor.fetchone()[0]
        cursor.execute("VACUUM (ANALYZE)")
    return setting


def processes_cpu(pids):
    """Seconds of CPU (user + system) used by the processes, with their reaped children's."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def machine_cpu():
    """CPU seconds so far of the local PostgreSQL server (every postgres process; exited backends are in the
    postmaster's reaped children; None when none is visible here), and of the whole machine busy and idle
    (/proc/stat). A process's own are read from it (`processes_cpu`)."""
    postgres = [pid for pid in os.listdir("/proc") if pid.isdigit() and _command(pid) == "postgres"]
    busy, idle = machine_busy_idle()
    return {"postgres": processes_cpu(postgres) if postgres else None, "machine_busy": busy, "machine_idle": idle}


def machine_busy_idle():
    """The whole machine's CPU seconds so far, busy and idle (idle and iowait), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / ticks, idle / ticks


def _command(pid):
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return None
