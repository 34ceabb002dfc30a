import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

BUILTIN = [
    ("stale", "Stale", 20), ("unowned", "Unowned", 25), ("undocumented", "Undocumented", 20),
    ("failing_dbt_tests", "Failing dbt tests", 25), ("warning_dbt_tests", "Warning dbt tests", 5),
    ("unused", "Unused", 5),
]


def seed(apps, schema_editor):
    Rule = apps.get_model("rulebook", "Rule")
    weights = getattr(settings, "HEALTH_WEIGHTS", {})
    for position, (key, name, weight) in enumerate(BUILTIN):
        Rule.objects.get_or_create(key=key, defaults={
            "name": name, "builtin": True, "position": position, "weight": weights.get(key, weight)})


class Migration(migrations.Migration):
    initial = True

    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Rule",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.SlugField(help_text="Used in links, snapshots and exports; never reused.",
                                         max_length=32, unique=True)),
                ("name", models.CharField(max_length=80)),
                ("explanation", models.CharField(blank=True, max_length=300)),
                ("weight", models.PositiveSmallIntegerField(default=10,
                                                            help_text="Points off the 0-100 health score.")),
                ("enabled", models.BooleanField(default=True)),
                ("builtin", models.BooleanField(default=False)),
                ("position", models.PositiveIntegerField(default=100)),
                ("scope", models.TextField(blank=True,
                                           help_text="The issue-list filters it applies to, as a query string.")),
                ("match", models.CharField(choices=[("all", "all of the clauses"), ("any", "any of the clauses")],
                                           default="all", max_length=3)),
                ("clauses", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("deleted_at", models.DateTimeField(blank=True, null=True)),
                ("created_by", models.ForeignKey(blank=True, null=True,
                                                 on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["position", "id"]},
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
