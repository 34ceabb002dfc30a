from django.urls import path

from hygiene.accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.account, name="account"),
    path("link", views.link_person, name="link"),
    path("unlink", views.unlink_person, name="unlink"),
]
