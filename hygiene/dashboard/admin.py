from django.contrib import admin

from hygiene.dashboard.models import Snapshot, Snooze


@admin.register(Snooze)
class SnoozeAdmin(admin.ModelAdmin):
    list_display = ("__str__", "rule", "expires_at", "created_by", "created_at", "cancelled_at")
    list_filter = ("rule",)
    search_fields = ("reason", "filter_label", "resource__title_full")
    raw_id_fields = ("resource",)


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ("taken_at", "reason", "sync_run", "took")
    list_filter = ("reason",)
    readonly_fields = ("taken_at", "reason", "sync_run", "durations", "totals", "by_integration", "by_entity_type", "by_team",
                       "by_owner")

    def has_add_permission(self, request):
        return False

    @admin.display(description="Took")
    def took(self, snapshot):
        """The whole snapshot and its slowest step, e.g. "41.2 s (issue_history 20.1 s)"."""
        if not snapshot.durations:
            return "–"
        slowest = max(snapshot.durations, key=snapshot.durations.get)
        return f"{sum(snapshot.durations.values()):.1f} s ({slowest} {snapshot.durations[slowest]} s)"
