import gc
import json
import os
import pickle
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from catalog_sync.client import SecodaClient
from secoda_emulator.server import EmulatorServer
from secoda_emulator.workspace import Workspace
from hygiene.roles import ensure_roles

TOKEN = "test-secret-token-3f9a"

# The test processes collect garbage less often than Python's default (a young collection every 700 new
# objects, and every object the process holds looked at after about 100 of those): each test builds and drops
# thousands of model instances, querysets, template nodes and emulated records. Over one whole run the collector
# took 87 s of the four test processes' 655 s of CPU; with young collections every 50,000 objects, 17 s of 562 s.
# Garbage is still freed: reference counting frees almost all of it, and cycles go at their generation's next
# collection.
GC_THRESHOLDS = (50_000, 50, 100)
# What a test process holds for the whole run (Django, the project, the collected tests, the synced mirror's
# rows, caches) is moved out of the collector's sight after the first test and then every FREEZE_EVERY tests,
# once the garbage is collected: the older generations' collections then look only at what the last tests
# left, not at the hundreds of thousands of objects every test process keeps (11.6 s of the four processes'
# CPU went to collecting over one whole run, most of it looking at those).
# A frozen object is never collected, so what a class- or module-scoped fixture held (frozen with the rest while
# its tests ran) is thawed and collected once those tests are over.
FREEZE_EVERY = 20
_frozen = {"tests": 0, "wider_fixtures_held": False}


def pytest_configure(config):
    gc.set_threshold(*GC_THRESHOLDS)


def holds_wider_fixtures(item):
    """Whether the test uses a fixture of the suite's own kept for its class or module (torn down when those
    tests are over: `big` in test_emulator, `cluster` in test_recovery)."""
    return any(defs[-1].scope in ("class", "module", "package") and defs[-1].baseid.startswith("tests")
               for defs in item._fixtureinfo.name2fixturedefs.values() if defs)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield
    # After the whole protocol: the test's own fixtures are torn down and its arguments dropped.
    _frozen["tests"] += 1
    _frozen["wider_fixtures_held"] = _frozen["wider_fixtures_held"] or holds_wider_fixtures(item)
    if _frozen["wider_fixtures_held"] and nextitem is not None and nextitem.parent is not item.parent:
        _frozen["wider_fixtures_held"] = False
        gc.unfreeze()
    elif _frozen["tests"] % FREEZE_EVERY != 1:
        return
    gc.collect()
    gc.freeze()


# Every test's emulated workspace is generated for the same moment, so it is the same workspace whichever
# test builds it, and the mirror synced from it once per process (`mirror_dump`) matches it exactly.
SESSION_NOW = datetime.now(timezone.utc)
GENERATE = Workspace.generate.__func__  # the emulator's own (`workspaces_generated_once` wraps it)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database per pytest process, so two runs on one machine never drop each other's
    (`TEST_DATABASE_PREFIX` names them, for a machine where each person keeps to a prefix of their own)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        return  # SQLite's test database lives in memory; a name would leave a file in the working directory
    prefix = os.environ.get("TEST_DATABASE_PREFIX", "test_hygiene")
    database.setdefault("TEST", {})["NAME"] = f"{prefix}_{os.getpid()}"


@pytest.fixture(scope="session")
def django_db_keepdb(request, django_db_modify_db_settings):
    """The test database starts as a copy of the migrated template (tests/migrated_database.py): Django
    finds it there, migrates it (nothing to apply; post_migrate runs) and keeps it, and it is dropped
    here at the end. Migrating from nothing in each of four test processes cost 3 s of CPU apiece."""
    from django.conf import settings
    from django.db import connections

    from tests.migrated_database import create_migrated_database, drop_database, server_of
    from tests.test_deployment import production_env

    database = settings.DATABASES["default"]
    if request.config.getvalue("reuse_db") or request.config.getvalue("create_db") or \
            database["ENGINE"] != "django.db.backends.postgresql":
        yield request.config.getvalue("reuse_db")  # pytest-django's own behaviour
        return
    name, server = database["TEST"]["NAME"], server_of(settings.DATABASE_URL)
    data_dir = request.getfixturevalue("tmp_path_factory").mktemp("template")
    create_migrated_database(name, production_env(REDIS_URL=settings.REDIS_URL or "", HYGIENE_DATA_DIR=str(data_dir)),
                             server)
    yield True
    connections.close_all()
    drop_database(name, server)


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing():
    """Test users' passwords are hashed with a fast hasher: PBKDF2's million rounds cost half a second of
    CPU for each user a test creates or signs in, minutes over the suite. Production keeps PBKDF2 (the
    demo, deployment and recovery tests run the real settings in their own processes)."""
    from django.conf import settings

    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 *[h for h in settings.PASSWORD_HASHERS if "MD5" not in h]]
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()
    yield


