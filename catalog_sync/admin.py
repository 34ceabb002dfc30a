from django.contrib import admin, messages

from catalog_sync import models
from catalog_sync.tasks import sync_catalog


class ReadOnlyMirrorAdmin(admin.ModelAdmin):
    """The mirror is written by syncs only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.Resource)
class ResourceAdmin(ReadOnlyMirrorAdmin):
    list_display = ("title_full", "entity_type", "integration", "stale", "is_owned", "is_documented", "removed_at")
    list_filter = ("entity_type", "stale", "is_owned", "is_documented", "pii", "verified", "archived")
    search_fields = ("id", "title_full", "title")
    list_select_related = ("integration",)
    show_full_result_count = False


@admin.register(models.Integration)
class IntegrationAdmin(ReadOnlyMirrorAdmin):
    list_display = ("name", "type", "id", "removed_at")
    search_fields = ("name", "id")


@admin.register(models.SecodaUser)
class SecodaUserAdmin(ReadOnlyMirrorAdmin):
    list_display = ("display_name", "email", "role", "disabled", "removed_at")
    search_fields = ("first_name", "last_name", "email", "id")


@admin.register(models.SecodaGroup, models.Team, models.Tag)
class NamedAdmin(ReadOnlyMirrorAdmin):
    list_display = ("name", "id", "removed_at")
    search_fields = ("name", "id")


@admin.register(models.DbtTestStatus)
class DbtTestStatusAdmin(ReadOnlyMirrorAdmin):
    list_display = ("resource_id", "status", "integration", "first_seen_at")
    list_filter = ("status",)


@admin.register(models.SyncRun)
class SyncRunAdmin(ReadOnlyMirrorAdmin):
    list_display = ("id", "status", "trigger", "started_at", "finished_at", "fetched", "created", "updated",
                    "removed", "requests")
    list_filter = ("status", "trigger")
    actions = ["run_sync_now"]

    @admin.action(description="Run a sync now (in the background)")
    def run_sync_now(self, request, queryset):
        sync_catalog.delay(trigger="admin")
        self.message_user(request, "A sync was queued; it appears here when a worker starts it.", messages.SUCCESS)
