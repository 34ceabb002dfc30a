from django.urls import path

from hygiene.reports import views

app_name = "reports"
urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("<int:pk>/delete", views.subscription_delete, name="delete"),
    path("<int:pk>/send-now", views.subscription_send_now, name="send-now"),
    path("<int:pk>/preview", views.subscription_preview, name="preview"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
