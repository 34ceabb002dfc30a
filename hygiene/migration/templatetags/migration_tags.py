"""The change set page's word on a migration: which one it belongs to and, once it has run, the end check."""
from django import template

from hygiene.migration import services
from hygiene.migration.models import MigrationPlan

register = template.Library()


@register.inclusion_tag("migration/_change_set_note.html")
def migration_note(change_set):
    plan = (MigrationPlan.objects.select_related("old_integration", "new_integration")
            .filter(change_set_id=change_set.pk).first())
    if plan is None:
        return {"plan": None}
    check = None
    if change_set.is_finished:
        renames = [(old, new) for old, new in plan.renames]
        matching = services.match_integrations(plan.old_integration_id, plan.new_integration_id, renames)
        check = services.end_check(matching, plan.picks)
    return {"plan": plan, "check": check, "old": plan.old_integration, "new": plan.new_integration}
