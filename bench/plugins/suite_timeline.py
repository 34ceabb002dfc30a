"""A pytest plugin for bench/suite.py: one line of JSON per test, in each test process, with when it ran and the
CPU its process used meanwhile (its own threads: the test, the emulator's and live server's threads; and the
child processes it waited for), and the whole machine's busy CPU meanwhile: with one test process (`-n 0`) that
is everything the test made the machine do, PostgreSQL's work and chromium's included. Loaded with
`-p suite_timeline`, writing to the folder in SUITE_TIMELINE_DIR."""
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # bench/, last: its scripts shadow no package
from _common import machine_busy_idle  # noqa: E402

_out = None
_started = {}
_config = None


def pytest_configure(config):
    global _config
    _config = config


def timed_here():
    """Tests are timed where they run: in each worker, not in xdist's controller, which hears of them too."""
    return _config is None or not _config.pluginmanager.has_plugin("dsession")


def _cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def pytest_runtest_logstart(nodeid, location):
    if not timed_here():
        return
    _started[nodeid] = (time.time(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN),
                        machine_busy_idle()[0])


def pytest_runtest_logfinish(nodeid, location):
    global _out
    folder = os.environ.get("SUITE_TIMELINE_DIR")
    if not folder or nodeid not in _started:
        return
    if _out is None:
        _out = open(os.path.join(folder, f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl"), "a")
    start, own, children, machine = _started.pop(nodeid)
    _out.write(json.dumps({"test": nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "start": start,
                           "end": time.time(), "cpu": _cpu(resource.RUSAGE_SELF) - own,
                           "children_cpu": _cpu(resource.RUSAGE_CHILDREN) - children,
                           "machine_busy": machine_busy_idle()[0] - machine}) + "\n")
    _out.flush()
