"""The test suite's own benchmark: where a whole run's time and CPU go.

Runs the README's test command (`bin/test`, with the pytest arguments given) and reports:

- its wall time, and the machine's CPU busy and idle meanwhile (`/proc/stat`): a run whose cores are busy
  throughout is limited by the CPU, and only less work makes it faster;
- PostgreSQL's CPU (the server's processes, read from `/proc`: a local server this user may read);
- each test's wall time and the CPU of the test process that ran it (a plugin, `bench/plugins/suite_timeline.py`):
  per file and the costliest tests. A process's first test also carries its set-up (its databases, the synced
  mirror, chromium).

    .venv/bin/python bench/suite.py                                  # the whole suite
    .venv/bin/python bench/suite.py -m "not slow and not browser"    # the quick tests

Writes bench/results/suite.json (suite-subset.json when arguments choose some of the tests).
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


def summarise(rows, top=15):
    by_file = collections.defaultdict(lambda: {"tests": 0, "wall": 0.0, "cpu": 0.0})
    for row in rows:
        entry = by_file[row["test"].split("::")[0]]
        entry["tests"] += 1
        entry["wall"] += row["end"] - row["start"]
        entry["cpu"] += row["cpu"] + row["children_cpu"]
    files = sorted(by_file.items(), key=lambda item: -item[1]["wall"])
    tests = sorted(rows, key=lambda row: row["start"] - row["end"])[:top]
    return files, tests


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
    files, tests = summarise(rows)
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
        "files": [{"file": name, **{k: round(v, 1) if isinstance(v, float) else v for k, v in entry.items()}}
                  for name, entry in files],
        "slowest": [{"test": row["test"], "wall": round(row["end"] - row["start"], 2), "cpu": round(row["cpu"], 2)}
                    for row in tests],
    }
    print(f"{summary_line}  (exit {result.returncode})")
    print(f"wall {wall:.0f} s; the machine's {cores} cores busy {busy:.0f} s, idle {idle:.0f} s "
          f"({100 * busy / max(busy + idle, 1e-9):.0f} % busy)")
    print(f"PostgreSQL {report['postgres_cpu_seconds']} s of CPU; the test processes {report['test_processes_cpu_seconds']} s "
          f"(and {report['their_children_cpu_seconds']} s in child processes they waited for)")
    print("\nfile                                          tests   wall s (summed over workers)   CPU s (test processes and the children they waited for)")
    for name, entry in files[:15]:
        print(f"{name:45} {entry['tests']:5} {entry['wall']:10.1f} {entry['cpu']:26.1f}")
    print("\nslowest tests (wall s, test-process CPU s)")
    for row in report["slowest"]:
        print(f"{row['wall']:7.1f} {row['cpu']:6.1f}  {row['test']}")
    out = ROOT / "bench" / "results" / ("suite-subset.json" if arguments else "suite.json")
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nWrote {out.relative_to(ROOT)}")
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