@pytest.fixture(scope="session", autouse=True)
def workspaces_generated_once():
    """A workspace generated for a given moment (`now`) is the same every time, and the tests ask for some
    hundreds of times (each `emulator` is the 600-resource one): from the second time a test process asks for
    one, it gets a copy of a pickle kept from then on (unpickling costs a third of generating). Generated
    without a moment, a workspace is made afresh for the current one. `generate_afresh` turns this off for a
    test."""
    asked, made = set(), {}

    def generate_or_copy(cls, resources, seed=1, now=None, migration_pair=False, dbt_models=0.0):
        key = (resources, seed, now, migration_pair, dbt_models)
        if now is None or cls is not Workspace or key not in asked:
            asked.add(key)
            return GENERATE(cls, *key)
        if key not in made:
            made[key] = pickle.dumps(GENERATE(cls, *key), protocol=pickle.HIGHEST_PROTOCOL)
        return pickle.loads(made[key])

    Workspace.generate = classmethod(generate_or_copy)
    yield
    Workspace.generate = classmethod(GENERATE)


@pytest.fixture
def generate_afresh(workspaces_generated_once, monkeypatch):
    """Workspace.generate as the emulator has it, for the tests of generating itself."""
    monkeypatch.setattr(Workspace, "generate", classmethod(GENERATE))


@pytest.fixture(scope="session", autouse=True)
def static_files_listed_once():
    """WhiteNoise lists every static file (the project's, the admin's, the tables') each time its middleware is
    made, and Django's test client makes the middleware anew for every test: 8 ms each, 3.5 s of CPU over
    the suite. The files do not change during a run, so the list is made once for each set of the settings
    it is made from and reused."""
    from django.conf import settings as django_settings
    from whitenoise.middleware import WhiteNoiseMiddleware

    made = {}
    init = WhiteNoiseMiddleware.__init__

    def __init__(self, get_response=None, settings=django_settings):
        if getattr(settings, "WHITENOISE_AUTOREFRESH", settings.DEBUG):  # files looked up as asked for
            return init(self, get_response, settings=settings)
        names = ["DEBUG", "STATIC_ROOT", "STATIC_URL", "FORCE_SCRIPT_NAME", "STORAGES", "STATICFILES_DIRS",
                 "STATICFILES_FINDERS", "INSTALLED_APPS",
                 *sorted(name for name in dir(settings) if name.startswith("WHITENOISE_"))]
        key = repr([(name, getattr(settings, name, None)) for name in names])
        if key not in made:
            init(self, get_response, settings=settings)
            made[key] = dict(self.files)
            return
        self.add_files = self.add_files_from_finders = lambda *a, **k: None
        try:
            init(self, get_response, settings=settings)
        finally:
            del self.add_files, self.add_files_from_finders
        self.files.update(made[key])

    WhiteNoiseMiddleware.__init__ = __init__
    yield
    WhiteNoiseMiddleware.__init__ = init


