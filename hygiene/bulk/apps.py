from importlib import import_module

from django.apps import AppConfig


class BulkConfig(AppConfig):
    name = "hygiene.bulk"
    label = "bulk"
    verbose_name = "Bulk edits"

    def ready(self):
        # Registers the apply task with Celery in every process, the web's too: services queue it by name.
        import_module("hygiene.bulk.tasks")
