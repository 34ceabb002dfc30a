from django.contrib import admin, messages

from catalog_sync import models
from catalog_sync.tasks import retry_sweep, sync_catalog


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


class SyncSliceInline(admin.TabularInline):
    model = models.SyncSlice
    fields = ("label", "pages", "status", "attempts", "expected", "listed", "requests", "error", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="Pages")
    def pages(self, obj):
        return f"{obj.first_page}–{obj.last_page or 'end'}"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(models.SyncRun)
class SyncRunAdmin(ReadOnlyMirrorAdmin):
    list_display = ("id", "kind", "status", "trigger", "started_at", "finished_at", "fetched", "created", "updated",
                    "removed", "requests", "slices_done", "slices_total")
    list_filter = ("status", "kind", "trigger", "mode")
    actions = ["run_sync_now", "run_full_sweep_now", "retry_failed_slices"]
    inlines = [SyncSliceInline]

    def has_change_permission(self, request, obj=None):
        return obj is not None and request.user.is_superuser  # read-only detail page with its slices

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.action(description="Run an incremental sync now (in the background)")
    def run_sync_now(self, request, queryset):
        sync_catalog.delay(trigger="admin", kind=models.SyncRun.INCREMENTAL)
        self.message_user(request, "An incremental sync was queued; it appears here when a worker starts it.",
                          messages.SUCCESS)

    @admin.action(description="Run a full sweep now (in the background)")
    def run_full_sweep_now(self, request, queryset):
        sync_catalog.delay(trigger="admin", kind=models.SyncRun.FULL)
        self.message_user(request, "A full sweep was queued; it appears here when a worker starts it.",
                          messages.SUCCESS)

    @admin.action(description="Retry the failed slices of the selected sweeps")
    def retry_failed_slices(self, request, queryset):
        queued = 0
        for run in queryset.filter(status=models.SyncRun.FAILED):
            if run.slices.filter(status=models.SyncSlice.FAILED).exists():
                retry_sweep.delay(run.pk)
                queued += 1
        if queued:
            self.message_user(request, f"Retrying the failed slices of {queued} sweep(s) in the background.",
                              messages.SUCCESS)
        else:
            self.message_user(request, "None of the selected syncs has failed slices to retry.", messages.WARNING)
