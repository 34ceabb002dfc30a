import json

from django.core.management.base import BaseCommand

from hygiene.rulebook import registry


class Command(BaseCommand):
    help = "Print how many mirrored resources break each hygiene rule in force (built-in and custom)."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "text"], default="text")

    def handle(self, *args, **options):
        report = registry.summary()
        report["rules"] = [{"key": rule.key, "name": rule.label, "builtin": rule.builtin, "weight": rule.weight,
                            "count": report.get(rule.key, 0)} for rule in registry.rules()]
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
        for rule in report["rules"]:
            name = rule["name"] if rule["builtin"] else f"{rule['name']} (custom)"
            lines.append(f"  {name:<20} {rule['count']:>9,}  {share(rule['count']):>5}")
        lines += ["", "By type:", f"  {'type':<16} {'resources':>10} {'stale':>8} {'unowned':>8} "
                  f"{'undocumented':>13} {'failing dbt':>12}"]
        for entity_type, row in report["by_entity_type"].items():
            lines.append(f"  {entity_type:<16} {row['resources']:>10,} {row.get('stale', 0):>8,} "
                         f"{row.get('unowned', 0):>8,} {row.get('undocumented', 0):>13,} "
                         f"{row.get('failing_dbt_tests', 0):>12,}")
        return "\n".join(lines)
