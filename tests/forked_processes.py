"""Celery and manage.py processes for the crash tests, forked from one Python that has already imported
Django, the project and Celery. A `python -m celery … worker` spends 0.9 s of CPU importing before it does
anything, and the crash tests start about twenty; a fork from here skips that. Each forked process runs the
real command line (`celery -A hygiene worker …`, `manage.py shell -c …`) in a session of its own, with its
output in a log file: to the test it is a process like one started fresh, killed the same way (SIGKILL to
its process group).

`python -m tests.forked_processes` (with the cluster's environment) reads one JSON request a line on stdin:
{"start": argv, "log": path, "err": path or None} answers {"pid": n};
{"poll": pid} answers {"returncode": None or n}."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback


def preload():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hygiene.settings")
    import django

    django.setup()
    import importlib

    import celery.apps.beat  # noqa: F401
    import celery.apps.worker  # noqa: F401
    import celery.bin.celery  # noqa: F401
    import celery.concurrency.prefork  # noqa: F401
    import django.core.management.commands.shell  # noqa: F401
    import django_celery_beat.schedulers  # noqa: F401
    import kombu.transport.redis  # noqa: F401
    from django.apps import apps

    import hygiene.celery  # noqa: F401

    for config in apps.get_app_configs():  # what the worker's autodiscovery will import
        try:
            importlib.import_module(f"{config.name}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.tasks":
                raise
    assert threading.active_count() == 1, "no thread may run in a process that forks"


def run_child(argv, log, err=None):
    """In the forked child: a session of its own, output to `log` (errors to `err` if given), then the
    command; never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh Python has it
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, log), (2, err or log)):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, fd)
            os.close(out)
        try:
            if argv[0] == "celery":
                from celery.bin.celery import main

                sys.argv = argv
                main()
            else:
                from django.core.management import execute_from_command_line

                execute_from_command_line(["manage.py", *argv[1:]])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve():
    preload()
    exited = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        while True:  # reap whatever has exited, so a killed process does not linger as a zombie
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            exited[pid] = os.waitstatus_to_exitcode(status)
        if "start" in request:
            pid = os.fork()
            if pid == 0:
                run_child(request["start"], request["log"], request.get("err"))
            answer = {"pid": pid}
        else:
            answer = {"returncode": exited.get(request["poll"])}
        print(json.dumps(answer), flush=True)


class Forked:
    """What the tests use of a Popen: pid, poll(), wait()."""

    def __init__(self, zygote, pid):
        self.zygote = zygote
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            self.returncode = self.zygote.ask({"poll": self.pid})["returncode"]
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"forked process {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode


class Zygote:
    """The preloaded parent, started with `env`; `start(argv, log)` forks a process from it."""

    def __init__(self, env, cwd, log):
        self.log = open(log, "a")
        self.process = subprocess.Popen([sys.executable, "-m", "tests.forked_processes"], cwd=cwd, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.ready = False

    def ask(self, request):
        if not self.ready:  # the preload ran beside whatever the caller did meanwhile
            assert json.loads(self.process.stdout.readline() or "{}").get("ready"), "the zygote did not start"
            self.ready = True
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def start(self, argv, log, err=None):
        return Forked(self, self.ask({"start": argv, "log": str(log), "err": err and str(err)})["pid"])

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the test run is the test's to handle
    serve()
    os._exit(0)  # nothing to clean up: skip the interpreter's slow tear-down of everything preloaded
