"""Run work in threads that start at the same moment, like two Celery workers racing."""
import threading


def race(*work, timeout=60):
    """Call each function in its own thread, released together. Returns their results in order;
    an exception a function raised is returned in its place. Each thread closes its DB connection."""
    from django.db import connection

    barrier = threading.Barrier(len(work))
    results = [None] * len(work)

    def run(index, function):
        barrier.wait()
        try:
            results[index] = function()
        except Exception as exc:  # the caller asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a racing thread did not finish"
    return results


def finished_run(trigger, timeout=90):
    """The first run with this trigger that is no longer running, waiting up to `timeout` seconds
    (for syncs a Celery worker runs in the background), and for the snapshot the worker takes after a run that
    mirrored something: a test that stopped its worker before that would have it cut off mid-snapshot, its
    locks held against the test's database flush. None if none finished in time."""
    import time

    from catalog_sync.models import SyncRun
    from hygiene.dashboard.models import Snapshot

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SyncRun.objects.filter(trigger=trigger).exclude(status=SyncRun.RUNNING).first()
        if run:
            while run.status in (SyncRun.SUCCEEDED, SyncRun.INCOMPLETE) and time.monotonic() < deadline and \
                    not Snapshot.objects.filter(sync_run=run).exists():
                time.sleep(0.1)
            return run
        time.sleep(0.3)
    return None
