"""Settings come from the environment and fail loudly on bad values."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hygiene import env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("helper, value, message", [
    (lambda: env.env_int("X_TEST", 5), "five", "X_TEST must be a whole number"),
    (lambda: env.env_int("X_TEST", 5, minimum=1), "0", "X_TEST must be at least 1"),
    (lambda: env.env_bool("X_TEST"), "maybe", "X_TEST must be true or false"),
    (lambda: env.env_url("X_TEST"), "api.secoda.co", "X_TEST must be a http or https URL"),
    (lambda: env.env_float("X_TEST", 1.0), "fast", "X_TEST must be a number"),
])
def test_bad_values_name_the_variable(monkeypatch, helper, value, message):
    monkeypatch.setenv("X_TEST", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        helper()


def test_good_values_are_typed(monkeypatch):
    monkeypatch.setenv("X_TEST", " 42 ")
    assert env.env_int("X_TEST", 1) == 42
    monkeypatch.setenv("X_TEST", "yes")
    assert env.env_bool("X_TEST") is True
    monkeypatch.setenv("X_TEST", "a, b,,c")
    assert env.env_list("X_TEST") == ["a", "b", "c"]
    monkeypatch.setenv("X_TEST", "https://eapi.secoda.co/api/v1/")
    assert env.env_url("X_TEST") == "https://eapi.secoda.co/api/v1"


def run_check(**overrides):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SECODA_", "SYNC_", "DATABASE_URL"))}
    environment.update(overrides)
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_a_typo_in_the_environment_stops_start_up():
    result = run_check(SYNC_INTERVAL_MINUTES="every hour")
    assert result.returncode != 0
    assert "SYNC_INTERVAL_MINUTES must be a whole number" in result.stderr


def test_a_bad_database_url_stops_start_up():
    result = run_check(DATABASE_URL="mysqlx://nowhere")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_defaults_start_with_sqlite_and_the_folder_broker(tmp_path):
    code = ("from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.SECODA_API_URL)")
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "REDIS_URL", "SECODA_API_URL")}
    environment.update(HYGIENE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="hygiene.settings")
    result = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "https://api.secoda.co/api/v1"]
