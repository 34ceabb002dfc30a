from django.urls import path

from hygiene.mailbox import views

app_name = "mailbox"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:pk>/", views.message, name="message"),
    path("<int:pk>/html", views.message_html, name="message-html"),
]
