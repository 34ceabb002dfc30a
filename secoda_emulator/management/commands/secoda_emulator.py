"""Serve a generated Secoda workspace over HTTP: ``python manage.py secoda_emulator``."""
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from secoda_emulator import EmulatorServer, Faults, Workspace


def build_server(port=8765, resources=25_000, seed=1, host="127.0.0.1", token=None, error_rate=0.0,
                 rate_429=0.0, slow_rate=0.0, slow_ms=0, latency_ms=0, count_timeout=False,
                 writes_per_minute=30, migration_pair=False, dbt_models=0.0):
    """Generate the workspace and create (not start) the server."""
    for name, value in (("error-rate", error_rate), ("rate-429", rate_429), ("slow-rate", slow_rate),
                        ("dbt-models", dbt_models)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"--{name} is a probability between 0 and 1")
    if resources < 0 or slow_ms < 0 or latency_ms < 0:
        raise ValueError("--resources, --slow-ms and --latency-ms cannot be negative")
    token = token or os.environ.get("SECODA_API_TOKEN") or "emulator-token"
    faults = Faults(error_rate=error_rate, rate_429=rate_429, slow_rate=slow_rate, slow_ms=slow_ms,
                    latency_ms=latency_ms, count_timeout=count_timeout,
                    writes_per_minute=writes_per_minute if writes_per_minute >= 0 else None)
    workspace = Workspace.generate(resources, seed=seed, migration_pair=migration_pair, dbt_models=dbt_models)
    return EmulatorServer(workspace, token=token, host=host, port=port, faults=faults)


def startup_line(server):
    counts = server.workspace.summary()
    return (f"Secoda emulator serving {server.base_url} with {counts['resources']} resources, "
            f"{counts['integrations']} integrations, {counts['users']} users "
            f"(seed {server.workspace.seed}). Ctrl-C to stop.")


class Command(BaseCommand):
    help = "Serve an emulated Secoda REST API with a generated, realistic workspace."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--resources", type=int, default=25_000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--token", default=None,
                            help="Bearer token to accept (default: $SECODA_API_TOKEN or 'emulator-token').")
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--rate-429", type=float, default=0.0)
        parser.add_argument("--slow-rate", type=float, default=0.0)
        parser.add_argument("--slow-ms", type=int, default=0)
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument("--count-timeout", action="store_true")
        parser.add_argument("--writes-per-minute", type=int, default=30,
                            help="Write limit per sliding minute (negative: unlimited).")
        parser.add_argument("--migration-pair", action="store_true",
                            help="Add an old and a new warehouse with overlapping paths (for Migrate documentation).")
        parser.add_argument("--dbt-models", type=float, default=0.0,
                            help="Share of the resources that are dbt models of Snowflake tables, at the same "
                                 "path (default 0: none).")

    def handle(self, *args, **options):
        try:
            server = build_server(
                port=options["port"], resources=options["resources"], seed=options["seed"],
                host=options["host"], token=options["token"], error_rate=options["error_rate"],
                rate_429=options["rate_429"], slow_rate=options["slow_rate"], slow_ms=options["slow_ms"],
                latency_ms=options["latency_ms"], count_timeout=options["count_timeout"],
                writes_per_minute=options["writes_per_minute"], migration_pair=options["migration_pair"],
                dbt_models=options["dbt_models"])
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None

        def on_sigterm(signum, frame):
            raise KeyboardInterrupt

        try:
            previous = signal.signal(signal.SIGTERM, on_sigterm)
        except ValueError:  # not the main thread (e.g. called from a test): no SIGTERM handling
            previous = None
        self.stdout.write(startup_line(server))
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            server.stop()
            self.stdout.write("Secoda emulator stopped.")
