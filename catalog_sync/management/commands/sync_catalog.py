import sys

from django.core.management.base import BaseCommand, CommandError

from catalog_sync.models import SyncRun
from catalog_sync.sync import SyncAlreadyRunning, run_sync


class Command(BaseCommand):
    help = "Mirror the Secoda workspace now, in the foreground, printing progress."

    def handle(self, *args, **options):
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

        try:
            run = run_sync(trigger="command", listener=listener)
        except SyncAlreadyRunning as exc:
            raise CommandError(str(exc))
        if interactive:
            self.stdout.write("")
        seconds = run.duration.total_seconds() if run.duration else 0
        if run.status != SyncRun.SUCCEEDED:
            raise CommandError(f"Sync #{run.pk} failed after {seconds:.1f}s: {run.error}")
        self.stdout.write(self.style.SUCCESS(
            f"Sync #{run.pk} finished in {seconds:.1f}s: {run.fetched:,} resources listed, {run.created:,} new, "
            f"{run.updated:,} changed, {run.removed:,} removed, {run.requests:,} requests."))
        for warning in filter(None, run.warnings.splitlines()):
            self.stdout.write(self.style.WARNING(f"Note: {warning}"))
