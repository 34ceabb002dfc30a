from django.contrib import admin
from django.urls import include, path

from hygiene.health import healthz

admin.site.site_header = "Catalog Hygiene administration"
admin.site.site_title = "Catalog Hygiene"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", healthz, name="healthz"),
    path("changes/", include("hygiene.bulk.urls")),
    path("migrate/", include("hygiene.migration.urls")),
    path("reports/", include("hygiene.reports.urls")),
    path("account/", include("hygiene.accounts.urls")),
    path("mailbox/", include("hygiene.mailbox.urls")),
    path("rules/", include("hygiene.rulebook.urls")),
    path("suggestions/", include("hygiene.suggestions.urls")),
    path("oidc/", include("hygiene.sso")),  # single sign-on; 404 unless configured
    path("", include("hygiene.dashboard.urls")),
]
