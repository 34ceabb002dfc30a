from django.urls import path

from hygiene.migration import views

app_name = "migration"
urlpatterns = [
    path("", views.migrate, name="migrate"),
    path("preview", views.preview, name="preview"),
    path("<int:pk>/", views.plan_detail, name="plan"),
]
