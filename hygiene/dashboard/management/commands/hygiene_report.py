import json

from django.core.management.base import BaseCommand

from hygiene.rules import REPORT_RULES, RULE_LABELS, summary


class Command(BaseCommand):
    help = "Print how many mirrored resources break each hygiene rule."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "text"], default="text")

    def handle(self, *args, **options):
        report = summary()
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(self.render_text(report))

    @staticmethod
    def render_text(report):
        total = report["resources"]

        def share(n):
            return f"{n / total:.0%}" if total else "-"

        lines = [f"{total:,} resources in {report['integrations']:,} integrations", ""]
        for rule in REPORT_RULES:
            lines.append(f"  {RULE_LABELS[rule]:<20} {report[rule]:>9,}  {share(report[rule]):>5}")
        lines += ["", "By type:", f"  {'type':<16} {'resources':>10} {'stale':>8} {'unowned':>8} "
                  f"{'undocumented':>13} {'failing dbt':>12}"]
        for entity_type, row in report["by_entity_type"].items():
            lines.append(f"  {entity_type:<16} {row['resources']:>10,} {row['stale']:>8,} {row['unowned']:>8,} "
                         f"{row['undocumented']:>13,} {row['failing_dbt_tests']:>12,}")
        return "\n".join(lines)