@pytest.fixture(scope="session", autouse=True)
def flush_by_deleting():
    """A transactional test's database is emptied with DELETE, not Django's TRUNCATE: TRUNCATE makes new files
    for every table and index, most of them empty or nearly, and took up to 0.9 s of the server's time per test
    with four test processes. The foreign keys are deferred, so the order does not matter; the
    bloat the deleted rows leave is vacuumed after the test like any other (`pytest_runtest_teardown`)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED; " + " ".join(f"DELETE FROM {self.quote_name(t)};" for t in tables)]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


@pytest.fixture(autouse=True)
def forget_rules():
    """The rules in force are cached per thread (per request in the product): a rolled-back test's rules must
    not linger into the next test."""
    from hygiene.rulebook import registry

    registry.forget()
    yield
    registry.forget()


@pytest.fixture(autouse=True)
def fresh_shared_limits():
    """Each test starts with an empty shared request budget and write window (they live in Redis)."""
    from django.conf import settings

    if settings.REDIS_URL:
        import redis

        from catalog_sync.ratelimit import KEY_PREFIX

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            keys = list(client.scan_iter(f"{KEY_PREFIX}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    yield


BLOATED_PAGES = 128  # 1 MB: a few tests' worth of a 600-resource mirror rolled back
TABLE_SIZES = ("SELECT c.oid::regclass::text, pg_relation_size(c.oid) FROM pg_class c "
               "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace")
# Per database and table, the size a table has as its tests find it: nothing in the empty test database, the
# synced 600 resources in the mirror's (`mirror_dump`).
_CLEAN_SIZE = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Once a test's transaction is rolled back (its fixtures are torn down), vacuum the tables its rows were
    left dead in. A rolled-back row stays in the table until a vacuum, and the test server runs without
    autovacuum: every test syncing or copying the mirror added its 600 resources, references and intervals to
    every later test's scans (the resource table reached 4,000 pages for 600 rows after 60 tests, counts and
    scores slowing to tenths of a second). Vacuumed, each test's tables are as small as in a fresh database."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql" or connection.connection is None or connection.in_atomic_block:
        return
    from pytest_django.plugin import blocking_manager_key

    database = connection.settings_dict["NAME"]
    with item.config.stash[blocking_manager_key].unblock(), connection.cursor() as cursor:
        cursor.execute(TABLE_SIZES)
        bloated = [name for name, size in cursor.fetchall()
                   if size > _CLEAN_SIZE.get((database, name), 0) + BLOATED_PAGES * 8192]
        if bloated:
            cursor.execute(f"VACUUM {', '.join(bloated)}")


def fast_client(server, **overrides):
    """A client for the emulator that backs off in milliseconds, not seconds."""
    options = dict(timeout=10, max_retries=8, backoff=0.01, max_backoff=0.05, writes_per_minute=1000)
    options.update(overrides)
    return SecodaClient(server.base_url, TOKEN, **options)


@pytest.fixture(scope="session")
def small_workspace_spec():
    return {"resources": 600, "seed": 3}


@pytest.fixture
def emulator():
    """A fresh emulated workspace (600 resources) served over real HTTP."""
    server = EmulatorServer(Workspace.generate(resources=600, seed=3, now=SESSION_NOW), token=TOKEN, port=0).start()
    yield server
    server.stop()


def mirror_tables():
    """The tables a first sync fills, in an order their foreign keys accept."""
    from catalog_sync.models import (DbtTestStatus, Integration, Lease, Resource, ResourceChange, ResourceRef,
                                     SecodaGroup, SecodaUser, SyncRun, SyncSlice, Tag, Team)
    from hygiene.dashboard.models import Snapshot
    from hygiene.lifecycle.models import IssueInterval
    from hygiene.suggestions.models import Suggestion

    models = (Integration, SecodaUser, SecodaGroup, Team, Tag, SyncRun, SyncSlice, Resource, ResourceRef,
              ResourceChange, DbtTestStatus, Lease, Snapshot, IssueInterval, Suggestion)
    return [(model._meta.db_table, model._meta.pk.get_internal_type() in ("AutoField", "BigAutoField"))
            for model in models]


def copy_mirror_in(cursor, dump):
    """Fill the (empty) mirror tables from a dump's rows (`mirror_dump`'s, `first_sync`'s), with their ids."""
    for table, serial in mirror_tables():
        if dump[table]:
            with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(dump[table])
        if serial:  # rows copied with their ids: new ones come after them
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(MAX(id), 1)) "
                           f"FROM {table}")


def dump_mirror(cursor):
    """The mirror tables' rows as COPY text, as `copy_mirror_in` takes them."""
    dump = {}
    for table, _ in mirror_tables():
        with cursor.copy(f"COPY {table} TO STDOUT") as copy:
            dump[table] = b"".join(bytes(chunk) for chunk in copy)
    return dump


