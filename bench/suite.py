"""The test suite's own benchmark: where a whole run's time and CPU go.

Runs the README's test command (`bin/test`, with the pytest arguments given) and reports:

- its wall time, and the machine's CPU busy and idle meanwhile (`/proc/stat`): a run whose cores are busy
  throughout is limited by the CPU, and only less work makes it faster;
- PostgreSQL's CPU (the server's processes, read from `/proc`: a local server this user may read);
- each test's wall time and the CPU of the test process that ran it (a plugin, `bench/plugins/suite_timeline.py`):
  per file and the costliest tests. A process's first test also carries its set-up (its databases, the synced
  mirror, chromium);
- with one test process (`-n 0`), the machine's busy CPU during each test as well: everything the test made the
  machine do (PostgreSQL's work, chromium's, the processes it started), so per file and test it says where the
  whole run's CPU goes, not only the test processes' share. (With several processes the machine's CPU is
  theirs together, and is not told apart.)

    .venv/bin/python bench/suite.py                                  # the whole suite
    .venv/bin/python bench/suite.py -m "not slow and not browser"    # the quick tests
    .venv/bin/python bench/suite.py -n 0                             # one process: the machine's CPU per test

Writes bench/results/suite.json (suite-one-process.json with `-n 0` alone, suite-subset.json with other
arguments; a failed run's whole pytest output in a suite-failed-*.log of the temporary directory).
"""
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine_cpu


def file_of(row):
    """The test file a timed test is in ("tests/test_sync.py")."""
    return row["test"].split("::")[0]


def workers_timeline(rows):
    """Each test process's files in the order it ran them, with the seconds (from the first test's start) at
    which it finished each: a run whose processes end far apart was badly packed."""
    if not rows:
        return {}
    origin = min(row["start"] for row in rows)
    timeline = {}
    for row in sorted(rows, key=lambda r: r["start"]):
        files = timeline.setdefault(row["worker"], [])
        if not files or files[-1]["file"] != file_of(row):
            files.append({"file": file_of(row), "ended": 0.0})
        files[-1]["ended"] = round(max(files[-1]["ended"], row["end"] - origin), 1)
    return dict(sorted(timeline.items()))


def summarise(rows, top=15):
    serial = bool(rows) and all(row["worker"] == "main" for row in rows)  # no xdist workers: one process
    by_file = collections.defaultdict(
        lambda: {"tests": 0, "wall": 0.0, "cpu": 0.0, **({"machine": 0.0} if serial else {})})
    for row in rows:
        entry = by_file[file_of(row)]
        entry["tests"] += 1
        entry["wall"] += row["end"] - row["start"]
        entry["cpu"] += row["cpu"] + row["children_cpu"]
        if serial:
            entry["machine"] += row["machine_busy"]
    order = (lambda item: -item[1]["machine"]) if serial else (lambda item: -item[1]["wall"])
    files = sorted(by_file.items(), key=order)
    tests = sorted(rows, key=(lambda row: -row["machine_busy"]) if serial else (lambda row: row["start"] - row["end"]))
    return files, tests[:top], serial


def main(arguments):
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "SUITE_TIMELINE_DIR": folder,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench" / "plugins"),
                                                           os.environ.get("PYTHONPATH")]))}
        before = machine_cpu()
        started = time.monotonic()
        result = subprocess.run([str(ROOT / "bin" / "test"), "-q", "-p", "suite_timeline", *arguments], cwd=ROOT,
                                env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        after = machine_cpu()
        rows = [json.loads(line) for path in Path(folder).glob("*.jsonl") for line in path.read_text().splitlines()]
    summary_line = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    files, tests, serial = summarise(rows)
    cores = os.cpu_count()
    busy, idle = (after[key] - before[key] for key in ("machine_busy", "machine_idle"))
    postgres = None if None in (before["postgres"], after["postgres"]) else \
        round(after["postgres"] - before["postgres"], 1)
    report = {
        "arguments": arguments, "exit_code": result.returncode, "pytest": summary_line, "wall_seconds": round(wall, 1),
        "cores": cores, "machine_busy_seconds": round(busy, 1), "machine_idle_seconds": round(idle, 1),
        "postgres_cpu_seconds": postgres,
        "test_processes_cpu_seconds": round(sum(row["cpu"] for row in rows), 1),
        "their_children_cpu_seconds": round(sum(row["children_cpu"] for row in rows), 1),
        "tests_timed": len(rows),
        "workers": workers_timeline(rows),
        "files": [{"file": name, **{k: round(v, 1) if isinstance(v, float) else v for k, v in entry.items()}}
                  for name, entry in files],
        "slowest": [{"test": row["test"], "wall": round(row["end"] - row["start"], 2), "cpu": round(row["cpu"], 2),
                     **({"machine": round(row["machine_busy"], 2)} if serial else {})} for row in tests],
    }
    print(f"{summary_line}  (exit {result.returncode})")
    print(f"wall {wall:.0f} s; the machine's {cores} cores busy {busy:.0f} s, idle {idle:.0f} s "
          f"({100 * busy / max(busy + idle, 1e-9):.0f} % busy)")
    print(f"PostgreSQL {report['postgres_cpu_seconds']} s of CPU; the test processes {report['test_processes_cpu_seconds']} s "
          f"(and {report['their_children_cpu_seconds']} s in child processes they waited for)")
    if serial:
        print(f"one test process: the machine was busy {sum(e['machine'] for _, e in files):.0f} s during the tests "
              "(PostgreSQL, chromium and the processes tests started included)")
    print("\nfile                                          tests   wall s (summed over workers)   CPU s (test processes and the children they waited for)"
          + ("   machine CPU s" if serial else ""))
    for name, entry in files[:15]:
        print(f"{name:45} {entry['tests']:5} {entry['wall']:10.1f} {entry['cpu']:26.1f}"
              + (f" {entry['machine']:16.1f}" if serial else ""))
    if len(report["workers"]) > 1:
        print("\ntest processes: the files each ran, and when each ended (s from the first test's start)")
        for worker, ran in report["workers"].items():
            print(f"{worker:5} ended {ran[-1]['ended']:6.1f}: "
                  + ", ".join(f"{f['file'].removeprefix('tests/').removesuffix('.py')} {f['ended']:.0f}" for f in ran))
    print("\ncostliest tests (wall s, test-process CPU s" + (", machine CPU s)" if serial else ")"))
    for row in report["slowest"]:
        print(f"{row['wall']:7.1f} {row['cpu']:6.1f}" + (f" {row['machine']:6.1f}" if serial else "") + f"  {row['test']}")
    name = {(): "suite.json", ("-n", "0"): "suite-one-process.json"}.get(tuple(arguments), "suite-subset.json")
    out = ROOT / "bench" / "results" / name
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nWrote {out.relative_to(ROOT)}")
    if result.returncode != 0:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", prefix="suite-failed-", suffix=".log",
                                         delete=False) as log:
            log.write(result.stdout + "\n" + result.stderr)
        print(result.stdout[-3000:], result.stderr[-3000:], f"(all of pytest's output: {log.name})", sep="\n",
              file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
