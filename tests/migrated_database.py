"""Fresh PostgreSQL databases (the tests' own, and those of the tests that run the deployment's processes)
copied from a template migrated once (`CREATE DATABASE … TEMPLATE`). Migrating from nothing costs 3 s of
CPU and 10 s on a busy machine; a copy takes a tenth of a second. The template is named by a fingerprint of
what a migrate reads (every app's migrations and models, the settings the data migrations read), so a change
to them gets a new one, built by the first test that needs it; older ones are dropped then.

The template is migrated with `manage.py migrate`, then its periodic tasks are removed: they are made from
settings by a post_migrate handler, and every copy is migrated again by its test (nothing to apply, the
handler runs) with its own settings, so a copy holds what a migrate from nothing would have left."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("DEPLOY_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
TEMPLATE_PREFIX = "hygiene_template_"
LOCK_KEY = 7_410_563  # pg_advisory_lock: one process builds a template, nobody copies a half-built one
# What the post_migrate handler (hygiene.schedule.ensure_periodic_tasks) fills from settings.
PERIODIC_TASK_TABLES = ("django_celery_beat_periodictask", "django_celery_beat_periodictasks",
                        "django_celery_beat_intervalschedule", "django_celery_beat_crontabschedule",
                        "django_celery_beat_solarschedule", "django_celery_beat_clockedschedule")


def fingerprint():
    from django.apps import apps

    digest = hashlib.sha256()
    files = []
    for config in apps.get_app_configs():  # the migrations, and the models post_migrate reads (content types)
        base = Path(config.path)
        files += [(f"{config.label}/{path.relative_to(base)}", path)
                  for pattern in ("migrations/*.py", "models.py", "models/*.py") for path in base.glob(pattern)]
    files.append(("tests/migrated_database.py", Path(__file__)))
    for name, path in sorted(set(files)):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    # The rulebook's seed reads the health weights from the environment.
    digest.update(repr(sorted((k, v) for k, v in os.environ.items() if k.startswith("HEALTH_WEIGHT_"))).encode())
    return digest.hexdigest()[:16]


def server_of(url):
    """A database URL without its database: postgres://user@host:port."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def create_migrated_database(name, env, server=ADMIN_URL):
    """Create (or replace) database `name` on `server` as a copy of the migrated template, building the
    template first with `env` (production settings) if there is none for this code yet. Returns its URL."""
    template = TEMPLATE_PREFIX + fingerprint()
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone():
            build_template(conn, server, template, env)
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{server}/{name}"


def drop_database(name, server=ADMIN_URL):
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_template(conn, server, template, env):
    building = f"{template}_building"
    conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{building}"')
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**env, "DATABASE_URL": f"{server}/{building}"})
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(f"{server}/{building}", autocommit=True) as copy:
        copy.execute(f"TRUNCATE {', '.join(PERIODIC_TASK_TABLES)} RESTART IDENTITY CASCADE")
    stale = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                         [TEMPLATE_PREFIX.replace("_", r"\_") + "%", building]).fetchall()
    for (old,) in stale:
        conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
    conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