def create_mirror_database(admin, plain, mirror, dump):
    """Database `mirror`: a copy of the (empty) test database `plain` with `dump` loaded, committed and
    analysed; its tables' sizes are what the vacuum after each test compares with."""
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{mirror}" WITH (FORCE)')
        # Connections a live server's threads left (idle, their tests are over) would refuse the copy.
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [plain])
        for attempt in range(50):
            try:
                conn.execute(f'CREATE DATABASE "{mirror}" TEMPLATE "{plain}"')
                break
            except psycopg.errors.ObjectInUse:  # a terminated backend has not quite gone yet
                if attempt == 49:
                    raise
                time.sleep(0.1)
    with psycopg.connect(f"{admin}/{mirror}", autocommit=True) as conn:
        with conn.transaction(), conn.cursor() as cursor:
            copy_mirror_in(cursor, dump)
        conn.execute("VACUUM ANALYZE")
        for table, size in conn.execute(TABLE_SIZES):
            _CLEAN_SIZE[(mirror, table)] = size


# Each test process's two databases: the empty one every test starts from, and a copy of it holding the synced
# 600-resource mirror, which the tests that ask for that mirror (and roll back) run in (`pytest_runtest_setup`).
_DATABASES = {}


@pytest.fixture(scope="session")
def mirror_dump(django_db_setup, django_db_blocker):
    """The 600-resource workspace synced once per test process, its rows kept as COPY text; the tables
    are emptied again, so every test still starts from an empty mirror unless it asks for this one.

    The rows are also loaded, committed, into a copy of the test database: a test that asks for the mirror and
    rolls back runs there, with nothing to copy (copying the rows in, and vacuuming them out afterwards, cost
    the server a fifth of a second per test). Transactional tests, which empty the database they ran in, copy
    the rows into the empty database instead."""
    from django.conf import settings

    from catalog_sync.sync import run_sync
    from tests.migrated_database import drop_database, server_of

    with django_db_blocker.unblock():
        server = EmulatorServer(Workspace.generate(resources=600, seed=3, now=SESSION_NOW), token=TOKEN,
                                port=0).start()
        try:
            run = run_sync(client=fast_client(server))
            assert run.status == "succeeded", run.error
            with connection.cursor() as cursor:
                dump = dump_mirror(cursor.cursor)
        finally:
            server.stop()
            with connection.cursor() as cursor:  # committed, outside any test: emptied whatever happened
                cursor.execute(f"TRUNCATE {', '.join(table for table, _ in mirror_tables())} CASCADE")

        plain = connection.settings_dict["NAME"]
        mirror, admin = f"{plain}_mirror", server_of(settings.DATABASE_URL)
        connection.close()  # a database is copied with nobody connected to it
        create_mirror_database(admin, plain, mirror, dump)
        _DATABASES.update(plain=plain, mirror=mirror)
    yield dump
    connection.close()
    connection.settings_dict["NAME"] = plain
    _DATABASES.clear()
    drop_database(mirror, admin)


def runs_in_the_mirror(item):
    """Whether a test asks for the synced mirror and rolls back (is not transactional)."""
    if "synced_mirror" not in item.fixturenames:
        return False
    marker = item.get_closest_marker("django_db")
    transactional = marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    return not (transactional or {"transactional_db", "live_server"} & set(item.fixturenames))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Point the test process's connection at the database the test runs in (see `mirror_dump`)."""
    if not _DATABASES:
        return
    want = _DATABASES["mirror"] if runs_in_the_mirror(item) else _DATABASES["plain"]
    if connection.settings_dict["NAME"] != want:
        connection.close()
        connection.settings_dict["NAME"] = want


@pytest.fixture
def synced_mirror(mirror_dump, emulator):
    """The mirror as a first full sync of `emulator` leaves it (already there, or copied in: not synced again,
    a sync costs a third of a second). Returns that sync's run."""
    from catalog_sync.models import SyncRun

    if connection.settings_dict["NAME"] != _DATABASES["mirror"]:
        with connection.cursor() as cursor:
            copy_mirror_in(cursor.cursor, mirror_dump)
    return SyncRun.objects.order_by("-pk").first()


