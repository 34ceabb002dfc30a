from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "hygiene.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from django.db.models.signals import post_migrate

        from hygiene.schedule import ensure_periodic_tasks

        post_migrate.connect(ensure_periodic_tasks, sender=self)

        from catalog_sync.signals import sync_succeeded
        from hygiene.domain.snapshots import snapshot_after_sync

        sync_succeeded.connect(snapshot_after_sync, dispatch_uid="dashboard-snapshot-after-sync")

        from django.contrib.auth.signals import user_logged_in

        from hygiene.security import forget_own_failures

        user_logged_in.connect(forget_own_failures, dispatch_uid="forget-own-sign-in-failures")
