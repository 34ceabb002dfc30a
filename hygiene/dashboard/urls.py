from django.urls import path

from hygiene.dashboard import saved_view_pages, views

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
    # A team's, an owner's ("user:<id>", "group:<id>") or an integration's page; ids are Secoda's, as above.
    path("teams/<path:key>/", views.team_page, name="team"),
    path("owners/<path:key>/", views.owner_page, name="owner"),
    path("integrations/<path:key>/", views.integration_page, name="integration"),
    path("trend/", views.trend, name="trend"),  # the old address of those pages: a redirect
    path("snoozes/", views.snoozes, name="snoozes"),
    path("snoozes/new", views.snooze_create, name="snooze-create"),
    path("snoozes/<int:pk>/end", views.snooze_cancel, name="snooze-cancel"),
    path("views/", saved_view_pages.saved_view_list, name="saved-views"),
    path("views/new", saved_view_pages.saved_view_create, name="saved-view-create"),
    path("views/<int:pk>/rename", saved_view_pages.saved_view_rename, name="saved-view-rename"),
    path("views/<int:pk>/delete", saved_view_pages.saved_view_delete, name="saved-view-delete"),
]
