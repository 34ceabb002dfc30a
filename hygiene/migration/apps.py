from django.apps import AppConfig


class MigrationConfig(AppConfig):
    name = "hygiene.migration"
    label = "migration"
    verbose_name = "Documentation migrations"
