"""Everything a first run needs, in one command: the database, a demo login,
the Secoda emulator, a first sync, a Celery worker and beat, and the web server."""
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from hygiene.roles import ensure_roles


def port_free(host, port):
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def wait_for_port(host, port, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not port_free(host, port):
            return True
        time.sleep(0.2)
    return False


class Command(BaseCommand):
    help = "Run the whole product on embedded defaults (SQLite, emulator, worker, beat, web)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Dashboard port (default 8000).")
        parser.add_argument("--emulator-port", type=int, default=8765)
        parser.add_argument("--resources", type=int, default=4000, help="Size of the demo workspace.")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options):
        host = "127.0.0.1"
        for port in (options["port"], options["emulator_port"]):
            if not port_free(host, port):
                raise CommandError(f"Port {port} is already in use. Stop what uses it or pass another port.")
        token = settings.SECODA_API_TOKEN or "demo-token"
        env = dict(os.environ)
        env.setdefault("SECODA_API_URL", f"http://{host}:{options['emulator_port']}/api/v1")
        env["SECODA_API_TOKEN"] = token
        env.setdefault("SYNC_INTERVAL_MINUTES", "5")
        # Links in report e-mails and previews point at this dashboard, whatever --port says.
        env.setdefault("SITE_URL", f"http://{host}:{options['port']}")
        if env["SECODA_API_URL"] != settings.SECODA_API_URL or env["SITE_URL"] != settings.SITE_URL:
            # Re-run ourselves with the emulator's address in the environment, so every child shares it.
            os.execvpe(sys.executable, [sys.executable, *sys.argv], env)

        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        children = []
        log_dir = settings.DATA_DIR / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)

        def start(name, log_name, command):
            log_path = log_dir / f"{log_name}.log"
            self.stdout.write(f"Starting {name} (log: {log_path})")
            log = open(log_path, "ab")
            process = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, start_new_session=True,
                                       stdout=log, stderr=subprocess.STDOUT)
            children.append((name, process))
            return process

        def stop_all(*_):
            for name, process in reversed(children):
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15  # all of them together, not 15 s each
            for name, process in children:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.stdout.write(f"{name[0].upper()}{name[1:]} did not stop in time; ending it.")
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
            self.stdout.write("Stopped.")

        signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
        # Ctrl-C stops everything even when this process was started with SIGINT ignored (a parent that
        # ignores it passes that on, and Python then installs no KeyboardInterrupt handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            # The emulator (a Python of its own) starts up while this one prepares the database.
            start("the Secoda emulator", "emulator", [python, manage, "secoda_emulator", "--host", host,
                                          "--port", str(options["emulator_port"]), "--resources",
                                          str(options["resources"]), "--seed", str(options["seed"]), "--token", token,
                                          "--migration-pair", "--dbt-models", "0.05"])
            self.stdout.write("Preparing the database…")
            call_command("migrate", interactive=False, verbosity=0)
            password = self.demo_login()
            if not wait_for_port(host, options["emulator_port"], 120):
                raise CommandError("The emulator did not start.")
            self.stdout.write("Running the first sync (later ones run on the scheduler)…")
            sync = subprocess.run([python, manage, "sync_catalog", "--full"], env=env, cwd=settings.BASE_DIR)
            if sync.returncode != 0:
                self.stderr.write("The first sync failed; the worker will retry on schedule.")
            people = self.demo_people()
            celery = [python, "-m", "celery", "-A", "hygiene"]
            start("the Celery worker", "worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"])
            start("the Celery beat scheduler", "beat", [*celery, "beat", "--loglevel", "INFO"])
            start("the web server", "web", [python, manage, "runserver", f"{host}:{options['port']}", "--noreload",
                                     "--skip-checks"])
            wait_for_port(host, options["port"], 60)
            self.stdout.write(self.style.SUCCESS(
                f"\nCatalog Hygiene is running at http://{host}:{options['port']}\n"
                f"  Sign in as a steward:  steward / {password}\n"
                f"  or as a viewer:        viewer / {password}\n"
                f"{people}"
                f"  Mail is kept, not sent: http://{host}:{options['port']}/mailbox/\n"
                f"  Admin (schedules):     http://{host}:{options['port']}/admin/ as admin / {password}\n"
                "Press Ctrl-C to stop.\n"))
            while True:
                for name, process in children:
                    if process.poll() is not None:
                        raise CommandError(f"{name[0].upper()}{name[1:]} stopped (exit {process.returncode}).")
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            stop_all()

    def demo_people(self):
        """Give the demo users the e-mails of workspace people who own assets, so "Assets I own" and its
        report show something: they link by e-mail. An address set by hand is kept."""
        from django.db.models import Count

        from catalog_sync.models import ResourceRef, SecodaUser

        owners = (ResourceRef.objects.filter(kind=ResourceRef.OWNER).values("ref_id")
                  .annotate(n=Count("id")).order_by("-n", "ref_id")[:50])
        people = SecodaUser.objects.present().exclude(email="").in_bulk([o["ref_id"] for o in owners])
        ranked = [people[o["ref_id"]] for o in owners if o["ref_id"] in people]
        lines = []
        for username, person in zip(("steward", "viewer"), ranked):
            user = get_user_model().objects.get(username=username)
            if not user.email:
                user.email, user.first_name, user.last_name = person.email, person.first_name, person.last_name
                user.save(update_fields=["email", "first_name", "last_name"])
            if user.email.lower() == person.email.lower():
                lines.append(f"  {username} is {person.display_name} <{person.email}> in the demo workspace\n")
        return "".join(lines)

    def demo_login(self):
        """Demo users with one password kept in the data folder, so it survives restarts."""
        password_file = settings.DATA_DIR / "demo_password"
        if password_file.exists():
            password = password_file.read_text().strip()
        else:
            password = "demo-" + secrets.token_hex(4)
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password)
        stewards, viewers = ensure_roles()
        User = get_user_model()
        encoded = make_password(password)  # once for the three: a hash costs 0.4 s of CPU
        for username, group, staff in (("steward", stewards, False), ("viewer", viewers, False),
                                       ("admin", stewards, True)):
            user, _ = User.objects.get_or_create(username=username, defaults={"first_name": username.title()})
            user.password = encoded
            user.is_staff = user.is_superuser = staff
            user.save()
            user.groups.add(group)
        return password
