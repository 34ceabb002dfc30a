from django.urls import path

from hygiene.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("issues/", views.issue_list, name="issues"),
    path("issues/export.csv", views.issue_export, name="issues-export"),
    path("issues/<slug:rule>/", views.issue_list, name="rule"),
    path("issues/<slug:rule>/export.csv", views.issue_export, name="rule-export"),
    # Ids are Secoda's: anything it may send, "/" included (the converter takes the rest of the path).
    path("resources/<path:pk>/", views.resource_detail, name="resource"),
    path("owners/", views.owners, name="owners"),
    path("teams/", views.teams, name="teams"),
    path("snoozes/", views.snoozes, name="snoozes"),
    path("snoozes/new", views.snooze_create, name="snooze-create"),
    path("snoozes/<int:pk>/end", views.snooze_cancel, name="snooze-cancel"),
]
