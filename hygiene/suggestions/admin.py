from django.contrib import admin

from hygiene.suggestions.models import RejectedSuggestion


@admin.register(RejectedSuggestion)
class RejectedSuggestionAdmin(admin.ModelAdmin):
    """Where a rejection can be taken back (delete it: the next sync may suggest that value again)."""

    list_display = ("resource_id", "kind", "value", "rejected_by", "rejected_at")
    list_filter = ("kind",)
    search_fields = ("resource_id", "value")
    readonly_fields = ("resource_id", "kind", "value_key", "value", "reason", "rejected_by", "rejected_at")

    def has_add_permission(self, request):
        return False
