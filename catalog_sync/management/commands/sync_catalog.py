import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog_sync.models import SyncRun
from catalog_sync.sync import SyncAlreadyRunning, run_sync


class Command(BaseCommand):
    help = ("Mirror the Secoda workspace now, in the foreground, printing progress. Without --full, lists "
            "only what changed since the last successful sync (a first sync is always a full sweep).")

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true",
                            help="List every resource; the only kind of sync that marks removed resources.")
        parser.add_argument("--concurrency", type=int, default=settings.SYNC_CONCURRENCY, metavar="N",
                            help="Slices of a full sweep listed at once (default SYNC_CONCURRENCY, "
                                 f"{settings.SYNC_CONCURRENCY}).")

    def handle(self, *args, **options):
        concurrency = options["concurrency"]
        if not 1 <= concurrency <= 64:
            raise CommandError("--concurrency must be between 1 and 64.")
        from django.db import connection

        if connection.vendor == "sqlite" and concurrency > 1:
            concurrency = 1  # SQLite takes one writer at a time
        interactive = sys.stdout.isatty()
        state = {"stage": None, "mark": -1, "width": 0}

        def listener(run, stage):
            if stage == "finished":
                return
            line = (f"{stage:<13} {run.fetched:>9,} resources listed "
                    f"({run.created:,} new, {run.updated:,} changed), {run.requests:,} requests")
            if interactive:
                self.stdout.write("\r" + line.ljust(state["width"]), ending="")
                self.stdout.flush()
                state["width"] = len(line)
            elif stage != state["stage"] or run.fetched // 5000 != state["mark"]:
                state.update(stage=stage, mark=run.fetched // 5000)
                self.stdout.write(line)

        kind = SyncRun.FULL if options["full"] else SyncRun.INCREMENTAL
        try:
            run = run_sync(trigger="command", listener=listener, kind=kind, concurrency=concurrency)
        except SyncAlreadyRunning as exc:
            raise CommandError(str(exc))
        if interactive:
            self.stdout.write("")
        seconds = run.duration.total_seconds() if run.duration else 0
        what = run.get_kind_display().lower()
        if run.status == SyncRun.INCOMPLETE:
            raise CommandError(f"Sync #{run.pk} ({what}) is incomplete after {seconds:.1f}s: {run.error}")
        if run.status != SyncRun.SUCCEEDED:
            raise CommandError(f"Sync #{run.pk} ({what}) failed after {seconds:.1f}s: {run.error}")
        if run.fallback_reason:
            self.stdout.write(self.style.WARNING(f"Ran a full sweep instead of an incremental sync: "
                                                 f"{run.fallback_reason}."))
        self.stdout.write(self.style.SUCCESS(
            f"Sync #{run.pk} ({what}) finished in {seconds:.1f}s: {run.fetched:,} resources listed, "
            f"{run.created:,} new, {run.updated:,} changed, {run.removed:,} removed, {run.requests:,} requests."))
        for warning in filter(None, run.warnings.splitlines()):
            self.stdout.write(self.style.WARNING(f"Note: {warning}"))
