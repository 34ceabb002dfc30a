from django.urls import path

from hygiene.rulebook import transfer_views, views

app_name = "rulebook"
urlpatterns = [
    path("", views.rule_list, name="rules"),
    path("new", views.rule_create, name="create"),
    path("<int:pk>/edit", views.rule_edit, name="edit"),
    path("<int:pk>/toggle", views.rule_toggle, name="toggle"),
    path("<int:pk>/delete", views.rule_delete, name="delete"),
    # Export and import of the rules as YAML or JSON (transfer_views).
    path("export.<str:fmt>", transfer_views.export_rules, name="export"),
    path("import", transfer_views.import_rules, name="import"),
]
