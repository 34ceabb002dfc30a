"""The real deployment's parts, run here the way docker-compose runs them: gunicorn, a Celery worker
and beat against PostgreSQL and Redis, syncing from the emulator and sending a due report by SMTP."""
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests
from aiosmtpd.controller import Controller

from secoda_emulator.server import EmulatorServer
from secoda_emulator.workspace import Workspace
from tests.migrated_database import ADMIN_URL, ROOT, create_migrated_database


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECODA_", "EMAIL_", "SYNC_"))}
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_COOKIES="true", DJANGO_SECURE_SSL_REDIRECT="true", DJANGO_HSTS_SECONDS="31536000",
        DJANGO_BEHIND_PROXY="true", PYTHONUNBUFFERED="1", LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def test_check_deploy_passes_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
        env=production_env(DATABASE_URL=f"{ADMIN_URL}/test", REDIS_URL="redis://127.0.0.1:6379/13"),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def fresh_database(tmp_path):
    """A new database as `migrate` leaves it (copied from the migrated template; the test migrates it again)."""
    name = f"hygiene_deploy_{os.getpid()}"
    yield create_migrated_database(name, production_env(REDIS_URL="redis://127.0.0.1:6379/13",
                                                        HYGIENE_DATA_DIR=str(tmp_path / "template")))
    with psycopg.connect(f"{ADMIN_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env, *args):
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_gunicorn_worker_and_beat_sync_on_schedule_and_send_a_due_report(fresh_database, tmp_path):
    emulator = EmulatorServer(Workspace.generate(resources=800, seed=4), token="deploy-token", port=0).start()
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    web_port = free_port()
    env = production_env(
        DATABASE_URL=fresh_database, REDIS_URL="redis://127.0.0.1:6379/13",
        SECODA_API_URL=emulator.base_url, SECODA_API_TOKEN="deploy-token",
        SYNC_INTERVAL_MINUTES="1", REPORT_SEND_EVERY_MINUTES="1", SITE_URL=f"http://127.0.0.1:{web_port}",
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_port), HYGIENE_DATA_DIR=str(tmp_path),
        DJANGO_SECURE_SSL_REDIRECT="false",  # no TLS proxy in front of gunicorn here
        STATIC_MANIFEST="1", STATIC_ROOT=str(tmp_path / "static"),  # as the image builds it
    )
    subprocess.run(["redis-cli", "-n", "13", "FLUSHDB"], capture_output=True)
    processes = []
    try:
        # Static files need no database: collected while the database is migrated and set up.
        collectstatic = subprocess.Popen([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT,
                                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                         start_new_session=True)
        processes.append(collectstatic)
        manage(env, "migrate", "--noinput")
        manage(env, "shell", "-c", (
            "from django.contrib.auth import get_user_model; from django.utils import timezone; "
            "from hygiene.reports.models import Subscription; "
            "u = get_user_model().objects.create_user('ops', 'ops@example.com', 'pw'); "
            "Subscription.objects.create(user=u, email='data-team@example.com', frequency='daily', hour=8, "
            "time_zone='UTC', next_due_at=timezone.now()); "
            # As if beat had last run these a minute ago: they are due as soon as it starts.
            "from django_celery_beat.models import PeriodicTask; from datetime import timedelta; "
            "PeriodicTask.objects.filter(interval__isnull=False).update("
            "last_run_at=timezone.now() - timedelta(minutes=2))"))
        collected = collectstatic.communicate(timeout=300)[0]
        assert collectstatic.returncode == 0, collected
        logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("web", "worker", "beat")}
        commands = {
            "web": ["gunicorn", "hygiene.wsgi:application", "--bind", f"127.0.0.1:{web_port}", "--workers", "2"],
            "worker": [sys.executable, "-m", "celery", "-A", "hygiene", "worker", "--loglevel", "INFO",
                       "--concurrency", "2"],
            "beat": [sys.executable, "-m", "celery", "-A", "hygiene", "beat", "--loglevel", "INFO",
                     "--schedule", str(tmp_path / "beat-schedule")],
        }
        bin_dir = Path(sys.executable).parent
        for name, command in commands.items():
            if command[0] == "gunicorn":
                command[0] = str(bin_dir / "gunicorn")
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=logs[name],
                                              stderr=subprocess.STDOUT, start_new_session=True))

        deadline = time.monotonic() + 150
        health = synced = None
        with psycopg.connect(fresh_database, autocommit=True) as database:
            while time.monotonic() < deadline:
                try:
                    health = requests.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).json()
                except requests.RequestException:
                    pass
                synced = str(database.execute("SELECT count(*) FROM catalog_sync_syncrun "
                                              "WHERE trigger = 'schedule' AND status = 'succeeded'").fetchone()[0])
                if health and synced != "0" and mailbox.messages:
                    break
                time.sleep(0.5)
        report = (tmp_path / "worker.log").read_text()[-3000:]
        assert health == {"status": "ok"}, report
        assert synced not in (None, "0"), "the periodic sync did not run:\n" + report
        assert mailbox.messages, "the due report was not sent:\n" + report
        assert mailbox.messages[0].rcpt_tos == ["data-team@example.com"]
        assert b"Catalog hygiene for the whole workspace" in mailbox.messages[0].content
        login = requests.get(f"http://127.0.0.1:{web_port}/", timeout=5, allow_redirects=False)
        assert login.status_code == 302 and "/accounts/login/" in login.headers["Location"]
        # Static files: hashed names, cached for a year, compressed.
        sign_in = requests.get(f"http://127.0.0.1:{web_port}/accounts/login/", timeout=5).text
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', sign_in)
        assert stylesheet, sign_in[:2000]
        css = requests.get(f"http://127.0.0.1:{web_port}{stylesheet.group(1)}", timeout=5,
                           headers={"Accept-Encoding": "gzip"})
        assert css.status_code == 200 and css.headers.get("Content-Encoding") == "gzip"
        assert "immutable" in css.headers["Cache-Control"] and "max-age=315360000" in css.headers["Cache-Control"]
        assert "deploy-token" not in (tmp_path / "worker.log").read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        smtp.stop()
        emulator.stop()


def test_the_image_installs_what_production_runs_and_no_test_tool():
    runtime = (ROOT / "requirements.txt").read_text().lower()
    for tool in ("pytest", "playwright", "responses", "freezegun", "aiosmtpd"):
        assert tool not in runtime, f"{tool} belongs in requirements-dev.txt"
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "requirements-dev" not in dockerfile
