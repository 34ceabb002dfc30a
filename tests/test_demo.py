"""The README's first command, end to end: emulator, first sync, worker, beat and web all come up."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid):
    result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()]


@pytest.mark.slow
def test_run_demo_brings_up_a_synced_dashboard_with_worker_and_scheduler(tmp_path):
    web_port, emulator_port = free_port(), free_port()
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "REDIS_URL", "SECODA_API_URL", "SECODA_API_TOKEN")}
    environment.update(HYGIENE_DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path}/demo.sqlite3",
                       PYTHONUNBUFFERED="1")
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "run_demo", "--port", str(web_port), "--emulator-port", str(emulator_port),
         "--resources", "800"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
        # Started with SIGINT ignored, as some parents (and test runners) pass on: Ctrl-C must still stop it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    output = []
    processes = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        text = "".join(output)
        # Keep reading what the demo prints, so it never blocks on a full pipe, and show it on failure.
        drain = threading.Thread(target=lambda: output.extend(demo.stdout), daemon=True)
        drain.start()
        assert "Catalog Hygiene is running" in text, text
        assert "Sync #1 (full sweep) finished" in text, text
        password = re.search(r"steward / (\S+)", text).group(1)

        # Worker, beat and web are separate, live processes.
        logs = {name: (tmp_path / "logs" / f"{name}.log") for name in ("worker", "beat", "web", "emulator")}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                "ready" in logs["worker"].read_text() and "beat: Starting" in logs["beat"].read_text()):
            time.sleep(0.5)
        assert "ready" in logs["worker"].read_text()
        assert "beat: Starting" in logs["beat"].read_text()

        session = requests.Session()
        base = f"http://127.0.0.1:{web_port}"
        login = session.get(f"{base}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        home = session.post(f"{base}/accounts/login/", timeout=10, headers={"Referer": f"{base}/accounts/login/"},
                            data={"username": "steward", "password": password, "csrfmiddlewaretoken": token})
        assert home.status_code == 200
        assert "Catalog overview" in home.text
        # The 800 generated (less the few archived) and the 162 of the old and new warehouses the demo adds for
        # "Migrate documentation".
        assert re.search(r"9[56]\d resources in 9 integrations", home.text)
        migrate = session.get(f"{base}/migrate/", timeout=10).text
        assert "Redshift (old warehouse)" in migrate and "BigQuery (new warehouse)" in migrate
        assert "Last synced" in home.text and "Next sync" in home.text
        assert "demo-token" not in home.text
        # Report links follow the demo's port, not the default 8000.
        reports = session.get(f"{base}/reports/", timeout=10)
        # The demo steward is a person of the demo workspace who owns assets, linked by e-mail.
        person = re.search(r"steward is (.+?) <(\S+@\S+)> in the demo workspace", text)
        assert person, text
        assert f"You are linked to <strong>{person.group(1)}</strong>" in reports.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', reports.text).group(1)
        session.post(f"{base}/reports/", timeout=10, headers={"Referer": f"{base}/reports/"}, data={
            "csrfmiddlewaretoken": token, "scope": "mine", "frequency": "daily", "hour": "8",
            "time_zone": "UTC", "email": person.group(2), "weekday": "0"})
        listing = session.get(f"{base}/reports/", timeout=10).text
        preview_id = re.search(r"/reports/(\d+)/preview", listing).group(1)
        preview = session.get(f"{base}/reports/{preview_id}/preview", timeout=10).text
        assert f"http://127.0.0.1:{web_port}/" in preview and "127.0.0.1:8000" not in preview
        assert "worst" in preview.lower() or "need the most work" in preview.lower(), "the owner's assets are listed"
        # "Send now" puts the e-mail in the demo's mailbox, where a person can read it.
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', listing).group(1)
        session.post(f"{base}/reports/{preview_id}/send-now", timeout=30, headers={"Referer": f"{base}/reports/"},
                     data={"csrfmiddlewaretoken": token})
        inbox = session.get(f"{base}/mailbox/", timeout=10).text
        assert person.group(2) in inbox and "Catalog Hygiene" in inbox
        assert f"{base}/mailbox/" in text, "the demo says where its mail goes"
        processes = children_of(demo.pid)
        assert len(processes) == 4, "emulator, worker, beat and web run as their own processes"
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise AssertionError("the demo did not stop within 40 s of Ctrl-C:\n" + "".join(output[-30:])) from None
    time.sleep(1)
    assert [pid for pid in processes if alive(pid)] == [], "every child process stops with the demo"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")
