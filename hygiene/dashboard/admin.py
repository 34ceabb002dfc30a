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
    list_display = ("taken_at", "reason", "sync_run")
    list_filter = ("reason",)
    readonly_fields = ("taken_at", "reason", "sync_run", "totals", "by_integration", "by_entity_type", "by_team",
                       "by_owner")

    def has_add_permission(self, request):
        return False
