from django.apps import AppConfig


class RulebookConfig(AppConfig):
    name = "hygiene.rulebook"
    label = "rulebook"
    verbose_name = "Rules"

    def ready(self):
        from django.core.signals import request_started
        from django.db.models.signals import post_delete, post_migrate, post_save

        from hygiene.dashboard.filtersets import ResourceFilterSet
        from hygiene.rulebook import registry
        from hygiene.rulebook.models import Rule

        ResourceFilterSet.rules_in_force = staticmethod(registry.rules)

        # Rules are read once per request (or task) and forgotten when one changes in this process.
        request_started.connect(registry.forget, dispatch_uid="rulebook-forget-per-request")
        post_save.connect(registry.forget, sender=Rule, dispatch_uid="rulebook-forget-on-save")
        post_delete.connect(registry.forget, sender=Rule, dispatch_uid="rulebook-forget-on-delete")
        # The built-in rules' rows come from a migration; `flush` (which tests run too) empties the table and
        # then sends post_migrate, so they are made again here with their defaults.
        post_migrate.connect(builtin_rows_back, sender=self, dispatch_uid="rulebook-builtin-rows")
        try:
            from celery.signals import task_prerun
        except ImportError:  # pragma: no cover
            return
        task_prerun.connect(registry.forget, weak=False, dispatch_uid="rulebook-forget-per-task")


def builtin_rows_back(using="default", plan=None, **kwargs):
    """After `flush` only: `migrate` (which passes its plan) makes the rows in the first migration, and may
    leave the table at an older shape or gone (`migrate rulebook zero`)."""
    from django.db import connections

    from hygiene.rulebook import registry, services
    from hygiene.rulebook.models import Rule

    if plan is not None or Rule._meta.db_table not in connections[using].introspection.table_names():
        return
    registry.forget()
    services.ensure_builtin_rows()