_FIRST_SYNCS = {}


def first_sync(server, key):
    """Fill the empty mirror as a first full sync of `server`'s workspace leaves it, and return that run. `key` (a
    dict) names the workspace by what generated it: the first time a test process asks for it, it is synced for
    real and the rows it left are kept as COPY text (as `mirror_dump` keeps the 600-resource one); from then on
    they are copied in. That holds while what decides the result is the same each time: a server untouched since
    its workspace was generated for one moment, the default client, the same settings (a key names any that differ
    from the defaults, a listing cap say), and an empty mirror (checked)."""
    from catalog_sync.models import SyncRun
    from catalog_sync.sync import run_sync

    assert not SyncRun.objects.exists(), "first_sync fills an empty mirror"
    key = tuple(sorted(key.items()))
    with connection.cursor() as cursor:
        if key in _FIRST_SYNCS:
            copy_mirror_in(cursor.cursor, _FIRST_SYNCS[key])
            return SyncRun.objects.order_by("-pk").first()
        run = run_sync(client=fast_client(server))
        if run.status == SyncRun.SUCCEEDED:
            _FIRST_SYNCS[key] = dump_mirror(cursor.cursor)
        return run


@pytest.fixture
def emulator_settings(settings, emulator):
    settings.SECODA_API_URL = emulator.base_url
    settings.SECODA_API_TOKEN = TOKEN
    settings.SECODA_BACKOFF_SECONDS = 0.01
    settings.SECODA_MAX_BACKOFF_SECONDS = 0.05
    return settings


@pytest.fixture
def steward(db):
    stewards, _ = ensure_roles()
    user = get_user_model().objects.create_user("stella", password="pw-steward-1", first_name="Stella")
    user.groups.add(stewards)
    return user


@pytest.fixture
def viewer(db):
    _, viewers = ensure_roles()
    user = get_user_model().objects.create_user("victor", password="pw-viewer-1", first_name="Victor")
    user.groups.add(viewers)
    return user


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("olive", password="pw-outsider-1")


@pytest.fixture
def capped_server(settings):
    """Start an emulator whose listing cap (and the client's) is `cap`: the splitting a 10,000 cap needs at
    26,000 resources, at a tenth of the size and time."""
    servers = []

    def start(workspace, cap=1_000):
        from secoda_emulator.server import Faults

        settings.SECODA_LISTING_CAP = cap
        server = EmulatorServer(workspace, token=TOKEN, port=0, faults=Faults(listing_cap=cap)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def chromium():
    """One headless chromium (Debian's) for each test process; every test opens its own context, with its
    own cookies. Here, not in browser_helpers: a session fixture imported into several modules would be
    one per module."""
    from playwright.sync_api import sync_playwright

    from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, SHOTS

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


# The parallel workers take whole files (`bin/test`: --dist loadfile), the costliest first, so no worker is left
# finishing a long one alone while the others sit idle at the end of the run. A file's cost is its wall time in
# the last one-process run of the suite's benchmark (bench/results/suite-one-process.json, kept in the
# repository); a file it does not know goes after the known ones. Within each file, and among unknown files, the
# tests that take longest on their own (browsers, worker processes, syncs of thousands of resources) go first.
# The order of the others is kept.
LONG_FIRST = ("browser", "slow")
RECORDED_RUN = Path(__file__).resolve().parent.parent / "bench" / "results" / "suite-one-process.json"


def recorded_file_seconds():
    """Each test file's wall seconds in the recorded one-process run ({} if there is none to read)."""
    try:
        return {row["file"]: float(row["wall"]) for row in json.loads(RECORDED_RUN.read_text())["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: unknown to a run without it (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """With --dist loadfile, the files that wait on processes they start go to a process of their own
    (tests/xdist_schedule.py)."""
    if config.getvalue("dist") == "loadfile":
        from tests.xdist_schedule import WaitingFilesApart

        return WaitingFilesApart(config, log)
    return None


def pytest_collection_modifyitems(config, items):
    seconds = recorded_file_seconds()
    items.sort(key=lambda item: (-seconds.get(item.nodeid.split("::")[0], 0.0),
                                 not any(item.get_closest_marker(name) for name in LONG_FIRST)))
