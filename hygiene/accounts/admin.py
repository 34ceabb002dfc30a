from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from hygiene.accounts.forms import PersonLinkAdminForm
from hygiene.accounts.models import PersonLink
from hygiene.accounts.services import linked_person

User = get_user_model()


class PersonLinkInline(admin.StackedInline):
    model = PersonLink
    form = PersonLinkAdminForm
    fk_name = "user"
    can_delete = True
    extra = 0
    max_num = 1
    verbose_name = "Secoda person, linked by hand"
    verbose_name_plural = "Secoda person, linked by hand (leave empty to match by e-mail)"


admin.site.unregister(User)


@admin.register(User)
class HygieneUserAdmin(UserAdmin):
    inlines = [PersonLinkInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "secoda_person"]

    @admin.display(description="Secoda person")
    def secoda_person(self, obj):
        link = linked_person(obj)
        return f"{link.person.display_name} ({link.how})" if link else "—"

    def save_formset(self, request, form, formset, change):
        for link in formset.save(commit=False):
            link.linked_by = request.user
            link.save()
        for gone in formset.deleted_objects:
            gone.delete()
