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
    (for syncs a Celery worker runs in the background). None if none finished in time."""
    import time

    from catalog_sync.models import SyncRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SyncRun.objects.filter(trigger=trigger).exclude(status=SyncRun.RUNNING).first()
        if run:
            return run
        time.sleep(0.3)
    return None
