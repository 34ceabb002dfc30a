"""Loaded as a plugin (`-p tests.xdist_env`) before Django reads its settings: each pytest-xdist worker
gets a Redis database of its own, so the Celery workers tests start in-process never take another test
process's tasks, and the shared rate limits of one never slow another."""
import os

_DATABASES = (15, 14, 12, 11, 10, 9, 8, 7)  # 13 is the deployment test's

worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if worker.startswith("gw") and os.environ.get("REDIS_URL", "").startswith("redis://"):
    base, _, _db = os.environ["REDIS_URL"].rpartition("/")
    os.environ["REDIS_URL"] = f"{base}/{_DATABASES[int(worker[2:]) % len(_DATABASES)]}"
