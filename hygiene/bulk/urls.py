from django.urls import path

from hygiene.bulk import views

app_name = "bulk"
urlpatterns = [
    path("edit/", views.edit, name="edit"),
    path("edit-resource/", views.edit_resource, name="edit-resource"),
    path("", views.change_sets, name="change-sets"),
    path("<int:pk>/", views.change_set_detail, name="change-set"),
    path("<int:pk>/progress.json", views.change_set_progress, name="progress"),
    path("<int:pk>/apply", views.change_set_apply, name="apply"),
    path("<int:pk>/discard", views.change_set_discard, name="discard"),
    path("<int:pk>/retry", views.change_set_retry, name="retry"),
    path("<int:pk>/undo", views.change_set_undo, name="undo"),
]
