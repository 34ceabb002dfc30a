from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogSyncConfig(AppConfig):
    name = "catalog_sync"
    verbose_name = "Secoda mirror"

    def ready(self):
        from catalog_sync.schedule import ensure_periodic_tasks

        post_migrate.connect(ensure_periodic_tasks, sender=self)
