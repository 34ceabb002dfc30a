from django.contrib import admin

from hygiene.rulebook.models import Rule


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    """Read-mostly: rules are written through the rule builder (/rules/), which checks them and takes a snapshot
    so every count follows. Here an admin can look, and correct a name or an explanation."""

    list_display = ("key", "name", "builtin", "enabled", "weight", "deleted_at")
    list_filter = ("builtin", "enabled")
    search_fields = ("key", "name", "explanation")
    readonly_fields = ("key", "builtin", "weight", "enabled", "scope", "match", "clauses", "position",
                       "created_by", "created_at", "updated_at", "deleted_at")
    fields = ("key", "name", "explanation", *readonly_fields[1:])

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
