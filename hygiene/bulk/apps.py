from django.apps import AppConfig


class BulkConfig(AppConfig):
    name = "hygiene.bulk"
    label = "bulk"
    verbose_name = "Bulk edits"
