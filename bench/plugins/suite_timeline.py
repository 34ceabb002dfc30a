"""A pytest plugin for bench/suite.py: one line of JSON per test, in each test process, with when it ran and the
CPU its process used meanwhile (its own threads: the test, the emulator's and live server's threads; and the
child processes it waited for), and the whole machine's busy CPU meanwhile: with one test process (`-n 0`) that
is everything the test made the machine do, PostgreSQL's work and chromium's included. Loaded with
`-p suite_timeline`, writing to the folder in SUITE_TIMELINE_DIR."""
import json
import os
import resource
import time

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


def _machine_busy():
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def pytest_runtest_logstart(nodeid, location):
    if not timed_here():
        return
    _started[nodeid] = (time.time(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), _machine_busy())


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
                           "machine_busy": _machine_busy() - machine}) + "\n")
    _out.flush()
