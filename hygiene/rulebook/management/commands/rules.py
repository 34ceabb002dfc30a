"""`manage.py rules export` and `manage.py rules import FILE`: the rules as a file, for teams that keep them in
git. The same services as the Rules page's export and import (`hygiene.rulebook.transfer`)."""
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hygiene.rulebook import transfer


class Command(BaseCommand):
    help = "Export every rule to YAML or JSON, or import such a file (all of its rules or none)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="Write every rule (not deleted) as YAML or JSON.")
        export.add_argument("--format", choices=transfer.FORMATS, default="yaml")
        export.add_argument("--output", "-o", help="Write to this file (default: standard output).")
        load = actions.add_parser("import", help="Import a rules file; nothing is written if any rule is refused.")
        load.add_argument("file", help="A YAML or JSON rules file ('-' reads standard input).")
        load.add_argument("--dry-run", action="store_true", help="Check the file and say what would change.")

    def handle(self, *args, **options):
        if options["action"] == "export":
            return self.export(options["format"], options.get("output"))
        return self.load(options["file"], options["dry_run"])

    def export(self, fmt, output):
        data = transfer.export_rules()
        text = transfer.dump(data, fmt)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {len(data['rules'])} rules to {output}.")
        else:
            self.stdout.write(text, ending="")

    def load(self, name, dry_run):
        try:
            if name == "-":
                content = sys.stdin.buffer.read(transfer.MAX_BYTES + 1)
            else:
                with open(name, "rb") as handle:
                    content = handle.read(transfer.MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror or exc}.") from None
        try:
            result = transfer.import_rules(transfer.parse(content), user=None, dry_run=dry_run)
        except transfer.RulesFileError as exc:
            raise CommandError(f"Nothing was imported. {exc}") from None
        if not result.ok:
            raise CommandError("\n".join([result.summary(), *(f"  {refusal}" for refusal in result.refused)]))
        for title, outcomes in (("Created", result.created), ("Updated", result.updated)):
            for outcome in outcomes:
                detail = f" ({', '.join(outcome.changes)})" if title == "Updated" else ""
                note = f" - {outcome.note}" if outcome.note else ""
                self.stdout.write(f"  {title} {outcome.key}: {outcome.name}{detail}{note}")
        self.stdout.write(result.summary())
        if result.untouched:
            self.stdout.write(result.untouched_note())
