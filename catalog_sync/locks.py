"""Leases in the database: a named lock (one holder at a time across every worker and host) and the
heartbeat that keeps a worker's leases alive while it lives, so a killed worker's work is picked up again
within a lease, not a fixed long timeout."""
import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from catalog_sync.models import Lease

logger = logging.getLogger(__name__)

SYNC_LOCK = "catalog-sync"  # held by the one sync that may write the mirror (all its slices included)

# Errors after which the database connection may be gone (a restart, pg_terminate_backend, a network cut):
# Django's, and psycopg's own for work done on its cursor directly (COPY), should one escape unwrapped.
try:
    import psycopg
except ImportError:  # SQLite only
    DATABASE_GONE = (OperationalError, InterfaceError)
else:
    DATABASE_GONE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


def connection_lost(exc):
    """Whether a DATABASE_GONE error means the connection itself went (SQLSTATE class 08, or the server ending
    it: 57P01–57P05, shutdown, crash, not accepting, database dropped, idle timeout), not an operation the
    database refused on a live one (a full disk, a statement timeout, a deadlock). PostgreSQL's errors raised
    without a code come from the client's side of a broken connection; SQLite has no connection to lose."""
    for error in (exc, exc.__cause__):
        state = getattr(error, "sqlstate", None)
        if state:
            return state.startswith("08") or state in ("57P01", "57P02", "57P03", "57P04", "57P05")
    return not type(exc.__cause__ or exc).__module__.startswith("sqlite3")


class LeaseLost(Exception):
    """Someone else took the lease (ours expired): stop before writing more."""


def new_holder():
    """The one name a worker holds leases under: host, process and a nonce (a process may hold several)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def take(queryset, free, holder, seconds, now=None, holder_field="holder", **also):
    """The conditional UPDATE every lease is taken with: the rows of `queryset` that are `free` get this
    holder (in `holder_field`) and a lease of `seconds` (and the `also` updates). Returns how many rows it
    took.

    Keep `queryset` and `free` to the rows' own columns: PostgreSQL re-checks those against a row another
    worker just took, so only one of them wins (a join would become `id IN (subquery)`, whose stale answer
    both would trust)."""
    now = now or timezone.now()
    return queryset.filter(free).update(**{holder_field: holder}, lease_until=now + timedelta(seconds=seconds),
                                        **also)


def prolong(queryset, holder, seconds):
    """Renew the lease on the rows of `queryset` this holder still has. Returns how many it renewed."""
    return queryset.filter(holder=holder).update(lease_until=timezone.now() + timedelta(seconds=seconds))


def acquire(name, holder, seconds):
    now = timezone.now()
    try:
        with transaction.atomic():
            Lease.objects.get_or_create(name=name, defaults={"lease_until": now - timedelta(seconds=1)})
    except IntegrityError:  # another process created it at the same moment
        pass
    free = Lease.lapsed(now) | Q(lease_until__isnull=True) | Q(holder=holder)  # a lock with no lease is free
    return take(Lease.objects.filter(name=name), free, holder, seconds, now=now, acquired_at=now) == 1


def renew(name, holder, seconds):
    if not extend(name, holder, seconds):
        raise LeaseLost(f"The {name} lock was taken over by another worker.")


def extend(name, holder, seconds):
    """Renew the lease if this holder still has it. Returns whether it did."""
    return bool(prolong(Lease.objects.filter(name=name), holder, seconds))


def release(name, holder):
    Lease.objects.filter(name=name, holder=holder).update(holder="", lease_until=timezone.now() - timedelta(seconds=1))


def current(name):
    """The live lease, or None."""
    return Lease.objects.filter(name=name, lease_until__gte=timezone.now()).exclude(holder="").first()


def recover_connection():
    """After a database error, drop a connection that no longer works so the next query opens a new one
    (Django would otherwise keep failing on the dead one until the task ends)."""
    if connection.in_atomic_block:
        return
    raw = connection.connection
    if raw is not None and (getattr(raw, "closed", False) or getattr(raw, "broken", False)):
        connection.close()  # psycopg knows it is gone, whether or not Django saw the error
        return
    try:
        connection.close_if_unusable_or_obsolete()
    except Exception:  # closing a broken connection may itself fail; it is gone either way
        connection.close()


def with_reconnect(function, attempts=3):
    """Run a step that may safely run again (a small write, or work that picks up from what the database
    holds): when the database connection drops under it, reconnect and run it again (the last error is
    raised)."""
    for attempt in range(attempts):
        try:
            return function()
        except DATABASE_GONE as exc:
            if attempt == attempts - 1 or connection.in_atomic_block:
                raise
            # A deadlock or a locked SQLite file may pass when tried again; a full disk is said as it is.
            what = "Lost the database connection" if connection_lost(exc) else "The database could not do it"
            logger.warning("%s (%s); reconnecting and trying again.", what, exc)
            connection.close()
            time.sleep(0.5 * (attempt + 1))  # a restarting server takes a moment


class Heartbeat:
    """Calls each renewal every `every` seconds from a background thread while the block runs.

    A killed worker stops beating, so its leases expire within one lease time. The thread has its own
    database connection; a renewal that fails is logged and tried again at the next beat. Inside a
    transaction (tests) another connection cannot see the rows, so the block's own renewals do the work.
    """

    def __init__(self, *renewals, every=None):
        from django.conf import settings

        self.renewals = renewals
        self.every = every or settings.HEARTBEAT_SECONDS
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if not connection.in_atomic_block:
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return False

    def _beat(self):
        try:
            while not self._stop.wait(self.every):
                for renewal in self.renewals:
                    try:
                        renewal()
                    except Exception as exc:
                        logger.warning("Heartbeat could not renew a lease (%s); trying again.", exc)
                        connection.close()
        finally:
            connection.close()
