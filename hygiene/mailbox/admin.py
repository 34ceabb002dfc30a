from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from hygiene.mailbox.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["sent_at", "subject", "recipients", "read_it"]
    search_fields = ["subject", "to"]
    date_hierarchy = "sent_at"
    readonly_fields = ["sent_at", "from_email", "to", "subject", "headers", "body_text", "read_it"]
    exclude = ["body_html"]

    @admin.display(description="Read")
    def read_it(self, obj):
        return format_html('<a href="{}">Open in the mailbox</a>', reverse("mailbox:message", args=[obj.pk]))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
